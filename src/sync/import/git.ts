/**
 * Reading a git repository through the `git` command: the only interface git promises to keep.
 * Nothing here parses git's files itself; large blobs stream to a file, never into memory.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { ConfigError } from '../../errors/index.js';

export class GitError extends ConfigError {}

/** Runs `git <args>` in `dir` and returns its stdout; a failure names the command and git's words. */
export function git(dir: string, args: readonly string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['-C', dir, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: gitEnv(),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        e.code === 'ENOENT'
          ? new GitError('git is not installed (needed to read the repository to import)', {
              hint: 'install git and git-lfs (Debian: apt-get install git git-lfs)',
            })
          : e,
      ),
    );
    child.on('close', (code) => {
      if (code === 0) return resolve(Buffer.concat(out));
      const said = Buffer.concat(err).toString('utf8').trim().split('\n')[0] ?? '';
      reject(new GitError(`git ${args[0]} failed in ${dir}${said ? `: ${said}` : ''}`));
    });
  });
}

/** Streams one blob into a file: `git cat-file blob`, whatever its size. */
export async function blobToFile(dir: string, sha: string, path: string): Promise<void> {
  const child = spawn('git', ['-C', dir, 'cat-file', 'blob', sha], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: gitEnv(),
  });
  const err: Buffer[] = [];
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  await pipeline(child.stdout, createWriteStream(path));
  const code = await closed;
  if (code !== 0)
    throw new GitError(
      `git cat-file blob ${sha} failed: ${Buffer.concat(err).toString('utf8').trim()}`,
    );
}

/**
 * Small blobs by the batch: one `git cat-file --batch` process answers every request in order,
 * instead of a process per blob.
 */
export class BlobReader {
  private readonly child;
  private buffer = Buffer.alloc(0);
  private readonly waiting: {
    resolve: (data: Buffer) => void;
    reject: (err: Error) => void;
  }[] = [];
  private failure: Error | null = null;

  constructor(dir: string) {
    this.child = spawn('git', ['-C', dir, 'cat-file', '--batch'], {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: gitEnv(),
    });
    this.child.stdout.on('data', (b: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, b]);
      this.drain();
    });
    const fail = (err: Error): void => {
      this.failure = err;
      for (const w of this.waiting.splice(0)) w.reject(err);
    };
    this.child.on('error', fail);
    this.child.on('close', () => fail(new GitError('git cat-file --batch ended early')));
  }

  read(sha: string): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(`${sha}\n`);
    });
  }

  private drain(): void {
    for (;;) {
      const nl = this.buffer.indexOf(0x0a);
      if (nl < 0 || this.waiting.length === 0) return;
      const header = this.buffer.subarray(0, nl).toString('utf8');
      const m = /^[0-9a-f]+ \w+ (\d+)$/.exec(header);
      if (!m) {
        const w = this.waiting.shift()!;
        this.buffer = this.buffer.subarray(nl + 1);
        w.reject(new GitError(`git cat-file: ${header}`));
        continue;
      }
      const size = Number(m[1]);
      if (this.buffer.length < nl + 1 + size + 1) return;
      const data = Buffer.from(this.buffer.subarray(nl + 1, nl + 1 + size));
      this.buffer = this.buffer.subarray(nl + 1 + size + 1);
      this.waiting.shift()!.resolve(data);
    }
  }

  close(): void {
    this.child.removeAllListeners('close');
    this.child.stdin.end();
  }
}

/** git's output must not depend on the user's locale, pager or config prompts. */
function gitEnv(): NodeJS.ProcessEnv {
  return { ...process.env, LC_ALL: 'C', GIT_TERMINAL_PROMPT: '0', GIT_PAGER: 'cat' };
}
