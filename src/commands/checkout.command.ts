import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit checkout`, `switch` and `restore`: arguments, options, help. checkout.ts loads only when one runs. */
export function registerCheckout(program: Command, ctx: Registration): void {
  checkout(program, ctx);
  switchCommand(program, ctx);
  restore(program, ctx);
}

function checkout(program: Command, ctx: Registration): void {
  program
    .command('checkout')
    .argument('[args...]', 'a branch, a commit, or paths')
    .description('switch branches, detach at a commit, or restore paths')
    .option('-b <branch>', 'create a branch and switch to it')
    .option('-B <branch>', 'create or reset a branch and switch to it')
    .option('--detach', 'detach HEAD at the commit')
    .option('-f, --force', 'throw away local changes')
    .option('--ours', 'for unmerged paths, take our side')
    .option('--theirs', 'for unmerged paths, take their side')
    .option('-q, --quiet', 'suppress messages')
    .addHelpText(
      'after',
      examples([
        'mediagit checkout main',
        'mediagit checkout -b lighting-pass',
        'mediagit checkout HEAD~2',
        'mediagit checkout v1 -- textures/hero.tif',
        'mediagit checkout --theirs scenes/level01.scene',
      ]),
    )
    .action(
      async (
        rest: string[],
        options: {
          b?: string;
          B?: string;
          detach?: boolean;
          force?: boolean;
          ours?: boolean;
          theirs?: boolean;
          quiet?: boolean;
        },
      ) =>
        (await import('./checkout.js')).runCheckout(ctx.io(), rest, ctx.dashDash, {
          ...(options.b ? { branch: options.b } : {}),
          ...(options.B ? { forceBranch: options.B } : {}),
          detach: options.detach ?? false,
          force: options.force ?? false,
          ours: options.ours ?? false,
          theirs: options.theirs ?? false,
          quiet: options.quiet ?? false,
        }),
    );
}

function switchCommand(program: Command, ctx: Registration): void {
  program
    .command('switch')
    .argument('[args...]', 'branch (and start point with -c)')
    .description('switch branches')
    .option('-c, --create <branch>', 'create a branch and switch to it')
    .option('-C, --force-create <branch>', 'create or reset a branch and switch to it')
    .option('-d, --detach', 'switch to a commit, detaching HEAD')
    .option('-f, --force', 'throw away local changes')
    .option('-q, --quiet', 'suppress messages')
    .addHelpText(
      'after',
      examples([
        'mediagit switch main',
        'mediagit switch -c fx-pass',
        'mediagit switch --detach v1.0',
      ]),
    )
    .action(async (rest: string[], options) =>
      (await import('./checkout.js')).runSwitch(ctx.io(), rest, options),
    );
}

function restore(program: Command, ctx: Registration): void {
  program
    .command('restore')
    .argument('<paths...>', 'files or folders')
    .description('restore files in the working tree or the index')
    .option('-s, --source <rev>', 'take content from this commit')
    .option('-S, --staged', 'restore the index (unstage)')
    .option('-W, --worktree', 'restore the working tree (default)')
    .addHelpText(
      'after',
      examples([
        'mediagit restore textures/hero.tif',
        'mediagit restore --staged .',
        'mediagit restore --source HEAD~1 audio/',
      ]),
    )
    .action(async (paths: string[], options) =>
      (await import('./checkout.js')).runRestore(ctx.io(), paths, options),
    );
}
