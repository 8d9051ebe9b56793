import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit server` and its `token` and `apikey` subcommands: arguments, options, help. server.ts loads only when one runs. */
export function registerServer(program: Command, ctx: Registration): void {
  const server = program
    .command('server')
    .description(
      'run the mediagit HTTP server (storage from mediagit.toml [storage]; default a local folder)',
    )
    .option('--config <path>', 'server config file (TOML)', 'mediagit.toml')
    .addHelpText(
      'after',
      examples([
        'MEDIAGIT_JWT_SECRET=… mediagit server --config /etc/mediagit/mediagit.toml',
        'MEDIAGIT_PORT=8080 MEDIAGIT_HOST=127.0.0.1 mediagit server',
      ]),
    )
    .action(async (options) => (await import('./server.js')).runServer(ctx.io(), options));
  server
    .command('token')
    .description("mint a JWT with the server's secret (MEDIAGIT_JWT_SECRET)")
    .requiredOption('--repo <name>', "repository the token is for ('*' for all)")
    .option('--role <role>', 'read, write or admin', 'read')
    .option('--ttl <duration>', 'lifetime, e.g. 30m, 1h, 7d', '1h')
    .option('--sub <identity>', 'who the token identifies', 'cli')
    .option(
      '--ui <server-url>',
      'print a sign-in link for the web view instead (token in the fragment)',
    )
    .action(async (options) => (await import('./server.js')).runServerToken(ctx.io(), options));
  const apikey = server.command('apikey').description('manage API keys (stored hashed)');
  apikey
    .command('create')
    .requiredOption('--repo <name>', "repository ('*' for all)")
    .option('--role <role>', 'read, write or admin', 'read')
    .option('--sub <identity>', 'who the key identifies', 'apikey')
    .option('--config <path>', 'server config file (TOML)', 'mediagit.toml')
    .description('create an API key; it is printed once')
    .action(async (options) => (await import('./server.js')).runApiKeyCreate(ctx.io(), options));
}
