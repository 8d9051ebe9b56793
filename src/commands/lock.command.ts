import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit lock`, `unlock` and `locks`: arguments, options, help. lock.ts loads only when one runs. */
export function registerLock(program: Command, ctx: Registration): void {
  program
    .command('lock')
    .argument('<paths...>', 'files (or globs) to lock')
    .description('lock files so nobody else can commit or push changes to them')
    .option('--remote <name>', 'remote to lock on (default origin)')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      examples(['mediagit lock scenes/level01.blend', "mediagit lock 'scenes/*.blend'"]),
    )
    .action(async (paths: string[], options) =>
      (await import('./lock.js')).runLock(ctx.io(), paths, options),
    );
  program
    .command('unlock')
    .argument('<paths...>', 'locked files (or globs)')
    .description("release your locks (admins: --force releases anyone's)")
    .option('--remote <name>', 'remote (default origin)')
    .option('-f, --force', 'release a lock held by someone else (admin role on a server)')
    .action(async (paths: string[], options) =>
      (await import('./lock.js')).runUnlock(ctx.io(), paths, options),
    );
  program
    .command('locks')
    .argument('[path]', 'only locks under this path')
    .description('list who holds which locks on the remote')
    .option('--remote <name>', 'remote (default origin)')
    .option('--json', 'machine-readable output')
    .action(async (path: string | undefined, options) =>
      (await import('./lock.js')).runLocks(ctx.io(), path, options),
    );
}
