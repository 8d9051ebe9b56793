import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit fetch`: arguments, options, help. fetch.ts loads only when one runs. */
export function registerFetch(program: Command, ctx: Registration): void {
  program
    .command('fetch')
    .argument('[remote]', 'default: origin')
    .description('download commits and content from a remote into remote-tracking branches')
    .option('-p, --prune', 'delete remote-tracking branches the remote no longer has')
    .option(
      '--no-hardlinks',
      'from a local folder: copy and verify every object instead of hard-linking it (also config transfer.hardlinks=false)',
    )
    .option(
      '--recent <duration>',
      'also fetch the content of commits made within this time (e.g. 7d), not only the tip',
    )
    .option('--all-content', 'fetch the content of every version (a full local copy)')
    .option('--json', 'machine-readable report')
    .option('-q, --quiet', 'print nothing')
    .addHelpText(
      'after',
      examples(['mediagit fetch', 'mediagit fetch backup --prune', 'mediagit fetch --recent 7d']),
    )
    .action(async (remoteName: string | undefined, options) =>
      (await import('./fetch.js')).runFetch(ctx.io(), remoteName, options),
    );
}
