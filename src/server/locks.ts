/**
 * File locks (docs/protocol.md "Locks"), kept entirely in the repository's storage:
 *
 * - the lock of path P is the ref `refs/locks/<sha256(P)>`; that hex digest is also the lock's ID;
 * - the ref points at a record `meta/lock-<sha256 of the record>` holding
 *   `{"path","owner","locked_at","nonce"}` (the nonce makes every record, hence every lock
 *   generation, distinct);
 * - locking writes the record, then creates the ref by compare-and-swap from "absent", so of two
 *   racing lockers — on one replica or several — exactly one wins; the loser's record is removed;
 * - unlocking deletes the ref by compare-and-swap from the value that was read, then the record.
 */
import { randomBytes } from 'node:crypto';
import { NotFoundError } from '../errors/index.js';
import { sha256Hex } from '../objects/index.js';
import type { RefValue, Store } from '../store/index.js';
import { mapLimit } from '../util/limit.js';

export const LOCK_REF_PREFIX = 'refs/locks/';

export interface Lock {
  readonly id: string;
  readonly path: string;
  readonly owner: string;
  readonly locked_at: string;
}

interface Held {
  readonly lock: Lock;
  readonly ref: RefValue;
}

export const lockIdOf = (path: string): string => sha256Hex(Buffer.from(path, 'utf8'));
const refOf = (id: string): string => `${LOCK_REF_PREFIX}${id}`;
const recordKey = (oid: string): string => `meta/lock-${oid}`;

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
  if (!/^[0-9a-f]{64}$/.test(ref.oid)) return null;
  let bytes: Buffer;
  try {
    bytes = await store.get(recordKey(ref.oid), opts);
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
  if (sha256Hex(bytes) !== ref.oid) return null;
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

/** A lock whose record cannot be read: it still holds the path; only an admin's force-unlock frees it. */
function unreadable(id: string): Lock {
  return { id, path: '', owner: '', locked_at: '' };
}

export async function readLock(store: Store, id: string, opts: Signal = {}): Promise<Held | null> {
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
  const oid = sha256Hex(bytes);
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
    /^[0-9a-f]{64}$/.test(name.slice(LOCK_REF_PREFIX.length)),
  );
  const locks = await mapLimit(refs, 16, async ([name, ref]) =>
    readRecord(store, name.slice(LOCK_REF_PREFIX.length), ref, opts),
  );
  return locks
    .filter((l): l is Lock => l !== null && l.path.startsWith(prefix))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Removes a lock that was read as `held`; false when it changed in between (someone else released or re-took it). */
export async function releaseLock(store: Store, held: Held, opts: Signal = {}): Promise<boolean> {
  if (!(await store.compareAndSwapRef(refOf(held.lock.id), held.ref, null, opts))) return false;
  if (/^[0-9a-f]{64}$/.test(held.ref.oid))
    await store.delete(recordKey(held.ref.oid), opts).catch(() => undefined);
  return true;
}
