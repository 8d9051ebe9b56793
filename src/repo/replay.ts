/**
 * Replaying commits onto HEAD: `cherry-pick` (a commit's change), `revert` (its inverse) and
 * `rebase` (a branch's own commits, one by one, onto another tip — the second half of
 * `pull --rebase`). Each step is the same three-way merge as `merge`, at file granularity, so a
 * media file changed on both sides is a conflict settled with `checkout --ours|--theirs` + `add`,
 * then `--continue`. What remains to do is kept in `.mediagit/sequencer.json` between commands.
 */
import { readFile, unlink } from 'node:fs/promises';
import {
  ConflictError,
  DirtyWorktreeError,
  NothingToCommitError,
  UsageError,
} from '../errors/index.js';
import { isOid, shortOid, type Commit, type Oid } from '../objects/index.js';
import { isErrno, writeFileAtomic } from '../util/fs.js';
import { moveWorktree } from './checkout.js';
import { walkHistory, isAncestor } from './history.js';
import type { Conflict, Index } from './index-file.js';
import { threeWayMerge } from './merge.js';
import { silentProgress, type ProgressSink } from './progress.js';
import type { Repository, StateOidName } from './repository.js';
import { resetIndexTo } from './reset.js';
import { commitTreeMap, indexToMap } from './status.js';
import { diffMaps, writeTreeFromMap, type FileMap } from './tree-map.js';

export type ReplayKind = 'cherry-pick' | 'revert' | 'rebase';

/** What `--continue` and `--abort` need: stored as JSON between commands. */
interface Sequence {
  readonly kind: ReplayKind;
  /** Commits still to apply after `current`, in order. */
  todo: Oid[];
  /** The commit whose step stopped on conflicts, or null. */
  current: Oid | null;
  /** HEAD's commit before the operation: where --abort goes back to. */
  readonly origHead: Oid;
  /** The branch HEAD was on (rebase moves it at the end), null when detached. */
  readonly branch: string | null;
  /** Rebase: the commit replayed onto, for messages. */
  readonly onto?: Oid;
}

export type ReplayOutcome =
  | { readonly kind: 'done'; readonly applied: readonly ReplayStep[]; readonly head: Oid }
  | {
      readonly kind: 'conflicts';
      readonly applied: readonly ReplayStep[];
      readonly commit: Oid;
      readonly subject: string;
      readonly conflicts: readonly Conflict[];
    };

/** One commit replayed: the original, the new commit (null: nothing left to change, skipped). */
export interface ReplayStep {
  readonly from: Oid;
  readonly to: Oid | null;
  readonly subject: string;
}

export interface ReplayOptions {
  progress?: ProgressSink;
}

const STATE: Record<ReplayKind, StateOidName> = {
  'cherry-pick': 'CHERRY_PICK_HEAD',
  revert: 'REVERT_HEAD',
  rebase: 'REBASE_HEAD',
};

const subjectOf = (c: Commit): string => c.message.split('\n')[0] ?? '';

const sequencerPath = (repo: Repository): string => repo.path('sequencer.json');

async function loadSequence(repo: Repository): Promise<Sequence | null> {
  let text: string;
  try {
    text = await readFile(sequencerPath(repo), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  const seq = JSON.parse(text) as Sequence;
  if (!isOid(seq.origHead) || !seq.todo.every(isOid))
    throw new UsageError(`${sequencerPath(repo)} is damaged`, {
      hint: 'remove it to forget the operation in progress',
    });
  return seq;
}

const saveSequence = (repo: Repository, seq: Sequence): Promise<void> =>
  writeFileAtomic(sequencerPath(repo), `${JSON.stringify(seq, null, 2)}\n`, {
    fsync: repo.settings.fsync,
  });

async function dropSequence(repo: Repository): Promise<void> {
  await unlink(sequencerPath(repo)).catch((err: unknown) => {
    if (!isErrno(err, 'ENOENT')) throw err;
  });
  await repo.clearState('CHERRY_PICK_HEAD', 'REVERT_HEAD', 'REBASE_HEAD', 'MERGE_MSG');
}

/** The operation in progress ('cherry-pick', 'revert', 'rebase'), or null. */
export async function replayInProgress(repo: Repository): Promise<ReplayKind | null> {
  return (await loadSequence(repo))?.kind ?? null;
}

async function refuseBusy(repo: Repository): Promise<void> {
  const busy = await loadSequence(repo);
  if (busy)
    throw new UsageError(`a ${busy.kind} is in progress`, {
      hint: `finish it with 'mediagit ${busy.kind} --continue', or 'mediagit ${busy.kind} --abort'`,
    });
  if ((await repo.readStateOid('MERGE_HEAD')) !== null)
    throw new UsageError('a merge is in progress', {
      hint: "finish it with 'mediagit commit', or 'mediagit merge --abort'",
    });
}

/** Applies `commits` (in order) on HEAD as cherry-picks or reverts. */
export async function startReplay(
  repo: Repository,
  kind: 'cherry-pick' | 'revert',
  commits: readonly Oid[],
  options: ReplayOptions = {},
): Promise<ReplayOutcome> {
  await refuseBusy(repo);
  const head = await repo.readHead();
  if (head.oid === null)
    throw new UsageError(`cannot ${kind} onto a branch with no commits yet`, {
      hint: 'make a first commit',
    });
  const seq: Sequence = {
    kind,
    todo: [...commits],
    current: null,
    origHead: head.oid,
    branch: head.ref,
  };
  return run(repo, seq, options.progress ?? silentProgress);
}

/**
 * Replays HEAD's own commits (those `upstream` lacks, merges left out, as git does) onto
 * `upstream`, then moves HEAD's branch to the result. HEAD already in `upstream` fast-forwards.
 */
export async function rebaseOnto(
  repo: Repository,
  upstream: Oid,
  options: ReplayOptions = {},
): Promise<ReplayOutcome | { readonly kind: 'up-to-date' }> {
  await refuseBusy(repo);
  const progress = options.progress ?? silentProgress;
  const head = await repo.readHead();
  if (head.oid === null) throw new UsageError('cannot rebase a branch with no commits yet');
  if (await isAncestor(repo, upstream, head.oid)) return { kind: 'up-to-date' };
  const mine: Oid[] = [];
  for await (const entry of walkHistory(repo, [head.oid], { exclude: [upstream] }))
    if (entry.commit.parents.length <= 1) mine.push(entry.oid);
  mine.reverse();
  await requireCleanIndex(repo, head.oid);
  const seq: Sequence = {
    kind: 'rebase',
    todo: mine,
    current: null,
    origHead: head.oid,
    branch: head.ref,
    onto: upstream,
  };
  await saveSequence(repo, seq);
  // Detach onto upstream; the branch moves only once every commit is replayed.
  await moveTo(repo, head.oid, upstream, progress, 'rebase');
  await repo.writeHead({ oid: upstream }, `rebase (start): checkout ${shortOid(upstream)}`);
  return run(repo, seq, progress);
}

/** `--continue`: commits the resolved step (unless `commit` already did) and goes on. */
export async function continueReplay(
  repo: Repository,
  options: ReplayOptions = {},
): Promise<ReplayOutcome> {
  const seq = await loadSequence(repo);
  if (!seq) throw new UsageError('no cherry-pick, revert or rebase is in progress');
  if (seq.current !== null) {
    const pending = await repo.readStateOid(STATE[seq.kind]);
    if (pending !== null) await commitResolved(repo, seq, pending);
    seq.current = null;
    await saveSequence(repo, seq);
  }
  return run(repo, seq, options.progress ?? silentProgress);
}

/** `--skip`: drops the stopped step's changes and goes on with the next commit. */
export async function skipReplay(
  repo: Repository,
  options: ReplayOptions = {},
): Promise<ReplayOutcome> {
  const seq = await loadSequence(repo);
  if (!seq) throw new UsageError('no cherry-pick, revert or rebase is in progress');
  const progress = options.progress ?? silentProgress;
  const head = await repo.readHead();
  await forceTo(repo, head.oid, progress, `${seq.kind} --skip`);
  await repo.clearState(STATE[seq.kind], 'MERGE_MSG');
  seq.current = null;
  await saveSequence(repo, seq);
  return run(repo, seq, progress);
}

/** `--abort`: index, files, HEAD and its branch go back to where they were before the operation. */
export async function abortReplay(repo: Repository, options: ReplayOptions = {}): Promise<void> {
  const seq = await loadSequence(repo);
  if (!seq) throw new UsageError('no cherry-pick, revert or rebase is in progress');
  const progress = options.progress ?? silentProgress;
  await forceTo(repo, seq.origHead, progress, `${seq.kind} --abort`);
  const message = `${seq.kind} (abort): returning to ${seq.branch ?? shortOid(seq.origHead)}`;
  if (seq.kind === 'rebase') {
    // The branch never moved during a rebase; HEAD (detached) goes back onto it.
    await repo.writeHead(seq.branch ? { ref: seq.branch } : { oid: seq.origHead }, message);
  } else {
    const head = await repo.readHead();
    if (head.oid !== seq.origHead) await repo.advanceHead(seq.origHead, head.oid, message);
  }
  await dropSequence(repo);
}

async function run(
  repo: Repository,
  seq: Sequence,
  progress: ProgressSink,
): Promise<ReplayOutcome> {
  const applied: ReplayStep[] = [];
  while (seq.todo.length > 0) {
    const next = seq.todo[0]!;
    const step = await applyOne(repo, seq.kind, next, progress);
    seq.todo.shift();
    if (step.kind === 'conflicts') {
      seq.current = next;
      await saveSequence(repo, seq);
      return {
        kind: 'conflicts',
        applied,
        commit: next,
        subject: step.subject,
        conflicts: step.conflicts,
      };
    }
    applied.push({ from: next, to: step.commit, subject: step.subject });
    if (seq.kind === 'rebase' || seq.todo.length > 0) await saveSequence(repo, seq);
  }
  const head = await repo.readHead();
  if (seq.kind === 'rebase' && seq.branch !== null && head.oid !== null) {
    const tip = await repo.readRef(seq.branch);
    await repo.updateRef(
      seq.branch,
      head.oid,
      tip,
      `rebase (finish): ${seq.branch} onto ${seq.onto ?? head.oid}`,
      false,
    );
    await repo.writeHead({ ref: seq.branch }, `rebase (finish): returning to ${seq.branch}`);
  }
  await dropSequence(repo);
  return { kind: 'done', applied, head: head.oid ?? seq.origHead };
}

type StepResult =
  | { kind: 'committed'; commit: Oid | null; subject: string }
  | { kind: 'conflicts'; subject: string; conflicts: Conflict[] };

function stepMessage(kind: ReplayKind, oid: Oid, commit: Commit): string {
  if (kind !== 'revert') return commit.message;
  return `Revert "${subjectOf(commit)}"\n\nThis reverts commit ${oid}.\n`;
}

/** The reflog line for a step, in git's words. */
function stepLog(kind: ReplayKind, message: string): string {
  const subject = message.split('\n')[0] ?? '';
  return kind === 'rebase' ? `rebase (pick): ${subject}` : `${kind}: ${subject}`;
}

async function applyOne(
  repo: Repository,
  kind: ReplayKind,
  oid: Oid,
  progress: ProgressSink,
): Promise<StepResult> {
  const commit = await repo.odb.readCommit(oid);
  if (commit.parents.length > 1)
    throw new UsageError(`commit ${shortOid(oid)} is a merge; replaying merges is not supported`, {
      hint: 'pick the commits of the merged branch instead',
    });
  const parentMap = await commitTreeMap(repo, commit.parents[0] ?? null);
  const commitMap = await commitTreeMap(repo, oid);
  const [base, theirs] = kind === 'revert' ? [commitMap, parentMap] : [parentMap, commitMap];
  const message = stepMessage(kind, oid, commit);
  const subject = message.split('\n')[0] ?? '';
  return repo.updateIndex(async (index): Promise<StepResult> => {
    const head = await repo.readHead();
    const ours = await commitTreeMap(repo, head.oid);
    requireIndexAt(index, ours);
    const plan = threeWayMerge(base, ours, theirs);
    if (plan.conflicts.length === 0 && diffMaps(ours, plan.merged).length === 0) {
      // Already there (a rebase onto work that contains it): git drops such a commit too.
      if (kind === 'rebase') return { kind: 'committed', commit: null, subject };
      throw new NothingToCommitError(
        `${kind} of ${shortOid(oid)} changes nothing: HEAD already has its result`,
      );
    }
    await moveWorktree(repo, index, ours, plan.worktree, {
      force: false,
      progress,
      operation: kind,
    });
    resetIndexTo(index, plan.merged);
    if (plan.conflicts.length > 0) {
      for (const conflict of plan.conflicts) index.conflicts.set(conflict.path, conflict);
      await repo.writeState(STATE[kind], `${oid}\n`);
      await repo.writeState('MERGE_MSG', message);
      return { kind: 'conflicts', subject, conflicts: plan.conflicts };
    }
    const tree = await writeTreeFromMap(repo.odb, plan.merged);
    const identity = await repo.identity();
    const written = await repo.odb.writeCommit({
      tree,
      parents: [head.oid!],
      author: kind === 'revert' ? identity : commit.author,
      committer: identity,
      message,
    });
    index.recordTree(tree);
    await repo.advanceHead(written.oid, head.oid, stepLog(kind, message));
    return { kind: 'committed', commit: written.oid, subject };
  });
}

/** Commits the index as the stopped step, with the original's message (and author, for picks). */
async function commitResolved(repo: Repository, seq: Sequence, original: Oid): Promise<void> {
  const commit = await repo.odb.readCommit(original);
  const message =
    (await repo.readStateText('MERGE_MSG')) ?? stepMessage(seq.kind, original, commit);
  await repo.updateIndex(async (index) => {
    if (index.conflicts.size > 0)
      throw new ConflictError(
        `${index.conflicts.size} ${index.conflicts.size === 1 ? 'path is' : 'paths are'} still unmerged (${[...index.conflicts.keys()].slice(0, 5).join(', ')})`,
        {
          hint: "pick a side with 'mediagit checkout --ours|--theirs <path>', 'mediagit add <path>', then --continue",
        },
      );
    const head = await repo.readHead();
    const headCommit = head.oid ? await repo.odb.readCommit(head.oid) : null;
    const tree = await writeTreeFromMap(repo.odb, indexToMap(index));
    // Resolved to exactly what HEAD has: nothing to record, as `rebase --continue` skips it.
    if (headCommit && headCommit.tree === tree) return;
    const identity = await repo.identity();
    const written = await repo.odb.writeCommit({
      tree,
      parents: head.oid ? [head.oid] : [],
      author: seq.kind === 'revert' ? identity : commit.author,
      committer: identity,
      message,
    });
    index.recordTree(tree);
    await repo.advanceHead(written.oid, head.oid, stepLog(seq.kind, message));
  });
  await repo.clearState(STATE[seq.kind], 'MERGE_MSG');
}

function requireIndexAt(index: Index, head: FileMap): void {
  if (index.conflicts.size > 0 || diffMaps(head, indexToMap(index)).length > 0)
    throw new DirtyWorktreeError('you have staged changes; replaying commits would mix them in', {
      hint: "commit them first, or unstage with 'mediagit reset'",
    });
}

async function requireCleanIndex(repo: Repository, head: Oid): Promise<void> {
  const index = await repo.readIndex();
  requireIndexAt(index, await commitTreeMap(repo, head));
}

/** Moves the files and index from commit `from` to commit `to`, refusing to overwrite local edits. */
async function moveTo(
  repo: Repository,
  from: Oid,
  to: Oid,
  progress: ProgressSink,
  operation: string,
): Promise<void> {
  await repo.updateIndex(async (index) => {
    const target = await commitTreeMap(repo, to);
    await moveWorktree(repo, index, await commitTreeMap(repo, from), target, {
      force: false,
      progress,
      operation,
    });
    resetIndexTo(index, target);
  });
}

/** Index and files to commit `to`, whatever they hold now (conflicts included). */
async function forceTo(
  repo: Repository,
  to: Oid | null,
  progress: ProgressSink,
  operation: string,
): Promise<void> {
  await repo.updateIndex(async (index) => {
    const target = await commitTreeMap(repo, to);
    const current = indexToMap(index);
    // Unmerged paths are on disk as one side: they must be replaced or removed too.
    for (const c of index.conflicts.values()) {
      const side = c.ours ?? c.theirs;
      if (side && !current.has(c.path)) current.set(c.path, side);
    }
    await moveWorktree(repo, index, current, target, {
      force: true,
      progress,
      operation,
    });
    resetIndexTo(index, target);
  });
}
