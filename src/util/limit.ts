/** Counting semaphore: bounds work in flight so memory stays bounded however much is queued. */
export class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {
    if (limit < 1) throw new RangeError('semaphore limit must be at least 1');
  }

  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.active--;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

/**
 * Bounds the sum of weights (bytes) of the work in flight rather than its count: a piece waits
 * while what is inside plus its weight exceeds `limit`, in arrival order; a piece heavier than the
 * whole limit runs once nothing else is inside, alone. A waiter whose signal aborts leaves the
 * line (so a dropped request frees its place for those behind it).
 */
export class WeightedSemaphore {
  private used = 0;
  private readonly line: { weight: number; go: () => void }[] = [];

  constructor(private readonly limit: number) {
    if (!(limit > 0)) throw new RangeError('weighted semaphore limit must be positive');
  }

  async acquire(weight: number, signal?: AbortSignal): Promise<void> {
    if (this.line.length === 0 && this.fits(weight)) {
      this.used += weight;
      return;
    }
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        weight,
        go: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        const at = this.line.indexOf(waiter);
        if (at >= 0) this.line.splice(at, 1);
        reject(signal!.reason instanceof Error ? signal!.reason : new Error('aborted'));
        // The aborted piece may have been what held lighter ones behind it.
        this.wake();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.line.push(waiter);
    });
  }

  release(weight: number): void {
    this.used -= weight;
    this.wake();
  }

  async run<T>(weight: number, fn: () => Promise<T>): Promise<T> {
    await this.acquire(weight);
    try {
      return await fn();
    } finally {
      this.release(weight);
    }
  }

  private fits(weight: number): boolean {
    return this.used === 0 || this.used + weight <= this.limit;
  }

  private wake(): void {
    while (this.line.length > 0 && this.fits(this.line[0]!.weight)) {
      const next = this.line.shift()!;
      this.used += next.weight;
      next.go();
    }
  }
}

/**
 * Maps over items with at most `concurrency` in flight; results keep input order. On the first
 * error no new item starts, and the error is thrown only once every item in flight has settled,
 * so nothing is still writing when the caller starts cleaning up.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  let firstError: unknown;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (err) {
        if (!failed) firstError = err;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failed) throw firstError;
  return results;
}
