/**
 * File locks (docs/locks.md, docs/protocol.md "Locks"): the lock client the lock commands, commit
 * and push use, the checks that refuse early, the cached view `status` reads, and the read-only
 * bit that tells an artist "lock this before you edit it".
 *
 * Which client a remote gets is decided by its store's capabilities: a remote whose server keeps
 * locks gets a client over those endpoints; a folder or bucket remote keeps them itself, as refs
 * created by compare-and-swap (store/locks.ts), under this clone's author identity.
 */
import { chmod, lstat } from 'node:fs/promises';
import {
  ConfigError,
  IdentityError,
  LockHeldError,
  LockedError,
  MediagitError,
  NonFastForwardError,
  StoreUnavailableError,
} from '../errors/index.js';
import { shortOid, type Oid, type TreeEntry } from '../objects/index.js';
import {
  isAncestor,
  lockableMatcher,
  readLockCache,
  silentProgress,
  worktreeState,
  writeLockCache,
  type LockCache,
  type Repository,
} from '../repo/index.js';
import {
  StoredLocks,
  abortableSleep,
  type LockRecord,
  type LockVerification,
  type OperationOptions,
  type RemoteLocks,
  type Sleep,
  type Store,
} from '../store/index.js';
import { isErrno } from '../util/fs.js';
import { defaultRemote, getRemote, listRemotes, openRemoteStore } from './remotes.js';

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

  /** The same calls without retries, for commands that must not wait on the remote. */
  get once(): RemoteLocks {
    return this.remote;
  }

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

/**
 * The lock client for a remote's store: the server's locks when it keeps them, otherwise locks
 * kept in the store itself under `owner` (without an owner, a client that says locks are
 * unavailable).
 */
export function lockClientFor(store: Store, remoteName: string, owner?: string): LockClient {
  const remote = store.capabilities.locks;
  if (remote) return new ServerLockClient(remote);
  if (owner !== undefined) return new ServerLockClient(new StoredLocks(store, owner));
  return new NoLockClient(store.description, remoteName);
}

/** lockClientFor, or (for a remote without locks) a ConfigError saying locks need a server remote. */
export function requireLockClient(store: Store, remoteName: string, owner?: string): LockClient {
  const client = lockClientFor(store, remoteName, owner);
  if (client instanceof NoLockClient) throw client.unsupported();
  return client;
}

/**
 * Who this clone is when it keeps locks on a folder or bucket remote: config `lock.owner`, else
 * the author identity as "Name <email>". null when neither is set.
 */
export async function lockOwner(repo: Repository): Promise<string | null> {
  const configured = repo.config.get('lock.owner');
  if (typeof configured === 'string' && configured.trim() !== '') return configured.trim();
  try {
    const who = await repo.identity();
    return `${who.name} <${who.email}>`;
  } catch (err) {
    if (err instanceof IdentityError) return null;
    throw err;
  }
}

/** The lock client for a remote of this repository; a folder/bucket remote needs an identity. */
export async function repoLockClient(
  repo: Repository,
  store: Store,
  remoteName: string,
): Promise<LockClient> {
  if (store.capabilities.locks) return lockClientFor(store, remoteName);
  const owner = await lockOwner(repo);
  // Locks on a folder or bucket remote are kept under the author identity.
  if (owner === null) throw new IdentityError();
  return lockClientFor(store, remoteName, owner);
}

/** Asks the remote for its locks and stores the answer as this clone's cached view. */
export async function refreshLockCache(
  repo: Repository,
  client: LockClient,
  remoteName: string,
  options?: OperationOptions,
): Promise<LockCache> {
  return writeLockCache(repo, remoteName, await client.verifyLocks(options));
}

/**
 * Refreshes the cached view within `lock.refresh_timeout_ms` (default 3000) when this clone uses
 * locks at all (lockable files, or a view from before); a remote that is slow, offline or refuses
 * leaves the old view in place (null returned). Used by fetch and commit, which must work without
 * the remote. `store`: an already opened store of that remote (else it is opened here).
 */
export async function tryRefreshLockCache(
  repo: Repository,
  remoteName?: string,
  store?: Store,
): Promise<LockCache | null> {
  if (!lockableMatcher(repo) && !(await readLockCache(repo))) return null;
  let name = remoteName;
  if (name === undefined) {
    if (listRemotes(repo).length === 0) return null;
    try {
      name = defaultRemote(repo);
    } catch {
      return null;
    }
  }
  const remoteName_ = name;
  const configured = Number(repo.config.get('lock.refresh_timeout_ms'));
  const timeoutMs = Number.isFinite(configured) && configured > 0 ? configured : 3000;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve(null);
    }, timeoutMs);
  });
  const ask = async (remote: Store): Promise<LockCache | null> => {
    const owner = remote.capabilities.locks ? undefined : await lockOwner(repo);
    if (owner === null) return null;
    const client = lockClientFor(remote, remoteName_, owner);
    // One attempt, no retries: this runs in commands that must not wait on the remote.
    const view = await (client instanceof ServerLockClient ? client.once : client).verifyLocks({
      signal: controller.signal,
    });
    if (controller.signal.aborted) return null;
    return writeLockCache(repo, remoteName_, view);
  };
  const attempt = (async (): Promise<LockCache | null> => {
    if (store) return ask(store);
    const opened = await openRemoteStore(getRemote(repo, remoteName_), repo.root);
    try {
      return await ask(opened.store);
    } finally {
      await opened.store.close();
    }
  })().catch((err: unknown) => {
    if (err instanceof MediagitError || (err instanceof Error && err.name === 'AbortError'))
      return null;
    throw err;
  });
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
  }
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
  /** Others' locks as the remote already said (a negotiation's answer); asked when absent. */
  known?: readonly LockRecord[],
): Promise<void> {
  const list = [...commits];
  if (list.length === 0) return;
  let theirs = known;
  if (theirs === undefined) {
    // Without a known identity every lock on a folder/bucket remote counts as someone else's.
    const owner = remote.capabilities.locks ? undefined : ((await lockOwner(repo)) ?? '');
    const client = lockClientFor(remote, remote.description, owner);
    theirs = (await client.verifyLocks()).theirs;
  }
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

/** The version of `path` in a commit (null: absent), with its tree reads cached. */
async function entryInCommit(
  repo: Repository,
  commit: Oid,
  path: string,
  cache: Map<Oid, TreeEntry[]>,
): Promise<TreeEntry | null> {
  return entryAt(repo, (await repo.odb.readCommit(commit)).tree, path, cache);
}

/**
 * `lock` refuses early: when the remote's `branch` has a version of a path that this checkout
 * does not have (someone changed it since the last pull), locking it now would only lead to
 * editing a stale file. Names the newest remote commit that changed it. The remote's history is
 * fetched (objects only) when it is not here yet.
 */
export async function checkLockIsCurrent(
  repo: Repository,
  remote: Store,
  branch: string,
  paths: readonly string[],
): Promise<void> {
  const tip = (await remote.readRef(`refs/heads/${branch}`))?.oid;
  if (tip === undefined) return;
  const head = (await repo.readHead()).oid;
  if (tip === head) return;
  if ((await repo.odb.kindOf(tip)) === null) {
    // Loaded here, not with the module: commit checks locks and must not load the fetch code.
    const { fetchObjects } = await import('./fetch.js');
    await fetchObjects(repo, remote, [tip], { progress: silentProgress });
  }
  // This checkout already has everything the remote has (it is ahead).
  if (head !== null && (await isAncestor(repo, tip, head))) return;
  const trees = new Map<Oid, TreeEntry[]>();
  for (const path of paths) {
    const theirs = await entryInCommit(repo, tip, path, trees);
    const mine = head === null ? null : await entryInCommit(repo, head, path, trees);
    if (sameEntry(theirs, mine)) continue;
    // The newest remote commit whose version differs from its first parent's.
    let commit = tip;
    for (let steps = 0; steps < 10_000; steps++) {
      const parent = (await repo.odb.readCommit(commit)).parents[0];
      if (parent === undefined) break;
      if (!sameEntry(await entryInCommit(repo, parent, path, trees), theirs)) break;
      commit = parent;
    }
    const subject = (await repo.odb.readCommit(commit)).message.split('\n', 1)[0] ?? '';
    throw new NonFastForwardError(
      `'${path}' has a newer version on the remote's ${branch} (commit ${shortOid(commit)} "${subject}") than your checkout; lock refused`,
      { hint: "run 'mediagit pull' first, then lock it again" },
    );
  }
}

/**
 * `commit` refuses early: a change to a path someone else holds a lock on (by the cached view,
 * refreshed first when the remote answers quickly) is a LockHeldError naming the holder.
 * `all` = `commit -a` (tracked files changed in the working tree count too).
 */
export async function verifyCommitLocks(
  repo: Repository,
  options: { all?: boolean } = {},
): Promise<void> {
  const cache = (await tryRefreshLockCache(repo)) ?? (await readLockCache(repo));
  if (!cache || cache.theirs.length === 0) return;
  const index = await repo.readIndex();
  const head = (await repo.readHead()).oid;
  const trees = new Map<Oid, TreeEntry[]>();
  const hits: LockRecord[] = [];
  for (const lock of cache.theirs) {
    if (lock.path === '') continue;
    const paths = [...index.entries.keys()].filter(
      (p) => p === lock.path || p.startsWith(`${lock.path}/`),
    );
    let changed = false;
    for (const path of paths) {
      const staged = index.entries.get(path)!;
      const committed = head === null ? null : await entryInCommit(repo, head, path, trees);
      if (!committed || committed.oid !== staged.oid || committed.type !== staged.type)
        changed = true;
      else if (options.all && (await worktreeState(repo, index, path)) !== 'clean') changed = true;
      if (changed) break;
    }
    // A staged deletion: in HEAD, gone from the index.
    if (!changed && paths.length === 0 && head !== null)
      changed = (await entryInCommit(repo, head, lock.path, trees)) !== null;
    if (changed) hits.push(lock);
  }
  if (hits.length === 0) return;
  const first = hits[0]!;
  const shown = hits
    .slice(0, 5)
    .map((l) => `${l.path} (locked by ${l.owner || 'someone else'})`)
    .join(', ');
  throw new LockHeldError(
    `commit refused: it changes ${hits.length === 1 ? 'a file' : `${hits.length} files`} locked by someone else: ${shown}${hits.length > 5 ? ` and ${hits.length - 5} more` : ''}`,
    {
      hint: `ask ${first.owner || 'the holder'} to push and unlock it, then pull; or commit anyway with --no-verify-locks (the push will still be refused while the lock is held)`,
    },
  );
}

/**
 * After a successful push with `lock.release_on_push`: releases this clone's locks on the paths
 * the pushed commits changed (between `before` on the remote and `after`) and makes those files
 * read-only again. Returns the released paths.
 */
export async function releaseLocksAfterPush(
  repo: Repository,
  client: LockClient,
  remoteName: string,
  before: Oid | null,
  after: Oid,
): Promise<string[]> {
  const view = await client.verifyLocks();
  const trees = new Map<Oid, TreeEntry[]>();
  const released: string[] = [];
  for (const lock of view.ours) {
    const now = await entryInCommit(repo, after, lock.path, trees);
    const then =
      before === null || (await repo.odb.kindOf(before)) === null
        ? null
        : await entryInCommit(repo, before, lock.path, trees);
    if (sameEntry(now, then)) continue;
    await client.unlock(lock.id, false, { holder: lock });
    await afterUnlock(repo, lock.path);
    released.push(lock.path);
  }
  await writeLockCache(repo, remoteName, {
    ours: view.ours.filter((l) => !released.includes(l.path)),
    theirs: view.theirs,
  });
  return released;
}

/**
 * The push command's hook: with `lock.release_on_push`, releases this clone's locks on what the
 * pushed branches changed (see releaseLocksAfterPush). Nothing to do otherwise.
 */
export async function releaseAfterPush(
  repo: Repository,
  remote: Store,
  remoteName: string,
  outcomes: readonly { ref: string; old: Oid | null; new: Oid; status: string }[],
): Promise<string[]> {
  const setting = repo.config.get('lock.release_on_push');
  if (setting !== true && String(setting).toLowerCase() !== 'true') return [];
  const pushed = outcomes.filter(
    (o) => o.ref.startsWith('refs/heads/') && o.status !== 'up-to-date',
  );
  if (pushed.length === 0) return [];
  const client = await repoLockClient(repo, remote, remoteName);
  const released: string[] = [];
  for (const o of pushed)
    released.push(...(await releaseLocksAfterPush(repo, client, remoteName, o.old, o.new)));
  return released;
}
