import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit prune`: options, help. prune.ts loads only when one runs. */
export function registerPrune(program: Command, ctx: Registration): void {
  program
    .command('prune')
    .description(
      'evict local chunks the remote confirms it holds (one copy on disk); they come back on demand',
    )
    .option(
      '--keep-recent <duration>',
      'keep the content of commits made within this time (e.g. 14d) for offline work',
    )
    .option('--remote <name>', 'remote to check against (default: the one content comes from)')
    .option('-n, --dry-run', 'only report what would be evicted')
    .option('--json', 'machine-readable report')
    .option('-q, --quiet', 'print nothing')
    .addHelpText(
      'after',
      examples(['mediagit prune', 'mediagit prune --keep-recent 14d', 'mediagit prune --dry-run']),
    )
    .action(async (options) => (await import('./prune.js')).runPrune(ctx.io(), options));
}
