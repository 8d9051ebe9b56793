import { ConflictError, DirtyWorktreeError, UsageError } from '../errors/index.js';
import { shortOid, type Oid } from '../objects/index.js';
import {
  Repository,
  commitTreeMap,
  diffMaps,
  indexToMap,
  isAncestor,
  mergeBase,
  moveWorktree,
  resolveCommit,
  threeWayMerge,
  writeTreeFromMap,
} from '../repo/index.js';
import { cleanMessage } from './commit.js';
import { plural, type CommandIo, openRepository } from './context.js';
import { resetIndexTo } from './reset.js';

export interface MergeOptions {
  abort?: boolean;
  ffOnly?: boolean;
  noFf?: boolean;
  message?: string;
  quiet?: boolean;
}

export type MergeOutcome = 'up-to-date' | 'fast-forward' | 'merged' | 'conflicts';

/** Merges commit `theirs` (named `label`) into HEAD; shared by `merge` and `pull`. */
export async function mergeCommit(
  repo: Repository,
  io: CommandIo,
  theirs: Oid,
  label: string,
  options: MergeOptions,
): Promise<MergeOutcome> {
  if ((await repo.readStateOid('MERGE_HEAD')) !== null) {
    throw new UsageError('a merge is already in progress', {
      hint: "finish it with 'mediagit commit', or 'mediagit merge --abort'",
    });
  }
  const head = await repo.readHead();
  if (head.oid === null) {
    // Unborn branch: adopt their history, as git does.
    await repo.updateIndex(async (index) => {
      await moveWorktree(repo, index, new Map(), await commitTreeMap(repo, theirs), {
        force: false,
        progress: io.progress(),
        operation: 'merge',
      });
    });
    await repo.advanceHead(theirs, null);
    return 'fast-forward';
  }
  if (await isAncestor(repo, theirs, head.oid)) {
    if (!options.quiet) io.out('Already up to date.');
    return 'up-to-date';
  }
  const canFastForward = await isAncestor(repo, head.oid, theirs);
  if (options.ffOnly && !canFastForward)
    throw new UsageError('not possible to fast-forward', {
      hint: 'merge without --ff-only, or rebase your work',
    });
  const headMap = await commitTreeMap(repo, head.oid);
  const theirMap = await commitTreeMap(repo, theirs);

  if (canFastForward && !options.noFf) {
    await repo.updateIndex(async (index) => {
      await moveWorktree(repo, index, headMap, theirMap, {
        force: false,
        progress: io.progress(),
        operation: 'merge',
      });
    });
    await repo.writeState('ORIG_HEAD', `${head.oid}\n`);
    await repo.advanceHead(theirs, head.oid);
    if (!options.quiet) {
      io.out(`Updating ${shortOid(head.oid)}..${shortOid(theirs)}`);
      io.out(`Fast-forward`);
      io.out(` ${plural(diffMaps(headMap, theirMap).length, 'file')} changed`);
    }
    return 'fast-forward';
  }

  const base = await mergeBase(repo, head.oid, theirs);
  const plan = threeWayMerge(await commitTreeMap(repo, base), headMap, theirMap);
  const branch = head.ref?.replace(/^refs\/heads\//, '') ?? 'HEAD';
  const message = cleanMessage(options.message ?? `Merge ${label} into ${branch}`);
  const outcome = await repo.updateIndex(async (index) => {
    if (index.conflicts.size > 0 || diffMaps(headMap, indexToMap(index)).length > 0) {
      throw new DirtyWorktreeError('you have staged changes; the merge would mix them in', {
        hint: "commit them first, or unstage with 'mediagit reset'",
      });
    }
    await moveWorktree(repo, index, headMap, plan.worktree, {
      force: false,
      progress: io.progress(),
      operation: 'merge',
    });
    resetIndexTo(index, plan.merged);
    for (const conflict of plan.conflicts) index.conflicts.set(conflict.path, conflict);
    if (plan.conflicts.length > 0) {
      await repo.writeState('ORIG_HEAD', `${head.oid}\n`);
      await repo.writeState('MERGE_HEAD', `${theirs}\n`);
      await repo.writeState('MERGE_MSG', message);
      return 'conflicts' as const;
    }
    const tree = await writeTreeFromMap(repo.odb, plan.merged);
    const identity = await repo.identity();
    const commit = await repo.odb.writeCommit({
      tree,
      parents: [head.oid!, theirs],
      author: identity,
      committer: identity,
      message,
    });
    await repo.writeState('ORIG_HEAD', `${head.oid}\n`);
    await repo.advanceHead(commit.oid, head.oid);
    if (!options.quiet) io.out(`Merge made by the 'three-way' strategy: ${shortOid(commit.oid)}`);
    return 'merged' as const;
  });
  if (outcome === 'conflicts') {
    for (const c of plan.conflicts) {
      const kind = c.ours && c.theirs ? (c.base ? 'content' : 'add/add') : 'modify/delete';
      io.out(`CONFLICT (${kind}): Merge conflict in ${c.path}`);
    }
    throw new ConflictError(
      `automatic merge failed: ${plural(plan.conflicts.length, 'conflict')}`,
      {
        hint: "pick a side per file with 'mediagit checkout --ours|--theirs <path>', 'mediagit add <path>', then 'mediagit commit'",
      },
    );
  }
  return outcome;
}

export async function runMerge(
  io: CommandIo,
  rev: string | undefined,
  options: MergeOptions,
): Promise<void> {
  const repo = await openRepository(io);
  if (options.abort) {
    const orig = await repo.readStateOid('MERGE_HEAD');
    if (orig === null) throw new UsageError('there is no merge to abort');
    const head = await repo.readHead();
    await repo.updateIndex(async (index) => {
      const headMap = await commitTreeMap(repo, head.oid);
      await moveWorktree(repo, index, indexToMap(index), headMap, {
        force: true,
        progress: io.progress(),
        operation: 'merge --abort',
      });
      resetIndexTo(index, headMap);
    });
    await repo.clearState('MERGE_HEAD', 'MERGE_MSG');
    if (!options.quiet) io.out('Merge aborted.');
    return;
  }
  if (!rev) throw new UsageError('name the branch or commit to merge');
  const theirs = await resolveCommit(repo, rev);
  await mergeCommit(
    repo,
    io,
    theirs,
    /^[0-9a-f]{4,64}$/.test(rev) ? `commit ${shortOid(theirs)}` : `branch '${rev}'`,
    options,
  );
}
