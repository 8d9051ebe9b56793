import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit reset`: arguments, options, help. reset.ts loads only when one runs. */
export function registerReset(program: Command, ctx: Registration): void {
  program
    .command('reset')
    .argument('[args...]', 'a commit, and/or paths')
    .description('move HEAD and reset the index (and with --hard, the working tree)')
    .option('--soft', 'move HEAD only')
    .option('--mixed', 'move HEAD and reset the index (default)')
    .option('--hard', 'move HEAD, reset the index and the working tree')
    .option('-q, --quiet', 'suppress messages')
    .addHelpText(
      'after',
      examples([
        'mediagit reset HEAD~1',
        'mediagit reset --hard origin',
        'mediagit reset -- textures/hero.tif',
      ]),
    )
    .action(async (rest: string[], options) =>
      (await import('./reset.js')).runReset(ctx.io(), rest, ctx.dashDash, options),
    );
}
