/**
 * File locks (docs/protocol.md "Locks"): the lock client the lock commands and push use, the push
 * check, and the read-only bit that tells an artist "lock this before you edit it".
 *
 * Which client a remote gets is decided by its store's capabilities: a remote whose server keeps
 * locks gets a client over those endpoints; any other remote (a folder, a bucket) simply has no
 * locks: push skips the check, the lock commands say they need a server remote.
 */
import { chmod, lstat } from 'node:fs/promises';
import { ConfigError, LockedError, StoreUnavailableError } from '../errors/index.js';
import type { Oid, TreeEntry } from '../objects/index.js';
import { lockableMatcher, type Repository } from '../repo/index.js';
import {
  abortableSleep,
  type LockRecord,
  type LockVerification,
  type OperationOptions,
  type RemoteLocks,
  type Sleep,
  type Store,
} from '../store/index.js';
import { isErrno } from '../util/fs.js';

export type { LockRecord, LockVerification };

/** File locks on one remote, as the lock commands and push use them. */
export interface LockClient {
  /**
   * False for a remote that keeps no locks: `verifyLocks` and the others then reject with a
   * ConfigError saying locks need a server remote.
   */
  readonly supported: boolean;
  /** Someone else holding it → LockedError naming them. */
  createLock(path: string, options?: OperationOptions): Promise<LockRecord>;
  /** Every lock, or those on paths under `prefix`. */
  listLocks(prefix?: string, options?: OperationOptions): Promise<LockRecord[]>;
  /** The locks split into the caller's and everyone else's. */
  verifyLocks(options?: OperationOptions): Promise<LockVerification>;
  /** Releases a lock; `holder` names its owner in a refusal. */
  unlock(
    id: string,
    force: boolean,
    options?: OperationOptions & { holder?: LockRecord },
  ): Promise<LockRecord>;
}

/**
 * Locks kept by a mediagit server. Lock requests are not Store operations, so the remote's
 * RetryingStore never sees them: this client gives them the same courtesy, retrying transient
 * failures and 429s and honouring Retry-After.
 */
export class ServerLockClient implements LockClient {
  readonly supported = true;

  constructor(
    private readonly remote: RemoteLocks,
    private readonly sleep: Sleep = abortableSleep,
  ) {}

  createLock(path: string, options?: OperationOptions): Promise<LockRecord> {
    return withRetries(() => this.remote.createLock(path, options), undefined, this.sleep);
  }

  listLocks(prefix?: string, options?: OperationOptions): Promise<LockRecord[]> {
    return withRetries(() => this.remote.listLocks(prefix, options), undefined, this.sleep);
  }

  verifyLocks(options?: OperationOptions): Promise<LockVerification> {
    return withRetries(() => this.remote.verifyLocks(options), undefined, this.sleep);
  }

  unlock(
    id: string,
    force: boolean,
    options?: OperationOptions & { holder?: LockRecord },
  ): Promise<LockRecord> {
    return withRetries(() => this.remote.unlock(id, force, options), undefined, this.sleep);
  }
}

/** A remote without locks: every call says so. */
export class NoLockClient implements LockClient {
  readonly supported = false;

  constructor(
    private readonly description: string,
    private readonly remoteName: string,
  ) {}

  /** The ConfigError each call rejects with. */
  unsupported(): ConfigError {
    return new ConfigError(
      `the remote '${this.remoteName}' (${this.description}) does not support locks`,
      { hint: 'locks are kept by a mediagit server: use an http(s)://host/<repo> remote' },
    );
  }

  createLock(): Promise<LockRecord> {
    return Promise.reject(this.unsupported());
  }

  listLocks(): Promise<LockRecord[]> {
    return Promise.reject(this.unsupported());
  }

  verifyLocks(): Promise<LockVerification> {
    return Promise.reject(this.unsupported());
  }

  unlock(): Promise<LockRecord> {
    return Promise.reject(this.unsupported());
  }
}

/** The lock client for a remote's store, chosen by what the store can do. */
export function lockClientFor(store: Store, remoteName: string): LockClient {
  const remote = store.capabilities.locks;
  return remote ? new ServerLockClient(remote) : new NoLockClient(store.description, remoteName);
}

/** lockClientFor, or (for a remote without locks) a ConfigError saying locks need a server remote. */
export function requireLockClient(store: Store, remoteName: string): LockClient {
  const client = lockClientFor(store, remoteName);
  if (client instanceof NoLockClient) throw client.unsupported();
  return client;
}

/** Retries `fn` on StoreUnavailableError (transient failures, 429s) with backoff and Retry-After. */
export async function withRetries<T>(
  fn: () => Promise<T>,
  attempts = 4,
  sleep: Sleep = abortableSleep,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || attempt >= attempts) throw err;
      const backoff = Math.min(5000, 200 * 2 ** attempt) * (0.5 + Math.random() / 2);
      await sleep(Math.max(backoff, Math.min(err.retryAfterMs ?? 0, 60_000)));
    }
  }
}

/** The entry at `path` in the tree `treeOid` (a file, or a folder for a lock on a folder), or null. */
async function entryAt(
  repo: Repository,
  treeOid: Oid,
  path: string,
  cache: Map<Oid, TreeEntry[]>,
): Promise<TreeEntry | null> {
  let tree = treeOid;
  const parts = path.split('/');
  for (const [i, name] of parts.entries()) {
    let entries = cache.get(tree);
    if (!entries) {
      entries = await repo.odb.readTree(tree);
      cache.set(tree, entries);
    }
    const entry = entries.find((e) => e.name === name);
    if (!entry) return null;
    if (i === parts.length - 1) return entry;
    if (entry.type !== 'dir') return null;
    tree = entry.oid;
  }
  return null;
}

const sameEntry = (a: TreeEntry | null, b: TreeEntry | null): boolean =>
  a === null ? b === null : b !== null && a.oid === b.oid && a.type === b.type;

/**
 * Which of `locks` the commits change: a commit changes a path when its version differs from
 * that in every parent (so a merge that only brings in someone else's already-pushed change is
 * not blamed for it), or, for a root commit, when it has the path at all.
 */
export async function lockedPathsChanged(
  repo: Repository,
  commits: Iterable<Oid>,
  locks: readonly LockRecord[],
): Promise<Map<LockRecord, Oid>> {
  const hits = new Map<LockRecord, Oid>();
  const trees = new Map<Oid, TreeEntry[]>();
  const treeOf = new Map<Oid, Oid>();
  const commitTree = async (oid: Oid): Promise<Oid> => {
    let tree = treeOf.get(oid);
    if (tree === undefined) {
      tree = (await repo.odb.readCommit(oid)).tree;
      treeOf.set(oid, tree);
    }
    return tree;
  };
  for (const oid of commits) {
    const commit = await repo.odb.readCommit(oid);
    treeOf.set(oid, commit.tree);
    for (const lock of locks) {
      if (hits.has(lock)) continue;
      const mine = await entryAt(repo, commit.tree, lock.path, trees);
      let changed: boolean;
      if (commit.parents.length === 0) changed = mine !== null;
      else {
        changed = true;
        for (const parent of commit.parents) {
          if (sameEntry(mine, await entryAt(repo, await commitTree(parent), lock.path, trees))) {
            changed = false;
            break;
          }
        }
      }
      if (changed) hits.set(lock, oid);
    }
  }
  return hits;
}

/**
 * The push hook: when the remote keeps locks, refuses commits that change a path locked by
 * someone else, before anything is uploaded. `commits` are the commits the push would send.
 */
export async function checkPushLocks(
  repo: Repository,
  remote: Store,
  commits: Iterable<Oid>,
): Promise<void> {
  const client = lockClientFor(remote, remote.description);
  if (!client.supported) return;
  const list = [...commits];
  if (list.length === 0) return;
  const { theirs } = await client.verifyLocks();
  if (theirs.length === 0) return;
  const hits = await lockedPathsChanged(repo, list, theirs);
  if (hits.size === 0) return;
  const locks = [...hits.keys()].sort((a, b) => (a.path < b.path ? -1 : 1));
  const first = locks[0]!;
  const shown = locks
    .slice(0, 5)
    .map((l) => `${l.path} (locked by ${l.owner})`)
    .join(', ');
  throw new LockedError(
    `push refused: your commits change ${locks.length === 1 ? 'a file' : `${locks.length} files`} locked by someone else: ${shown}${locks.length > 5 ? ` and ${locks.length - 5} more` : ''}`,
    {
      hint: `ask ${first.owner} to push their work and run 'mediagit unlock ${first.path}', then pull, redo your change and push; see 'mediagit locks'`,
    },
  );
}

/** Adds (writable) or removes (read-only) the write bits of a working-tree file; a missing file is fine. */
export async function setWritable(
  repo: Repository,
  path: string,
  writable: boolean,
): Promise<void> {
  const abs = repo.absPath(path);
  let mode: number;
  try {
    const info = await lstat(abs);
    if (!info.isFile()) return;
    mode = info.mode & 0o7777;
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return;
    throw err;
  }
  await chmod(abs, writable ? mode | 0o200 : mode & ~0o222);
}

/** After unlocking: a lockable file goes back to read-only. */
export async function afterUnlock(repo: Repository, path: string): Promise<void> {
  if (lockableMatcher(repo)?.(path)) await setWritable(repo, path, false);
}
