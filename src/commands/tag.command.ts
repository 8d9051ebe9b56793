import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit tag`: arguments, options, help. tag.ts loads only when one runs. */
export function registerTag(program: Command, ctx: Registration): void {
  program
    .command('tag')
    .argument('[args...]', 'name [commit]')
    .description('list, create or delete tags')
    .option('-a, --annotate', 'make an annotated tag object')
    .option('-m, --message <text>', 'tag message (implies -a)')
    .option('-d, --delete', 'delete tags')
    .option('-f, --force', 'replace an existing tag')
    .option('-l, --list', 'list tags')
    .option('--json', 'machine-readable list')
    .addHelpText(
      'after',
      examples([
        'mediagit tag v1.0',
        'mediagit tag -a v1.1 -m "Milestone 1"',
        'mediagit tag -d v1.0',
      ]),
    )
    .action(async (rest: string[], options) =>
      (await import('./tag.js')).runTag(ctx.io(), rest, options),
    );
}
