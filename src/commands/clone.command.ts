import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit clone`: arguments, options, help. clone.ts loads only when one runs. */
export function registerClone(program: Command, ctx: Registration): void {
  program
    .command('clone')
    .argument('<url>', 'path, file://, s3://, azure://, gs://, multi:')
    .argument('[directory]', 'where to put it (default: the last part of the URL)')
    .description('copy a repository and check out a branch')
    .option('-b, --branch <name>', 'branch to check out (default main)')
    .option(
      '--include <glob>',
      'only fetch and check out matching paths (repeatable); others stay tracked, not downloaded',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '-o, --option <key=value>',
      'backend option for the remote (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '--history-content <tip|all>',
      "chunk content of old versions: 'tip' (default) fetches only what is checked out, the rest on demand; 'all' fetches every version (also config clone.history)",
    )
    .option('--origin <name>', 'name of the remote', 'origin')
    .option(
      '--no-hardlinks',
      'from a local folder: copy and verify every object instead of hard-linking it (also config transfer.hardlinks=false)',
    )
    .option('--json', 'machine-readable report')
    .option('-q, --quiet', 'print nothing on success')
    .addHelpText(
      'after',
      examples([
        'mediagit clone /mnt/nas/hero-game.mediagit hero-game',
        "mediagit clone s3://studio-assets/hero-game build --branch release --include 'audio/**' -o region=eu-west-1",
      ]),
    )
    .action(async (url: string, directory: string | undefined, options) =>
      (await import('./clone.js')).runClone(ctx.io(), url, directory, options),
    );
}
