import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit key` and its subcommands: arguments, options, help. key.ts loads only when one runs. */
export function registerKey(program: Command, ctx: Registration): void {
  const key = program
    .command('key')
    .description('manage the passphrases of an encrypted repository');
  key
    .command('list')
    .description('list key files (no secrets)')
    .option('--json', 'machine-readable output')
    .action(async (options) => (await import('./key.js')).runKeyList(ctx.io(), options));
  key
    .command('add')
    .description('add a passphrase (asks for a current one, then the new one)')
    .option('--label <text>', 'a note to tell keys apart', '')
    .addHelpText(
      'after',
      examples([
        'mediagit key add --label laptop',
        'MEDIAGIT_PASSPHRASE=old MEDIAGIT_NEW_PASSPHRASE=new mediagit key add',
      ]),
    )
    .action(async (options) => (await import('./key.js')).runKeyAdd(ctx.io(), options));
  key
    .command('remove')
    .argument('<id>', "key ID from 'mediagit key list'")
    .description('remove a passphrase (never the last one)')
    .action(async (id: string) => (await import('./key.js')).runKeyRemove(ctx.io(), id));
  key
    .command('passwd')
    .description('change the passphrase you unlock with (adds the new key, removes the old)')
    .action(async () => (await import('./key.js')).runKeyPasswd(ctx.io()));
  key
    .command('cache')
    .description(
      'unlock once and let a per-user key agent hold the key, so commands skip the passphrase',
    )
    .option(
      '--timeout <duration>',
      'how long the agent keeps the key: 30s, 15m, 2h, 1h30m (at most 7d)',
      '15m',
    )
    .option('--status', "say whether this repository's key is cached, and for how long")
    .addHelpText(
      'after',
      examples([
        'mediagit key cache',
        'mediagit --passphrase-file ~/.secrets/hero-game key cache --timeout 2h',
        'mediagit key cache --status',
      ]),
    )
    .action(async (options) => (await import('./key.js')).runKeyCache(ctx.io(), options));
  key
    .command('forget')
    .description("drop this repository's key from the key agent")
    .option('--all', 'drop every cached key and stop the agent')
    .addHelpText('after', examples(['mediagit key forget', 'mediagit key forget --all']))
    .action(async (options) => (await import('./key.js')).runKeyForget(ctx.io(), options));
}
