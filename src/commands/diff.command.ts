import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit diff`: arguments, options, help. diff.ts loads only when one runs. */
export function registerDiff(program: Command, ctx: Registration): void {
  program
    .command('diff')
    .argument('[revisions...]', 'zero, one or two revisions')
    .description('show changes between the working tree, the index and commits')
    .option('--cached', 'compare the index with HEAD (or a revision)')
    .option('--staged', 'same as --cached')
    .option('--stat', 'per-file summary with sizes')
    .option('--name-status', 'changed paths with A/M/D (R<similarity> old new for a rename)')
    .option('--name-only', 'changed paths only')
    .option('--json', 'machine-readable output')
    .option('--exit-code', 'exit 1 when there are differences, 0 when there are none')
    .option('--quiet', 'print nothing; exit 1 when there are differences (implies --exit-code)')
    .addHelpText(
      'after',
      examples([
        'mediagit diff --stat',
        'mediagit diff --cached --name-status',
        'mediagit diff v1 v2 --stat',
        'mediagit diff HEAD~1 -- textures/',
      ]),
    )
    .action(async (revs: string[], options) =>
      (await import('./diff.js')).runDiff(ctx.io(), revs, ctx.dashDash, options),
    );
}
