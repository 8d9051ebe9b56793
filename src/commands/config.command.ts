import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit config`: arguments, options, help. config.ts loads only when one runs. */
export function registerConfig(program: Command, ctx: Registration): void {
  program
    .command('config')
    .argument('[key]', 'dotted key, e.g. user.name')
    .argument('[value]', 'new value')
    .description('read or change settings')
    .option('--global', 'use the per-user file (~/.config/mediagit/config.toml)')
    .option('-l, --list', 'list all settings')
    .option('--unset', 'remove the key')
    .option('--json', 'with --list, print JSON')
    .addHelpText(
      'after',
      examples([
        'mediagit config --global user.name "Ada Artist"',
        'mediagit config user.email ada@studio.example',
        'mediagit config core.compression_level 6',
        'mediagit config --list',
      ]),
    )
    .action(async (key: string | undefined, value: string | undefined, options) =>
      (await import('./config.js')).runConfig(ctx.io(), key, value, options),
    );
}
