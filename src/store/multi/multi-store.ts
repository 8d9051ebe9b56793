import { NotFoundError } from '../../errors/index.js';
import {
  assertCreatableKey,
  assertValidKey,
  assertValidRefName,
  assertValidRefTarget,
  type ListedKey,
  type OperationOptions,
  type SwapOptions,
  type RefValue,
  type Store,
  type StoreCapabilities,
  type TransferPacing,
} from '../store.js';
import { isTransientError } from '../wrappers/retry.js';

/** One of the two copies. */
export type MirrorSide = 'primary' | 'secondary';

export interface MultiStoreOptions {
  /**
   * Which side object reads (get, getMany, has) ask first; the other is asked for what it lacks.
   * Refs are always read from the primary. 'secondary' suits a mirror nearer than the primary (a
   * NAS beside a cloud primary). Default 'primary'.
   */
  readFirst?: MirrorSide;
  /**
   * After a read found an object only on the side asked second, copy it to the side asked first
   * (best effort; a failed copy never fails the read, and is recorded in `failures()`). Default true.
   */
  repairOnRead?: boolean;
  /**
   * Rounds spent converging the secondary's copy of a ref after a successful CAS; more are only
   * needed while other writers keep moving the ref. Default 10.
   */
  mirrorAttempts?: number;
  /** Told about a ref the secondary could not be brought in line with; `divergence()` reports it too. */
  onMirrorFailure?: (name: string, error: unknown) => void;
  /** Which primary failures justify falling back to the secondary. Default: transient errors. */
  isRetriable?: (err: unknown) => boolean;
}

export interface RefMismatch {
  readonly name: string;
  readonly primary: string | null;
  readonly secondary: string | null;
}

export interface SizeMismatch {
  readonly key: string;
  readonly primarySize: number;
  readonly secondarySize: number;
}

/** Writes that reached one side only, in this process (see `failures()`). */
export interface MirrorFailures {
  /** Object keys one side lacks after a write or read repair failed there: key → the side lacking it. */
  readonly objects: ReadonlyMap<string, MirrorSide>;
  /** Refs whose secondary copy could not be brought in line with the primary's, with the error. */
  readonly refs: ReadonlyMap<string, unknown>;
}

export interface Divergence {
  /** Keys only the primary holds: the secondary lost them or a put half-failed. Sorted. */
  readonly onlyPrimary: string[];
  /** Keys only the secondary holds: readable, but the primary is missing them. Sorted. */
  readonly onlySecondary: string[];
  /** Same key, different size: at least one copy is damaged. */
  readonly sizeMismatches: SizeMismatch[];
  /** Refs whose targets differ (null = absent on that side). Sorted by name. */
  readonly refMismatches: RefMismatch[];
}

function isNotFound(err: unknown): boolean {
  return (
    err instanceof NotFoundError ||
    (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'E_NOT_FOUND')
  );
}

/** Settles every promise, then throws the first failure in argument order (primary before secondary). */
async function allOrFirstError(promises: readonly Promise<unknown>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

const other = (side: MirrorSide): MirrorSide => (side === 'primary' ? 'secondary' : 'primary');

async function putManyOn(
  store: Store,
  entries: readonly { key: string; data: Uint8Array }[],
  options: OperationOptions | undefined,
): Promise<void> {
  const batch = store.capabilities.batch;
  if (batch) return batch.putMany(entries, options);
  for (const { key, data } of entries) await store.put(key, data, options);
}

async function getManyOn(
  store: Store,
  keys: readonly string[],
  options: OperationOptions | undefined,
): Promise<Map<string, Buffer>> {
  const batch = store.capabilities.batch;
  if (batch) return batch.getMany(keys, options);
  const out = new Map<string, Buffer>();
  for (const key of keys) {
    try {
      out.set(key, await store.get(key, options));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  return out;
}

/**
 * Two stores kept as mirrors of each other: a primary that is the source of truth for refs (and,
 * by default, the first place reads go), and a secondary that holds a full copy (a second cloud, a
 * NAS). What this class guarantees and what sync/ adds on top: docs/backends/multi.md.
 *
 * Data
 * - put writes both, concurrently, and succeeds only if both did. A failure on either side is
 *   thrown as is (the primary's first), so a RetryingStore outside sees the real error class
 *   and can retry; the retry is harmless because re-putting a content-addressed key is a no-op.
 *   The cost: while the secondary is down nothing can be pushed. That is deliberate — a mirror
 *   that silently stops mirroring is worse than a push that says so.
 *   A put that landed on one side only is remembered (`failures()`) so that the caller can record
 *   it and have it repaired later (sync/mirror-repair.ts).
 * - get reads the side named by `readFirst` (the primary by default) and falls back to the other
 *   on NotFound or a transient error; what the first side answered "absent" for is copied to it
 *   (read repair, in whichever direction the read went).
 * - delete removes from both; list is the union.
 *
 * has = present on EITHER side. has() answers "can get() return it?", and other code relies on
 * exactly that: fsck and reachability use has() to decide an object is missing, and would
 * report readable objects as lost under an AND. A writer must not plan with it: an object one
 * side lacks would be skipped, and a ref moved over it would point the secondary at a commit it
 * cannot serve. Writers that leave every copy whole — push — ask `hasEverywhere()` instead,
 * offered to the wrappers outside as `capabilities.replicas` (sync/ takes it through
 * `presentEverywhere`).
 *
 * Refs: the primary is authoritative. CAS runs on the primary alone, so its atomicity is exactly
 * the primary's; only after it succeeds is the secondary brought in line (see mirrorRef). A
 * mirror failure never turns a successful CAS into an error — the ref did move — it is
 * recorded and shows up in `divergence()`. readRef/listRefs fall back to the secondary only when
 * the primary is unreachable, never when it says "no such ref".
 */
export class MultiStore implements Store {
  readonly description: string;
  private readonly repairOnRead: boolean;
  private readonly readFirst: MirrorSide;
  private readonly mirrorAttempts: number;
  private readonly onMirrorFailure: ((name: string, error: unknown) => void) | undefined;
  private readonly retriable: (err: unknown) => boolean;
  private readonly unmirrored = new Map<string, unknown>();
  private readonly halfWritten = new Map<string, MirrorSide>();
  private repairFailureCount = 0;

  constructor(
    readonly primary: Store,
    readonly secondary: Store,
    options: MultiStoreOptions = {},
  ) {
    this.description = `${primary.description} (mirrored to ${secondary.description})`;
    this.repairOnRead = options.repairOnRead ?? true;
    this.readFirst = options.readFirst ?? 'primary';
    this.mirrorAttempts = Math.max(1, options.mirrorAttempts ?? 10);
    this.onMirrorFailure = options.onMirrorFailure;
    this.retriable = options.isRetriable ?? isTransientError;
    this.capabilities = {
      // A read may come from either side, so its buffer is fresh only if both sides' are.
      freshBuffers: primary.capabilities.freshBuffers && secondary.capabilities.freshBuffers,
      ...(primary.capabilities.batch || secondary.capabilities.batch
        ? {
            batch: {
              putMany: (e, o) => this.writeMany(e, o),
              getMany: (k, o) => this.readMany(k, o),
            },
          }
        : {}),
      // Locks live with the refs, and the primary's refs are authoritative.
      ...(primary.capabilities.locks ? { locks: primary.capabilities.locks } : {}),
      replicas: { hasEverywhere: (k, o) => this.hasEverywhere(k, o) },
      // Ref updates run on the primary, with its record of writer tokens.
      ...(primary.capabilities.refWriterTokens ? { refWriterTokens: true } : {}),
      // A push moves the ref on both sides.
      ...(primary.capabilities.prepareRefUpdates || secondary.capabilities.prepareRefUpdates
        ? {
            prepareRefUpdates: () => {
              primary.capabilities.prepareRefUpdates?.();
              secondary.capabilities.prepareRefUpdates?.();
            },
          }
        : {}),
      // Every object goes to both sides: the slower pace of the two.
      ...slowerPacing(primary.capabilities.pacing, secondary.capabilities.pacing),
    };
  }

  /**
   * Batching when either side batches; the side that does not gets one call per entry. Same
   * semantics as put/get. No local-file fast path: adopted files would land on the primary only.
   */
  readonly capabilities: StoreCapabilities;

  private async writeMany(
    entries: readonly { key: string; data: Uint8Array }[],
    options?: OperationOptions,
  ): Promise<void> {
    for (const { key } of entries) assertValidKey(key);
    await this.writeBoth(
      entries.map((e) => e.key),
      (store) => putManyOn(store, entries, options),
    );
  }

  /**
   * Runs one write on both sides; a side that failed while the other succeeded is remembered as
   * lacking the keys (a batch that failed may have stored part of its entries: recording them all
   * only makes a repair look at a few keys more). A later write of the same keys that reaches both
   * sides clears them.
   */
  private async writeBoth(
    keys: readonly string[],
    write: (store: Store) => Promise<void>,
  ): Promise<void> {
    const [p, s] = await Promise.allSettled([write(this.primary), write(this.secondary)]);
    if (p.status === 'rejected' || s.status === 'rejected') {
      const lacking: MirrorSide | null =
        p.status === 'rejected' && s.status === 'fulfilled'
          ? 'primary'
          : s.status === 'rejected' && p.status === 'fulfilled'
            ? 'secondary'
            : null;
      if (lacking) for (const key of keys) this.halfWritten.set(key, lacking);
      throw p.status === 'rejected' ? p.reason : (s as PromiseRejectedResult).reason;
    }
    for (const key of keys) this.halfWritten.delete(key);
  }

  private store(side: MirrorSide): Store {
    return side === 'primary' ? this.primary : this.secondary;
  }

  /** Read repair: `side` answered "absent" for an object the other side had. Never fails the read. */
  private async repair(
    side: MirrorSide,
    key: string,
    data: Uint8Array,
    options: OperationOptions | undefined,
  ): Promise<void> {
    if (!this.repairOnRead) return;
    try {
      await this.store(side).put(key, data, options);
      if (this.halfWritten.get(key) === side) this.halfWritten.delete(key);
    } catch {
      this.repairFailureCount++;
      this.halfWritten.set(key, side);
    }
  }

  /** getMany with get's fallback: what the first side lacks (or cannot serve) is asked of the other, and repaired. */
  private async readMany(
    keys: readonly string[],
    options?: OperationOptions,
  ): Promise<Map<string, Buffer>> {
    for (const key of keys) assertValidKey(key);
    const first = this.readFirst;
    let found: Map<string, Buffer>;
    try {
      found = await getManyOn(this.store(first), keys, options);
    } catch (err) {
      if (!this.retriable(err)) throw err;
      return getManyOn(this.store(other(first)), keys, options);
    }
    const rest = keys.filter((k) => !found.has(k));
    if (rest.length === 0) return found;
    const second = await getManyOn(this.store(other(first)), rest, options);
    for (const [key, data] of second) {
      found.set(key, data);
      await this.repair(first, key, data, options);
    }
    return found;
  }

  /** Refs whose last mirror attempt failed in this process, with the error. */
  get unmirroredRefs(): ReadonlyMap<string, unknown> {
    return this.unmirrored;
  }

  /**
   * What this process left on one side only: object writes or read repairs that failed on one
   * side, and refs the secondary could not follow. For the caller to record durably; the store
   * itself keeps nothing on disk.
   */
  failures(): MirrorFailures {
    return { objects: new Map(this.halfWritten), refs: new Map(this.unmirrored) };
  }

  /** `failures()`, then forgets them: for a caller that has now recorded them durably. */
  takeFailures(): MirrorFailures {
    const taken = this.failures();
    this.halfWritten.clear();
    this.unmirrored.clear();
    return taken;
  }

  /** Read repairs that could not write the primary (the read itself still succeeded). */
  get repairFailures(): number {
    return this.repairFailureCount;
  }

  private canFallBack(err: unknown): boolean {
    return isNotFound(err) || this.retriable(err);
  }

  async get(key: string, options?: OperationOptions): Promise<Buffer> {
    assertValidKey(key);
    const first = this.readFirst;
    let firstError: unknown;
    try {
      return await this.store(first).get(key, options);
    } catch (err) {
      if (!this.canFallBack(err)) throw err;
      firstError = err;
    }
    let data: Buffer;
    try {
      data = await this.store(other(first)).get(key, options);
    } catch (err) {
      // "Not found" is only the answer when the first side said so too; if it was merely
      // unreachable the object may well be there, and the caller should retry rather than give up.
      throw isNotFound(firstError) ? err : firstError;
    }
    // Repair only a side that answered "absent": one that is failing would just fail again.
    if (isNotFound(firstError)) await this.repair(first, key, data, options);
    return data;
  }

  async put(key: string, data: Uint8Array, options?: OperationOptions): Promise<void> {
    assertValidKey(key);
    await this.writeBoth([key], (store) => store.put(key, data, options));
  }

  /** The primary decides, as for refs; the secondary is then given the winner's bytes. */
  async create(key: string, data: Uint8Array, options?: OperationOptions): Promise<boolean> {
    assertCreatableKey(key);
    const created = await this.primary.create(key, data, options);
    const winner = created ? data : await this.primary.get(key, options);
    await this.secondary.put(key, winner, options).catch((err: unknown) => {
      this.halfWritten.set(key, 'secondary');
      throw err;
    });
    this.halfWritten.delete(key);
    return created;
  }

  async has(keys: readonly string[], options?: OperationOptions): Promise<boolean[]> {
    for (const key of keys) assertValidKey(key);
    const first = this.store(this.readFirst);
    const second = this.store(other(this.readFirst));
    let result: boolean[];
    try {
      result = await first.has(keys, options);
    } catch (err) {
      if (!this.retriable(err)) throw err;
      return second.has(keys, options);
    }
    const missing: number[] = [];
    result.forEach((present, i) => {
      if (!present) missing.push(i);
    });
    if (missing.length === 0) return result;
    const found = await second.has(
      missing.map((i) => keys[i]!),
      options,
    );
    missing.forEach((index, j) => {
      if (found[j]) result[index] = true;
    });
    return result;
  }

  /** True only where both sides hold the key: what a replicating push should skip. */
  async hasEverywhere(keys: readonly string[], options?: OperationOptions): Promise<boolean[]> {
    for (const key of keys) assertValidKey(key);
    const [a, b] = await Promise.all([
      this.primary.has(keys, options),
      this.secondary.has(keys, options),
    ]);
    return a.map((present, i) => present && b[i] === true);
  }

  /**
   * Remembers every primary key to drop duplicates from the secondary pass: O(keys) memory, a
   * few hundred MB at tens of millions of chunks. Neither side is allowed to fail: a union
   * missing half its keys would mislead gc and fsck.
   */
  async *list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey> {
    const seen = new Set<string>();
    for await (const item of this.primary.list(prefix, options)) {
      seen.add(item.key);
      yield item;
    }
    for await (const item of this.secondary.list(prefix, options)) {
      if (!seen.has(item.key)) yield item;
    }
  }

  async delete(key: string, options?: OperationOptions): Promise<void> {
    assertValidKey(key);
    await allOrFirstError([this.primary.delete(key, options), this.secondary.delete(key, options)]);
  }

  async readRef(name: string, options?: OperationOptions): Promise<RefValue | null> {
    assertValidRefName(name);
    try {
      return await this.primary.readRef(name, options);
    } catch (err) {
      // A secondary value may be stale, but handing it out is safe: a CAS built on it goes to the
      // primary, which rejects it unless it still matches.
      if (!this.retriable(err)) throw err;
      return this.secondary.readRef(name, options);
    }
  }

  async compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options?: SwapOptions,
  ): Promise<boolean> {
    assertValidRefName(name);
    assertValidRefTarget(next);
    const swapped = await this.primary.compareAndSwapRef(name, expected, next, options);
    // The mirror's CASes are updates of their own, not attempts of this one: no writer token.
    if (swapped) await this.mirrorRef(name, options?.signal ? { signal: options.signal } : {});
    return swapped;
  }

  /**
   * Converges the secondary on the primary's *current* value rather than writing `next`: two
   * writers that succeed one after the other on the primary may mirror in the opposite order,
   * and copying `next` blindly would leave the older value on the secondary. Each round re-reads
   * both sides and CASes the secondary from what it holds, so a stale mirror loses its CAS and
   * the next round sees the newer value; the last mirror to finish always leaves them equal.
   */
  private async mirrorRef(name: string, options: OperationOptions | undefined): Promise<void> {
    try {
      for (let round = 0; ; round++) {
        const wanted = (await this.primary.readRef(name, options))?.oid ?? null;
        const current = await this.secondary.readRef(name, options);
        if ((current?.oid ?? null) === wanted) {
          this.unmirrored.delete(name);
          return;
        }
        if (round >= this.mirrorAttempts)
          throw new Error(`secondary copy of ${name} did not settle after ${round} attempts`);
        await this.secondary.compareAndSwapRef(name, current, wanted, options);
      }
    } catch (err) {
      this.unmirrored.set(name, err);
      try {
        this.onMirrorFailure?.(name, err);
      } catch {
        // Reporting must not undo the successful CAS on the primary.
      }
    }
  }

  async listRefs(prefix: string, options?: OperationOptions): Promise<Map<string, RefValue>> {
    try {
      return await this.primary.listRefs(prefix, options);
    } catch (err) {
      if (!this.retriable(err)) throw err;
      return this.secondary.listRefs(prefix, options);
    }
  }

  /** Compares both sides in full, for `fsck`. Costs two complete listings. */
  async divergence(options: OperationOptions & { prefix?: string } = {}): Promise<Divergence> {
    const { prefix = '', ...rest } = options;
    const opts: OperationOptions = rest;
    const collect = async (store: Store): Promise<Map<string, number>> => {
      const sizes = new Map<string, number>();
      for await (const { key, size } of store.list(prefix, opts)) sizes.set(key, size);
      return sizes;
    };
    const [p, s, pRefs, sRefs] = await Promise.all([
      collect(this.primary),
      collect(this.secondary),
      this.primary.listRefs('refs/', opts),
      this.secondary.listRefs('refs/', opts),
    ]);
    const onlyPrimary: string[] = [];
    const onlySecondary: string[] = [];
    const sizeMismatches: SizeMismatch[] = [];
    for (const [key, primarySize] of p) {
      const secondarySize = s.get(key);
      if (secondarySize === undefined) onlyPrimary.push(key);
      else if (secondarySize !== primarySize)
        sizeMismatches.push({ key, primarySize, secondarySize });
    }
    for (const key of s.keys()) if (!p.has(key)) onlySecondary.push(key);
    const refMismatches: RefMismatch[] = [];
    for (const name of new Set([...pRefs.keys(), ...sRefs.keys()])) {
      const primary = pRefs.get(name)?.oid ?? null;
      const secondary = sRefs.get(name)?.oid ?? null;
      if (primary !== secondary) refMismatches.push({ name, primary, secondary });
    }
    const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
    onlyPrimary.sort(byString);
    onlySecondary.sort(byString);
    sizeMismatches.sort((a, b) => byString(a.key, b.key));
    refMismatches.sort((a, b) => byString(a.name, b.name));
    return { onlyPrimary, onlySecondary, sizeMismatches, refMismatches };
  }

  async close(): Promise<void> {
    await allOrFirstError([this.primary.close(), this.secondary.close()]);
  }
}

function slowerPacing(
  a: TransferPacing | undefined,
  b: TransferPacing | undefined,
): { pacing?: TransferPacing } {
  // A side without a pace of its own takes the transfer layer's default, which the other's may exceed.
  if (!a || !b) return {};
  return {
    pacing: { requests: Math.min(a.requests, b.requests), bytes: Math.min(a.bytes, b.bytes) },
  };
}
