/**
 * Moving HEAD between branches and commits, the working tree and index with it (`checkout`,
 * `switch`), and creating the branch to move to.
 */
import { AlreadyExistsError, UsageError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import { isValidRefName } from '../store/index.js';
import { moveWorktree } from './checkout.js';
import { silentProgress, type ProgressSink } from './progress.js';
import type { Repository } from './repository.js';
import { commitTreeMap } from './status.js';

export interface SwitchOptions {
  /** Throw away local changes (and a merge in progress) instead of refusing. */
  force?: boolean;
  progress?: ProgressSink;
}

/** The ref of a branch name, refusing names a ref cannot have. */
export function branchRef(name: string): string {
  const ref = `refs/heads/${name}`;
  if (!isValidRefName(ref)) throw new UsageError(`'${name}' is not a valid branch name`);
  return ref;
}

/** Moves HEAD (and the working tree and index with it) to a commit; `head` says what HEAD becomes. */
export async function switchTo(
  repo: Repository,
  target: Oid,
  head: { ref: string } | { oid: Oid },
  options: SwitchOptions = {},
): Promise<void> {
  const force = options.force ?? false;
  await repo.updateIndex(async (index) => {
    const current = await repo.readHead();
    const from = await commitTreeMap(repo, current.oid);
    const to = await commitTreeMap(repo, target);
    await moveWorktree(repo, index, from, to, {
      force,
      progress: options.progress ?? silentProgress,
      operation: 'checkout',
    });
    if (force) index.conflicts.clear();
  });
  if (force) await repo.clearState('MERGE_HEAD', 'MERGE_MSG');
  const before = await repo.readHead();
  await repo.writeHead(
    head,
    `checkout: moving from ${headName(before)} to ${headName(head)}`,
    target,
  );
}

/** How git's reflog names a HEAD position: the branch, else the commit. */
function headName(head: { ref: string | null; oid?: Oid | null } | { oid: Oid }): string {
  if ('ref' in head && head.ref) return head.ref.replace(/^refs\/heads\//, '');
  return head.oid ?? '(unborn)';
}

/**
 * Switches to branch `name`, which points at `target`. 'already' when HEAD is on it: nothing is
 * touched then, as in git.
 */
export async function switchToBranch(
  repo: Repository,
  name: string,
  target: Oid,
  options: SwitchOptions = {},
): Promise<'already' | 'switched'> {
  const ref = `refs/heads/${name}`;
  if ((await repo.readHead()).ref === ref) return 'already';
  await switchTo(repo, target, { ref }, options);
  return 'switched';
}

export interface NewBranchOptions extends SwitchOptions {
  /** Move an existing branch of that name to the start point instead of refusing. */
  reset?: boolean;
  /** Added to the refusal when the branch exists (which flag resets it). */
  existsHint?: string;
}

/**
 * Creates branch `name` at `start` (null: HEAD's branch has no commits yet, so the new branch is
 * unborn too) and switches to it.
 */
export async function switchToNewBranch(
  repo: Repository,
  name: string,
  start: Oid | null,
  options: NewBranchOptions = {},
): Promise<void> {
  const ref = branchRef(name);
  if ((await repo.readRef(ref)) && !options.reset)
    throw new AlreadyExistsError(
      `a branch named '${name}' already exists`,
      options.existsHint ? { hint: options.existsHint } : {},
    );
  if (start) await switchTo(repo, start, { ref }, options);
  else await repo.writeHead({ ref });
  // Read again: the switch took time, and the ref is only moved from what it is now.
  const existing = await repo.readRef(ref);
  if (start) await repo.updateRef(ref, start, existing, 'branch: Created from HEAD', false);
}
