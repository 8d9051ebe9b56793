/**
 * Upload verification off the event loop: envelopes are decoded and hashed on a pool of worker
 * threads sized to the cores (node:worker_threads), so one big upload never keeps the server from
 * answering everyone else. The envelope's memory moves to a worker and back (transferred, not
 * copied). Objects too small to be worth a thread hop are verified in place.
 *
 * The pool's queue is bounded in bytes: a caller feeding it from a socket waits for admission,
 * and while it waits the socket is paused (body.ts), so a client sending faster than the cores
 * can verify is slowed by TCP instead of filling the server's memory.
 */
import { availableParallelism } from 'node:os';
import { decodeEnvelopeHeader } from '../objects/index.js';
import { WorkerPool, ownedArrayBuffer, type Admitted } from '../workers/index.js';
import { invalidObject } from './errors.js';
import { WeightedSemaphore } from '../util/limit.js';
import {
  verifyUpload,
  type ExpectedKind,
  type VerifiedUpload,
  type VerifyOptions,
} from './verify.js';

export interface VerifyJob {
  readonly id: number;
  readonly expected: ExpectedKind;
  readonly oid: string;
  readonly data: ArrayBuffer;
  readonly length: number;
  readonly options: VerifyOptions;
}

export type VerifyFailure =
  | { readonly kind: 'invalid'; readonly oid: string; readonly message: string }
  | { readonly kind: 'error'; readonly message: string };

export type VerifyReply =
  | {
      readonly id: number;
      readonly ok: true;
      readonly verified: VerifiedUpload;
      /** The envelope's memory, handed back. */
      readonly data: ArrayBuffer;
    }
  | { readonly id: number; readonly ok: false; readonly failure: VerifyFailure };

/** A verdict and the envelope's bytes (the caller's buffer may have moved to a worker and back). */
export interface VerifiedBytes {
  readonly verified: VerifiedUpload;
  readonly data: Buffer;
}

export interface VerifierOptions {
  /** Worker threads; 0 verifies on the event loop. Default: the cores available. */
  readonly workers?: number;
  /** Bytes queued or being verified at once before `admit` waits. */
  readonly maxQueuedBytes: number;
  /** Envelopes smaller than this are verified in place. */
  readonly inlineBelow?: number;
}

/** What /health/detailed reports of the pool. */
export interface VerifierStats {
  readonly workers: number;
  readonly jobsInFlight: number;
  readonly queuedBytes: number;
  readonly maxQueuedBytes: number;
  /** Envelopes verified on a worker since the server started. */
  readonly verifiedOnWorkers: number;
}

/** Below this a thread hop (~tens of µs) costs more than decoding and hashing in place. */
const DEFAULT_INLINE_BELOW = 64 * 1024;

export function defaultVerifyWorkers(): number {
  return availableParallelism();
}

export class UploadVerifier {
  private pool: WorkerPool<VerifyJob, VerifyReply, VerifyFailure> | null = null;
  private readonly workers: number;
  private readonly inlineBelow: number;
  private onWorkers = 0;
  private closed = false;

  /** Verifications in place share the same bound as the pool's queue. */
  private readonly inPlace: WeightedSemaphore;

  constructor(private readonly options: VerifierOptions) {
    this.workers = options.workers ?? defaultVerifyWorkers();
    this.inlineBelow = options.inlineBelow ?? DEFAULT_INLINE_BELOW;
    this.inPlace = new WeightedSemaphore(options.maxQueuedBytes);
  }

  /** Verifies one envelope; throws the 422 naming it when it does not match. */
  async verify(
    expected: ExpectedKind,
    oid: string,
    data: Buffer,
    options: VerifyOptions,
    signal?: AbortSignal,
  ): Promise<VerifiedBytes> {
    return (await this.admit(expected, oid, data, options, signal)).result;
  }

  /**
   * Resolves once the envelope has a place in the pool's bounded queue (at once for one verified
   * in place); `result` then settles with the verdict. `data` must not be used afterwards: its
   * memory may have moved to a worker; the verdict hands the bytes back.
   */
  async admit(
    expected: ExpectedKind,
    oid: string,
    data: Buffer,
    options: VerifyOptions,
    signal?: AbortSignal,
  ): Promise<Admitted<VerifiedBytes>> {
    // What verifying holds at its peak is what the envelope decodes to, not what it stores: a
    // 2 KB zstd bomb declaring megabytes weighs megabytes, in place or on a worker.
    const decoded = options.mode === 'encrypted' ? 0 : declaredPlainLength(data);
    const weight = Math.min(data.length + decoded, this.options.maxQueuedBytes);
    // An encrypted repository's check reads the header only: nothing to move off the loop.
    if (
      this.workers === 0 ||
      Math.max(data.length, decoded) < this.inlineBelow ||
      options.mode === 'encrypted'
    ) {
      await this.inPlace.acquire(weight, signal);
      const result = verifyUpload(expected, oid, data, options)
        .then((verified) => ({ verified, data }))
        .finally(() => this.inPlace.release(weight));
      result.catch(() => undefined);
      return { result };
    }
    const pool = this.startPool();
    const memory = ownedArrayBuffer(data);
    const length = data.length;
    const admitted = await pool.admit(
      (id) => ({ id, expected, oid, data: memory, length, options }),
      [memory],
      weight,
      signal,
    );
    this.onWorkers++;
    const result = admitted.result.then((reply) => ({
      verified: reply.verified,
      data: Buffer.from(reply.data, 0, length),
    }));
    result.catch(() => undefined);
    return { result };
  }

  /** Starts the threads ahead of the first upload (a no-op once started, or with no workers). */
  warm(): void {
    if (this.workers > 0 && !this.closed) this.startPool();
  }

  get stats(): VerifierStats {
    return {
      workers: this.workers,
      jobsInFlight: this.pool?.jobsInFlight ?? 0,
      queuedBytes: this.pool?.queuedWeight ?? 0,
      maxQueuedBytes: this.options.maxQueuedBytes,
      verifiedOnWorkers: this.onWorkers,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.close();
  }

  /** Threads start with the first writer's request: a read-only server never starts any. */
  private startPool(): WorkerPool<VerifyJob, VerifyReply, VerifyFailure> {
    if (this.closed) throw new Error('the verification pool is closed');
    this.pool ??= new WorkerPool({
      script: new URL('./verify-worker.js', import.meta.url),
      size: this.workers,
      name: 'verification worker',
      maxWeight: this.options.maxQueuedBytes,
      rebuild: (failure) =>
        failure.kind === 'invalid'
          ? invalidObject(failure.oid, failure.message)
          : new Error(failure.message),
    });
    return this.pool;
  }
}

/** The canonical length an envelope's header declares; 0 when it does not parse (verification names that). */
function declaredPlainLength(data: Buffer): number {
  try {
    return decodeEnvelopeHeader(data).plainLength;
  } catch {
    return 0;
  }
}
