import type { ListedKey, OperationOptions, RefValue, Store } from '../store.js';
import { ForwardingStore, type Passage } from './forwarding.js';
import { STORE_OPERATIONS, type StoreOperation } from './operations.js';

/**
 * Upper bounds (ms) of the duration histogram: Prometheus' default buckets, in milliseconds, so the
 * server can expose them as `le` labels without re-binning.
 */
export const DURATION_BUCKETS_MS: readonly number[] = [
  5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
];

export interface OperationMetrics {
  calls: number;
  /** Calls that threw. A CAS that returned false is not an error; see `casConflicts`. */
  errors: number;
  /** Payload bytes returned by `get`. */
  bytesRead: number;
  /** Payload bytes of `put`s that succeeded. */
  bytesWritten: number;
  /** Keys asked about (has), keys yielded (list), refs returned (listRefs). */
  items: number;
  totalDurationMs: number;
  maxDurationMs: number;
  /**
   * Cumulative counts, Prometheus-style: `durationBuckets[i]` calls took at most
   * `DURATION_BUCKETS_MS[i]`; the extra last entry counts every call (le="+Inf").
   */
  durationBuckets: number[];
}

export interface MetricsSnapshot {
  operations: Record<StoreOperation, OperationMetrics>;
  totals: { calls: number; errors: number; bytesRead: number; bytesWritten: number };
  casConflicts: number;
}

export interface MeteredStoreOptions {
  /** Monotonic clock in ms; injectable for tests. */
  now?: () => number;
}

function emptyOperation(): OperationMetrics {
  return {
    calls: 0,
    errors: 0,
    bytesRead: 0,
    bytesWritten: 0,
    items: 0,
    totalDurationMs: 0,
    maxDurationMs: 0,
    durationBuckets: new Array<number>(DURATION_BUCKETS_MS.length + 1).fill(0),
  };
}

function emptyOperations(): Record<StoreOperation, OperationMetrics> {
  return Object.fromEntries(STORE_OPERATIONS.map((op) => [op, emptyOperation()])) as Record<
    StoreOperation,
    OperationMetrics
  >;
}

/**
 * Counts what passes through a Store. Where it sits decides what is measured: outside a
 * RetryingStore it sees logical operations (what the user asked for, "bytes sent" once per object);
 * inside it sees every attempt, which is what a bandwidth or error-rate graph wants.
 */
export class MeteredStore extends ForwardingStore {
  private readonly now: () => number;
  private operations = emptyOperations();
  private casConflicts = 0;

  constructor(inner: Store, options: MeteredStoreOptions = {}) {
    super(inner);
    this.now = options.now ?? (() => performance.now());
  }

  snapshot(): MetricsSnapshot {
    const operations = emptyOperations();
    const totals = { calls: 0, errors: 0, bytesRead: 0, bytesWritten: 0 };
    for (const op of STORE_OPERATIONS) {
      const m = this.operations[op];
      operations[op] = { ...m, durationBuckets: [...m.durationBuckets] };
      totals.calls += m.calls;
      totals.errors += m.errors;
      totals.bytesRead += m.bytesRead;
      totals.bytesWritten += m.bytesWritten;
    }
    return { operations, totals, casConflicts: this.casConflicts };
  }

  reset(): void {
    this.operations = emptyOperations();
    this.casConflicts = 0;
  }

  private record(op: StoreOperation, started: number, failed: boolean): OperationMetrics {
    const m = this.operations[op];
    const duration = Math.max(0, this.now() - started);
    m.calls++;
    if (failed) m.errors++;
    m.totalDurationMs += duration;
    m.maxDurationMs = Math.max(m.maxDurationMs, duration);
    for (let i = 0; i < DURATION_BUCKETS_MS.length; i++)
      if (duration <= DURATION_BUCKETS_MS[i]!) m.durationBuckets[i]!++;
    m.durationBuckets[DURATION_BUCKETS_MS.length]!++;
    return m;
  }

  /**
   * A batch counts as one `put` (or `get`) call carrying all its bytes, so "bytes sent" stays the
   * sum of what was stored either way. Lending files counts as a `get` of their stored bytes and
   * adopting them as a `put` of the bytes the store gained, so "bytes sent" and "bytes received"
   * mean the same whether objects were copied or hard-linked.
   */
  protected override async pass<T>({ operation, run, traffic }: Passage<T>): Promise<T> {
    const started = this.now();
    let result: T;
    try {
      result = await run();
    } catch (err) {
      this.record(operation, started, true);
      throw err;
    }
    const m = this.record(operation, started, false);
    const moved = traffic?.(result);
    if (moved) {
      m.bytesRead += moved.bytesRead ?? 0;
      m.bytesWritten += moved.bytesWritten ?? 0;
      m.items += moved.items ?? 0;
    }
    return result;
  }

  /** One call per listing; its duration runs from the first request to the end (or abandonment). */
  override async *list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey> {
    const started = this.now();
    let failed = false;
    let count = 0;
    try {
      for await (const item of this.inner.list(prefix, options)) {
        count++;
        yield item;
      }
    } catch (err) {
      failed = true;
      throw err;
    } finally {
      this.record('list', started, failed).items += count;
    }
  }

  /** A CAS that returned false is no error, but a conflict worth counting apart. */
  override async compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options?: OperationOptions,
  ): Promise<boolean> {
    const swapped = await super.compareAndSwapRef(name, expected, next, options);
    if (!swapped) this.casConflicts++;
    return swapped;
  }
}
