import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit merge`: arguments, options, help. merge.ts loads only when one runs. */
export function registerMerge(program: Command, ctx: Registration): void {
  program
    .command('merge')
    .argument('[revision]', 'branch or commit to merge into the current branch')
    .description('join another line of history into the current branch')
    .option('--abort', 'give up a conflicted merge and go back')
    .option('--ff-only', 'refuse unless a fast-forward is possible')
    .option('--no-ff', 'create a merge commit even when a fast-forward is possible')
    .option('-m, --message <text>', 'merge commit message')
    .option('-q, --quiet', 'suppress messages')
    .addHelpText('after', examples(['mediagit merge lighting', 'mediagit merge --abort']))
    .action(
      async (
        rev: string | undefined,
        options: {
          abort?: boolean;
          ffOnly?: boolean;
          ff?: boolean;
          message?: string;
          quiet?: boolean;
        },
      ) =>
        (await import('./merge.js')).runMerge(ctx.io(), rev, {
          ...options,
          noFf: options.ff === false,
        }),
    );
}
