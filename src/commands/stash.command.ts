import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit stash`: arguments, options, help. stash.ts loads only when one runs. */
export function registerStash(program: Command, ctx: Registration): void {
  program
    .command('stash')
    .argument('[args...]', 'push [-m <message>] | pop | apply | list | drop | show  [stash@{n}]')
    .description('put local changes aside and bring them back later')
    .option('-m, --message <text>', 'with push: describe the stash')
    .option('-q, --quiet', 'print less')
    .addHelpText(
      'after',
      examples([
        'mediagit stash push -m "half-done lighting"',
        'mediagit stash list',
        'mediagit stash pop',
        'mediagit stash show stash@{1}',
      ]),
    )
    .action(async (rest: string[], options: { message?: string; quiet?: boolean }) =>
      (await import('./stash.js')).runStash(ctx.io(), rest, options),
    );
}
