import picomatch from 'picomatch';
import { LockedError, UsageError } from '../errors/index.js';
import { writeLockCache, type Repository } from '../repo/index.js';
import type { OpenedStore } from '../store/index.js';
import { defaultRemote, getRemote, openRemoteStore } from '../sync/index.js';
import {
  afterUnlock,
  checkLockIsCurrent,
  repoLockClient,
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
      api: await repoLockClient(repo, opened.store, remote.name),
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

/** Refreshes the cached view `status` and `commit` read; failing to is not the command's failure. */
async function refreshCache(s: LockSession): Promise<void> {
  await writeLockCache(s.repo, s.remoteName, await s.api.verifyLocks()).catch(() => undefined);
}

const isGlob = (arg: string): boolean => /[*?[\]{}]/.test(arg);

/** A glob argument, relative to the current folder, as a matcher of repository paths. */
function globMatcher(io: CommandIo, repo: Repository, glob: string): (path: string) => boolean {
  if (!glob.includes('/')) {
    // A bare name pattern: in the current folder and below, like the attributes file's.
    const base = repo.toRepoPath('.', io.cwd);
    const match = picomatch(glob, { dot: true, basename: true });
    return (p) => (base === '' || p.startsWith(`${base}/`)) && match(p);
  }
  const slash = glob.search(/\/[^/]*[*?[\]{}]/);
  const fixed = slash < 0 ? '' : glob.slice(0, slash);
  const prefix = fixed === '' ? repo.toRepoPath('.', io.cwd) : repo.toRepoPath(fixed, io.cwd);
  const rest = slash < 0 ? glob : glob.slice(slash + 1);
  return picomatch(prefix === '' ? rest : `${prefix}/${rest}`, { dot: true });
}

/**
 * Repository paths of the arguments: plain paths as given, globs expanded against `candidates`
 * (a glob that matches nothing is a usage error). The root itself is not a lockable file.
 */
function repoPaths(
  io: CommandIo,
  repo: Repository,
  args: readonly string[],
  candidates: () => Iterable<string>,
): string[] {
  const out = new Set<string>();
  for (const arg of args) {
    if (isGlob(arg)) {
      const match = globMatcher(io, repo, arg);
      const hits = [...candidates()].filter((p) => match(p)).sort();
      if (hits.length === 0) throw new UsageError(`'${arg}' matches no file`);
      for (const hit of hits) out.add(hit);
      continue;
    }
    const rel = repo.toRepoPath(arg, io.cwd);
    if (rel === '')
      throw new UsageError(`'${arg}' is the repository itself; name the files to lock`);
    out.add(rel);
  }
  return [...out];
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
 * `mediagit lock PATH|GLOB…`: takes a lock on each file (one compare-and-swap per path, so of
 * two people locking at once exactly one wins) and makes the file writable. Refused up front when
 * the remote branch has a newer version of one of them. A path someone else holds is a
 * LockedError naming them; the other paths are still locked.
 */
export async function runLock(
  io: CommandIo,
  paths: string[],
  options: LockOptions = {},
): Promise<void> {
  await withSession(io, options.remote, async (s) => {
    const { repo, api, opened } = s;
    const index = await repo.readIndex();
    const targets = repoPaths(io, repo, paths, () => index.entries.keys());
    const branch = await repo.currentBranch();
    if (branch !== null) await checkLockIsCurrent(repo, opened.store, branch, targets);
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
    await refreshCache(s);
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
 * `mediagit unlock PATH|GLOB…`: releases locks (someone else's only with --force, and on a
 * server only with the admin role), then makes lockable files read-only again. A glob matches
 * your own locks, or with --force everyone's.
 */
export async function runUnlock(
  io: CommandIo,
  paths: string[],
  options: UnlockOptions = {},
): Promise<void> {
  await withSession(io, options.remote, async (s) => {
    const { repo, api } = s;
    const force = options.force ?? false;
    let all: LockRecord[] | undefined;
    if (paths.some(isGlob)) {
      const view = await api.verifyLocks();
      all = force ? [...view.ours, ...view.theirs] : view.ours;
    }
    const targets = repoPaths(io, repo, paths, () => (all ?? []).map((l) => l.path));
    try {
      for (const path of targets) {
        const lock =
          all?.find((l) => l.path === path) ??
          (await api.listLocks(path)).find((l) => l.path === path);
        if (!lock)
          throw new UsageError(`'${path}' is not locked`, {
            hint: "see the locks with 'mediagit locks'",
          });
        await api.unlock(lock.id, force, { holder: lock });
        await afterUnlock(repo, path);
        io.out(force ? `Unlocked ${path} (was held by ${lock.owner})` : `Unlocked ${path}`);
      }
    } finally {
      await refreshCache(s);
    }
  });
}

/** `mediagit locks [PATH]`: who holds what, by path; refreshes the view `status` shows. */
export async function runLocks(
  io: CommandIo,
  path: string | undefined,
  options: LockOptions = {},
): Promise<void> {
  await withSession(io, options.remote, async (s) => {
    const { repo, api } = s;
    const prefix = path === undefined ? undefined : repo.toRepoPath(path, io.cwd);
    const locks = (await api.listLocks(prefix || undefined)).sort((a, b) =>
      a.path < b.path ? -1 : a.path > b.path ? 1 : 0,
    );
    await refreshCache(s);
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
