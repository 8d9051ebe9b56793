import { Semaphore } from '../../util/limit.js';
import { abortReason, throwIfAborted } from './operations.js';
import {
  assertObjectKey,
  assertValidKey,
  assertValidRefName,
  type ListedKey,
  type OperationOptions,
  type RefValue,
  type Store,
} from '../store.js';

/** Config `max_concurrent_parts`: parallel object transfers per remote. */
export const DEFAULT_MAX_CONCURRENT = 8;
export const DEFAULT_MAX_CONCURRENT_REFS = 4;

export interface ConcurrencyLimitOptions {
  /** Data operations in flight: get, put, has, delete and each step of a listing. */
  maxConcurrent?: number;
  /**
   * Ref operations in flight. A separate pool so a queue of multi-megabyte uploads never holds up
   * a ref read or the CAS that finishes a push.
   */
  maxConcurrentRefs?: number;
}

/**
 * Bounds the requests a Store has in flight (connections, sockets, memory for bodies) however
 * many callers pile up. Validation happens before queueing, so a bad key never waits for a slot.
 */
export class ConcurrencyLimitedStore implements Store {
  readonly description: string;
  private readonly data: Semaphore;
  private readonly refs: Semaphore;
  /** Present only when the inner store batches (see Store.putMany); one batch holds one data slot. */
  declare readonly putMany?: Store['putMany'];
  declare readonly getMany?: Store['getMany'];
  /** Present only when the inner store has the local fast path; one batch holds one data slot. */
  declare readonly getReturnsFreshBuffers?: boolean;
  declare readonly localFiles?: Store['localFiles'];
  declare readonly adoptFiles?: Store['adoptFiles'];

  constructor(
    readonly inner: Store,
    options: ConcurrencyLimitOptions = {},
  ) {
    this.description = inner.description;
    if (inner.getReturnsFreshBuffers) this.getReturnsFreshBuffers = true;
    this.data = new Semaphore(options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT);
    this.refs = new Semaphore(options.maxConcurrentRefs ?? DEFAULT_MAX_CONCURRENT_REFS);
    if (inner.putMany) {
      this.putMany = async (entries, opts) => {
        for (const { key } of entries) assertValidKey(key);
        return this.within(this.data, opts, () => inner.putMany!(entries, opts));
      };
    }
    if (inner.getMany) {
      this.getMany = async (keys, opts) => {
        for (const key of keys) assertValidKey(key);
        return this.within(this.data, opts, () => inner.getMany!(keys, opts));
      };
    }
    if (inner.localFiles) {
      this.localFiles = async (keys, opts) => {
        for (const key of keys) assertObjectKey(key);
        return this.within(this.data, opts, () => inner.localFiles!(keys, opts));
      };
    }
    if (inner.adoptFiles) {
      this.adoptFiles = async (files, opts) => {
        for (const { key } of files) assertObjectKey(key);
        return this.within(this.data, opts, () => inner.adoptFiles!(files, opts));
      };
    }
  }

  async get(key: string, options?: OperationOptions): Promise<Buffer> {
    assertValidKey(key);
    return this.within(this.data, options, () => this.inner.get(key, options));
  }

  async put(key: string, data: Uint8Array, options?: OperationOptions): Promise<void> {
    assertValidKey(key);
    return this.within(this.data, options, () => this.inner.put(key, data, options));
  }

  async has(keys: readonly string[], options?: OperationOptions): Promise<boolean[]> {
    for (const key of keys) assertValidKey(key);
    return this.within(this.data, options, () => this.inner.has(keys, options));
  }

  /**
   * Holds a slot per step, not for the whole listing: the consumer typically does other store
   * calls between items (gc deletes, fsck reads), and holding a slot across them would deadlock at
   * a limit of 1 and starve transfers at any limit.
   */
  async *list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey> {
    const iterator = this.inner.list(prefix, options)[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        const step = await this.within(this.data, options, () => iterator.next());
        if (step.done) {
          finished = true;
          return;
        }
        yield step.value;
      }
    } finally {
      // An early `break` or an error must still let the backend close its cursor or connection.
      if (!finished) await iterator.return?.();
    }
  }

  async delete(key: string, options?: OperationOptions): Promise<void> {
    assertValidKey(key);
    return this.within(this.data, options, () => this.inner.delete(key, options));
  }

  async readRef(name: string, options?: OperationOptions): Promise<RefValue | null> {
    assertValidRefName(name);
    return this.within(this.refs, options, () => this.inner.readRef(name, options));
  }

  async compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options?: OperationOptions,
  ): Promise<boolean> {
    assertValidRefName(name);
    return this.within(this.refs, options, () =>
      this.inner.compareAndSwapRef(name, expected, next, options),
    );
  }

  async listRefs(prefix: string, options?: OperationOptions): Promise<Map<string, RefValue>> {
    return this.within(this.refs, options, () => this.inner.listRefs(prefix, options));
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async within<T>(
    semaphore: Semaphore,
    options: OperationOptions | undefined,
    fn: () => Promise<T>,
  ): Promise<T> {
    await acquire(semaphore, options?.signal);
    try {
      return await fn();
    } finally {
      semaphore.release();
    }
  }
}

/**
 * Semaphore has no cancellation, so an aborted waiter stays queued; when its turn comes it hands
 * the slot straight back. The caller is released immediately either way.
 */
async function acquire(semaphore: Semaphore, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return semaphore.acquire();
  throwIfAborted(signal);
  return new Promise<void>((resolve, reject) => {
    let abandoned = false;
    const onAbort = (): void => {
      abandoned = true;
      reject(abortReason(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    void semaphore.acquire().then(() => {
      signal.removeEventListener('abort', onAbort);
      if (abandoned) semaphore.release();
      else resolve();
    });
  });
}
