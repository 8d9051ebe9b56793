/** How `merge` and `pull` report a merge's outcome. */
import { ConflictError } from '../../errors/index.js';
import { shortOid } from '../../objects/index.js';
import type { MergeOutcome } from '../../repo/index.js';
import { plural, type CommandIo } from '../context.js';

/** Prints the outcome; conflicts are listed (even with quiet) and end the command with ConflictError. */
export function reportMerge(io: CommandIo, outcome: MergeOutcome, quiet: boolean): void {
  if (outcome.kind === 'conflicts') {
    for (const c of outcome.conflicts) {
      const kind = c.ours && c.theirs ? (c.base ? 'content' : 'add/add') : 'modify/delete';
      io.out(`CONFLICT (${kind}): Merge conflict in ${c.path}`);
    }
    throw new ConflictError(
      `automatic merge failed: ${plural(outcome.conflicts.length, 'conflict')}`,
      {
        hint: "pick a side per file with 'mediagit checkout --ours|--theirs <path>', 'mediagit add <path>', then 'mediagit commit'",
      },
    );
  }
  if (quiet) return;
  if (outcome.kind === 'up-to-date') io.out('Already up to date.');
  else if (outcome.kind === 'merged')
    io.out(`Merge made by the 'three-way' strategy: ${shortOid(outcome.commit)}`);
  else if (outcome.from !== null) {
    io.out(`Updating ${shortOid(outcome.from)}..${shortOid(outcome.to)}`);
    io.out(`Fast-forward`);
    io.out(` ${plural(outcome.filesChanged, 'file')} changed`);
  }
}
