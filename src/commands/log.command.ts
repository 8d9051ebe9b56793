import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit log`: arguments, options, help. log.ts loads only when one runs. */
export function registerLog(program: Command, ctx: Registration): void {
  program
    .command('log')
    .argument('[revisions...]', 'where to start (default HEAD)')
    .description('show commit history')
    .option('--oneline', 'one line per commit')
    .option('-n, --max-count <n>', 'show at most n commits')
    .option('--first-parent', 'follow only the first parent of merges')
    .option('--json', 'print an array of commits as JSON')
    .addHelpText(
      'after',
      examples(['mediagit log --oneline -n 10', 'mediagit log --json main', 'mediagit log HEAD~3']),
    )
    .action(async (revs: string[], options) =>
      (await import('./log.js')).runLog(ctx.io(), revs, options),
    );
}
