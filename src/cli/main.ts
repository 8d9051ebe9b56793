import { resolve } from 'node:path';
import { Command } from 'commander';
import type { CommandIo } from '../commands/context.js';
import { registrations, type Registration } from '../commands/index.js';
import { silentProgress, type ProgressSink } from '../repo/progress.js';
import { reportError } from './errors.js';
import { passphraseGiven, promptHidden, readPassphrase } from './passphrase.js';
import { TerminalProgress } from './progress.js';
import { removeLiveTempFilesSync } from '../util/fs.js';
import { packageVersion } from '../util/version.js';

interface GlobalOptions {
  C?: string;
  progress: boolean;
  passphraseFile?: string;
  newPassphraseFile?: string;
}

function makeIo(cwd: string, showProgress: boolean, global: GlobalOptions): CommandIo {
  // A pseudo-terminal that reports no width (some `script`/CI wrappers) would make the spinner's
  // line arithmetic divide by zero: draw bars only on a terminal that knows its size.
  const drawBars =
    showProgress &&
    process.stderr.isTTY === true &&
    !process.env.CI &&
    (process.stderr.columns ?? 0) > 0;
  return {
    cwd,
    out: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
    writeRaw: (data) =>
      new Promise<void>((done, fail) => {
        process.stdout.write(data, (err) => (err ? fail(err) : done()));
      }),
    progress: (): ProgressSink =>
      drawBars ? new TerminalProgress(process.stderr) : silentProgress,
    passphrase: (kind) =>
      readPassphrase(kind, {
        cwd,
        passphraseFile: global.passphraseFile,
        newPassphraseFile: global.newPassphraseFile,
      }),
    passphraseGiven: passphraseGiven({ cwd, passphraseFile: global.passphraseFile }),
    promptSecret: (question) => promptHidden(question),
    exit: (code) => process.exit(code),
  };
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  // Arguments after `--` are always paths; commander would otherwise mix them with revisions.
  const dd = argv.indexOf('--', 2);
  const dashDash = dd >= 0 ? argv.slice(dd + 1) : undefined;
  // --debug is accepted anywhere on the line, like git's -c options, because users add it last.
  const args = (dd >= 0 ? argv.slice(0, dd) : argv).filter((a, i) => i < 2 || a !== '--debug');

  const program = new Command('mediagit');
  let io: CommandIo = makeIo(process.cwd(), true, { progress: true });
  program
    .description(
      "Version large media like git: chunked, deduplicated, compressed storage with git's commands.",
    )
    .version(packageVersion(), '-V, --version')
    .option('-C <path>', 'run as if started in <path>')
    .option('--debug', 'show stack traces for errors')
    .option('--no-progress', 'never draw progress bars')
    .option(
      '--passphrase-file <path>',
      'read the repository passphrase from a file (else MEDIAGIT_PASSPHRASE, else a prompt)',
    )
    .option(
      '--new-passphrase-file <path>',
      'read a new passphrase (init --encrypt, key add/passwd) from a file (else MEDIAGIT_NEW_PASSPHRASE)',
    )
    .showSuggestionAfterError(true)
    .enablePositionalOptions()
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'error: ')) })
    .exitOverride()
    .hook('preAction', (_thisCommand, actionCommand) => {
      const opts = program.opts<GlobalOptions>();
      io = makeIo(opts.C ? resolve(process.cwd(), opts.C) : process.cwd(), opts.progress, opts);
      void actionCommand;
    });

  const ctx: Registration = { io: () => io, dashDash };
  for (const register of registrations) register(program, ctx);

  const stopCleanup = cleanUpOnSignals();
  try {
    await program.parseAsync(args);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err, debug, (text) => void process.stderr.write(text));
  } finally {
    stopCleanup();
  }
}

const CLEANUP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * While a command runs, a signal removes the temporary files it is writing (a checkout's
 * `.tmp-<name>-<pid>-<hex>` beside the file) before the process ends. A command with its own
 * handler for the signal (clone, gc, server) keeps ending the process its way; otherwise the
 * signal is raised again with the default action, so the exit status is the signal's as before.
 */
function cleanUpOnSignals(): () => void {
  const handler = (signal: NodeJS.Signals): void => {
    removeLiveTempFilesSync();
    if (process.listenerCount(signal) > 1) return;
    stop();
    process.kill(process.pid, signal);
  };
  const stop = (): void => {
    for (const signal of CLEANUP_SIGNALS) process.off(signal, handler);
  };
  for (const signal of CLEANUP_SIGNALS) process.on(signal, handler);
  return stop;
}
