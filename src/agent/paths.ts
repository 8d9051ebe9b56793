import { lstat, mkdir } from 'node:fs/promises';
import os from 'node:os';
import { isAbsolute, join } from 'node:path';
import { AgentUnavailableError, AgentUnsafeError } from '../errors/index.js';

const SOCKET_NAME = 'agent.sock';

/** The agent relies on Unix sockets and file ownership; elsewhere it is simply never used. */
export function agentSupported(): boolean {
  return typeof process.getuid === 'function' && process.platform !== 'win32';
}

function currentUid(): number {
  return process.getuid?.() ?? -1;
}

/**
 * The per-user folder holding the agent's socket. XDG_RUNTIME_DIR is already private to the user
 * and cleared at logout, so it is preferred; the temp-folder fallback is shared by everyone, which
 * is why its ownership and mode are checked on every use.
 */
export function agentDir(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime && isAbsolute(runtime)) return join(runtime, 'mediagit');
  return join(os.tmpdir(), `mediagit-${currentUid()}`);
}

export function agentSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(agentDir(env), SOCKET_NAME);
}

function unsafe(dir: string, why: string): AgentUnsafeError {
  return new AgentUnsafeError(`the key agent folder ${dir} ${why}; refusing to use it`, {
    hint: `remove it (or 'chmod 700' it if it is yours) and run the command again, or set XDG_RUNTIME_DIR to a private folder`,
  });
}

/**
 * Refuses a folder another user could have made, entered or replaced: anyone able to put a socket
 * there could collect the master keys `key cache` sends, or hand out keys of their choosing.
 * lstat, so a symbolic link planted at the path is refused rather than followed.
 */
export async function checkPrivateDir(dir: string): Promise<void> {
  const info = await lstat(dir);
  if (info.isSymbolicLink()) throw unsafe(dir, 'is a symbolic link');
  if (!info.isDirectory()) throw unsafe(dir, 'is not a folder');
  if (info.uid !== currentUid())
    throw unsafe(dir, `belongs to uid ${info.uid}, not to you (uid ${currentUid()})`);
  if ((info.mode & 0o077) !== 0)
    throw unsafe(dir, `is accessible to other users (mode ${(info.mode & 0o777).toString(8)})`);
}

/** Creates the folder 0700 when missing, then applies the same checks as to an existing one. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT') {
      throw new AgentUnavailableError(
        `cannot create the key agent folder ${dir}: its parent does not exist`,
        { hint: 'point XDG_RUNTIME_DIR at an existing private folder, or unset it' },
      );
    }
    if (code !== 'EEXIST') throw err;
  }
  await checkPrivateDir(dir);
}

/** The socket itself must be a socket and ours; the folder check already keeps other users out. */
export async function checkSocket(path: string): Promise<void> {
  const info = await lstat(path);
  if (!info.isSocket() || info.uid !== currentUid()) {
    throw new AgentUnsafeError(`${path} is not a socket owned by you; refusing to use it`, {
      hint: 'remove it and run the command again',
    });
  }
}
