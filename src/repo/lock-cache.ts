/**
 * The last view of a remote's locks, kept in `.mediagit/locks.json` so `status` and `commit` can
 * say who holds what without asking the remote (they must work offline and never wait on a slow
 * server). `lock`, `unlock`, `locks`, `fetch` and `push` refresh it; a view older than
 * `lock.cache_ttl` seconds (default 600) is shown as stale.
 */
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LockRecord, LockVerification } from '../store/index.js';
import { isErrno, writeFileAtomic } from '../util/fs.js';
import { lockableMatcher } from './attributes.js';
import type { Repository } from './repository.js';

export interface LockCache {
  readonly remote: string;
  /** When the remote was last asked (ISO 8601). */
  readonly refreshed_at: string;
  /** Locks held by this clone's identity on that remote. */
  readonly ours: LockRecord[];
  /** Locks held by anyone else. */
  readonly theirs: LockRecord[];
}

const DEFAULT_TTL_SECONDS = 600;

const cachePath = (repo: Repository): string => join(repo.dir, 'locks.json');

const isRecord = (v: unknown): v is LockRecord =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as LockRecord).id === 'string' &&
  typeof (v as LockRecord).path === 'string' &&
  typeof (v as LockRecord).owner === 'string' &&
  typeof (v as LockRecord).locked_at === 'string';

/** The cached view, or null when there is none (or it cannot be read: it is only a cache). */
export async function readLockCache(repo: Repository): Promise<LockCache | null> {
  let text: string;
  try {
    text = await readFile(cachePath(repo), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  try {
    const v = JSON.parse(text) as Partial<LockCache>;
    if (
      typeof v.remote !== 'string' ||
      typeof v.refreshed_at !== 'string' ||
      !Array.isArray(v.ours) ||
      !Array.isArray(v.theirs) ||
      !v.ours.every(isRecord) ||
      !v.theirs.every(isRecord)
    )
      return null;
    return v as LockCache;
  } catch {
    return null;
  }
}

export async function writeLockCache(
  repo: Repository,
  remote: string,
  view: LockVerification,
  now: Date = new Date(),
): Promise<LockCache> {
  const cache: LockCache = {
    remote,
    refreshed_at: now.toISOString(),
    ours: view.ours,
    theirs: view.theirs,
  };
  await writeFileAtomic(cachePath(repo), `${JSON.stringify(cache, null, 1)}\n`);
  return cache;
}

/** Whether the view is older than `lock.cache_ttl` seconds. */
export function isLockCacheStale(repo: Repository, cache: LockCache, now = Date.now()): boolean {
  const configured = Number(repo.config.get('lock.cache_ttl'));
  const ttl = Number.isFinite(configured) && configured >= 0 ? configured : DEFAULT_TTL_SECONDS;
  const at = Date.parse(cache.refreshed_at);
  return !Number.isFinite(at) || now - at > ttl * 1000;
}

/** The lock on `path` or on a folder holding it, by anyone, in the cached view. */
export function cachedLockOn(
  cache: LockCache,
  path: string,
): { lock: LockRecord; ours: boolean } | null {
  const covers = (l: LockRecord): boolean => l.path === path || path.startsWith(`${l.path}/`);
  const ours = cache.ours.find(covers);
  if (ours) return { lock: ours, ours: true };
  const theirs = cache.theirs.find(covers);
  return theirs ? { lock: theirs, ours: false } : null;
}

export interface LockedFileStatus {
  readonly path: string;
  /** Who holds it (in the cached view), null when nobody does. */
  readonly holder: string | null;
  readonly ours: boolean;
  readonly lockable: boolean;
  /** A lockable file that is writable while this clone holds no lock on it. */
  readonly writableWithoutLock: boolean;
}

export interface LockStatus {
  /** The cached view it is based on; null when no lock was ever looked up. */
  readonly view: { remote: string; refreshed_at: string; stale: boolean } | null;
  readonly files: LockedFileStatus[];
}

/**
 * Lock information for `status`, from the cached view only: each changed path that is lockable
 * or locked, and each tracked lockable file that is locked or writable without a lock.
 */
export async function lockStatus(
  repo: Repository,
  changed: Iterable<string>,
  now = Date.now(),
): Promise<LockStatus> {
  const cache = await readLockCache(repo);
  const lockable = lockableMatcher(repo);
  const view = cache
    ? {
        remote: cache.remote,
        refreshed_at: cache.refreshed_at,
        stale: isLockCacheStale(repo, cache, now),
      }
    : null;
  if (!lockable && !cache) return { view, files: [] };
  const index = await repo.readIndex();
  const paths = new Set<string>(changed);
  if (lockable) for (const path of index.entries.keys()) if (lockable(path)) paths.add(path);
  const files: LockedFileStatus[] = [];
  for (const path of [...paths].sort()) {
    const held = cache ? cachedLockOn(cache, path) : null;
    const isLockable = lockable?.(path) ?? false;
    let writable = false;
    if (isLockable && !held?.ours) {
      try {
        const info = await lstat(repo.absPath(path));
        writable = info.isFile() && (info.mode & 0o200) !== 0;
      } catch (err) {
        if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err;
      }
    }
    if (!held && !writable && !(isLockable && index.entries.has(path) && changedHas(changed, path)))
      continue;
    files.push({
      path,
      holder: held ? held.lock.owner : null,
      ours: held?.ours ?? false,
      lockable: isLockable,
      writableWithoutLock: writable,
    });
  }
  return { view, files };
}

function changedHas(changed: Iterable<string>, path: string): boolean {
  if (changed instanceof Set) return changed.has(path);
  for (const p of changed) if (p === path) return true;
  return false;
}
