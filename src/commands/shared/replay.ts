/** How `cherry-pick`, `revert`, `rebase` and `pull --rebase` report replayed commits. */
import { ConflictError } from '../../errors/index.js';
import { shortOid } from '../../objects/index.js';
import type { ReplayKind, ReplayOutcome } from '../../repo/index.js';
import { plural, type CommandIo } from '../context.js';

/** Prints each replayed commit; a stop on conflicts lists them (even with quiet) and ends with ConflictError. */
export function reportReplay(
  io: CommandIo,
  kind: ReplayKind,
  outcome: ReplayOutcome,
  quiet: boolean,
): void {
  if (!quiet)
    for (const step of outcome.applied)
      io.out(
        step.to
          ? `[${shortOid(step.to)}] ${step.subject}`
          : `dropped ${shortOid(step.from)} ${step.subject}: its changes are already there`,
      );
  if (outcome.kind === 'done') {
    if (!quiet && kind === 'rebase') io.out('Successfully rebased and updated the branch.');
    return;
  }
  for (const c of outcome.conflicts) {
    const what = c.ours && c.theirs ? (c.base ? 'content' : 'add/add') : 'modify/delete';
    io.out(`CONFLICT (${what}): Merge conflict in ${c.path}`);
  }
  const verb = kind === 'rebase' ? 'rebase' : kind;
  throw new ConflictError(
    `could not apply ${shortOid(outcome.commit)} ${outcome.subject}: ${plural(outcome.conflicts.length, 'conflict')}`,
    {
      hint: `pick a side per file with 'mediagit checkout --ours|--theirs <path>', 'mediagit add <path>', then 'mediagit ${verb} --continue' (or --abort)`,
    },
  );
}
