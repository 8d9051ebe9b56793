import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit push`: arguments, options, help. push.ts loads only when one runs. */
export function registerPush(program: Command, ctx: Registration): void {
  program
    .command('push')
    .argument('[remote]', 'default: origin')
    .argument('[refspecs...]', 'branch, tag, or src:dst (default: the current branch)')
    .description('send commits and their content to a remote; only what it lacks travels')
    .option('-f, --force', 'overwrite the remote branch even if that loses commits')
    .option('--tags', 'also push all tags')
    .option(
      '-u, --set-upstream',
      'remember the remote branch as upstream: later a bare push goes there and status counts ahead/behind',
    )
    .option('--create', 'to a folder that does not exist yet: create the remote repository there')
    .option(
      '--no-hardlinks',
      'to a local folder: copy and verify every object instead of hard-linking it (also config transfer.hardlinks=false)',
    )
    .option('--json', 'machine-readable report (refs, bytes sent)')
    .option('-q, --quiet', 'print nothing on success')
    .addHelpText(
      'after',
      examples([
        'mediagit push',
        'mediagit push origin main',
        'mediagit push -u origin feature/rig',
        'mediagit push origin lighting:review/lighting',
        'mediagit push --tags',
      ]),
    )
    .action(async (remoteName: string | undefined, specs: string[], options) =>
      (await import('./push.js')).runPush(
        ctx.io(),
        remoteName === undefined ? [] : [remoteName, ...specs],
        options,
      ),
    );
}
