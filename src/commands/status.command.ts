import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit status`: arguments, options, help. status.ts loads only when one runs. */
export function registerStatus(program: Command, ctx: Registration): void {
  program
    .command('status')
    .description('show staged, unstaged and untracked changes')
    .option('-s, --short', 'one line per path (XY PATH)')
    .option('--porcelain', 'stable short format for scripts')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      examples(['mediagit status', 'mediagit status -s', 'mediagit status --json']),
    )
    .action(async (options) => (await import('./status.js')).runStatus(ctx.io(), options));
}
