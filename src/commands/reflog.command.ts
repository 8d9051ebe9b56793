import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit reflog`: arguments, options, help. reflog.ts loads only when one runs. */
export function registerReflog(program: Command, ctx: Registration): void {
  program
    .command('reflog')
    .argument(
      '[args...]',
      '[show] [<ref>]: HEAD (default), a branch, or stash; expire [--expire=<time>] (--all | <ref>…)',
    )
    .description('where HEAD or a branch has been: every commit, reset, checkout, merge…')
    .option('-n, --max-count <n>', 'show at most n entries')
    .option(
      '--expire <time>',
      "with expire: drop entries older than this ('now', '30.days'; default gc.reflogExpire)",
    )
    .option('--all', 'with expire: every reflog (the stash list is never expired by age)')
    .addHelpText(
      'after',
      examples([
        'mediagit reflog',
        'mediagit reflog show main',
        'mediagit reset --hard HEAD@{1}   # undo the last reset',
        'mediagit reflog expire --expire=now --all && mediagit gc --prune=now',
      ]),
    )
    .action(
      async (rest: string[], options: { maxCount?: string; expire?: string; all?: boolean }) =>
        (await import('./reflog.js')).runReflog(ctx.io(), rest, options),
    );
}
