import type { Command } from 'commander';
import { examples, type Registration } from './registration.js';

/** Registers `mediagit bisect`: arguments, options, help. bisect.ts loads only when one runs. */
export function registerBisect(program: Command, ctx: Registration): void {
  program
    .command('bisect')
    .argument(
      '<subcommand>',
      'start [<bad> [<good>…]] | good [<rev>…] | bad [<rev>] | skip [<rev>…] | reset | log | run <cmd> [<arg>…]',
    )
    .argument('[args...]')
    .description('find the commit that introduced a change by binary search')
    .passThroughOptions()
    .addHelpText(
      'after',
      examples([
        'mediagit bisect start HEAD v1.0',
        'mediagit bisect run ./check-build.sh   # exit 0 good, 125 skip, 1-127 bad',
        'mediagit bisect reset',
      ]),
    )
    .action(async (sub: string, rest: string[]) =>
      (await import('./bisect.js')).runBisectCommand(ctx.io(), sub, rest),
    );
}
