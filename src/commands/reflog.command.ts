import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit reflog`: arguments, options, help. reflog.ts loads only when one runs. */
export function registerReflog(program: Command, ctx: Registration): void {
  program
    .command('reflog')
    .argument('[args...]', '[show] [<ref>]: HEAD (default), a branch, or stash')
    .description('where HEAD or a branch has been: every commit, reset, checkout, merge…')
    .option('-n, --max-count <n>', 'show at most n entries')
    .addHelpText(
      'after',
      examples([
        'mediagit reflog',
        'mediagit reflog show main',
        'mediagit reset --hard HEAD@{1}   # undo the last reset',
      ]),
    )
    .action(async (rest: string[], options: { maxCount?: string }) =>
      (await import('./reflog.js')).runReflog(ctx.io(), rest, options),
    );
}
