import { open, type FileHandle } from 'node:fs/promises';
import { CutFinder, type ChunkingParams } from '../chunking/index.js';
import { CompressionPolicy, type ManifestChunk, type Oid } from '../objects/index.js';
import type { Semaphore } from '../util/limit.js';
import type { ChunkWorkerPool } from './chunk-pool.js';
import { firstIndexByOid, type IngestedFile, type StoredChunk } from './local-chunks.js';

const READ_BYTES = 1024 * 1024;
/** Proposals in flight per worker: enough that a worker never waits on a message's round trip. */
const PROPOSALS_PER_WORKER = 3;

export interface GuidedIngestContext {
  readonly workers: ChunkWorkerPool;
  readonly chunking: ChunkingParams;
  readonly gear?: Uint32Array;
  /** The chunk ID function of the repository (plain SHA-256 or keyed). */
  readonly oidOf: (chunk: Buffer) => Oid;
  /** Bounds scanned chunks in flight, like every other ingest path's. */
  readonly limiter: Semaphore;
}

export interface GuidedIngest extends IngestedFile {
  /** Bytes taken as proposed (read and hashed by the workers) rather than scanned by this thread. */
  readonly followedBytes: number;
}

/**
 * Ingests a file too big to hand to one worker whose previous version is known: the old chunks
 * are proposed in order, several at a time, and each worker reads and hashes its proposal straight
 * from the file. An edited multi-GB file is then hashed on every core instead of being cut by
 * the main thread alone (whose boundary scan, at ~1 GB/s, was the whole add's speed).
 *
 * A proposal is taken only when its bytes hash to the old chunk and end where a scan would cut, so
 * the boundaries are exactly a full scan's (a cut depends only on the chunk's own bytes). From the
 * first proposal that fails, this thread scans as the streaming path does, until it cuts a chunk
 * the old version also had; proposing resumes after that chunk. Proposals already in flight past a
 * failure are simply not used: they read and hash, and store only bytes that are their chunk.
 */
export async function ingestAlongPrevious(
  ctx: GuidedIngestContext,
  absPath: string,
  relPath: string,
  previous: readonly ManifestChunk[],
  onBytes: (bytes: number) => void,
): Promise<GuidedIngest> {
  const handle = await open(absPath, 'r');
  const run = new GuidedRun(ctx, handle, relPath, previous, onBytes);
  try {
    return await run.ingest();
  } finally {
    // Workers read through this descriptor: it stays open until every job given it has settled.
    await run.settled();
    await handle.close();
  }
}

class GuidedRun {
  private readonly firstAt: Map<Oid, number>;
  private readonly oldSizes: Set<number>;
  private readonly policy: CompressionPolicy;
  private readonly parts: Array<{ size: number; stored: Promise<StoredChunk> }> = [];
  private readonly inFlight: Promise<unknown>[] = [];
  /** The first failed store: scanning stops at the next chunk rather than queueing more. */
  private failure: unknown;
  private readonly finder: CutFinder;
  /**
   * Room for an unfinished chunk (under maxSize) plus a read, in the finder's WebAssembly memory
   * where it can be, so that find() scans it in place (~30 % less CPU than the JavaScript loop over
   * a plain buffer, docs/chunking.md section 7): this thread's scan is what a file rewritten
   * throughout waits on.
   */
  private readonly window: Buffer;
  private windowStart = 0;
  private filled = 0;
  private followedBytes = 0;
  /** Where the next chunk starts: always a boundary a full scan finds. */
  private position = 0;
  /** The old chunk expected at `position`, or -1 while the versions are out of step. */
  private expected = 0;

  constructor(
    private readonly ctx: GuidedIngestContext,
    private readonly handle: FileHandle,
    relPath: string,
    private readonly previous: readonly ManifestChunk[],
    private readonly onBytes: (bytes: number) => void,
  ) {
    this.firstAt = firstIndexByOid(previous);
    this.oldSizes = new Set(previous.map((c) => c.size));
    this.finder = new CutFinder(ctx.chunking, ctx.gear);
    this.window = this.finder.window(ctx.chunking.maxSize + READ_BYTES);
    this.policy = new CompressionPolicy(relPath);
  }

  async ingest(): Promise<GuidedIngest> {
    const fileSize = (await this.handle.stat()).size;
    for (;;) {
      if (this.expected >= 0) await this.follow(fileSize);
      // Out of step (or out of proposals): scan until back in step, or to the end of the file.
      if (!(await this.scan())) break;
    }
    const results = await Promise.all(this.parts.map((p) => p.stored));
    let newChunks = 0;
    let storedBytes = 0;
    for (const r of results) {
      if (r.written) newChunks++;
      storedBytes += r.storedBytes;
    }
    return {
      chunks: results.map((r, i) => ({ oid: r.oid, size: this.parts[i]!.size })),
      size: this.position,
      newChunks,
      storedBytes,
      followedBytes: this.followedBytes,
    };
  }

  /** Every job that was given the descriptor, settled (their failures are ingest()'s to report). */
  async settled(): Promise<void> {
    await Promise.allSettled(this.inFlight);
  }

  /** Takes old chunks for as long as they hold; leaves `expected` at -1 where one does not. */
  private async follow(fileSize: number): Promise<void> {
    const depth = this.ctx.workers.size * PROPOSALS_PER_WORKER;
    const queue: Array<{ size: number; verdict: Promise<StoredChunk | null> }> = [];
    let proposeAt = this.position;
    let proposing = this.expected;
    for (;;) {
      while (queue.length < depth && proposing >= 0 && proposing < this.previous.length) {
        const guess = this.previous[proposing]!;
        const last = proposing === this.previous.length - 1;
        const end = proposeAt + guess.size;
        // The old last chunk ended at the end of the file: here it only fits if this file ends there too.
        if (
          guess.size < 1 ||
          guess.size > this.ctx.chunking.maxSize ||
          end > fileSize ||
          (last && end !== fileSize)
        ) {
          proposing = -1;
          break;
        }
        queue.push({
          size: guess.size,
          verdict: this.track(
            this.ctx.workers.verifyAt(this.handle.fd, proposeAt, guess.size, guess.oid, last),
          ),
        });
        proposeAt = end;
        proposing++;
      }
      const head = queue.shift();
      if (!head) {
        // Every proposal held and there are no more: the old version's end. Whatever follows, if
        // the file grew since it was measured, is the scan's.
        this.expected = -1;
        return;
      }
      const stored = await head.verdict;
      if (!stored) {
        this.expected = -1;
        return;
      }
      this.parts.push({ size: head.size, stored: Promise.resolve(stored) });
      this.position += head.size;
      this.followedBytes += head.size;
      this.expected++;
      this.onBytes(head.size);
    }
  }

  /**
   * Cuts chunks from `position` and stores them, until one is a chunk of the old version (true:
   * proposals resume after it) or the file ends (false). Bytes read stay in the window for the next
   * scan: where the versions keep falling in and out of step, each scan is a chunk or two, and
   * reading afresh every time would read the file many times over.
   */
  private async scan(): Promise<boolean> {
    const finder = this.finder;
    finder.reset();
    if (this.position < this.windowStart || this.position > this.windowStart + this.filled) {
      this.windowStart = this.position;
      this.filled = 0;
    }
    // The window holds file bytes [windowStart, windowStart + filled); the current chunk starts
    // at `position` and has been scanned up to `scanned`.
    let scanned = this.position;
    for (;;) {
      const start = this.position - this.windowStart;
      const cut = finder.find(
        this.window.subarray(0, this.filled),
        start,
        scanned - this.windowStart,
      );
      if (cut < 0) {
        scanned = this.windowStart + this.filled;
        if (!(await this.readMore())) {
          // The end of the file ends the last chunk. (readMore may have moved the window.)
          const last = this.position - this.windowStart;
          return last < this.filled && (await this.take(last, this.filled));
        }
        continue;
      }
      if (await this.take(start, cut)) return true;
      scanned = this.position;
    }
  }

  /** Stores window[from, to) as the next chunk; true when the old version had it (back in step). */
  private async take(from: number, to: number): Promise<boolean> {
    // A copy of its own: the chunk's memory is handed to the worker that stores it.
    const chunk = Buffer.allocUnsafeSlow(to - from);
    this.window.copy(chunk, 0, from, to);
    // Only a chunk as long as some old one can be one: the rest go to the workers unhashed, so a
    // file rewritten throughout (a re-encoded video) costs this thread no more than a plain scan.
    if (!this.oldSizes.has(chunk.length)) {
      await this.store(chunk);
      return false;
    }
    // Hashed here rather than by the worker that stores it: whether the versions are back in
    // step decides what this thread does next.
    const oid = this.ctx.oidOf(chunk);
    await this.store(chunk, oid);
    const at = this.firstAt.get(oid);
    if (at === undefined) return false;
    this.expected = at + 1;
    return true;
  }

  /** Reads on after the window's bytes, first dropping those before `position`; false at the end of the file. */
  private async readMore(): Promise<boolean> {
    const keepFrom = this.position - this.windowStart;
    if (keepFrom > 0) {
      this.window.copyWithin(0, keepFrom, this.filled);
      this.filled -= keepFrom;
      this.windowStart = this.position;
    }
    const { bytesRead } = await this.handle.read(
      this.window,
      this.filled,
      this.window.length - this.filled,
      this.windowStart + this.filled,
    );
    this.filled += bytesRead;
    return bytesRead > 0;
  }

  private async store(chunk: Buffer, oid?: Oid): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const size = chunk.length;
    await this.ctx.limiter.acquire();
    const skip = this.policy.skip(chunk);
    const stored = this.ctx.workers
      .store(chunk, skip, oid)
      .finally(() => this.ctx.limiter.release());
    stored.then(
      (r) => this.policy.record(r, skip),
      (err: unknown) => {
        this.failure ??= err;
      },
    );
    this.parts.push({ size, stored });
    this.position += size;
    this.onBytes(size);
  }

  private track<T>(job: Promise<T>): Promise<T> {
    this.inFlight.push(job);
    // A proposal nobody awaits any more (past a failed one) must not fail the process unheard.
    job.catch(() => undefined);
    return job;
  }
}
