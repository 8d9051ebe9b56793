import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit branch`: arguments, options, help. branch.ts loads only when one runs. */
export function registerBranch(program: Command, ctx: Registration): void {
  program
    .command('branch')
    .argument('[args...]', 'name [start], or old new with -m')
    .description('list, create, delete or rename branches')
    .option('-d, --delete', 'delete a fully merged branch')
    .option('-D', 'delete a branch even if not merged')
    .option('-m, --move', 'rename a branch')
    .option('-M', 'rename a branch even if the new name exists')
    .option(
      '-v, --verbose',
      'show the commit each branch points at and how far it is from its upstream; -vv also names the upstream',
      (_value: string, count: number) => count + 1,
      0,
    )
    .option('-r, --remotes', 'list the remote-tracking branches')
    .option('-a, --all', 'list local and remote-tracking branches')
    .option('--json', 'machine-readable list')
    .addHelpText(
      'after',
      examples([
        'mediagit branch',
        'mediagit branch lighting',
        'mediagit branch -vv',
        'mediagit branch -m lighting lighting-v2',
        'mediagit branch -d lighting-v2',
      ]),
    )
    .action(
      async (
        rest: string[],
        options: {
          delete?: boolean;
          D?: boolean;
          move?: boolean;
          M?: boolean;
          verbose?: number;
          json?: boolean;
          remotes?: boolean;
          all?: boolean;
        },
      ) =>
        (await import('./branch.js')).runBranch(ctx.io(), rest, {
          delete: options.delete ?? false,
          forceDelete: options.D ?? false,
          move: options.move ?? false,
          forceMove: options.M ?? false,
          verbose: options.verbose ?? 0,
          json: options.json ?? false,
          remotes: options.remotes ?? false,
          all: options.all ?? false,
        }),
    );
}
