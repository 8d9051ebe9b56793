/**
 * Runs the built `mediagit` binary the way a user's shell would, for end-to-end tests: a separate
 * process, pipes instead of a terminal, and a controlled environment so results do not depend on
 * the developer's shell, config or colour settings.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

/** Compiled to dist/test/support/, three levels below the repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI_PATH = path.join(REPO_ROOT, 'bin', 'mediagit.js');

export interface RunCliOptions {
  cwd: string;
  /** Added to the defaults; a value of `undefined` removes the variable. */
  env?: Record<string, string | undefined>;
  /** Written to the CLI's stdin, which is then closed (it is closed at once when absent). */
  input?: string;
  /** Resolve with the result instead of throwing when the exit code is not 0. */
  allowFail?: boolean;
  /** The process is killed after this long; default 5 minutes. */
  timeoutMs?: number;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const DEFAULT_TIMEOUT_MS = 5 * 60_000;

/**
 * The parent's environment minus what would make output depend on where tests run: forced
 * colours, a test-runner context that node:test passes to children, and any MEDIAGIT_* setting
 * from the developer's shell (MEDIAGIT_TEST_* is kept: CI uses it to point tests at services).
 */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (k === 'FORCE_COLOR' || k === 'NODE_TEST_CONTEXT') continue;
    if (k.startsWith('MEDIAGIT_') && !k.startsWith('MEDIAGIT_TEST_')) continue;
    env[k] = v;
  }
  Object.assign(env, {
    MEDIAGIT_AUTHOR_NAME: 'Test',
    MEDIAGIT_AUTHOR_EMAIL: 'test@example.com',
    NO_COLOR: '1',
    TERM: 'dumb',
  });
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export async function runCli(args: string[], opts: RunCliOptions): Promise<CliResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const shown = `mediagit ${args.join(' ')}`;

  const result = await new Promise<CliResult & { timedOut: boolean }>((resolve, reject) => {
    // Pipes on all three streams: the CLI must behave as it does under CI or in a pipeline, never
    // as on a terminal (no spinners, no prompts waiting for input).
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      cwd: opts.cwd,
      env: cliEnv(opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // A CLI that exits without reading its input closes the pipe under us; that is not a test failure.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');

    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${shown}: could not start: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const signalCode = signal === null ? undefined : os.constants.signals[signal];
      resolve({
        code: code ?? 128 + (signalCode ?? 0),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    });
  });

  const { timedOut, ...res } = result;
  if (timedOut) {
    throw new Error(
      `${shown} (in ${opts.cwd}) timed out after ${timeoutMs} ms\n${formatOutput(res)}`,
    );
  }
  if (res.code !== 0 && !opts.allowFail) {
    throw new Error(`${shown} (in ${opts.cwd}) exited with ${res.code}\n${formatOutput(res)}`);
  }
  return res;
}

function formatOutput(res: CliResult): string {
  const block = (name: string, text: string): string =>
    text === '' ? `--- ${name}: (empty)` : `--- ${name}:\n${text.replace(/\n$/, '')}`;
  return `${block('stdout', res.stdout)}\n${block('stderr', res.stderr)}`;
}

/**
 * Runs `fn` when the current test (or suite, or file, when called at top level) finishes,
 * whether it passed or not.
 */
export function cleanup(fn: () => unknown): void {
  after(async () => {
    await fn();
  });
}

/**
 * A fresh folder under the OS temp dir, removed when the calling test, suite or file ends. Set
 * MEDIAGIT_KEEP_TEMP=1 to keep it for a post-mortem.
 */
export async function tempDir(prefix: string): Promise<string> {
  const safe = prefix.replace(/[^A-Za-z0-9._-]+/g, '-');
  const dir = await mkdtemp(path.join(os.tmpdir(), `mediagit-${safe}-`));
  if (process.env['MEDIAGIT_KEEP_TEMP'] === '1') {
    console.error(`keeping temp dir ${dir}`);
  } else {
    cleanup(() => rm(dir, { recursive: true, force: true }));
  }
  return dir;
}

/** `mediagit <args>` in `cwd`; a non-zero exit throws (see runCli). */
export const mg = (cwd: string, ...args: string[]): Promise<CliResult> => runCli(args, { cwd });
/** `mediagit <args>` in `cwd`, for commands expected to fail: the result carries the exit code. */
export const mgFail = (cwd: string, ...args: string[]): Promise<CliResult> =>
  runCli(args, { cwd, allowFail: true });

/** `mediagit <args>` with stdout kept as bytes (file content from `show`, `cat`); stderr passes through. */
export function mgBytes(cwd: string, ...args: string[]): Promise<{ code: number; stdout: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      cwd,
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out) }));
  });
}

export const parseJson = <T>(text: string): T => JSON.parse(text) as T;

export async function pathExists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
