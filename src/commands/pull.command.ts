import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit pull`: arguments, options, help. pull.ts loads only when one runs. */
export function registerPull(program: Command, ctx: Registration): void {
  program
    .command('pull')
    .argument('[remote]', 'default: origin')
    .argument('[branch]', 'remote branch to merge (default: the current branch name)')
    .description('fetch, then merge the remote branch (fast-forward when possible)')
    .option('--ff-only', 'refuse unless it is a fast-forward')
    .option('-r, --rebase', 'replay local commits onto the remote branch instead of merging')
    .option('--no-rebase', 'merge even when pull.rebase is set')
    .option(
      '--no-hardlinks',
      'from a local folder: copy and verify every object instead of hard-linking it (also config transfer.hardlinks=false)',
    )
    .option('-q, --quiet', 'print less')
    .addHelpText(
      'after',
      examples([
        'mediagit pull',
        'mediagit pull --rebase   # conflicts: resolve, add, mediagit rebase --continue',
        'mediagit pull origin main',
      ]),
    )
    .action(async (remoteName: string | undefined, branch: string | undefined, options) =>
      (await import('./pull.js')).runPull(ctx.io(), remoteName, branch, options),
    );
}
