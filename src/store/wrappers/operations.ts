/** The Store methods that reach a backend; wrappers key their counters, limits and events on these. */
export type StoreOperation =
  'get' | 'put' | 'has' | 'list' | 'delete' | 'readRef' | 'compareAndSwapRef' | 'listRefs';

export const STORE_OPERATIONS: readonly StoreOperation[] = [
  'get',
  'put',
  'has',
  'list',
  'delete',
  'readRef',
  'compareAndSwapRef',
  'listRefs',
];

/** Ref operations are few and latency-critical (a push ends with one), so limits treat them apart from data. */
export function isRefOperation(op: StoreOperation): boolean {
  return op === 'readRef' || op === 'compareAndSwapRef' || op === 'listRefs';
}

/** What an injectable sleep must do: resolve after `ms`, or reject with the signal's reason once aborted. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export const abortableSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** `signal.reason` is `any` in the DOM typings; narrow it so callers throw something typed. */
export function abortReason(signal: AbortSignal): unknown {
  const reason: unknown = signal.reason;
  return reason ?? new DOMException('This operation was aborted', 'AbortError');
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}
