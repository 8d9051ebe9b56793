import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit rm` and `mediagit mv`: arguments, options, help. rm-mv.ts loads only when one runs. */
export function registerRmMv(program: Command, ctx: Registration): void {
  program
    .command('rm')
    .argument('<paths...>', 'tracked files or folders')
    .description('remove files from the working tree and the index')
    .option('--cached', 'unstage only; keep the files on disk')
    .option('-f, --force', 'remove even with uncommitted changes')
    .option('-r', 'allow recursive removal of folders')
    .option('-q, --quiet', 'do not list removed files')
    .addHelpText(
      'after',
      examples(['mediagit rm old/render.exr', 'mediagit rm -r --cached cache/']),
    )
    .action(
      async (
        paths: string[],
        options: { cached?: boolean; force?: boolean; r?: boolean; quiet?: boolean },
      ) =>
        (await import('./rm-mv.js')).runRm(ctx.io(), paths, {
          ...options,
          recursive: options.r ?? false,
        }),
    );

  program
    .command('mv')
    .argument('<sources...>', 'tracked files or folders, then the destination')
    .description('move or rename tracked files')
    .option('-f, --force', 'overwrite an existing destination')
    .addHelpText(
      'after',
      examples(['mediagit mv hero.tif textures/hero.tif', 'mediagit mv meta metadata']),
    )
    .action(async (paths: string[], options) => {
      if (paths.length < 2)
        throw new (await import('../errors/index.js')).UsageError(
          'mv needs a source and a destination',
        );
      await (
        await import('../commands/rm-mv.js')
      ).runMv(ctx.io(), paths.slice(0, -1), paths[paths.length - 1]!, options);
    });
}
