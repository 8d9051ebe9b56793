/**
 * A Store wrapper that misbehaves on purpose, the way a flaky network or a throttling cloud backend
 * does, so retry, fallback and contract tests can run against failures without a real cloud.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreUnavailableError } from '../../src/errors/index.js';
import {
  BASIC_CAPABILITIES,
  ForwardingStore,
  type ListedKey,
  type OperationOptions,
  type Passage,
  type Store,
  type StoreCapabilities,
} from '../../src/store/index.js';
import { STORE_OPERATIONS, type StoreOperation } from '../../src/store/wrappers/operations.js';

export interface FaultyStoreOptions {
  /** Same seed and same call order → same faults. Default 1. */
  seed?: number;
  /** Fraction of calls that fail with StoreUnavailableError. Default 0.2. */
  failureRate?: number;
  /** Fraction of injected failures that carry `retryAfterMs`, like a 429/503 with Retry-After. Default 0.25. */
  retryAfterRate?: number;
  retryAfterMs?: number;
  /** Each call first waits a random 0..maxLatencyMs, which shuffles the interleaving of concurrent calls. Default 2. */
  maxLatencyMs?: number;
  /**
   * Fraction of injected put/delete/compareAndSwapRef failures raised *after* the inner call
   * completed — the response got lost, the write did not. Default 0.
   */
  failAfterWriteRate?: number;
  /** Operations that may fail; the others only get latency. Default: all. */
  operations?: readonly StoreOperation[];
  /**
   * Offer the inner store's capabilities, their calls faulted like the operations they count as
   * (a batch as get/put). Default false: the store stands for a remote across a network, and a
   * folder's hard-link fast path would let a transfer slip past the faults.
   */
  forwardCapabilities?: boolean;
}

/** xorshift32: tiny, seedable, good enough to scatter faults; not for anything cryptographic. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 0x6d2b79f5;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
}

const WRITES: ReadonlySet<StoreOperation> = new Set(['put', 'delete', 'compareAndSwapRef']);

export class FaultyStore extends ForwardingStore {
  override readonly capabilities: StoreCapabilities;
  /** Mutable so a test can switch faults off (0) or force them (1) mid-way. */
  failureRate: number;
  /** Failures injected so far, by when they struck. */
  readonly injected = { before: 0, after: 0, midList: 0 };
  readonly calls: Record<StoreOperation, number> = Object.fromEntries(
    STORE_OPERATIONS.map((op) => [op, 0]),
  ) as Record<StoreOperation, number>;
  private readonly random: () => number;
  private readonly retryAfterRate: number;
  private readonly retryAfterMs: number;
  private readonly maxLatencyMs: number;
  private readonly failAfterWriteRate: number;
  private readonly operations: ReadonlySet<StoreOperation>;

  constructor(inner: Store, options: FaultyStoreOptions = {}) {
    super(inner, `faulty(${inner.description})`);
    this.capabilities = options.forwardCapabilities
      ? this.forwardCapabilities(inner.capabilities)
      : BASIC_CAPABILITIES;
    this.random = seededRandom(options.seed ?? 1);
    this.failureRate = options.failureRate ?? 0.2;
    this.retryAfterRate = options.retryAfterRate ?? 0.25;
    this.retryAfterMs = options.retryAfterMs ?? 1;
    this.maxLatencyMs = options.maxLatencyMs ?? 2;
    this.failAfterWriteRate = options.failAfterWriteRate ?? 0;
    this.operations = new Set(options.operations ?? STORE_OPERATIONS);
  }

  get totalInjected(): number {
    return this.injected.before + this.injected.after + this.injected.midList;
  }

  private fault(op: StoreOperation, when: string): StoreUnavailableError {
    const withRetryAfter = this.random() < this.retryAfterRate;
    return new StoreUnavailableError(
      `injected fault: ${op} (${when})`,
      withRetryAfter ? { retryAfterMs: this.retryAfterMs } : {},
    );
  }

  /** Draws every random number for a call up front, so the sequence does not depend on how long the inner call takes. */
  private plan(op: StoreOperation): {
    latencyMs: number;
    fail: 'no' | 'before' | 'after';
    error: StoreUnavailableError | null;
    listAfter: number;
  } {
    this.calls[op]++;
    const latencyMs = this.random() * this.maxLatencyMs;
    const failing = this.operations.has(op) && this.random() < this.failureRate;
    const after = this.random() < this.failAfterWriteRate && WRITES.has(op);
    const listAfter = Math.floor(this.random() * 4);
    if (!failing) return { latencyMs, fail: 'no', error: null, listAfter };
    return {
      latencyMs,
      fail: after ? 'after' : 'before',
      error: this.fault(op, after ? 'after the write' : 'before the call'),
      listAfter,
    };
  }

  protected override async pass<T>({ operation, run }: Passage<T>): Promise<T> {
    const plan = this.plan(operation);
    if (plan.latencyMs >= 1) await sleep(plan.latencyMs);
    if (plan.error && plan.fail === 'before') {
      this.injected.before++;
      throw plan.error;
    }
    const result = await run();
    if (plan.error && plan.fail === 'after') {
      this.injected.after++;
      throw plan.error;
    }
    return result;
  }

  /** A failing listing breaks off after a few items, the way a paginated listing loses a page. */
  override async *list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey> {
    const plan = this.plan('list');
    if (plan.latencyMs >= 1) await sleep(plan.latencyMs);
    let yielded = 0;
    for await (const item of this.inner.list(prefix, options)) {
      if (plan.error && yielded >= plan.listAfter) {
        this.injected.midList++;
        throw plan.error;
      }
      yielded++;
      yield item;
    }
    if (plan.error) {
      this.injected.midList++;
      throw plan.error;
    }
  }
}

/**
 * A Store that refuses chosen writes and nothing else: `put` of a key in `rejected`, or a
 * compare-and-swap of a ref in `rejectedRefs`, fails with StoreUnavailableError every time (a side
 * of a mirror that keeps rejecting one object), until the test removes it. Deterministic, unlike
 * FaultyStore's scattered faults.
 */
export class RejectingStore extends ForwardingStore {
  override readonly capabilities: StoreCapabilities = BASIC_CAPABILITIES;
  readonly rejected = new Set<string>();
  readonly rejectedRefs = new Set<string>();
  /** Writes refused so far. */
  refusals = 0;

  constructor(inner: Store) {
    super(inner, `rejecting(${inner.description})`);
  }

  protected override async pass<T>({ operation, target, run }: Passage<T>): Promise<T> {
    if (
      (operation === 'put' && this.rejected.has(target)) ||
      (operation === 'compareAndSwapRef' && this.rejectedRefs.has(target))
    ) {
      this.refusals++;
      throw new StoreUnavailableError(`injected refusal: ${operation} ${target}`);
    }
    return run();
  }
}
