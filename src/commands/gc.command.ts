import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit gc`: arguments, options, help. gc.ts loads only when one runs. */
export function registerGc(program: Command, ctx: Registration): void {
  program
    .command('gc')
    .description('delete objects no branch, tag, HEAD or the index can reach')
    .option(
      '--prune <when>',
      "grace period for recent objects: 'now', or e.g. '2.hours', '14.days'",
      '1.hour',
    )
    .option('-n, --dry-run', 'only report what would be deleted')
    .option('--json', 'machine-readable report')
    .addHelpText('after', examples(['mediagit gc', 'mediagit gc --prune=now']))
    .action(async (options) => (await import('./gc.js')).runGc(ctx.io(), options));
}
