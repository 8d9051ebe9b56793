/**
 * One sweeper at a time, and a way for pushes to notice a sweep. The lease is the ref
 * `refs/locks/gc-sweeper`, changed only by compare-and-swap; it points at a record
 * `meta/gc-lease-<sha256 of the record>`. The ref is never deleted: releasing swaps in an `idle`
 * record, so every sweep leaves a new value behind and a push that read the ref before its checks
 * sees, after its own ref update, whether a sweep ran in between (docs/remote-gc.md).
 */
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { LockedError } from '../../errors/index.js';
import type { RefValue, Store } from '../../store/index.js';

export const SWEEPER_REF = 'refs/locks/gc-sweeper';

export interface LeaseRecord {
  readonly state: 'idle' | 'sweeping';
  /** Who holds it, for messages: host, pid and a random nonce (so two records never collide). */
  readonly holder: string;
  /** Wall-clock ms after which another sweeper may take it over (a sweeper that died). */
  readonly expiresAt: number;
}

export interface LeaseState {
  readonly value: RefValue | null;
  readonly record: LeaseRecord | null;
}

const recordKey = (oid: string): string => `meta/gc-lease-${oid}`;

async function writeRecord(store: Store, record: LeaseRecord): Promise<string> {
  const bytes = Buffer.from(JSON.stringify(record));
  const oid = createHash('sha256').update(bytes).digest('hex');
  await store.put(recordKey(oid), bytes);
  return oid;
}

/**
 * The lease as it is now. `known`: a state read earlier; when the ref still names the same record
 * that record is reused, since a record is named by its content and never rewritten (one round
 * trip, not two, for the check after a push).
 */
export async function readLease(store: Store, known?: LeaseState): Promise<LeaseState> {
  const value = await store.readRef(SWEEPER_REF);
  if (!value) return { value: null, record: null };
  if (known?.value?.oid === value.oid && known.record !== null)
    return { value, record: known.record };
  return leaseFrom(value, await recordBytes(store, value));
}

/** The lease's ref and the bytes of the record it names, as a negotiation answers them. */
export async function readLeaseParts(
  store: Store,
): Promise<{ ref: RefValue | null; record: Buffer | null }> {
  const ref = await store.readRef(SWEEPER_REF);
  return { ref, record: ref === null ? null : await recordBytes(store, ref) };
}

/** null: unreadable, which leaseFrom takes for an expired sweep. */
async function recordBytes(store: Store, value: RefValue): Promise<Buffer | null> {
  try {
    return await store.get(recordKey(value.oid));
  } catch {
    return null;
  }
}

/** The lease from its ref's value and the bytes of the record it names (null: unreadable). */
export function leaseFrom(value: RefValue | null, record: Buffer | null): LeaseState {
  if (!value) return { value: null, record: null };
  try {
    if (record === null) throw new Error('no record');
    return { value, record: JSON.parse(record.toString()) as LeaseRecord };
  } catch {
    // An unreadable record counts as an expired sweep: it can be taken over.
    return { value, record: { state: 'sweeping', holder: 'unknown', expiresAt: 0 } };
  }
}

function active(record: LeaseRecord | null, now: number): boolean {
  return record !== null && record.state === 'sweeping' && record.expiresAt > now;
}

/** The sweeper's hold on the lease; renew() before each batch of deletions. */
export class SweepLease {
  private constructor(
    private readonly store: Store,
    private value: RefValue,
    private readonly holder: string,
    private readonly ttlMs: number,
    private renewedAt: number,
  ) {}

  /** Records this sweep wrote, removed once it is idle (a push may be reading any of them). */
  private readonly written: string[] = [];

  /** Takes the lease, or throws LockedError naming the sweeper that holds it. */
  static async acquire(store: Store, ttlMs: number): Promise<SweepLease> {
    const holder = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`;
    for (;;) {
      const now = Date.now();
      const current = await readLease(store);
      if (active(current.record, now))
        throw new LockedError(`another gc is sweeping this remote (${current.record!.holder})`, {
          hint: `wait for it to finish; a sweeper that died is taken over after its lease ends (${new Date(current.record!.expiresAt).toISOString()})`,
        });
      const oid = await writeRecord(store, { state: 'sweeping', holder, expiresAt: now + ttlMs });
      if (await store.compareAndSwapRef(SWEEPER_REF, current.value, oid)) {
        const value = await store.readRef(SWEEPER_REF);
        if (value?.oid === oid) {
          const lease = new SweepLease(store, value, holder, ttlMs, now);
          if (current.value) lease.written.push(current.value.oid);
          return lease;
        }
      }
      await store.delete(recordKey(oid));
    }
  }

  /** Extends the lease when a third of it is used; throws when another sweeper took it over. */
  async renew(): Promise<void> {
    const now = Date.now();
    if (now - this.renewedAt < this.ttlMs / 3) return;
    await this.swap({ state: 'sweeping', holder: this.holder, expiresAt: now + this.ttlMs });
    this.renewedAt = now;
  }

  /** Marks the remote idle again; the record of the sweep is the new value pushes compare with. */
  async release(): Promise<void> {
    await this.swap({ state: 'idle', holder: this.holder, expiresAt: 0 });
    const current = this.value.oid;
    for (const oid of this.written) if (oid !== current) await this.store.delete(recordKey(oid));
  }

  private async swap(record: LeaseRecord): Promise<void> {
    this.written.push(this.value.oid);
    const oid = await writeRecord(this.store, record);
    if (!(await this.store.compareAndSwapRef(SWEEPER_REF, this.value, oid))) {
      await this.store.delete(recordKey(oid));
      throw new LockedError('the gc lease was taken over by another sweeper; stopped deleting', {
        hint: 'the lease ran out (the sweep stalled longer than its lease); run gc again',
      });
    }
    const value = await this.store.readRef(SWEEPER_REF);
    this.value = value ?? { oid, version: oid };
  }
}

/**
 * The push side (docs/remote-gc.md): `before` is the lease read before the push looked at what
 * the remote has. After its ref update, true means a sweep may have deleted something the push
 * relied on; this waits until no sweep is running, and the caller must then check its objects
 * and upload the missing ones before calling the push done. `after`: the lease as read after the
 * ref update by whoever made it (a server answers it with the update), instead of reading it here.
 */
export async function sweepOverlapped(
  store: Store,
  before: LeaseState,
  after?: LeaseState,
): Promise<boolean> {
  let now = after ?? (await readLease(store, before));
  const overlapped = before.value?.oid !== now.value?.oid || active(before.record, Date.now());
  if (!overlapped && !active(now.record, Date.now())) return false;
  let delay = 20;
  while (active(now.record, Date.now())) {
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 1000);
    now = await readLease(store);
  }
  return true;
}
