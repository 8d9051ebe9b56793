import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/**
 * Registers `mediagit completion <shell>`. The script is generated from the commands registered
 * on `program` at the moment it runs, so a new command or option is completed without editing it.
 */
export function registerCompletion(program: Command, ctx: Registration): void {
  program
    .command('completion')
    .argument('<shell>', 'bash, zsh or fish')
    .description('print a shell completion script for every command and option')
    .addHelpText(
      'after',
      examples([
        'source <(mediagit completion bash)            # in ~/.bashrc',
        'mediagit completion zsh > "${fpath[1]}/_mediagit"',
        'mediagit completion fish > ~/.config/fish/completions/mediagit.fish',
      ]),
    )
    .action(async (shell: string) =>
      (await import('./completion.js')).runCompletion(ctx.io(), program, shell),
    );
}
