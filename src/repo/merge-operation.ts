/**
 * Joining another line of history into HEAD (`merge`, the second half of `pull`) and giving up
 * a conflicted merge (`merge --abort`). The per-file decisions are threeWayMerge's (merge.ts).
 */
import { DirtyWorktreeError, UsageError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import { moveWorktree } from './checkout.js';
import type { ChunkStream } from './content.js';
import { cleanMessage } from './commit.js';
import { isAncestor, mergeBase } from './history.js';
import type { Conflict } from './index-file.js';
import { threeWayMerge } from './merge.js';
import { silentProgress, type ProgressSink } from './progress.js';
import type { Repository } from './repository.js';
import { resetIndexTo } from './reset.js';
import { commitTreeMap, indexToMap } from './status.js';
import { diffMaps, writeTreeFromMap } from './tree-map.js';

export interface MergeOptions {
  /** Refuse unless HEAD can simply move forward to theirs. */
  ffOnly?: boolean;
  /** Write a merge commit even when a fast-forward would do. */
  noFf?: boolean;
  /** The merge commit's message (default "Merge <label> into <branch>"). */
  message?: string | undefined;
  progress?: ProgressSink;
  /**
   * Where the chunks of their files that the store lacks come from while the files are written
   * (MoveOptions.stream): pull leaves them out of its fetch, so each is verified once.
   */
  stream?: ChunkStream;
}

export type MergeOutcome =
  | { readonly kind: 'up-to-date' }
  /** `from` is null when HEAD's branch had no commits and simply took theirs. */
  | {
      readonly kind: 'fast-forward';
      readonly from: Oid | null;
      readonly to: Oid;
      readonly filesChanged: number;
    }
  | { readonly kind: 'merged'; readonly commit: Oid }
  /** Index and files hold the merge with its conflicts; MERGE_HEAD waits for `commit`. */
  | { readonly kind: 'conflicts'; readonly conflicts: readonly Conflict[] };

/** Merges commit `theirs` (named `label` in the default message) into HEAD. */
export async function mergeCommit(
  repo: Repository,
  theirs: Oid,
  label: string,
  options: MergeOptions = {},
): Promise<MergeOutcome> {
  if ((await repo.readStateOid('MERGE_HEAD')) !== null) {
    throw new UsageError('a merge is already in progress', {
      hint: "finish it with 'mediagit commit', or 'mediagit merge --abort'",
    });
  }
  const progress = options.progress ?? silentProgress;
  const head = await repo.readHead();
  if (head.oid === null) {
    // Unborn branch: adopt their history, as git does.
    await repo.updateIndex(async (index) => {
      await moveWorktree(repo, index, new Map(), await commitTreeMap(repo, theirs), {
        force: false,
        progress,
        operation: 'merge',
        ...(options.stream ? { stream: options.stream } : {}),
      });
    });
    await repo.advanceHead(theirs, null, `merge ${label}: Fast-forward`);
    return { kind: 'fast-forward', from: null, to: theirs, filesChanged: 0 };
  }
  if (await isAncestor(repo, theirs, head.oid)) return { kind: 'up-to-date' };
  const canFastForward = await isAncestor(repo, head.oid, theirs);
  if (options.ffOnly && !canFastForward)
    throw new UsageError('not possible to fast-forward', {
      hint: 'merge without --ff-only, or rebase your work',
    });
  if (canFastForward && !options.noFf)
    return fastForward(
      repo,
      head.oid,
      theirs,
      progress,
      `merge ${label}: Fast-forward`,
      options.stream,
    );
  const branch = head.ref?.replace(/^refs\/heads\//, '') ?? 'HEAD';
  const message = cleanMessage(options.message ?? `Merge ${label} into ${branch}`);
  return threeWay(
    repo,
    head.oid,
    theirs,
    message,
    progress,
    `merge ${label}: Merge made by mediagit`,
    options.stream,
  );
}

async function fastForward(
  repo: Repository,
  ours: Oid,
  theirs: Oid,
  progress: ProgressSink,
  log: string,
  stream: ChunkStream | undefined,
): Promise<MergeOutcome> {
  const headMap = await commitTreeMap(repo, ours);
  const theirMap = await commitTreeMap(repo, theirs);
  await repo.updateIndex(async (index) => {
    await moveWorktree(repo, index, headMap, theirMap, {
      force: false,
      progress,
      operation: 'merge',
      ...(stream ? { stream } : {}),
    });
  });
  await repo.writeState('ORIG_HEAD', `${ours}\n`);
  await repo.advanceHead(theirs, ours, log);
  return {
    kind: 'fast-forward',
    from: ours,
    to: theirs,
    filesChanged: diffMaps(headMap, theirMap).length,
  };
}

async function threeWay(
  repo: Repository,
  ours: Oid,
  theirs: Oid,
  message: string,
  progress: ProgressSink,
  log: string,
  stream: ChunkStream | undefined,
): Promise<MergeOutcome> {
  const headMap = await commitTreeMap(repo, ours);
  const theirMap = await commitTreeMap(repo, theirs);
  const base = await mergeBase(repo, ours, theirs);
  const plan = threeWayMerge(await commitTreeMap(repo, base), headMap, theirMap);
  return repo.updateIndex(async (index): Promise<MergeOutcome> => {
    if (index.conflicts.size > 0 || diffMaps(headMap, indexToMap(index)).length > 0) {
      throw new DirtyWorktreeError('you have staged changes; the merge would mix them in', {
        hint: "commit them first, or unstage with 'mediagit reset'",
      });
    }
    await moveWorktree(repo, index, headMap, plan.worktree, {
      force: false,
      progress,
      operation: 'merge',
      ...(stream ? { stream } : {}),
    });
    resetIndexTo(index, plan.merged);
    for (const conflict of plan.conflicts) index.conflicts.set(conflict.path, conflict);
    if (plan.conflicts.length > 0) {
      await repo.writeState('ORIG_HEAD', `${ours}\n`);
      await repo.writeState('MERGE_HEAD', `${theirs}\n`);
      await repo.writeState('MERGE_MSG', message);
      return { kind: 'conflicts', conflicts: plan.conflicts };
    }
    const tree = await writeTreeFromMap(repo.odb, plan.merged);
    const identity = await repo.identity();
    const commit = await repo.odb.writeCommit({
      tree,
      parents: [ours, theirs],
      author: identity,
      committer: identity,
      message,
    });
    await repo.writeState('ORIG_HEAD', `${ours}\n`);
    await repo.advanceHead(commit.oid, ours, log);
    return { kind: 'merged', commit: commit.oid };
  });
}

/** Gives up a conflicted merge: index and files go back to HEAD, MERGE_HEAD is dropped. */
export async function abortMerge(
  repo: Repository,
  progress: ProgressSink = silentProgress,
): Promise<void> {
  if ((await repo.readStateOid('MERGE_HEAD')) === null)
    throw new UsageError('there is no merge to abort');
  const head = await repo.readHead();
  await repo.updateIndex(async (index) => {
    const headMap = await commitTreeMap(repo, head.oid);
    await moveWorktree(repo, index, indexToMap(index), headMap, {
      force: true,
      progress,
      operation: 'merge --abort',
    });
    resetIndexTo(index, headMap);
  });
  await repo.clearState('MERGE_HEAD', 'MERGE_MSG');
}
