/**
 * `clone`: a new repository in a new (or empty) folder, laid out like the remote's (chunking,
 * encryption keys), with the remote configured, everything fetched and one branch checked out.
 * A clone that fails or is interrupted by a signal leaves nothing behind.
 */
import { readdirSync, rmSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import picomatch from 'picomatch';
import { AlreadyExistsError, ConfigError, NotFoundError, UsageError } from '../errors/index.js';
import {
  Repository,
  commitTreeMap,
  flattenTree,
  moveWorktree,
  silentProgress,
  type ChunkStream,
  type PassphraseProvider,
  type ProgressSink,
} from '../repo/index.js';
import type { Oid } from '../objects/index.js';
import {
  chunkKey,
  type MetricsSnapshot,
  type OpenedStore,
  type StoreOptions,
} from '../store/index.js';
import { CONTENT_REMOTE_KEY } from './chunk-source.js';
import { oneCopyEnabled, prune } from './prune.js';
import { canAdopt } from './transfer.js';
import { HISTORY_CONTENT_KEY, historyContent, type HistoryContent } from './content-policy.js';
import { readRemoteState, type RemoteState, type RepositoryDescriptor } from './descriptor.js';
import { fetchRefs, hardlinksWanted, type FetchReport } from './fetch-refs.js';
import { ChunkHeadStart } from './head-start.js';
import { openRemoteStore, remoteConfigEntries, type RemoteConfig } from './remotes.js';

export interface CloneRequest {
  /** The remote's URL as it is to be saved (local paths absolute: see canonicalRemoteUrl). */
  url: string;
  /** Absolute path of the new repository; it must not exist or be empty. */
  directory: string;
  /** Name of the remote in the new repository (git's --origin). */
  remoteName?: string;
  /** Backend options, saved with the remote. */
  options?: StoreOptions;
  /** Branch to check out; default main, else master, else the first. */
  branch?: string | undefined;
  /** Only paths matching these globs are fetched and checked out (saved as sparse.include). */
  include?: readonly string[] | undefined;
  /**
   * 'tip': chunk content only for the branch checked out (the rest comes on demand); 'all': every
   * version's. Default: config clone.history, else 'tip'. Saved in the new repository for fetch.
   */
  historyContent?: HistoryContent | undefined;
  /** false: never hard-link from a folder remote (else config transfer.hardlinks decides). */
  hardlinks?: boolean | undefined;
  /** Unlocks an encrypted remote's key (asked only when it is encrypted). */
  passphrase?: PassphraseProvider;
  /** false: unlock with the passphrase even when the key agent holds the key. */
  agent?: boolean;
  /** For resolving a relative local URL and backend files. */
  cwd?: string;
  /** A fresh progress display per phase (fetch, then checkout). */
  progress?: () => ProgressSink;
  /** Told when the new repository has been opened (e.g. how its key was unlocked). */
  onOpened?: (repo: Repository) => void;
  /**
   * Told when a signal interrupts the clone, before the folder is removed. After removing it the
   * clone calls `exit` (the CLI ends the process with 128 + the signal's number); without one it
   * raises the signal again, so the process ends as it would have without the clone.
   */
  onInterrupted?: (signal: NodeJS.Signals, removing: string) => void;
  exit?: (signal: NodeJS.Signals) => void;
}

export interface CloneResult {
  directory: string;
  /** The branch checked out; null when the remote has no branches yet. */
  branch: string | null;
  fetched: FetchReport;
  /** What travelled to and from the remote. */
  traffic: MetricsSnapshot;
  /**
   * Chunks the clone stored and then evicted (one copy on disk): only chunks its files share, the
   * rest never enter the store (docs/workspaces.md).
   */
  evicted: number;
}

const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export async function clone(request: CloneRequest): Promise<CloneResult> {
  const cwd = request.cwd ?? process.cwd();
  const target = request.directory;
  const existing = await readdir(target).catch((err: { code?: string }) =>
    err.code === 'ENOENT' ? null : Promise.reject(err),
  );
  if (existing && existing.length > 0)
    throw new AlreadyExistsError(`destination '${target}' exists and is not empty`);
  const remote: RemoteConfig = {
    name: request.remoteName ?? 'origin',
    url: request.url,
    options: request.options ?? {},
  };
  const opened = await openRemoteStore(remote, cwd);
  try {
    return await cloneFrom(opened, remote, request, existing === null);
  } finally {
    // Its connections are this call's: a library caller's process would keep them (and a
    // server would count them as clients) until they time out.
    await opened.store.close().catch(() => undefined);
  }
}

/** The clone once the remote is open: the folder `request.directory` exists or is empty. */
async function cloneFrom(
  opened: OpenedStore,
  remote: RemoteConfig,
  request: CloneRequest,
  createsFolder: boolean,
): Promise<CloneResult> {
  const target = request.directory;
  const { state, descriptor, branch, tip } = await inspectRemote(
    opened,
    remote.url,
    request.branch,
  );
  for (const glob of request.include ?? []) picomatch(glob);
  const hardlinks = await hardlinksWanted(request.hardlinks);
  const history = request.historyContent ?? (await historyContent());

  const cleanup = new CloneCleanup(target, createsFolder, request);
  await mkdir(target, { recursive: true });
  cleanup.arm();
  try {
    const repo = await createRepository(target, descriptor, branch, remote, opened, {
      ...request,
      historyContent: history,
    });
    request.onOpened?.(repo);
    const progress = request.progress ?? ((): ProgressSink => silentProgress);
    // One copy on disk: a tip-only clone evicts what it checks out once the remote confirms it
    // holds it (below), so chunks that arrive as bytes from this remote go into their files only.
    const oneCopy = history === 'tip' && oneCopyEnabled(repo);
    // The branch is checked out inside the fetch: its chunks are not fetched with the rest, the
    // checkout fetches them while it writes the files, each verified once and written to file and
    // (unless one copy) store from one buffer (docs/transfer.md).
    // The first chunks leave as soon as the fetch has named them, not once it has stored the
    // trees and manifests and the checkout has read them (head-start.ts).
    let headStart: ChunkHeadStart | undefined;
    const readAhead = opened.store.capabilities.readAhead;
    const stream = {
      get: (oid: Oid) => headStart?.take(oid) ?? opened.store.get(chunkKey(oid)),
      keepFetched: !oneCopy,
      // Told already, with the head start: asking again would re-ask the URLs it has used.
      expect: (oids: readonly Oid[]) =>
        headStart ? undefined : readAhead?.expect(oids.map(chunkKey)),
    };
    let checkedOut = false;
    let fetched: FetchReport;
    try {
      fetched = await fetchRefs(repo, remote, opened, {
        prune: false,
        hardlinks,
        progress: progress(),
        ...(branch && tip
          ? {
              checkout: {
                commit: tip,
                write: async (tree: Oid) => {
                  await writeWorktree(repo, tree, progress(), stream);
                  checkedOut = true;
                },
                ahead: (chunks: ReadonlyMap<Oid, number>) => {
                  readAhead?.expect([...chunks.keys()].map(chunkKey));
                  headStart = new ChunkHeadStart(opened.store, chunks);
                },
              },
            }
          : {}),
        content: { branch: branch ?? null },
        // Read a moment ago: one round trip less on a slow link.
        state,
      });
    } finally {
      await headStart?.settle();
    }
    if (branch && checkedOut) await repo.updateRef(`refs/heads/${branch}`, tip!, null);
    // The branch moved on the remote between looking and fetching: check out what was fetched.
    else if (branch) await checkOutBranch(repo, remote.name, branch, progress(), stream);
    // One copy on disk: what was just checked out is in the working tree and on the remote.
    // Chunks hard-linked from a folder remote share its disk blocks: keeping them costs nothing.
    let evicted = 0;
    if (branch && oneCopy && !canAdopt(opened.store, repo.store, { hardlinks }))
      evicted = (
        await prune(repo, opened.store, {
          worktreeOnly: true,
          remoteChecked: true,
          allFetchedFromRemote: true,
        })
      ).evicted;
    return {
      directory: target,
      branch: branch ?? null,
      fetched,
      traffic: opened.meter.snapshot(),
      evicted,
    };
  } catch (err) {
    cleanup.discard();
    throw err;
  } finally {
    cleanup.disarm();
  }
}

/** The folder a clone of `url` goes to by default: the URL's last part without `.mediagit`. */
export function defaultCloneDirectory(url: string): string {
  const last =
    url
      .replace(/[/\\]+$/, '')
      .split(/[/\\:]/)
      .pop() ?? '';
  const name = last.replace(/\.mediagit$/, '');
  if (!name)
    throw new ConfigError(`cannot guess a folder name from '${url}'`, {
      hint: 'give the directory as the second argument',
    });
  return name;
}

/** The remote's layout, and the branch to check out (undefined: it has none). */
async function inspectRemote(
  opened: OpenedStore,
  url: string,
  wanted: string | undefined,
): Promise<{
  state: RemoteState;
  descriptor: RepositoryDescriptor;
  branch: string | undefined;
  tip: Oid | undefined;
}> {
  const state = await readRemoteState(opened.store);
  const { descriptor, refs } = state;
  if (!descriptor)
    throw new NotFoundError(url, {
      hint: 'no mediagit repository there (nothing has been pushed yet, or the URL is wrong)',
    });
  const heads = [...refs.keys()]
    .filter((r) => r.startsWith('refs/heads/'))
    .map((r) => r.slice('refs/heads/'.length));
  const branch =
    wanted ??
    (heads.includes('main') ? 'main' : heads.includes('master') ? 'master' : heads.sort()[0]);
  if (wanted && !heads.includes(wanted))
    throw new UsageError(`the remote has no branch '${wanted}'`, {
      hint: heads.length ? `branches: ${heads.join(', ')}` : 'it has no branches yet',
    });
  return {
    state,
    descriptor,
    branch,
    tip: branch ? refs.get(`refs/heads/${branch}`)?.oid : undefined,
  };
}

/** Initialises the repository with the remote's chunking and keys, its remote and sparse paths. */
async function createRepository(
  target: string,
  descriptor: RepositoryDescriptor,
  branch: string | undefined,
  remote: RemoteConfig,
  opened: OpenedStore,
  request: CloneRequest,
): Promise<Repository> {
  await Repository.init(target, {
    chunking: {
      minSize: descriptor.chunking.min_size,
      avgSize: descriptor.chunking.avg_size,
      maxSize: descriptor.chunking.max_size,
    },
    ...(branch ? { initialBranch: branch } : {}),
  });
  const plain = await Repository.open(target);
  if (descriptor.encryption) {
    for await (const { key } of opened.store.list('keys/'))
      await plain.store.put(key, await opened.store.get(key));
    plain.config.set('encryption.enabled', true);
    plain.config.set('encryption.cipher', descriptor.encryption);
  }
  if (request.include?.length) plain.config.set('sparse.include', request.include.join('\n'));
  if (request.historyContent) plain.config.set(HISTORY_CONTENT_KEY, request.historyContent);
  for (const [k, v] of remoteConfigEntries(remote.name, remote.url, remote.options))
    plain.config.set(k, v);
  // Content this clone does not fetch now comes from here when a command needs it.
  plain.config.set(CONTENT_REMOTE_KEY, remote.name);
  await plain.config.save();
  // Opened again: with encryption enabled now, this one unlocks the key.
  return Repository.open(target, {
    ...(request.passphrase ? { passphrase: request.passphrase } : {}),
    ...(request.agent === false ? { agent: false } : {}),
  });
}

/** Writes a new working tree and index holding `tree`'s files. */
async function writeWorktree(
  repo: Repository,
  tree: Oid,
  progress: ProgressSink,
  stream: ChunkStream,
): Promise<void> {
  await repo.updateIndex(async (index) => {
    await moveWorktree(repo, index, new Map(), await flattenTree(repo.odb, tree), {
      force: true,
      progress,
      operation: 'checkout',
      stream,
    });
  });
}

/** Creates the local branch at the remote's tip and writes its files. */
async function checkOutBranch(
  repo: Repository,
  remoteName: string,
  branch: string,
  progress: ProgressSink,
  stream: ChunkStream,
): Promise<void> {
  const tip = await repo.readRef(`refs/remotes/${remoteName}/${branch}`);
  if (!tip) return;
  await repo.updateRef(`refs/heads/${branch}`, tip, null);
  await repo.updateIndex(async (index) => {
    await moveWorktree(repo, index, new Map(), await commitTreeMap(repo, tip), {
      force: true,
      progress,
      operation: 'checkout',
      stream,
    });
  });
}

/** Removes what the clone made when it fails, or when a signal interrupts it (as git does). */
class CloneCleanup {
  private readonly onSignal = (signal: NodeJS.Signals): void => this.interrupted(signal);

  constructor(
    private readonly target: string,
    /** The clone created the folder (else it was empty and only its contents go). */
    private readonly created: boolean,
    private readonly request: CloneRequest,
  ) {}

  arm(): void {
    for (const signal of SIGNALS) process.once(signal, this.onSignal);
  }

  disarm(): void {
    for (const signal of SIGNALS) process.off(signal, this.onSignal);
  }

  /** Synchronous: it also runs in a signal handler, with the process about to end. */
  discard(): void {
    const entries = this.created
      ? [this.target]
      : readdirSync(this.target).map((entry) => resolve(this.target, entry));
    // Chunk workers may still be writing when a signal lands: retry until the folder stays empty.
    for (const path of entries)
      rmSync(path, { recursive: true, force: true, maxRetries: 20, retryDelay: 25 });
  }

  private interrupted(signal: NodeJS.Signals): void {
    this.request.onInterrupted?.(
      signal,
      this.created ? this.target : `what it wrote in ${this.target}`,
    );
    try {
      this.discard();
    } finally {
      this.disarm();
      if (this.request.exit) this.request.exit(signal);
      else process.kill(process.pid, signal);
    }
  }
}
