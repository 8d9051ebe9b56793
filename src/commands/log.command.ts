import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit log`: arguments, options, help. log.ts loads only when one runs. */
export function registerLog(program: Command, ctx: Registration): void {
  program
    .command('log')
    .argument(
      '[revisions...]',
      'where to start (default HEAD), a..b, a...b or ^rev; then paths to limit to (or after --)',
    )
    .description('show commit history')
    .option('--oneline', 'one line per commit')
    .option('--stat', "list each commit's changed files as show --stat does")
    .option('--graph', 'draw the history graph beside the commits (topological order)')
    .option('-n, --max-count <n>', 'show at most n commits')
    .option('--first-parent', 'follow only the first parent of merges')
    .option(
      '--follow',
      "one file's history across renames (same or similar content under a new name)",
    )
    .option(
      '--pretty [format]',
      'oneline, short, medium (default), full, fuller, or format:<template> as in git',
    )
    .option(
      '--format <template>',
      "git's placeholders: %H %h %T %P %p %s %b %B %an %ae %ad %aD %ar %at %aI %as (and %c… for the committer) %d %D %n %%",
    )
    .option('--json', 'print an array of commits as JSON')
    // Lets `-<n>` through as an argument, git's shorthand for -n <n>; log.ts rejects other unknowns.
    .allowUnknownOption()
    .addHelpText(
      'after',
      examples([
        'mediagit log --oneline -10',
        'mediagit log --json main',
        'mediagit log --oneline main..feature',
        'mediagit log --oneline -- textures/hero.tif',
        'mediagit log --oneline --follow -- textures/hero-final.tif',
        "mediagit log --format='%h %an %ar %s' -5",
      ]),
    )
    .action(async (revs: string[], options) =>
      (await import('./log.js')).runLog(ctx.io(), revs, ctx.dashDash, options),
    );
}
