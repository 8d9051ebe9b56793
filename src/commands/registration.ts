/**
 * What a command's registration (commands/<name>.command.ts) gets from the CLI. Registrations are
 * loaded on every start, so they import nothing heavy: each loads its implementation when it runs.
 */
import type { CommandIo } from './context.js';

export interface Registration {
  /** The CommandIo for the command being run (made once the global options are parsed). */
  io(): CommandIo;
  /** The arguments after `--`: always paths, never revisions. */
  readonly dashDash: string[] | undefined;
}

/** An "Examples:" section for a command's help. */
export const examples = (lines: string[]): string =>
  `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
