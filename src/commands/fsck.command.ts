import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit fsck`: arguments, options, help. fsck.ts loads only when one runs. */
export function registerFsck(program: Command, ctx: Registration): void {
  program
    .command('fsck')
    .description('verify the repository: every reachable object present and intact')
    .option('--full', 'also read and verify every chunk')
    .option(
      '--remote <name>',
      'check a remote instead (a multi remote: also primary/secondary divergence)',
    )
    .option(
      '--repair',
      'with --remote of a multi remote: copy what one side lacks from the other (verified), then fast-forward lagging secondary refs',
    )
    .option('--json', 'machine-readable report')
    .addHelpText(
      'after',
      examples([
        'mediagit fsck',
        'mediagit fsck --full',
        'mediagit fsck --remote backup',
        'mediagit fsck --remote backup --repair',
      ]),
    )
    .action(async (options) => (await import('./fsck.js')).runFsck(ctx.io(), options));
}
