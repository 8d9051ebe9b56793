import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit remote` and its subcommands: arguments, options, help. remote.ts loads only when one runs. */
export function registerRemote(program: Command, ctx: Registration): void {
  const remote = program
    .command('remote')
    .description('manage remotes: where push, fetch, pull and clone go')
    .option('-v, --verbose', 'show URLs and options (secrets hidden)')
    .option('--json', 'machine-readable list')
    .addHelpText(
      'after',
      examples([
        'mediagit remote add origin s3://studio-assets/hero-game -o endpoint=http://127.0.0.1:7480 -o force_path_style=true',
        'mediagit remote add nas /mnt/nas/hero-game.mediagit',
        'mediagit remote -v',
      ]),
    )
    .action(async (options) => (await import('./remote.js')).runRemoteList(ctx.io(), options));
  remote
    .command('add')
    .argument('<name>', 'e.g. origin')
    .argument(
      '<url>',
      'path, file://, s3://bucket/prefix, azure://container/prefix, gs://bucket/prefix, multi:',
    )
    .option(
      '-o, --option <key=value>',
      'backend option (region, endpoint, force_path_style, part_size, max_concurrent_parts, max_concurrent_requests, probe_cache, probe_scope, max_retries, account_name, project, primary, secondary, …); repeatable',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .description('add a remote')
    .action(async (name: string, url: string, options) =>
      (await import('./remote.js')).runRemoteAdd(ctx.io(), name, url, options),
    );
  remote
    .command('remove')
    .alias('rm')
    .argument('<name>')
    .description('remove a remote and its remote-tracking branches')
    .action(async (name: string) => (await import('./remote.js')).runRemoteRemove(ctx.io(), name));
  remote
    .command('list')
    .description('list remotes')
    .option('-v, --verbose', 'show URLs and options (secrets hidden)')
    .option('--json', 'machine-readable list')
    .action(async (options) => (await import('./remote.js')).runRemoteList(ctx.io(), options));
  remote
    .command('show')
    .argument('<name>')
    .description(
      "the remote's URL, its branches against yours, and what pull and push would do (asks the remote)",
    )
    .option('--json', 'machine-readable report')
    .action(async (name: string, options: { json?: boolean }) =>
      (await import('./remote.js')).runRemoteShow(ctx.io(), name, options),
    );
  remote
    .command('set-url')
    .argument('<name>')
    .argument('<url>')
    .description("change a remote's URL")
    .action(async (name: string, url: string) =>
      (await import('./remote.js')).runRemoteSetUrl(ctx.io(), name, url),
    );
}
