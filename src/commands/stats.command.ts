import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit stats`: arguments, options, help. stats.ts loads only when one runs. */
export function registerStats(program: Command, ctx: Registration): void {
  program
    .command('stats')
    .description('logical vs stored bytes, deduplication and compression ratios')
    .option('--json', 'machine-readable output')
    .addHelpText('after', examples(['mediagit stats', 'mediagit stats --json']))
    .action(async (options) => (await import('./stats.js')).runStats(ctx.io(), options));
}
