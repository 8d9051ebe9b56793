/**
 * File locks kept in a repository's storage (docs/protocol.md "Locks"; design in docs/locks.md).
 * The same layout serves a mediagit server (which keeps them in its storage) and a folder or
 * bucket remote used directly, so a studio without a server gets the same guarantees:
 *
 * - the lock of path P is the ref `refs/locks/<sha256(P)>`; that hex digest is also the lock's ID;
 * - the ref points at a record `meta/lock-<sha256 of the record>` holding
 *   `{"path","owner","locked_at","nonce"}` (the nonce makes every record, hence every lock
 *   generation, distinct);
 * - locking writes the record, then creates the ref by compare-and-swap from "absent", so of two
 *   racing lockers — through one server, several replicas or straight to a bucket — exactly one
 *   wins; the loser's record is removed;
 * - unlocking deletes the ref by compare-and-swap from the value that was read, then the record.
 */
import { createHash, randomBytes } from 'node:crypto';
import { LockedError, NotFoundError } from '../errors/index.js';
import type {
  LockRecord,
  LockVerification,
  OperationOptions,
  RefValue,
  RemoteLocks,
  Store,
} from './store.js';

export const LOCK_REF_PREFIX = 'refs/locks/';

export type Lock = LockRecord;

export interface HeldLock {
  readonly lock: Lock;
  readonly ref: RefValue;
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
export const lockIdOf = (path: string): string => sha256(Buffer.from(path, 'utf8'));
const refOf = (id: string): string => `${LOCK_REF_PREFIX}${id}`;
const recordKey = (oid: string): string => `meta/lock-${oid}`;
const HEX64 = /^[0-9a-f]{64}$/;

/** Meta names the lock machinery owns; clients may not write or delete them through `/meta`. */
export function isLockRecordName(name: string): boolean {
  return name.startsWith('lock-');
}

type Signal = { signal?: AbortSignal };

/** The record a lock ref points at; null when it is missing or does not belong to `id`. */
async function readRecord(
  store: Store,
  id: string,
  ref: RefValue,
  opts: Signal,
): Promise<Lock | null> {
  if (!HEX64.test(ref.oid)) return null;
  let bytes: Buffer;
  try {
    bytes = await store.get(recordKey(ref.oid), opts);
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
  if (sha256(bytes) !== ref.oid) return null;
  let parsed: Partial<Lock>;
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as Partial<Lock>;
  } catch {
    return null;
  }
  const { path, owner, locked_at } = parsed;
  if (
    typeof path !== 'string' ||
    typeof owner !== 'string' ||
    typeof locked_at !== 'string' ||
    lockIdOf(path) !== id
  )
    return null;
  return { id, path, owner, locked_at };
}

/** A lock whose record cannot be read: it still holds the path; only a forced unlock frees it. */
function unreadable(id: string): Lock {
  return { id, path: '', owner: '', locked_at: '' };
}

export async function readLock(
  store: Store,
  id: string,
  opts: Signal = {},
): Promise<HeldLock | null> {
  const ref = await store.readRef(refOf(id), opts);
  if (ref === null) return null;
  return { lock: (await readRecord(store, id, ref, opts)) ?? unreadable(id), ref };
}

export type LockResult =
  | { readonly created: true; readonly lock: Lock }
  | { readonly created: false; readonly lock: Lock };

export async function createLock(
  store: Store,
  path: string,
  owner: string,
  opts: Signal = {},
): Promise<LockResult> {
  const id = lockIdOf(path);
  const record = {
    path,
    owner,
    locked_at: new Date().toISOString(),
    nonce: randomBytes(8).toString('hex'),
  };
  const bytes = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
  const oid = sha256(bytes);
  await store.put(recordKey(oid), bytes, opts);
  if (await store.compareAndSwapRef(refOf(id), null, oid, opts)) {
    return { created: true, lock: { id, path, owner, locked_at: record.locked_at } };
  }
  await store.delete(recordKey(oid), opts).catch(() => undefined);
  const held = await readLock(store, id, opts);
  // Released between our attempt and the read: report the conflict anyway; the client retries.
  return { created: false, lock: held?.lock ?? { id, path, owner: '', locked_at: '' } };
}

/** Every lock whose path starts with `prefix`, sorted by path. */
export async function listLocks(store: Store, prefix: string, opts: Signal = {}): Promise<Lock[]> {
  const refs = [...(await store.listRefs(LOCK_REF_PREFIX, opts))].filter(([name]) =>
    HEX64.test(name.slice(LOCK_REF_PREFIX.length)),
  );
  const locks: (Lock | null)[] = [];
  // A few records at a time: a studio has tens of locks, not thousands.
  for (let i = 0; i < refs.length; i += 16)
    locks.push(
      ...(await Promise.all(
        refs
          .slice(i, i + 16)
          .map(([name, ref]) => readRecord(store, name.slice(LOCK_REF_PREFIX.length), ref, opts)),
      )),
    );
  return locks
    .filter((l): l is Lock => l !== null && l.path.startsWith(prefix))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Removes a lock that was read as `held`; false when it changed in between (someone else released or re-took it). */
export async function releaseLock(
  store: Store,
  held: HeldLock,
  opts: Signal = {},
): Promise<boolean> {
  if (!(await store.compareAndSwapRef(refOf(held.lock.id), held.ref, null, opts))) return false;
  if (HEX64.test(held.ref.oid))
    await store.delete(recordKey(held.ref.oid), opts).catch(() => undefined);
  return true;
}

/**
 * Locks kept directly in a folder or bucket remote, by the same compare-and-swap as its refs.
 * There is no server to authenticate anyone, so `owner` is who this client says it is (the
 * repository's author identity) and anyone who can write the remote may force-release a lock.
 */
export class StoredLocks implements RemoteLocks {
  constructor(
    private readonly store: Store,
    private readonly owner: string,
  ) {}

  async createLock(path: string, options?: OperationOptions): Promise<LockRecord> {
    const result = await createLock(this.store, path, this.owner, options);
    if (result.created) return result.lock;
    const holder = result.lock.owner === '' ? 'someone else' : result.lock.owner;
    throw new LockedError(
      `'${path}' is already locked by ${holder}${result.lock.locked_at ? ` (since ${result.lock.locked_at})` : ''}`,
      {
        hint: `ask ${holder} to run 'mediagit unlock ${path}' when done (or release it with 'mediagit unlock --force')`,
      },
    );
  }

  listLocks(prefix?: string, options?: OperationOptions): Promise<LockRecord[]> {
    return listLocks(this.store, prefix ?? '', options);
  }

  async verifyLocks(options?: OperationOptions): Promise<LockVerification> {
    const locks = await listLocks(this.store, '', options);
    return {
      ours: locks.filter((l) => l.owner === this.owner),
      theirs: locks.filter((l) => l.owner !== this.owner),
    };
  }

  async unlock(
    id: string,
    force: boolean,
    options?: OperationOptions & { holder?: LockRecord },
  ): Promise<LockRecord> {
    const held = await readLock(this.store, id, options);
    if (held === null)
      throw new NotFoundError(`lock ${options?.holder?.path ?? id}`, {
        hint: "see the locks with 'mediagit locks'",
      });
    if (held.lock.owner !== this.owner && !force) {
      const holder = held.lock.owner === '' ? 'someone else' : held.lock.owner;
      throw new LockedError(`'${held.lock.path || id}' is locked by ${holder}, not by you`, {
        hint: `ask ${holder} to unlock it, or release it with 'mediagit unlock --force'`,
      });
    }
    if (!(await releaseLock(this.store, held, options)))
      throw new LockedError(
        `the lock on '${held.lock.path || id}' changed while it was being released`,
        {
          hint: "read it again with 'mediagit locks'",
        },
      );
    return held.lock;
  }
}
