import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit gc`: arguments, options, help. gc.ts loads only when one runs. */
export function registerGc(program: Command, ctx: Registration): void {
  program
    .command('gc')
    .description('delete objects no branch, tag, HEAD or the index can reach')
    .option(
      '--prune <when>',
      "grace period for recent objects: 'now', or e.g. '2.hours', '14.days'",
      '1.hour',
    )
    .option('-n, --dry-run', 'only report what would be deleted')
    .option('--json', 'machine-readable report')
    .option('--remote <name>', 'clean a remote instead (see docs/remote-gc.md)')
    .option(
      '--keep <glob=n>',
      'with --remote: keep the content of the n newest versions of matching files',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '--older-than <duration>',
      "with --remote: expire content only older commits reach, e.g. '180d'",
    )
    .option(
      '--grace <duration>',
      'with --remote: never delete what became unreachable less than this ago',
      '24h',
    )
    .option(
      '--lease <duration>',
      'with --remote: how long the sweeper claim lasts between renewals; a sweeper killed outright blocks others this long',
      '10m',
    )
    .addHelpText(
      'after',
      examples([
        'mediagit gc',
        'mediagit gc --prune=now',
        "mediagit gc --remote origin --keep 'renders/**=3' --dry-run",
      ]),
    )
    .action(async (options) => (await import('./gc.js')).runGc(ctx.io(), options));
}
