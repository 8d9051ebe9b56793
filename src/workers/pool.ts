/**
 * A pool of worker threads running one script, shared by the client's chunk workers and the
 * server's upload verification: jobs carry an id, replies answer it, a failure comes back as data
 * the owner rebuilds into its typed error. Each job weighs what it will chew through (bytes), and
 * goes to the worker with the least weight left, not the one with the fewest jobs.
 *
 * `maxWeight` bounds the work queued at once: `admit` then waits until the job fits, so a caller
 * feeding the pool from a socket stops reading while the workers catch up (back-pressure) instead
 * of piling bytes up in memory. A job heavier than the bound on its own is admitted once the pool
 * is empty. Without a bound, admission is immediate and back-pressure is the caller's.
 */
import type { Worker } from 'node:worker_threads';

/** What a worker posts back: the job's result, or a failure the owner turns into an Error. */
export type PoolReply<Failure> =
  | { readonly id: number; readonly ok: true }
  | { readonly id: number; readonly ok: false; readonly failure: Failure };

/** Posted while a job runs: weight (bytes) got through since the last report. */
export interface PoolProgress {
  readonly id: number;
  readonly progress: number;
}

export interface WorkerPoolOptions<Failure> {
  /** The worker script (beside the module that names it: see scripts/bundle.mjs). */
  readonly script: URL;
  readonly size: number;
  readonly workerData?: unknown;
  /** For messages: "chunk worker", "verification worker". */
  readonly name: string;
  /** The typed error a worker reported, rebuilt on this side of the thread boundary. */
  readonly rebuild: (failure: Failure) => Error;
  /** Weight queued or running at once beyond which `admit` waits. Default: no bound. */
  readonly maxWeight?: number;
}

interface Pending<Reply> {
  resolve(reply: Reply): void;
  reject(err: Error): void;
  slot: Slot;
  /** Weight left (progress reports lower it) and as admitted. */
  weight: number;
  readonly admitted: number;
  onProgress?: (progress: number) => void;
}

interface Slot {
  readonly worker: Worker;
  inflight: number;
  /** Weight of the jobs in flight on this worker, less what they reported done. */
  load: number;
}

/** A job admitted to the pool; its result is wrapped so awaiting admission never awaits the job. */
export interface Admitted<T> {
  readonly result: Promise<T>;
}

export class WorkerPool<Job, Reply extends PoolReply<Failure>, Failure> {
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending<Extract<Reply, { ok: true }>>>();
  private readonly waiting: { weight: number; go: () => void; stop: (err: Error) => void }[] = [];
  private nextId = 1;
  private weight = 0;
  /** Weight of waiters woken but not yet submitted: counted so nobody overtakes them. */
  private reserved = 0;
  private broken: Error | null = null;

  constructor(private readonly options: WorkerPoolOptions<Failure>) {
    for (let i = 0; i < options.size; i++) {
      // Taken when a pool starts, not imported: a command that never starts one (status, a push)
      // does not load node:worker_threads.
      const threads = process.getBuiltinModule('node:worker_threads');
      const worker = new threads.Worker(options.script, { workerData: options.workerData });
      const slot: Slot = { worker, inflight: 0, load: 0 };
      worker.on('message', (reply: Reply | PoolProgress) => {
        if ('progress' in reply) this.progressed(reply);
        else this.settle(reply);
      });
      worker.on('error', (err) => this.fail(err));
      worker.on('exit', (code) => {
        if (this.pending.size > 0)
          this.fail(new Error(`${options.name} exited (code ${code}) with work in flight`));
      });
      // An idle worker must not keep the process alive, a busy one must: ref'd only while it has jobs.
      worker.unref();
      this.slots.push(slot);
    }
  }

  get size(): number {
    return this.slots.length;
  }

  /** Weight admitted and not yet settled. */
  get queuedWeight(): number {
    return this.weight;
  }

  /** Jobs admitted and not yet settled. */
  get jobsInFlight(): number {
    return this.pending.size;
  }

  /**
   * Runs a job at once, whatever the bound (callers that bound their own work). `job` builds the
   * message from the id; `transfer` lists memory moved to the worker rather than copied.
   */
  submit(
    job: (id: number) => Job,
    transfer: readonly ArrayBuffer[],
    weight: number,
    onProgress?: (progress: number) => void,
  ): Promise<Extract<Reply, { ok: true }>> {
    if (this.broken) return Promise.reject(this.broken);
    const slot = this.slots.reduce((best, s) => (s.load < best.load ? s : best));
    const id = this.nextId++;
    if (slot.inflight++ === 0) slot.worker.ref();
    slot.load += weight;
    this.weight += weight;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve,
        reject,
        slot,
        weight,
        admitted: weight,
        ...(onProgress ? { onProgress } : {}),
      });
      slot.worker.postMessage(job(id), [...transfer]);
    });
  }

  /**
   * Resolves once the job fits under `maxWeight` and has been handed to a worker; its result is
   * `admitted.result`. Waiting callers are admitted in order. Rejects with `signal`'s reason when
   * it aborts first.
   */
  async admit(
    job: (id: number) => Job,
    transfer: readonly ArrayBuffer[],
    weight: number,
    signal?: AbortSignal,
  ): Promise<Admitted<Extract<Reply, { ok: true }>>> {
    if (!this.fits(weight) || this.waiting.length > 0) {
      await this.wait(weight, signal);
      this.reserved -= weight;
    }
    const result = this.submit(job, transfer, weight);
    // The caller may stop before awaiting it (a request that failed on another record).
    result.catch(() => undefined);
    return { result };
  }

  async close(): Promise<void> {
    const closed = new Error(`${this.options.name} pool closed`);
    this.broken ??= closed;
    for (const w of this.waiting.splice(0)) w.stop(closed);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }

  private fits(weight: number): boolean {
    const max = this.options.maxWeight;
    const total = this.weight + this.reserved;
    return max === undefined || total === 0 || total + weight <= max;
  }

  private wait(weight: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    signal?.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.waiting.indexOf(entry);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(signal!.reason);
        this.wake();
      };
      const entry = {
        weight,
        go: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        stop: (err: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      this.waiting.push(entry);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Admits waiting jobs, in order, while they fit; the weight they will add is counted at once. */
  private wake(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.weight)) {
      const next = this.waiting.shift()!;
      this.reserved += next.weight;
      next.go();
    }
  }

  /**
   * A worker's load counts the weight it has yet to get through, not the size of what it was
   * given: the next job then goes to the worker that will be free first.
   */
  private progressed(report: PoolProgress): void {
    const p = this.pending.get(report.id);
    if (!p) return;
    const done = Math.min(report.progress, p.weight);
    p.weight -= done;
    p.slot.load -= done;
    p.onProgress?.(report.progress);
  }

  private settle(reply: Reply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    p.slot.load -= p.weight;
    this.weight -= p.admitted;
    if (--p.slot.inflight === 0) p.slot.worker.unref();
    if (reply.ok) p.resolve(reply as Extract<Reply, { ok: true }>);
    else p.reject(this.options.rebuild((reply as { failure: Failure }).failure));
    this.wake();
  }

  private fail(err: Error): void {
    this.broken ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.weight = 0;
    for (const w of this.waiting.splice(0)) w.stop(err);
  }
}

/**
 * An ArrayBuffer holding exactly the chunk's bytes that can be transferred: the chunk's own when
 * it owns one (chunks over 4 KiB), else a copy (small Buffers share Node's pool slab).
 */
export function ownedArrayBuffer(chunk: Buffer): ArrayBuffer {
  const buffer = chunk.buffer;
  if (buffer instanceof ArrayBuffer && chunk.byteOffset === 0 && buffer.byteLength === chunk.length)
    return buffer;
  const copy = new Uint8Array(chunk.length);
  copy.set(chunk);
  return copy.buffer;
}
