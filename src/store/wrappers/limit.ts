import { Semaphore } from '../../util/limit.js';
import { ForwardingStore, type Passage } from './forwarding.js';
import { abortReason, isRefOperation, throwIfAborted } from './operations.js';
import type { ListedKey, OperationOptions, Store } from '../store.js';

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
export class ConcurrencyLimitedStore extends ForwardingStore {
  private readonly data: Semaphore;
  private readonly refs: Semaphore;

  constructor(inner: Store, options: ConcurrencyLimitOptions = {}) {
    super(inner);
    this.data = new Semaphore(options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT);
    this.refs = new Semaphore(options.maxConcurrentRefs ?? DEFAULT_MAX_CONCURRENT_REFS);
  }

  /** One slot per call; a batch or a set of local files holds one data slot for the whole call. */
  protected override pass<T>({ operation, options, run }: Passage<T>): Promise<T> {
    return this.within(isRefOperation(operation) ? this.refs : this.data, options, run);
  }

  /**
   * Holds a slot per step, not for the whole listing: the consumer typically does other store
   * calls between items (gc deletes, fsck reads), and holding a slot across them would deadlock at
   * a limit of 1 and starve transfers at any limit.
   */
  override async *list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey> {
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
