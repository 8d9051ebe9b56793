import { MediagitError, StoreUnavailableError, isRetriable } from '../../errors/index.js';
import {
  classifyFailure,
  isAbortError,
  isRetriableClass,
  networkCodeOf,
} from '../remote-service/failure.js';
import { randomBytes } from 'node:crypto';
import {
  assertValidRefName,
  assertValidRefTarget,
  isWriterToken,
  type ListedKey,
  type OperationOptions,
  type SwapOptions,
  type RefValue,
  type Store,
} from '../store.js';
import { ForwardingStore, type Passage } from './forwarding.js';
import { abortableSleep, throwIfAborted, type Sleep, type StoreOperation } from './operations.js';
import { DeadlineError } from './timeout.js';

/**
 * The default budget rides out a server restart or a failover: five retries waiting 125-250,
 * 250-500, 500-1000, 1000-2000 and 2000-4000 ms, so a call keeps trying for 3.9 to 7.8 s in all
 * before it gives up (docs/client.md "Retries").
 */
export const DEFAULT_MAX_RETRIES = 5;
export const DEFAULT_BASE_DELAY_MS = 250;
export const DEFAULT_MAX_DELAY_MS = 10_000;
export const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;
/**
 * Attempts of one call that may end in a stall (no answer within the read or request timeout)
 * before it gives up: a restarting server refuses or resets connections, which the budget above
 * is for, while one that stalls three times is hanging, and each further try would cost a whole
 * timeout more.
 */
export const DEFAULT_MAX_STALLS = 3;

export interface RetryInfo {
  readonly operation: StoreOperation;
  /** Key, ref name or list prefix; for `has`, a count such as "1000 keys". */
  readonly target: string;
  /** 1 for the first retry. */
  readonly attempt: number;
  readonly maxRetries: number;
  readonly delayMs: number;
  readonly error: unknown;
}

export interface RetryOptions {
  /** Retries after the first attempt (config `max_retries`); 0 disables retrying. */
  maxRetries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Ceiling on a server's Retry-After, so one bad header cannot park the CLI for an hour. */
  maxRetryAfterMs?: number;
  /** Stalled attempts (timeouts) one call may have before it gives up; default DEFAULT_MAX_STALLS. */
  maxStalls?: number;
  /** Which failures are worth another attempt; defaults to `isTransientError`. */
  isRetriable?: (err: unknown) => boolean;
  sleep?: Sleep;
  /** In [0, 1); injectable so tests can pin the jitter. */
  random?: () => number;
  /** Called before each wait, so the CLI can show "retrying…". Exceptions from it are ignored. */
  onRetry?: (info: RetryInfo) => void;
}

/**
 * `isRetriable` plus raw Node/undici network errors, which a backend may let escape unwrapped
 * (fetch reports them as `TypeError('fetch failed')` with the socket error as `cause`). What a
 * raw error means is the failure classifier's call (remote-service/failure.ts), as for every
 * backend's own errors.
 */
export function isTransientError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  let current: unknown = err;
  for (let depth = 0; depth < 6 && typeof current === 'object' && current !== null; depth++) {
    // A typed error is the backend's verdict (NotFound, Auth, Corrupt…); its cause must not overrule it.
    if (current instanceof MediagitError) return isRetriable(current);
    if (isAbortError(current)) return false;
    current = (current as { cause?: unknown }).cause;
  }
  return isRetriableClass(classifyFailure({ networkCode: networkCodeOf(err) }));
}

/** Codes of an attempt that got no answer in time, as opposed to one refused or cut off. */
const STALL_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ETIMEDOUT',
]);

/** True when the attempt failed because nothing arrived in time (a deadline or a read timeout). */
export function isStall(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 6 && typeof current === 'object' && current !== null; depth++) {
    if (current instanceof DeadlineError) return true;
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && STALL_CODES.has(code)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

function retryAfterOf(err: unknown): number | undefined {
  if (!(err instanceof StoreUnavailableError)) return undefined;
  const ms = err.retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/**
 * Retries transient backend failures with capped exponential backoff and full jitter, so a
 * thousand parallel uploads hitting the same 503 do not come back in lockstep.
 *
 * Order against ConcurrencyLimitedStore matters: Retrying(Limited(x)) gives the slot back while
 * sleeping, Limited(Retrying(x)) keeps it — the latter is the one that actually lowers the load
 * on a backend that is answering "slow down".
 *
 * Arguments are validated here, before the first attempt, so an invalid key is a TypeError
 * that never reaches (or is retried against) the backend.
 */
export class RetryingStore extends ForwardingStore {
  private readonly maxRetries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly maxStalls: number;
  private readonly retriable: (err: unknown) => boolean;
  private readonly sleep: Sleep;
  private readonly random: () => number;
  private readonly onRetry: ((info: RetryInfo) => void) | undefined;

  constructor(inner: Store, options: RetryOptions = {}) {
    super(inner);
    this.maxRetries = Math.max(0, Math.floor(options.maxRetries ?? DEFAULT_MAX_RETRIES));
    this.baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
    this.maxStalls = Math.max(1, Math.floor(options.maxStalls ?? DEFAULT_MAX_STALLS));
    this.retriable = options.isRetriable ?? isTransientError;
    this.sleep = options.sleep ?? abortableSleep;
    this.random = options.random ?? Math.random;
    this.onRetry = options.onRetry;
  }

  /**
   * Equal jitter: uniform in [c/2, c] for c = min(cap, base·2^n), raised to the server's
   * Retry-After if it gave one. Half of each wait is certain, so the whole budget spans a restart
   * whatever the dice say, and the random half still spreads a thousand clients that failed
   * together.
   */
  delayFor(retryIndex: number, err: unknown): number {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** retryIndex);
    let delay = ceiling / 2 + (this.random() * ceiling) / 2;
    const after = retryAfterOf(err);
    if (after !== undefined) delay = Math.max(delay, Math.min(after, this.maxRetryAfterMs));
    return Math.round(delay);
  }

  private shouldRetry(err: unknown, signal: AbortSignal | undefined): boolean {
    return !signal?.aborted && this.retriable(err);
  }

  /** Counts `err` against the call's stall allowance; true once it is used up. */
  private tooManyStalls(err: unknown, stalls: { count: number }): boolean {
    if (!isStall(err)) return false;
    stalls.count++;
    return stalls.count >= this.maxStalls;
  }

  private async pause(
    operation: StoreOperation,
    target: string,
    retryIndex: number,
    error: unknown,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const delayMs = this.delayFor(retryIndex, error);
    try {
      this.onRetry?.({
        operation,
        target,
        attempt: retryIndex + 1,
        maxRetries: this.maxRetries,
        delayMs,
        error,
      });
    } catch {
      // A broken progress display must not fail the upload it is reporting on.
    }
    await this.sleep(delayMs, signal);
  }

  /**
   * Every call but list and compareAndSwapRef. Repeating a call is safe: reads change nothing,
   * and re-storing a content-addressed key (put, a batch, adopted files) or deleting an absent
   * one is a no-op.
   */
  protected override async pass<T>({ operation, target, options, run }: Passage<T>): Promise<T> {
    const signal = options?.signal;
    const stalls = { count: 0 };
    for (let retryIndex = 0; ; retryIndex++) {
      throwIfAborted(signal);
      try {
        return await run();
      } catch (err) {
        if (retryIndex >= this.maxRetries || !this.shouldRetry(err, signal)) throw err;
        if (this.tooManyStalls(err, stalls)) throw err;
        await this.pause(operation, target, retryIndex, err, signal);
      }
    }
  }

  /**
   * A failed listing restarts from the beginning (backends promise no order, so there is no safe
   * resume point) and skips keys already yielded. The retry budget resets whenever a pass makes
   * progress, so a long listing with sporadic blips completes, while a backend that fails before
   * yielding anything new still gives up after `maxRetries`.
   */
  override async *list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey> {
    const signal = options?.signal;
    const yielded = new Set<string>();
    const stalls = { count: 0 };
    let retryIndex = 0;
    for (;;) {
      throwIfAborted(signal);
      let progressed = false;
      try {
        for await (const item of this.inner.list(prefix, options)) {
          if (yielded.has(item.key)) continue;
          yielded.add(item.key);
          progressed = true;
          yield item;
        }
        return;
      } catch (err) {
        if (progressed) retryIndex = 0;
        if (retryIndex >= this.maxRetries || !this.shouldRetry(err, signal)) throw err;
        if (this.tooManyStalls(err, stalls)) throw err;
        await this.pause('list', prefix, retryIndex, err, signal);
        retryIndex++;
      }
    }
  }

  /**
   * A CAS that failed in transit may or may not have been applied, so blindly repeating it could
   * report a conflict for our own write. Every attempt carries the same writer token (the
   * caller's, or one made here), and the ref itself is the first witness: at `next` → our write
   * landed; still at `expected` → nothing happened, try again; moved elsewhere → either another
   * writer won, or ours landed and another writer has already built on it. The repeat tells
   * those apart where the backend keeps the evidence (`capabilities.refWriterTokens`: S3's ref
   * log records each entry's token and the token it was built on), so the CAS is asked again and
   * answers true for our own landed write, false otherwise. With any other backend a moved ref is
   * a plain false.
   *
   * "At `next`" alone is not proof, though: a stale CAS whose `next` the ref already held (say,
   * deleting a ref that is already gone) would look like a success. So the ref is read once
   * before the first attempt — one extra round trip per ref update, which is rare next to the
   * object traffic — and `next` only counts as ours if the ref did not already hold it, or the
   * caller expected it to. A caller that passes `endAtNextIsEnough` (a push: the ref holding its
   * commit is all it asks) skips that read: the ref at `next` after a lost answer is success.
   *
   * Accepted ambiguities: another writer may have written the same `next` (the state the caller
   * asked for holds either way), and on a backend without a token record a request still in
   * flight may land after our re-read, so the repeat loses and we return false although the ref
   * holds our value — the caller's usual re-read-and-decide path copes with both. The repeat
   * reuses the caller's `expected` rather than the fresh read, so a backend that compares
   * versions still rejects an A→B→A change the caller never saw.
   */
  override async compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options?: SwapOptions,
  ): Promise<boolean> {
    assertValidRefName(name);
    assertValidRefTarget(next);
    const signal = options?.signal;
    const attempt: SwapOptions = {
      ...options,
      writerToken: isWriterToken(options?.writerToken)
        ? options.writerToken
        : randomBytes(16).toString('hex'),
    };
    const wanted = expected?.oid ?? null;
    const before = options?.endAtNextIsEnough
      ? null
      : ((await this.readRef(name, options))?.oid ?? null);
    const stalls = { count: 0 };
    for (let retryIndex = 0; ; retryIndex++) {
      throwIfAborted(signal);
      let failure: unknown;
      try {
        return await this.inner.compareAndSwapRef(name, expected, next, attempt);
      } catch (err) {
        if (!this.shouldRetry(err, signal)) throw err;
        failure = err;
      }
      const current = (await this.readRef(name, options))?.oid ?? null;
      if (current === next)
        return options?.endAtNextIsEnough === true || before !== next || wanted === next;
      if (current !== wanted && !this.capabilities.refWriterTokens) return false;
      if (retryIndex >= this.maxRetries || this.tooManyStalls(failure, stalls)) throw failure;
      await this.pause('compareAndSwapRef', name, retryIndex, failure, signal);
    }
  }
}
