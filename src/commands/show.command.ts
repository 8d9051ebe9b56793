import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit show`: arguments, options, help. show.ts loads only when one runs. */
export function registerShow(program: Command, ctx: Registration): void {
  program
    .command('show')
    .argument('[objects...]', 'commits, tags, or REV:PATH (default HEAD)')
    .description("show a commit with its changes, a tag, or a file's content")
    .option('-p, --patch', 'show each file as a patch (text files as unified diffs)')
    .option('--stat', 'show a per-file size summary')
    .option('--name-status', 'show changed paths with A/M/D')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      examples([
        'mediagit show',
        'mediagit show -p HEAD -- scene.json',
        'mediagit show v1.0',
        'mediagit show HEAD~1:textures/hero.tif > old-hero.tif',
        'mediagit show --stat HEAD -- textures/',
      ]),
    )
    .action(async (objects: string[], options) =>
      (await import('./show.js')).runShow(ctx.io(), objects, ctx.dashDash, options),
    );
}
