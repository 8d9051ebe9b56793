import { LockedError, UsageError } from '../errors/index.js';
import type { Repository } from '../repo/index.js';
import type { OpenedStore } from '../store/index.js';
import { defaultRemote, getRemote, openRemoteStore } from '../sync/index.js';
import {
  afterUnlock,
  requireLockClient,
  setWritable,
  type LockClient,
  type LockRecord,
} from '../sync/locks.js';
import { openRepository, plural, type CommandIo } from './context.js';

export interface LockOptions {
  remote?: string;
  json?: boolean;
}

export interface UnlockOptions {
  remote?: string;
  force?: boolean;
}

interface LockSession {
  readonly repo: Repository;
  readonly api: LockClient;
  readonly opened: OpenedStore;
  readonly remoteName: string;
}

async function session(io: CommandIo, remoteArg: string | undefined): Promise<LockSession> {
  const repo = await openRepository(io);
  const remote = getRemote(repo, remoteArg ?? defaultRemote(repo));
  const opened = await openRemoteStore(remote, repo.root);
  try {
    return {
      repo,
      api: requireLockClient(opened.store, remote.name),
      opened,
      remoteName: remote.name,
    };
  } catch (err) {
    await opened.store.close();
    throw err;
  }
}

async function withSession<T>(
  io: CommandIo,
  remoteArg: string | undefined,
  fn: (s: LockSession) => Promise<T>,
): Promise<T> {
  const s = await session(io, remoteArg);
  try {
    return await fn(s);
  } finally {
    await s.opened.store.close();
  }
}

/** Repository paths of the arguments; the root itself is not a lockable file. */
function repoPaths(io: CommandIo, repo: Repository, paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    const rel = repo.toRepoPath(p, io.cwd);
    if (rel === '') throw new UsageError(`'${p}' is the repository itself; name the files to lock`);
    if (!out.includes(rel)) out.push(rel);
  }
  return out;
}

function lockJson(lock: LockRecord): {
  id: string;
  path: string;
  owner: string;
  locked_at: string;
} {
  return { id: lock.id, path: lock.path, owner: lock.owner, locked_at: lock.locked_at };
}

/**
 * `mediagit lock PATH…`: takes a server lock on each file (one CAS per path, so of two people
 * locking at once exactly one wins) and makes the file writable. A path someone else holds is a
 * LockedError naming them; the other paths are still locked.
 */
export async function runLock(
  io: CommandIo,
  paths: string[],
  options: LockOptions = {},
): Promise<void> {
  await withSession(io, options.remote, async ({ repo, api }) => {
    const targets = repoPaths(io, repo, paths);
    const locked: LockRecord[] = [];
    const failed: { path: string; error: LockedError }[] = [];
    let mine: Set<string> | undefined;
    for (const path of targets) {
      try {
        locked.push(await api.createLock(path));
      } catch (err) {
        if (!(err instanceof LockedError)) throw err;
        // Locking what we already hold is not a conflict.
        mine ??= new Set((await api.verifyLocks()).ours.map((l) => l.path));
        if (!mine.has(path)) {
          failed.push({ path, error: err });
          continue;
        }
        const held = (await api.listLocks(path)).find((l) => l.path === path);
        if (held) locked.push(held);
      }
      await setWritable(repo, path, true);
    }
    if (options.json)
      io.out(
        JSON.stringify(
          {
            locked: locked.map(lockJson),
            failed: failed.map((f) => ({ path: f.path, error: f.error.message })),
          },
          null,
          2,
        ),
      );
    else for (const lock of locked) io.out(`Locked ${lock.path}`);
    if (failed.length === 1) throw failed[0]!.error;
    if (failed.length > 1) {
      throw new LockedError(
        `${plural(failed.length, 'path')} could not be locked: ${failed.map((f) => f.error.message).join('; ')}`,
        { hint: "see who holds what with 'mediagit locks'" },
      );
    }
  });
}

/**
 * `mediagit unlock PATH…`: releases locks (someone else's only with --force and the admin role),
 * then makes files matching `lock.lockable` read-only again.
 */
export async function runUnlock(
  io: CommandIo,
  paths: string[],
  options: UnlockOptions = {},
): Promise<void> {
  await withSession(io, options.remote, async ({ repo, api }) => {
    const force = options.force ?? false;
    for (const path of repoPaths(io, repo, paths)) {
      const lock = (await api.listLocks(path)).find((l) => l.path === path);
      if (!lock)
        throw new UsageError(`'${path}' is not locked`, {
          hint: "see the locks with 'mediagit locks'",
        });
      await api.unlock(lock.id, force, { holder: lock });
      await afterUnlock(repo, path);
      io.out(force ? `Unlocked ${path} (was held by ${lock.owner})` : `Unlocked ${path}`);
    }
  });
}

/** `mediagit locks [PATH]`: who holds what, oldest first within a path order. */
export async function runLocks(
  io: CommandIo,
  path: string | undefined,
  options: LockOptions = {},
): Promise<void> {
  await withSession(io, options.remote, async ({ repo, api }) => {
    const prefix = path === undefined ? undefined : repo.toRepoPath(path, io.cwd);
    const locks = (await api.listLocks(prefix || undefined)).sort((a, b) =>
      a.path < b.path ? -1 : a.path > b.path ? 1 : 0,
    );
    if (options.json) {
      io.out(JSON.stringify(locks.map(lockJson), null, 2));
      return;
    }
    if (locks.length === 0) {
      io.err(prefix ? `no locks under ${prefix}` : 'no locks');
      return;
    }
    const width = Math.min(60, Math.max(...locks.map((l) => l.path.length)));
    const ownerWidth = Math.min(30, Math.max(...locks.map((l) => l.owner.length)));
    for (const l of locks)
      io.out(`${l.path.padEnd(width)}  ${l.owner.padEnd(ownerWidth)}  ${l.locked_at}`);
  });
}
