/**
 * Recording the index as a commit (`commit`, `commit -a`, `commit --amend`, finishing a merge).
 */
import { ConflictError, NothingToCommitError, UsageError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import type { Index } from './index-file.js';
import type { ProgressSink } from './progress.js';
import type { Repository } from './repository.js';
import { stagePaths } from './stage.js';
import { commitTreeMap, indexToMap } from './status.js';
import { diffMaps, writeTreeFromMap } from './tree-map.js';

/** git's default cleanup: trailing whitespace and surrounding blank lines go; one final newline. */
export function cleanMessage(text: string): string {
  const lines = text
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''));
  while (lines.length && lines[0] === '') lines.shift();
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  const collapsed: string[] = [];
  for (const line of lines)
    if (!(line === '' && collapsed[collapsed.length - 1] === '')) collapsed.push(line);
  return collapsed.length ? `${collapsed.join('\n')}\n` : '';
}

export interface CommitRequest {
  /** The message as given; undefined takes the amended commit's or the pending merge's. */
  message?: string | undefined;
  /** Stage changes to tracked files first (`commit -a`). */
  all?: boolean;
  allowEmpty?: boolean;
  /** Replace HEAD's commit instead of adding one on top. */
  amend?: boolean;
  /** Count the files the commit changes (one more tree read; skipped when nothing reports it). */
  countChanges?: boolean;
  /** For `all`: progress of staging. */
  progress?: ProgressSink;
  onSkipped?: (path: string, reason: string) => void;
}

export interface CommitResult {
  oid: Oid;
  tree: Oid;
  /** The branch HEAD is on, null when detached. */
  branch: string | null;
  /** Whether it is the branch's first commit. */
  root: boolean;
  subject: string;
  /** Paths changed against the first parent (0 unless countChanges). */
  changes: number;
}

/** Writes the index as a commit on HEAD (with MERGE_HEAD as a second parent during a merge). */
export function commitIndex(repo: Repository, request: CommitRequest): Promise<CommitResult> {
  return repo.updateIndex(async (index, alongside) => {
    if (request.all) await stageTracked(repo, index, request);
    if (index.conflicts.size > 0) {
      throw new ConflictError(
        `cannot commit: ${index.conflicts.size} ${index.conflicts.size === 1 ? 'path' : 'paths'} still unmerged (${[...index.conflicts.keys()].slice(0, 5).join(', ')})`,
        {
          hint: "pick a side with 'mediagit checkout --ours|--theirs <path>', then 'mediagit add <path>'",
        },
      );
    }
    const head = await repo.readHead();
    const merging = await repo.readStateOid('MERGE_HEAD');
    const headCommit = head.oid ? await repo.odb.readCommit(head.oid) : null;
    if (request.amend && !headCommit)
      throw new UsageError('nothing to amend: the current branch has no commits');
    const treeOid = await writeTreeFromMap(repo.odb, indexToMap(index));
    if (
      !request.allowEmpty &&
      !request.amend &&
      !merging &&
      headCommit &&
      headCommit.tree === treeOid
    ) {
      throw new NothingToCommitError('nothing to commit, working tree clean', {
        hint: "stage changes with 'mediagit add' first",
      });
    }
    if (!request.allowEmpty && !headCommit && index.entries.size === 0) {
      throw new NothingToCommitError('nothing to commit', {
        hint: "stage files with 'mediagit add <path>'",
      });
    }
    // A cherry-pick, revert or rebase step stopped on conflicts may be finished by `commit` too.
    const picking =
      (await repo.readStateOid('CHERRY_PICK_HEAD')) ??
      (await repo.readStateOid('REVERT_HEAD')) ??
      (await repo.readStateOid('REBASE_HEAD'));
    let message = request.message;
    if (message === undefined) {
      if (request.amend && headCommit) message = headCommit.message;
      else if (merging || picking) message = (await repo.readStateText('MERGE_MSG')) ?? undefined;
    }
    if (message === undefined)
      throw new UsageError('a commit message is required', {
        hint: "use -m 'message' or -F <file>",
      });
    const cleaned = cleanMessage(message);
    if (cleaned === '') throw new UsageError('aborting commit due to empty commit message');
    const identity = await repo.identity();
    const parents: Oid[] =
      request.amend && headCommit ? [...headCommit.parents] : head.oid ? [head.oid] : [];
    if (merging) parents.push(merging);
    const written = await repo.odb.writeCommit({
      tree: treeOid,
      parents,
      author: request.amend && headCommit ? headCommit.author : identity,
      committer: identity,
      message: cleaned,
    });
    const kind = request.amend
      ? ' (amend)'
      : merging
        ? ' (merge)'
        : parents.length === 0
          ? ' (initial)'
          : '';
    // The ref has moved once this returns; its reflog entries are written while the index is
    // saved (updateIndex), not before: ref, then index, as the format's order of writes says.
    const moved = await repo.moveHead(
      written.oid,
      head.oid,
      `commit${kind}: ${cleaned.split('\n')[0]}`,
    );
    alongside(moved.logged);
    index.recordTree(treeOid);
    await repo.clearState(
      'MERGE_HEAD',
      'MERGE_MSG',
      'CHERRY_PICK_HEAD',
      'REVERT_HEAD',
      'REBASE_HEAD',
    );
    // Changed paths read the parent's trees: not worth it when nothing reports them.
    let changes = 0;
    if (request.countChanges) {
      const before = parents[0] ? await commitTreeMap(repo, parents[0]) : new Map();
      changes = diffMaps(before, indexToMap(index)).length;
    }
    return {
      oid: written.oid,
      branch: head.ref?.replace(/^refs\/heads\//, '') ?? null,
      root: parents.length === 0,
      subject: cleaned.split('\n')[0] ?? '',
      changes,
      tree: treeOid,
    };
  });
}

/** `commit -a`: restages every tracked path that is not in conflict. */
async function stageTracked(repo: Repository, index: Index, request: CommitRequest): Promise<void> {
  const tracked = [...index.entries.keys()].filter((p) => !index.conflicts.has(p));
  if (tracked.length === 0) return;
  await stagePaths(repo, index, tracked, {
    progress: request.progress,
    onSkipped: request.onSkipped,
  });
}
