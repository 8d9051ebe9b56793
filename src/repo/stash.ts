/**
 * Stashes (`stash push/pop/apply/list/drop/show`), stored as git stores them: a commit W of the
 * working tree's tracked files whose parents are HEAD and a commit I of the index. The stash list
 * is refs/stash's reflog (`stash@{n}` is its entry n); `.mediagit/refs/stash` names the newest.
 * Gc keeps every listed stash whatever its age. Applying is the three-way merge of `merge`
 * (base: the commit the stash was made on), so media changed on both sides is a conflict.
 */
import { unlink } from 'node:fs/promises';
import { ConflictError, DirtyWorktreeError, UsageError } from '../errors/index.js';
import { shortOid, type Oid } from '../objects/index.js';
import { LockFile, isErrno, writeFileAtomic } from '../util/fs.js';
import { moveWorktree } from './checkout.js';
import type { Conflict } from './index-file.js';
import { threeWayMerge } from './merge.js';
import { silentProgress, type ProgressSink } from './progress.js';
import {
  appendReflog,
  readReflog,
  reflogMessage,
  rewriteReflog,
  type ReflogEntry,
} from './reflog.js';
import type { Repository } from './repository.js';
import { resetIndexTo } from './reset.js';
import { stagePaths } from './stage.js';
import { commitTreeMap, indexToMap } from './status.js';
import { diffMaps, writeTreeFromMap, type Change } from './tree-map.js';

export const STASH_REF = 'refs/stash';

export interface StashEntry {
  readonly n: number;
  readonly oid: Oid;
  readonly message: string;
}

export interface StashOptions {
  progress?: ProgressSink;
}

/** The stash list, newest first. */
export async function listStashes(repo: Repository): Promise<StashEntry[]> {
  const entries = await readReflog(repo, STASH_REF);
  const list: StashEntry[] = [];
  for (const [n, e] of entries.entries())
    if (e.new) list.push({ n, oid: e.new, message: await reflogMessage(repo, STASH_REF, e) });
  return list;
}

async function stashAt(repo: Repository, n: number): Promise<StashEntry> {
  const list = await listStashes(repo);
  const entry = list[n];
  if (!entry)
    throw new UsageError(
      list.length === 0
        ? 'no stash entries'
        : `stash@{${n}} does not exist (${list.length} stashed)`,
    );
  return entry;
}

/** `.mediagit/refs/stash` follows the list's newest entry (git's layout; the list is the truth). */
async function writeStashRef(repo: Repository, top: Oid | null): Promise<void> {
  const path = repo.path('refs', 'stash');
  if (top) await writeFileAtomic(path, `${top}\n`, { fsync: repo.settings.fsync });
  else
    await unlink(path).catch((err: unknown) => {
      if (!isErrno(err, 'ENOENT')) throw err;
    });
}

/**
 * Saves the tracked files' local changes (staged and not) as a stash and puts index and files
 * back to HEAD. Untracked files stay where they are, as in git. null: nothing to save.
 */
export async function pushStash(
  repo: Repository,
  message: string | undefined,
  options: StashOptions = {},
): Promise<StashEntry | null> {
  const progress = options.progress ?? silentProgress;
  const head = await repo.readHead();
  if (head.oid === null)
    throw new UsageError('you do not have the initial commit yet', {
      hint: 'commit something before stashing',
    });
  const headOid = head.oid;
  const headCommit = await repo.odb.readCommit(headOid);
  const branch = head.ref?.replace(/^refs\/heads\//, '') ?? '(no branch)';
  const where = `${branch}: ${shortOid(headOid)} ${headCommit.message.split('\n')[0] ?? ''}`;
  const lock = await LockFile.acquire(repo.path('refs', 'stash.lock'), { what: 'the stash' });
  try {
    const saved = await repo.updateIndex(async (index) => {
      if (index.conflicts.size > 0)
        throw new DirtyWorktreeError('cannot stash: there are unmerged paths', {
          hint: 'resolve them first',
        });
      const headMap = await commitTreeMap(repo, headOid);
      const staged = indexToMap(index);
      // The working tree's version of every tracked file, hashed into a copy of the index.
      const work = await repo.readIndex();
      const tracked = [...work.entries.keys()];
      if (tracked.length > 0) await stagePaths(repo, work, tracked, { progress });
      const worktree = indexToMap(work);
      if (diffMaps(headMap, staged).length === 0 && diffMaps(headMap, worktree).length === 0)
        return null;
      const identity = await repo.identity();
      const indexCommit = await repo.odb.writeCommit({
        tree: await writeTreeFromMap(repo.odb, staged),
        parents: [headOid],
        author: identity,
        committer: identity,
        message: `index on ${where}\n`,
      });
      const subject = message?.trim() ? `On ${branch}: ${message.trim()}` : `WIP on ${where}`;
      const stash = await repo.odb.writeCommit({
        tree: await writeTreeFromMap(repo.odb, worktree),
        parents: [headOid, indexCommit.oid],
        author: identity,
        committer: identity,
        message: `${subject}\n`,
      });
      // Saved before anything on disk changes: a crash now leaves the stash listed and the files intact.
      const before = (await readReflog(repo, STASH_REF))[0]?.new ?? null;
      await appendReflog(repo, STASH_REF, before, stash.oid, subject);
      await writeStashRef(repo, stash.oid);
      await moveWorktree(repo, index, worktree, headMap, {
        force: true,
        progress,
        operation: 'stash',
      });
      resetIndexTo(index, headMap);
      return { n: 0, oid: stash.oid, message: subject };
    });
    return saved;
  } finally {
    await lock.release();
  }
}

export type ApplyOutcome =
  | { readonly kind: 'applied'; readonly entry: StashEntry; readonly dropped: boolean }
  | {
      readonly kind: 'conflicts';
      readonly entry: StashEntry;
      readonly conflicts: readonly Conflict[];
    };

/**
 * Applies stash@{n} to the working tree (`apply`), and with `pop` drops it when that went
 * without conflicts. As in git without --index, files come back unstaged, except files the stash
 * added, which come back staged.
 */
export async function applyStash(
  repo: Repository,
  n: number,
  options: StashOptions & { pop?: boolean } = {},
): Promise<ApplyOutcome> {
  const progress = options.progress ?? silentProgress;
  const entry = await stashAt(repo, n);
  const stash = await repo.odb.readCommit(entry.oid);
  const base = await commitTreeMap(repo, stash.parents[0] ?? null);
  const theirs = await commitTreeMap(repo, entry.oid);
  const conflicts = await repo.updateIndex(async (index): Promise<Conflict[]> => {
    const head = await repo.readHead();
    const ours = await commitTreeMap(repo, head.oid);
    if (index.conflicts.size > 0 || diffMaps(ours, indexToMap(index)).length > 0)
      throw new DirtyWorktreeError(
        'you have staged changes; applying the stash would mix them in',
        {
          hint: "commit them first, or unstage with 'mediagit reset'",
        },
      );
    const plan = threeWayMerge(base, ours, theirs);
    await moveWorktree(repo, index, ours, plan.worktree, {
      force: false,
      progress,
      operation: 'stash apply',
    });
    // The index stays at HEAD, plus the files the stash brings that neither side had.
    const staged = new Map(ours);
    for (const [path, record] of plan.merged)
      if (!base.has(path) && !ours.has(path)) staged.set(path, record);
    resetIndexTo(index, staged);
    for (const conflict of plan.conflicts) index.conflicts.set(conflict.path, conflict);
    return plan.conflicts;
  });
  if (conflicts.length > 0) return { kind: 'conflicts', entry, conflicts };
  if (options.pop) await dropStash(repo, n);
  return { kind: 'applied', entry, dropped: options.pop ?? false };
}

/** Removes stash@{n} from the list (later entries move up, as in git). */
export async function dropStash(repo: Repository, n: number): Promise<StashEntry> {
  const entry = await stashAt(repo, n);
  const lock = await LockFile.acquire(repo.path('refs', 'stash.lock'), { what: 'the stash' });
  try {
    const left = await rewriteReflog(repo, STASH_REF, (entries: ReflogEntry[]) =>
      entries.filter((_, i) => i !== n),
    );
    await writeStashRef(repo, left[0]?.new ?? null);
  } finally {
    await lock.release();
  }
  return entry;
}

/** What stash@{n} changes against the commit it was made on. */
export async function showStash(
  repo: Repository,
  n: number,
): Promise<{ entry: StashEntry; changes: Change[] }> {
  const entry = await stashAt(repo, n);
  const stash = await repo.odb.readCommit(entry.oid);
  const changes = diffMaps(
    await commitTreeMap(repo, stash.parents[0] ?? null),
    await commitTreeMap(repo, entry.oid),
  );
  return { entry, changes };
}

/** Thrown by callers that treat a conflicted apply as a failure (the stash is kept). */
export function stashConflictError(
  outcome: Extract<ApplyOutcome, { kind: 'conflicts' }>,
): ConflictError {
  return new ConflictError(
    `stash@{${outcome.entry.n}} applied with ${outcome.conflicts.length} ${outcome.conflicts.length === 1 ? 'conflict' : 'conflicts'}; the stash is kept`,
    {
      hint: "pick a side per file with 'mediagit checkout --ours|--theirs <path>', 'mediagit add <path>', then 'mediagit stash drop'",
    },
  );
}
