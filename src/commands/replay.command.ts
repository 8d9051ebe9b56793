import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

interface SequenceFlags {
  continue?: boolean;
  abort?: boolean;
  skip?: boolean;
  quiet?: boolean;
}

function sequenceOptions(command: Command): Command {
  return command
    .option('--continue', 'go on after resolving conflicts (and adding the files)')
    .option('--abort', 'give up and go back to where HEAD was')
    .option('--skip', 'leave out the commit that stopped, go on with the next')
    .option('-q, --quiet', 'print less');
}

/** Registers `mediagit cherry-pick`, `revert` and `rebase`. replay.ts loads only when one runs. */
export function registerReplay(program: Command, ctx: Registration): void {
  sequenceOptions(
    program
      .command('cherry-pick')
      .argument('[commits...]', 'commits (or a..b ranges) whose changes to apply, in order')
      .description("apply other commits' changes on top of HEAD"),
  )
    .addHelpText(
      'after',
      examples(['mediagit cherry-pick lighting~2', 'mediagit cherry-pick --continue']),
    )
    .action(async (commits: string[], options: SequenceFlags) =>
      (await import('./replay.js')).runReplay(ctx.io(), 'cherry-pick', commits, options),
    );
  sequenceOptions(
    program
      .command('revert')
      .argument('[commits...]', 'commits to undo with new commits, in order')
      .description('record new commits that undo earlier ones'),
  )
    .addHelpText('after', examples(['mediagit revert HEAD~1', 'mediagit revert --abort']))
    .action(async (commits: string[], options: SequenceFlags) =>
      (await import('./replay.js')).runReplay(ctx.io(), 'revert', commits, options),
    );
  sequenceOptions(
    program
      .command('rebase')
      .argument('[upstream]', "replay the current branch's own commits onto this")
      .description("move the current branch's commits onto another tip, one by one"),
  )
    .addHelpText('after', examples(['mediagit rebase main', 'mediagit rebase --continue']))
    .action(async (upstream: string | undefined, options: SequenceFlags) =>
      (await import('./replay.js')).runReplay(
        ctx.io(),
        'rebase',
        upstream === undefined ? [] : [upstream],
        options,
      ),
    );
}
