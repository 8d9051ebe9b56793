import { availableParallelism } from 'node:os';
import { ObjectCorruptError, ObjectMissingError } from '../errors/index.js';
import type { ManifestChunk, Oid } from '../objects/index.js';
import type { ChunkStoreSpec, IngestedFile, StoredChunk } from './local-chunks.js';
import { WorkerPool, ownedArrayBuffer, type PoolProgress } from './pool.js';

export type ChunkJob =
  | {
      readonly type: 'store';
      readonly id: number;
      readonly data: ArrayBuffer;
      readonly length: number;
      readonly skipCompression: boolean;
      readonly oid?: Oid;
    }
  | {
      readonly type: 'verify';
      readonly id: number;
      readonly fd: number;
      readonly position: number;
      readonly length: number;
      readonly oid: Oid;
      readonly last: boolean;
    }
  | {
      readonly type: 'restore';
      readonly id: number;
      readonly oid: Oid;
      readonly fd: number;
      readonly position: number;
      readonly size: number;
    }
  | {
      readonly type: 'ingest';
      readonly id: number;
      readonly absPath: string;
      readonly relPath: string;
      readonly previous?: readonly ManifestChunk[];
    }
  | {
      readonly type: 'adoptInto';
      readonly id: number;
      readonly oid: Oid;
      readonly data: ArrayBuffer;
      readonly length: number;
      readonly fd: number;
      readonly position: number;
      readonly size: number;
      /** Whether the stored bytes go into the store too (LocalChunks.adoptInto). */
      readonly keep: boolean;
    }
  | {
      readonly type: 'adopt';
      readonly id: number;
      readonly oid: Oid;
      readonly data: ArrayBuffer;
      readonly length: number;
    };

export type ChunkJobType = ChunkJob['type'];

/** Sent while an ingest job runs: bytes read since the last report. */
export type ChunkProgress = PoolProgress;

export type ChunkReply =
  /** `stored`: the chunk a store job stored, or a verify job found (absent when it did not match). */
  | {
      readonly id: number;
      readonly ok: true;
      readonly stored?: StoredChunk;
      readonly bytes?: number;
      readonly file?: IngestedFile;
    }
  | {
      readonly id: number;
      readonly ok: false;
      readonly failure:
        | { readonly kind: 'corrupt' | 'missing'; readonly oid: Oid; readonly message: string }
        | { readonly kind: 'error'; readonly message: string; readonly code?: string };
    };

/**
 * Worker threads that hash, compress, seal and write chunks while the main thread reads and cuts
 * the next ones: every core busy, one thread hop per chunk instead of one per step, and the chunk's
 * memory moved to the worker rather than copied. Back-pressure is the caller's (ContentContext's
 * limiter bounds chunks in flight).
 */
export class ChunkWorkerPool {
  private readonly pool: WorkerPool<ChunkJob, ChunkReply, ChunkFailure>;

  /**
   * `onVerified` hears of each chunk a worker verified (decoded and hashed) for a restore or an
   * adoption: the work docs/transfer.md says happens once per chunk, counted by its tests.
   * `onJob` hears of every job sent, by type (which work crossed to a worker, for the same tests).
   */
  constructor(
    spec: ChunkStoreSpec,
    size = defaultPoolSize(),
    private readonly onVerified: () => void = () => undefined,
    private readonly onJob: (type: ChunkJobType) => void = () => undefined,
  ) {
    this.pool = new WorkerPool({
      script: new URL('./chunk-worker.js', import.meta.url),
      size,
      workerData: spec,
      name: 'chunk worker',
      rebuild,
    });
  }

  /**
   * Stores one chunk; the chunk's memory is handed to a worker, so `chunk` is unusable afterwards.
   * `oid`, when the caller has already hashed the chunk, spares the worker hashing it again.
   */
  async store(chunk: Buffer, skipCompression: boolean, oid?: Oid): Promise<StoredChunk> {
    const data = ownedArrayBuffer(chunk);
    const reply = await this.submit(
      (id) => ({
        type: 'store',
        id,
        data,
        length: chunk.length,
        skipCompression,
        ...(oid ? { oid } : {}),
      }),
      [data],
      chunk.length,
    );
    return reply.stored!;
  }

  /**
   * Whether the `length` bytes at `position` of the open file `fd` are chunk `oid`, ending where a
   * scan would cut (LocalChunks.verifyAt): the chunk (stored if the store lacked it) or null. The
   * worker reads the bytes itself; the caller keeps `fd` open until this settles.
   */
  async verifyAt(
    fd: number,
    position: number,
    length: number,
    oid: Oid,
    last: boolean,
  ): Promise<StoredChunk | null> {
    const reply = await this.submit(
      (id) => ({ type: 'verify', id, fd, position, length, oid, last }),
      [],
      length,
    );
    return reply.stored ?? null;
  }

  /**
   * Writes chunk `oid`, verified, into the open file `fd` at `position` (the caller keeps `fd` open
   * until this settles). Rejects with ObjectMissingError or ObjectCorruptError naming the chunk.
   */
  async restoreInto(oid: Oid, fd: number, position: number, size: number): Promise<number> {
    const reply = await this.submit(
      (id) => ({ type: 'restore', id, oid, fd, position, size }),
      [],
      size,
    );
    this.onVerified();
    return reply.bytes!;
  }

  /**
   * Reads, chunks and stores a whole file on one worker; the caller writes the manifest. Worth it
   * when several files can keep every worker busy: chunking then runs on every core too.
   */
  async ingestFile(
    absPath: string,
    relPath: string,
    size: number,
    onProgress: (bytes: number) => void,
    previous?: readonly ManifestChunk[],
  ): Promise<IngestedFile> {
    const reply = await this.submit(
      (id) => ({ type: 'ingest', id, absPath, relPath, ...(previous ? { previous } : {}) }),
      [],
      size,
      onProgress,
    );
    return reply.file!;
  }

  /**
   * Verifies a chunk fetched from a remote and writes it to the local store, on a worker. The
   * buffer's memory is handed over, so `stored` is unusable afterwards. Rejects with
   * ObjectCorruptError naming the chunk; nothing unverified is written.
   */
  async adopt(oid: Oid, stored: Buffer): Promise<number> {
    const data = ownedArrayBuffer(stored);
    const reply = await this.submit(
      (id) => ({ type: 'adopt', id, oid, data, length: stored.length }),
      [data],
      stored.length,
    );
    this.onVerified();
    return reply.bytes!;
  }

  /**
   * A fetched chunk verified once on a worker, then written both into the open file `fd` at
   * `position` and, unless `keep` is false, into the local store (LocalChunks.adoptInto). The
   * buffer's memory is handed over; the caller keeps `fd` open until this settles. Rejects with
   * ObjectCorruptError naming the chunk; nothing unverified is written anywhere.
   */
  async adoptInto(
    oid: Oid,
    stored: Buffer,
    fd: number,
    position: number,
    size: number,
    keep = true,
  ): Promise<number> {
    const data = ownedArrayBuffer(stored);
    const reply = await this.submit(
      (id) => ({
        type: 'adoptInto',
        id,
        oid,
        data,
        length: stored.length,
        fd,
        position,
        size,
        keep,
      }),
      [data],
      size,
    );
    this.onVerified();
    return reply.bytes!;
  }

  get size(): number {
    return this.pool.size;
  }

  /** Jobs sent to a worker and not yet replied to. */
  get jobsInFlight(): number {
    return this.pool.jobsInFlight;
  }

  private submit(
    job: (id: number) => ChunkJob,
    transfer: ArrayBuffer[],
    weight: number,
    onProgress?: (bytes: number) => void,
  ): Promise<Extract<ChunkReply, { ok: true }>> {
    return this.pool.submit(
      (id) => {
        const made = job(id);
        this.onJob(made.type);
        return made;
      },
      transfer,
      weight,
      onProgress,
    );
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

type ChunkFailure = Extract<ChunkReply, { ok: false }>['failure'];

/** The typed error a worker reported, rebuilt on this side of the thread boundary. */
function rebuild(failure: ChunkFailure): Error {
  if (failure.kind !== 'error') {
    if (failure.kind === 'missing') return new ObjectMissingError(failure.oid, 'chunk');
    return new ObjectCorruptError(
      failure.oid,
      failure.message.replace(/^object \S+ is corrupt: /, ''),
    );
  }
  return Object.assign(new Error(failure.message), failure.code ? { code: failure.code } : {});
}

/** One worker per core (at least two, at most eight). */
export function defaultPoolSize(): number {
  return Math.max(2, Math.min(8, availableParallelism()));
}
