import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit sparse-checkout`: set, add, list, disable. sparse-checkout.ts loads only when one runs. */
export function registerSparseCheckout(program: Command, ctx: Registration): void {
  const sparse = program
    .command('sparse-checkout')
    .description('choose which tracked paths are in the working tree (others stay tracked)')
    .addHelpText(
      'after',
      examples([
        "mediagit sparse-checkout set 'audio/**'",
        "mediagit sparse-checkout add 'video/**'",
        'mediagit sparse-checkout list',
        'mediagit sparse-checkout disable',
      ]),
    );
  const run = async (
    action: 'set' | 'add' | 'list' | 'disable',
    patterns: string[],
    options: object,
  ): Promise<void> =>
    (await import('./sparse-checkout.js')).runSparseCheckout(ctx.io(), action, patterns, options);
  sparse
    .command('set')
    .argument('<patterns...>', "globs of paths to check out, e.g. 'audio/**'")
    .description('check out only matching paths: writes the ones added, removes the ones dropped')
    .option('-q, --quiet', 'print nothing')
    .action((patterns: string[], options: object) => run('set', patterns, options));
  sparse
    .command('add')
    .argument('<patterns...>', 'more globs')
    .description('widen the set: fetches and checks out exactly the newly matching paths')
    .option('-q, --quiet', 'print nothing')
    .action((patterns: string[], options: object) => run('add', patterns, options));
  sparse
    .command('list')
    .description('print the patterns in force')
    .option('--json', 'machine-readable list')
    .action((options: object) => run('list', [], options));
  sparse
    .command('disable')
    .description('check out every path again')
    .option('-q, --quiet', 'print nothing')
    .action((options: object) => run('disable', [], options));
}
