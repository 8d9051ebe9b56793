import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit commit`: arguments, options, help. commit.ts loads only when one runs. */
export function registerCommit(program: Command, ctx: Registration): void {
  program
    .command('commit')
    .description('record the staged snapshot as a new commit')
    .option(
      '-m, --message <text>',
      'commit message (repeat for paragraphs)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('-F, --file <path>', 'read the message from a file')
    .option('-a, --all', 'stage changes to tracked files first')
    .option('--allow-empty', 'allow a commit that changes nothing')
    .option('--amend', 'replace the last commit')
    .option('--no-verify-locks', 'commit even changes to files someone else has locked')
    .option('-q, --quiet', 'print nothing on success')
    .option('--json', 'print the new commit as JSON')
    .addHelpText(
      'after',
      examples([
        'mediagit commit -m "Paint hero texture"',
        'mediagit commit -am "Retime dialogue"',
      ]),
    )
    .action(async (options) => (await import('./commit.js')).runCommit(ctx.io(), options));
}
