import type { Command } from 'commander';
import { DEFAULT_ZSTD_LEVEL } from '../compression/index.js';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit init`: arguments, options, help. init.ts loads only when one runs. */
export function registerInit(program: Command, ctx: Registration): void {
  program
    .command('init')
    .argument('[directory]', 'where to create the repository (default: current folder)')
    .description('create an empty repository')
    .option('-b, --initial-branch <name>', 'name of the first branch', 'main')
    .option('--chunk-min <size>', 'minimum chunk size (fixed for the repository)', '256K')
    .option('--chunk-avg <size>', 'average chunk size (fixed for the repository)', '1M')
    .option('--chunk-max <size>', 'maximum chunk size (fixed for the repository)', '4M')
    .option('--compression-level <n>', `zstd level 0 (off) to 22 (default ${DEFAULT_ZSTD_LEVEL})`)
    .option(
      '--bare',
      'create an empty remote repository (a folder to push to and clone from), not a working one',
    )
    .option('--encrypt', 'encrypt everything client-side (AES-256-GCM; asks for a new passphrase)')
    .option('-q, --quiet', 'print nothing on success')
    .addHelpText(
      'after',
      examples([
        'mediagit init',
        'mediagit init my-project',
        'MEDIAGIT_NEW_PASSPHRASE=… mediagit init --encrypt',
        'mediagit init --chunk-avg 512K assets',
        'mediagit init --bare /mnt/nas/hero-game.mediagit',
      ]),
    )
    .action(async (directory: string | undefined, options) =>
      (await import('./init.js')).runInit(ctx.io(), directory, options),
    );
}
