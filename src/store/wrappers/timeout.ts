import { StoreUnavailableError } from '../../errors/index.js';
import type { ListedKey, OperationOptions, Store } from '../store.js';
import { ForwardingStore, type Passage } from './forwarding.js';
import type { StoreOperation } from './operations.js';

/** An attempt that hit its deadline: unavailable like any stall, and known as one to the retry wrapper. */
export class DeadlineError extends StoreUnavailableError {}

export interface TimeoutOptions {
  /** Longest one attempt of one call may take (config `request_timeout_ms`). */
  readonly requestTimeoutMs: number;
}

/**
 * Gives every attempt a deadline. The SDKs' own connect and idle timers do not cover every way a
 * connection can stall (Azure and GCS expose none for a reply that stops mid-body, and a request
 * can sit unanswered behind a proxy), so without this a stalled request hangs `push` or `clone`
 * forever and the retry wrapper outside never gets to run.
 *
 * When the deadline passes, the attempt is aborted (its signal), and the call rejects at once
 * with a StoreUnavailableError naming the remote, even if a backend is slow to honour the abort;
 * the retry wrapper then repeats it like any other transient failure. A caller's own abort is
 * passed through as the caller's.
 *
 * It sits inside the concurrency limit, so time spent waiting for a slot never counts.
 */
export class TimeoutStore extends ForwardingStore {
  readonly requestTimeoutMs: number;

  constructor(inner: Store, options: TimeoutOptions) {
    super(inner);
    this.requestTimeoutMs = options.requestTimeoutMs;
  }

  protected override pass<T>({ operation, target, options, run }: Passage<T>): Promise<T> {
    return this.withDeadline(operation, target, options?.signal, run);
  }

  /** A listing may be long, so the deadline applies to each page of it: every step must arrive in time. */
  override async *list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey> {
    const outer = options?.signal;
    const controller = new AbortController();
    const follow = (): void => controller.abort(outer?.reason);
    if (outer?.aborted) follow();
    outer?.addEventListener('abort', follow, { once: true });
    try {
      const listing = this.inner.list(prefix, { ...options, signal: controller.signal });
      const iterator = listing[Symbol.asyncIterator]();
      try {
        for (;;) {
          const step = await this.race('list', prefix, outer, controller, iterator.next());
          if (step.done === true) return;
          yield step.value;
        }
      } finally {
        // Closing an iterator whose request hangs would hang too; aborted above, so do not wait.
        void iterator.return?.()?.catch(() => undefined);
      }
    } finally {
      outer?.removeEventListener('abort', follow);
    }
  }

  private async withDeadline<T>(
    operation: StoreOperation,
    target: string,
    outer: AbortSignal | undefined,
    run: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const controller = new AbortController();
    const follow = (): void => controller.abort(outer?.reason);
    if (outer?.aborted) follow();
    outer?.addEventListener('abort', follow, { once: true });
    try {
      return await this.race(operation, target, outer, controller, run(controller.signal));
    } finally {
      outer?.removeEventListener('abort', follow);
    }
  }

  /** `work`, or the deadline's error if it comes first (after aborting the attempt). */
  private race<T>(
    operation: StoreOperation,
    target: string,
    outer: AbortSignal | undefined,
    controller: AbortController,
    work: Promise<T>,
  ): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new DeadlineError(
          `no answer from ${this.description} within ${this.requestTimeoutMs} ms during ${operation} ${target}`,
          {
            hint: 'the connection stalled or the remote is overloaded; raise request_timeout_ms if single requests are legitimately this slow',
          },
        );
        controller.abort(err);
        reject(err);
      }, this.requestTimeoutMs);
    });
    return Promise.race([
      work.catch((err: unknown) => {
        // The attempt failed because we aborted it: the deadline's error says why, not the SDK's.
        const reason: unknown = controller.signal.reason;
        throw controller.signal.aborted && !outer?.aborted ? reason : err;
      }),
      deadline,
    ]).finally(() => clearTimeout(timer));
  }
}
