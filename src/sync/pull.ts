/**
 * `pull`: fetch from a remote, then merge its branch into HEAD.
 */
import { UsageError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import {
  mergeCommit,
  rebaseOnto,
  silentProgress,
  type MergeOutcome,
  type ReplayOutcome,
  type ChunkStream,
  type ProgressSink,
  type Repository,
  STREAM_CONCURRENCY,
  worktreeChunkLocations,
} from '../repo/index.js';
import { chunkKey, type OpenedStore } from '../store/index.js';
import { fetchChunkSet, historyContent } from './content-policy.js';
import { oneCopyEnabled } from './prune.js';
import { fetchRefs, type FetchReport } from './fetch-refs.js';
import { ChunkHeadStart } from './head-start.js';
import { missingOn } from './transfer.js';
import type { RemoteConfig } from './remotes.js';

export interface PullOptions {
  /** The remote branch to merge; default the current branch's name. */
  branch?: string | undefined;
  ffOnly?: boolean;
  /** Replay local commits onto the remote branch instead of merging (`pull --rebase`). */
  rebase?: boolean;
  hardlinks?: boolean;
  /** A fresh progress display per phase (fetch, then merge). */
  progress?: () => ProgressSink;
  /** Told what the fetch brought before the merge starts (which may still refuse). */
  onFetched?: (report: FetchReport) => void;
}

export type PullResult =
  | { fetched: FetchReport; merge: MergeOutcome; rebase?: undefined }
  | {
      fetched: FetchReport;
      rebase: ReplayOutcome | { readonly kind: 'up-to-date' };
      merge?: undefined;
    };

export async function pull(
  repo: Repository,
  remote: RemoteConfig,
  opened: OpenedStore,
  options: PullOptions = {},
): Promise<PullResult> {
  const progress = options.progress ?? ((): ProgressSink => silentProgress);
  const branch = options.branch ?? (await repo.currentBranch());
  // A merge writes their files with the chunks it fetches as it goes, each verified once and
  // written to file and store from one buffer (docs/transfer.md); the fetch leaves those out.
  // Only onto a branch with commits: that checkout is staged, so a failure changes no file.
  const leave =
    branch && !options.rebase && (await repo.readHead()).oid !== null ? branch : undefined;
  // The merge's first chunk requests leave as soon as the fetch knows which chunks it left, before
  // it brings the rest of the content and moves the tracking refs, not once the merge has read
  // trees, locked the index and checked the working tree (head-start.ts).
  let starting: Promise<ChunkHeadStart> | undefined;
  let fetched: FetchReport;
  try {
    fetched = await fetchRefs(repo, remote, opened, {
      prune: false,
      hardlinks: options.hardlinks,
      progress: progress(),
      content: { branch: branch ?? null },
      ...(leave
        ? {
            leaveTipOf: leave,
            onLeft: (chunks: ReadonlyMap<Oid, number>) => {
              if (chunks.size === 0) return;
              starting = startChunks(repo, opened, chunks);
              // Heard when awaited below; meanwhile not an unhandled rejection.
              starting.catch(() => undefined);
            },
          }
        : {}),
    });
  } catch (err) {
    // No request asked ahead may outlive the store.
    await starting?.then((started) => started.settle()).catch(() => undefined);
    throw err;
  }
  options.onFetched?.(fetched);
  const left = fetched.left ?? new Map<Oid, number>();
  const headStart = left.size > 0 ? await (starting ?? startChunks(repo, opened, left)) : undefined;
  // One copy on disk (docs/workspaces.md): in a tip-only repository the checked-out files are the
  // copy of their chunks, so what the merge writes into them is not stored as well, as in a clone.
  const oneCopy = left.size > 0 && (await historyContent(repo)) === 'tip' && oneCopyEnabled(repo);
  // Whatever the merge did not write (no change, a conflict, a refusal) still comes, as the
  // content policy says: the same chunks a fetch without leaving any out would have brought.
  const bringLeft = async (merged: boolean): Promise<void> => {
    let wanted = left;
    if (merged && oneCopy) {
      const here = await worktreeChunkLocations(repo);
      wanted = new Map([...left].filter(([oid]) => !here.has(oid)));
    }
    if (wanted.size > 0)
      await fetchChunkSet(repo, opened.store, wanted, {
        ...(options.hardlinks === undefined ? {} : { hardlinks: options.hardlinks }),
        progress: progress(),
      });
  };
  let result: PullResult;
  try {
    result = await integrate(repo, remote, branch, fetched, {
      ...options,
      progress,
      ...(left.size > 0
        ? {
            stream: {
              get: (oid: Oid) => headStart?.take(oid) ?? chunkFor(repo, opened, left, oid),
              keepFetched: !oneCopy,
            },
          }
        : {}),
    });
  } catch (err) {
    await headStart?.settle();
    await bringLeft(false).catch(() => undefined);
    throw err;
  }
  await headStart?.settle();
  await bringLeft(true);
  return result;
}

/**
 * Announces the chunks left to the merge to a store that prepares reads (`expect`), and asks for
 * the first of them the local store lacks (those it holds the merge restores from there), looked
 * up in batches until one wave is found. In a tip-only repository the fetch has already left out
 * what the clean files hold, so `left` is all absent.
 */
async function startChunks(
  repo: Repository,
  opened: OpenedStore,
  left: ReadonlyMap<Oid, number>,
): Promise<ChunkHeadStart> {
  const all = [...left.keys()];
  // A server's presigned URLs for every chunk coming from it, asked in one request, before the
  // first download needs one.
  opened.store.capabilities.readAhead?.expect(all.map(chunkKey));
  const wanted: [Oid, number][] = [];
  for (let i = 0; i < all.length && wanted.length < STREAM_CONCURRENCY; i += STREAM_CONCURRENCY)
    for (const oid of await missingOn(repo.store, 'chunk', all.slice(i, i + STREAM_CONCURRENCY)))
      wanted.push([oid, left.get(oid)!]);
  return new ChunkHeadStart(opened.store, wanted);
}

/**
 * A chunk the merge writes and the local store lacks. Only those the fetch left out come from the
 * remote: the rest (in a lean working tree, the unchanged chunks of a changed file) sit in
 * checked-out files, and the content source reads them from there (verified) before asking any
 * remote, as a checkout without a stream would.
 */
async function chunkFor(
  repo: Repository,
  opened: OpenedStore,
  left: ReadonlyMap<Oid, number>,
  oid: Oid,
): Promise<Buffer> {
  if (!left.has(oid)) {
    const local = await repo.odb
      .ensureChunks([oid])
      .then(() => repo.odb.has('chunk', [oid]))
      .then(([here]) => here === true)
      .catch(() => false);
    if (local) return repo.store.get(chunkKey(oid));
  }
  return opened.store.get(chunkKey(oid));
}

async function integrate(
  repo: Repository,
  remote: RemoteConfig,
  branch: string | null,
  fetched: FetchReport,
  options: PullOptions & { progress: () => ProgressSink; stream?: ChunkStream },
): Promise<PullResult> {
  const { progress } = options;
  if (!branch)
    throw new UsageError('you are not on a branch; say which remote branch to merge', {
      hint: 'mediagit pull origin <branch>',
    });
  const theirs = await repo.readRef(`refs/remotes/${remote.name}/${branch}`);
  if (!theirs) throw new UsageError(`the remote '${remote.name}' has no branch '${branch}'`);
  // A branch with no commits yet has nothing to replay: it simply takes theirs, as a merge does.
  if (options.rebase && (await repo.readHead()).oid !== null)
    return { fetched, rebase: await rebaseOnto(repo, theirs, { progress: progress() }) };
  const merge = await mergeCommit(repo, theirs, `branch '${branch}' of ${remote.url}`, {
    ffOnly: options.ffOnly ?? false,
    progress: progress(),
    ...(options.stream ? { stream: options.stream } : {}),
  });
  return { fetched, merge };
}
