import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit add`: arguments, options, help. add.ts loads only when one runs. */
export function registerAdd(program: Command, ctx: Registration): void {
  program
    .command('add')
    .argument('[paths...]', 'files or folders; "." for everything here')
    .description('stage new, changed and deleted files')
    .option('-A, --all', 'stage every change in the whole working tree')
    .option('-f, --force', 'add files even if they are ignored')
    .option('-n, --dry-run', 'show what would be staged')
    .option('--json', 'print a machine-readable summary')
    .addHelpText(
      'after',
      examples(['mediagit add .', 'mediagit add textures/hero.tif audio/', 'mediagit add -A']),
    )
    .action(async (paths: string[], options) =>
      (await import('./add.js')).runAdd(ctx.io(), paths, options),
    );
}
