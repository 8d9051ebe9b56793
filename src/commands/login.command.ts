import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit login`: arguments, options, help. login.ts loads only when one runs. */
export function registerLogin(program: Command, ctx: Registration): void {
  program
    .command('login')
    .argument('<url>', 'server remote URL, e.g. https://assets.studio.example/hero-game')
    .description(
      'store a token for a mediagit server in ~/.config/mediagit/credentials.toml (mode 0600)',
    )
    .option(
      '--token-file <path>',
      'read the token from a file (else MEDIAGIT_TOKEN, else a prompt)',
    )
    .addHelpText(
      'after',
      examples([
        'mediagit login https://assets.studio.example/hero-game',
        'MEDIAGIT_TOKEN=… mediagit login http://127.0.0.1:3000/hero-game',
      ]),
    )
    .action(async (url: string, options) =>
      (await import('./login.js')).runLogin(ctx.io(), url, options),
    );
}
