/**
 * `fetch`: the remote's branches and tags come in as remote-tracking branches and tags, with
 * every object they reach (fetchObjects).
 */
import { ConfigError, NotFoundError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import {
  loadGlobalConfig,
  silentProgress,
  worktreeChunkLocations,
  type ProgressSink,
  type Repository,
} from '../repo/index.js';
import type { OpenedStore, RefValue } from '../store/index.js';
import {
  chunksOfCommits,
  contentCommits,
  fetchChunkSet,
  historyContent,
  type ContentRequest,
} from './content-policy.js';
import { readRemoteState, type RemoteState } from './descriptor.js';
import { fetchObjects, type FetchOptions } from './fetch.js';
import type { RemoteConfig } from './remotes.js';
import { canAdopt, missingOn } from './transfer.js';

export interface FetchRefsOptions {
  /** Delete remote-tracking branches the remote no longer has. */
  prune?: boolean;
  /** Hard-link objects from a folder remote (see hardlinksWanted). */
  hardlinks?: boolean;
  progress?: ProgressSink;
  /** A commit checked out as part of the fetch (FetchOptions.checkout). */
  checkout?: FetchOptions['checkout'];
  /**
   * A remote branch whose new tip's chunks are left out (FetchOptions.leaveChunksOf), for pull's
   * merge to fetch as it writes the files; FetchReport.left names them.
   */
  leaveTipOf?: string;
  /**
   * Which chunk content to bring (see content-policy.ts): under the 'tip' policy only the named
   * branch's tip's, plus what the request widens it by. Without it, all content comes.
   */
  content?: ContentRequest;
  /** The remote's descriptor and refs as the caller just read them (a clone): not read again. */
  state?: RemoteState;
  /**
   * Told the chunks left to the caller (leaveTipOf) as soon as they are known, before the rest of
   * the content and the tracking refs: pull's merge asks for its first wave then.
   */
  onLeft?: (left: ReadonlyMap<Oid, number>) => void;
}

export interface RefUpdate {
  ref: string;
  old: Oid | null;
  /** null: deleted (pruned). */
  new: Oid | null;
}

export interface FetchReport {
  remote: string;
  updated: RefUpdate[];
  objects: number;
  bytes: number;
  bytesReceived: number;
  /** The chunks left to the caller (FetchRefsOptions.leaveTipOf), with their sizes. */
  left?: ReadonlyMap<Oid, number>;
}

/**
 * Whether transfers between two folders may hard-link objects (git's local-clone behaviour):
 * not when the caller says false (`--no-hardlinks`), otherwise config `transfer.hardlinks` — the
 * repository's, then the per-user file — defaulting to true.
 */
export async function hardlinksWanted(
  flag: boolean | undefined,
  repo?: Repository,
): Promise<boolean> {
  if (flag === false) return false;
  const value =
    repo?.config.get('transfer.hardlinks') ?? (await loadGlobalConfig()).get('transfer.hardlinks');
  if (value === undefined) return true;
  if (typeof value !== 'boolean')
    throw new ConfigError(
      `config transfer.hardlinks must be true or false, found ${JSON.stringify(value)}`,
    );
  return value;
}

/** Fetches the remote's branches and tags; refuses a remote that holds no repository. */
export async function fetchRefs(
  repo: Repository,
  remote: RemoteConfig,
  opened: OpenedStore,
  options: FetchRefsOptions = {},
): Promise<FetchReport> {
  const { descriptor, refs } = options.state ?? (await readRemoteState(opened.store));
  if (!descriptor && refs.size === 0)
    throw new NotFoundError(`${remote.url}`, {
      hint: 'no mediagit repository there (nothing has been pushed yet, or the URL is wrong)',
    });
  const heads = [...refs].filter(
    ([name]) => name.startsWith('refs/heads/') || name.startsWith('refs/tags/'),
  );
  const include = repo.includes();
  const request = options.content;
  // 'all' brings every chunk with the history in one pass; the rest walk the fetched trees after.
  const lean =
    request !== undefined && (request.all === true || (await historyContent(repo)) === 'tip');
  const progress = options.progress ?? silentProgress;
  const hardlinks = options.hardlinks ?? true;
  const leftTip =
    options.leaveTipOf === undefined
      ? undefined
      : refs.get(`refs/heads/${options.leaveTipOf}`)?.oid;
  // Which chunks the checked-out files hold needs only the index and manifests already here: worked
  // out while the remote answers, not after (10-16 ms of a pull's stretch before its first chunk
  // request, full bench corpus at load ~11). Not when the fetch checks files out itself (a clone):
  // those it writes count too.
  const early = lean && request && !options.checkout ? worktreeChunkLocations(repo) : undefined;
  early?.catch(() => undefined);
  const earlyLeft = new Map<Oid, number>();
  let leftEarly = false;
  const stats = await fetchObjects(
    repo,
    opened.store,
    heads.map(([, v]) => v.oid),
    {
      progress,
      hardlinks,
      ...(lean ? { include: () => false } : include ? { include } : {}),
      // Lean, from a folder it hard-links from: the tip's chunks are linked below (fetchChunkSet)
      // and the caller checks out after, finding them present.
      ...(options.checkout && !(lean && canAdopt(opened.store, repo.store, { hardlinks }))
        ? { checkout: options.checkout }
        : {}),
      ...(leftTip && !lean ? { leaveChunksOf: leftTip } : {}),
      // Tip-only: the left chunks are worked out from the walk, before trees and manifests are
      // stored, so pull's first chunk requests leave then (onLeft).
      ...(leftTip && early && !canAdopt(opened.store, repo.store, { hardlinks })
        ? {
            leaveChunksOf: leftTip,
            tipChunks: {
              include,
              take: async (tip: ReadonlyMap<Oid, number>) => {
                const here = await early;
                const candidates = [...tip.keys()].filter((oid) => !here.has(oid));
                const absent = new Set(await missingOn(repo.store, 'chunk', candidates));
                for (const [oid, size] of tip) if (absent.has(oid)) earlyLeft.set(oid, size);
                leftEarly = true;
                options.onLeft?.(earlyLeft);
              },
            },
          }
        : {}),
    },
  );
  const left = leftEarly ? earlyLeft : stats.left;
  if (options.leaveTipOf !== undefined && !(lean && request) && !leftEarly) options.onLeft?.(left);
  if (lean && request) {
    const tips = new Map(heads.map(([name, v]) => [name, v.oid]));
    const commits = await contentCommits(repo, tips, request);
    const chunks = await chunksOfCommits(repo, commits, include);
    // Chunks whose bytes sit in a checked-out file are local already (one copy on disk).
    for (const oid of (await (early ?? worktreeChunkLocations(repo))).keys()) chunks.delete(oid);
    if (leftEarly) for (const oid of left.keys()) chunks.delete(oid);
    else if (leftTip && !canAdopt(opened.store, repo.store, { hardlinks })) {
      const absent = new Set(await missingOn(repo.store, 'chunk', [...chunks.keys()]));
      for (const [oid, size] of await chunksOfCommits(repo, [leftTip], include))
        if (absent.has(oid)) {
          chunks.delete(oid);
          left.set(oid, size);
        }
    }
    if (options.leaveTipOf !== undefined && !leftEarly) options.onLeft?.(left);
    const got = await fetchChunkSet(repo, opened.store, chunks, { hardlinks, progress });
    stats.objects += got.objects;
    stats.bytes += got.bytes;
  }
  const updated = await updateTrackingRefs(repo, remote.name, heads);
  if (options.prune) updated.push(...(await pruneTrackingRefs(repo, remote.name, refs)));
  return {
    remote: remote.name,
    updated,
    objects: stats.objects,
    bytes: stats.bytes,
    bytesReceived: opened.meter.snapshot().totals.bytesRead,
    ...(options.leaveTipOf === undefined ? {} : { left }),
  };
}

/** Remote branches → refs/remotes/<remote>/…, new tags → refs/tags/…; returns what moved. */
async function updateTrackingRefs(
  repo: Repository,
  remoteName: string,
  heads: readonly [string, RefValue][],
): Promise<RefUpdate[]> {
  const updated: RefUpdate[] = [];
  for (const [name, value] of heads) {
    const local = name.startsWith('refs/heads/')
      ? `refs/remotes/${remoteName}/${name.slice('refs/heads/'.length)}`
      : name;
    const before = await repo.store.readRef(local);
    if (before?.oid === value.oid) continue;
    // Tags never move once fetched, as in git; remote-tracking branches always follow the remote.
    if (name.startsWith('refs/tags/') && before) continue;
    if (await repo.store.compareAndSwapRef(local, before, value.oid))
      updated.push({ ref: local, old: before?.oid ?? null, new: value.oid });
  }
  return updated;
}

/** Deletes remote-tracking branches whose branch the remote no longer has. */
async function pruneTrackingRefs(
  repo: Repository,
  remoteName: string,
  remoteRefs: ReadonlyMap<string, RefValue>,
): Promise<RefUpdate[]> {
  const pruned: RefUpdate[] = [];
  const prefix = `refs/remotes/${remoteName}/`;
  for (const [name, value] of await repo.store.listRefs(prefix)) {
    if (
      !remoteRefs.has(`refs/heads/${name.slice(prefix.length)}`) &&
      (await repo.store.compareAndSwapRef(name, value, null))
    ) {
      pruned.push({ ref: name, old: value.oid, new: null });
    }
  }
  return pruned;
}
