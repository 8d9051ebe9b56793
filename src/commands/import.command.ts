import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit import git-lfs`: arguments, options, help. import.ts loads only when one runs. */
export function registerImport(program: Command, ctx: Registration): void {
  const imp = program
    .command('import')
    .description('bring history in from another tool (git with git-lfs)');
  imp
    .command('git-lfs')
    .argument('<source>', 'a git repository: a local path, or a URL git can clone')
    .argument('[directory]', 'the mediagit repository (default: named after the source)')
    .description(
      'convert a git + git-lfs repository: same commits, authors, dates, branches and tags, real LFS content; run again to import only new commits',
    )
    .option('--allow-missing', 'import a file whose LFS content is missing as its pointer text')
    .option('--json', 'machine-readable report')
    .option('-q, --quiet', 'print nothing on success')
    .addHelpText(
      'after',
      examples([
        'mediagit import git-lfs ~/src/hero-game hero-game',
        'mediagit import git-lfs https://git.example.com/studio/hero-game.git',
        'mediagit import git-lfs ~/src/hero-game hero-game   # later: only the new commits',
      ]),
    )
    .action(async (source: string, directory: string | undefined, options) =>
      (await import('./import.js')).runImportGitLfs(ctx.io(), source, directory, options),
    );
}
