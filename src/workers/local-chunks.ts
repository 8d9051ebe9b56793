import { closeSync, fstatSync, openSync, readSync, writevSync } from 'node:fs';
import { CutFinder, type ChunkingParams } from '../chunking/index.js';
import { ObjectCorruptError, ObjectMissingError } from '../errors/index.js';
import {
  CompressionPolicy,
  ObjectSealing,
  sealerFor,
  type ManifestChunk,
  type Oid,
} from '../objects/index.js';
import { isErrno, readFullySync } from '../util/fs.js';
import { releaseMemory as release } from '../util/memory.js';
// Module by module, not the layers' index files: a worker thread starts faster with less to load.
import { LocalStore, type LocalStoreOptions } from '../store/local/local-store.js';
import { chunkKey } from '../store/store.js';

/** Everything a thread needs to store chunks into a repository's own folder; structured-cloneable. */
export interface ChunkStoreSpec {
  /** The repository's store folder (`.mediagit/`). */
  readonly root: string;
  readonly fsync: boolean;
  readonly compressionLevel: number;
  /** The unlocked master key of an encrypted repository; null for a plain one. */
  readonly master: Uint8Array | null;
  readonly chunking: ChunkingParams;
}

/** Writes `pieces` back to back at `position`, however the kernel splits the writes. */
function writeAllAt(fd: number, pieces: readonly Buffer[], position: number): void {
  let at = position;
  let rest = pieces.filter((piece) => piece.length > 0);
  while (rest.length > 0) {
    let written = writevSync(fd, rest, at);
    at += written;
    while (rest.length > 0 && written >= rest[0]!.length) written -= rest.shift()!.length;
    if (rest.length > 0 && written > 0) rest = [rest[0]!.subarray(written), ...rest.slice(1)];
  }
}

/** A whole file chunked and stored by one worker: what its manifest needs, and what it cost. */
export interface IngestedFile {
  readonly chunks: ManifestChunk[];
  readonly size: number;
  readonly newChunks: number;
  readonly storedBytes: number;
}

/** How much the ingest window reads at a time, beyond the unfinished chunk it keeps. */
const WINDOW_READ = 4 * 1024 * 1024;
const PROGRESS_EVERY_BYTES = 8 * 1024 * 1024;
/**
 * An ingest lets its thread's event loop turn at least this often. On `add`'s main thread (one of
 * its lanes) a file whose chunks are all already stored would otherwise be read, cut and hashed in
 * one go: the worker's replies, the progress display and a Ctrl-C's cleanup would wait for it.
 * Every read: a worker that has cut its file gets its next one in one of these turns, and the main
 * thread cuts without pause now (it no longer waits for its own chunks to land between files).
 */
const YIELD_EVERY_BYTES = WINDOW_READ;
/** Stored chunks an ingest lets land (fsync, rename) behind its back before it waits for them. */
const MAX_LANDING = 64;

/** A job's chunks still landing (fsync and rename on libuv's thread pool); it replies once all are in. */
export type Landing = Promise<void>[];

export interface StoredChunk {
  readonly oid: Oid;
  /** False when the store already held the chunk (deduplicated). */
  readonly written: boolean;
  readonly storedBytes: number;
  /** Whether zstd paid for this chunk (the caller stops trying after a run of refusals). */
  readonly compressed: boolean;
}

/**
 * Chunk jobs run synchronously in one thread, for the chunk workers: storing a new chunk (name,
 * dedup check, then ObjectSealing.sealSync and an atomic write: the bytes ObjectDatabase.putChunk
 * would store) and restoring one into a file (read, ObjectSealing.openSync, write at its offset:
 * the checks ObjectDatabase.read makes). One thread hop per chunk instead of one per step.
 */
export class LocalChunks {
  private readonly objects: LocalStore;
  private readonly sealing: ObjectSealing;

  /** `fsyncFd` is for tests on this thread (see LocalStoreOptions); a worker gets only `spec`. */
  constructor(
    private readonly spec: ChunkStoreSpec,
    options: Pick<LocalStoreOptions, 'fsyncFd'> = {},
  ) {
    this.objects = new LocalStore(spec.root, { fsync: spec.fsync, ...options });
    this.sealing = new ObjectSealing(sealerFor(spec.master), spec.compressionLevel);
  }

  /**
   * Writes chunk `oid`, verified, into the open file `fd` at `position`. Throws ObjectMissingError
   * or ObjectCorruptError naming the chunk; nothing unverified is ever written.
   */
  restoreInto(oid: Oid, fd: number, position: number, expectedSize: number): number {
    const stored = this.readObject(oid);
    const plain = this.sealing.openSync('chunk', oid, stored);
    try {
      const size = plain.reduce((sum, piece) => sum + piece.length, 0);
      if (size !== expectedSize)
        throw new ObjectCorruptError(oid, `is ${size} bytes, its manifest says ${expectedSize}`);
      writeAllAt(fd, plain, position);
      return size;
    } finally {
      for (const piece of plain) this.releaseDecoded(piece);
    }
  }

  /** Views of the reused read buffer stay; deciphered pieces and decompressed chunks are freed now. */
  private releaseDecoded(plain: Buffer): void {
    if (plain.buffer !== this.scratch.buffer) release(plain);
  }

  /**
   * Takes in a chunk fetched from a remote, as stored: verified exactly as ObjectDatabase.read
   * would (envelope, GCM tag, codec, ID), then written. Consumes `stored`. Returns its size.
   */
  adopt(oid: Oid, stored: Buffer): number {
    for (const piece of this.sealing.openSync('chunk', oid, stored)) {
      if (piece.buffer !== stored.buffer) this.releaseDecoded(piece);
    }
    this.objects.putPartsSync(chunkKey(oid), [stored]);
    const size = stored.length;
    release(stored);
    return size;
  }

  /**
   * A chunk fetched from a remote, as stored, verified once and used twice: its plaintext written
   * into the open file `fd` at `position` (a checkout writing a new working tree) and, when `keep`,
   * its stored bytes into the store, with no read back. Without `keep` the file is the only local
   * copy (a tip-only clone, which would evict the chunk right after). Throws ObjectCorruptError
   * naming the chunk, before either write. Consumes `stored`. Returns the chunk's plaintext size.
   */
  adoptInto(
    oid: Oid,
    stored: Buffer,
    fd: number,
    position: number,
    expectedSize: number,
    keep = true,
  ): number {
    const plain = this.sealing.openSync('chunk', oid, stored);
    try {
      const size = plain.reduce((sum, piece) => sum + piece.length, 0);
      if (size !== expectedSize)
        throw new ObjectCorruptError(oid, `is ${size} bytes, its manifest says ${expectedSize}`);
      writeAllAt(fd, plain, position);
      if (keep) this.objects.putPartsSync(chunkKey(oid), [stored]);
      return size;
    } finally {
      for (const piece of plain) if (piece.buffer !== stored.buffer) this.releaseDecoded(piece);
      release(stored);
    }
  }

  /** Reused for every object read: a fresh MiB per chunk would only grow this thread's heap. */
  private scratch = Buffer.alloc(0);

  /** The stored object's bytes, as a view of the scratch buffer valid until the next read. */
  private readObject(oid: Oid): Buffer {
    let handle: number;
    try {
      handle = openSync(this.objects.pathOf(chunkKey(oid)), 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new ObjectMissingError(oid, 'chunk');
      throw err;
    }
    try {
      const size = fstatSync(handle).size;
      if (this.scratch.length < size)
        this.scratch = Buffer.allocUnsafe(Math.max(size, this.scratch.length * 2));
      return this.scratch.subarray(0, readFullySync(handle, this.scratch, size, 0));
    } finally {
      closeSync(handle);
    }
  }

  /**
   * Reads, chunks and stores one whole file in this thread. Files are spread over the workers this
   * way when there are several to share: chunking, the one stage the main thread would otherwise
   * run alone, then runs on every core. `onProgress` hears of bytes read every few MiB.
   *
   * The file streams through one reused window and each chunk is a view of it: a chunk already in
   * the store (most of them, when a file was edited) is hashed where it lies and never copied.
   * Copying every chunk into memory of its own cost more than a quarter of the chunking time.
   *
   * `previous`, the chunk list of the file's last staged version, lets unchanged stretches skip
   * the boundary scan: where the next bytes hash to the chunk the old version had there, the
   * boundary is the one a scan would find (a chunk's cut depends only on its own bytes), so it is
   * taken as is. Where they differ the scan takes over, and the guessing resumes at the first
   * scanned chunk the old version also had. See docs/pipeline.md.
   *
   * Given `landing`, the ingest returns as soon as the file is read and cut, leaving the chunks
   * still landing there for the caller to await before the file's manifest may be written: the
   * window is free again, and the thread can cut its next file while the disk commits this one's
   * last chunks (each file's end was otherwise a wait of one fsync and rename with the thread idle).
   */
  async ingestFile(
    absPath: string,
    relPath: string,
    onProgress: (bytes: number) => void,
    previous?: readonly ManifestChunk[],
    landing?: Landing,
  ): Promise<IngestedFile> {
    // One window and one cut finder: a second ingest started while one waits (a yield, landing
    // chunks) would overwrite the bytes the first is cutting.
    if (this.cutting) throw new Error('LocalChunks: one file is cut at a time on a thread');
    this.cutting = true;
    const landed: Landing = landing ?? [];
    let file: IngestedFile;
    try {
      file = await this.cutFile(absPath, relPath, onProgress, previous, landed);
    } finally {
      this.cutting = false;
    }
    if (!landing) await Promise.all(landed);
    return file;
  }

  private cutting = false;

  private async cutFile(
    absPath: string,
    relPath: string,
    onProgress: (bytes: number) => void,
    previous: readonly ManifestChunk[] | undefined,
    landing: Landing,
  ): Promise<IngestedFile> {
    const finder = this.cutFinder();
    finder.reset();
    const guide =
      previous && previous.length > 0
        ? new PreviousVersion(previous, this.spec.chunking.maxSize)
        : null;
    const policy = new CompressionPolicy(relPath);
    const chunks: ManifestChunk[] = [];
    let size = 0;
    let newChunks = 0;
    let storedBytes = 0;
    let unreported = 0;
    let sinceYield = 0;
    const take = (chunk: Buffer, oid?: Oid): Oid => {
      const length = chunk.length;
      const skip = policy.skip(chunk);
      const stored = this.store(chunk, skip, landing, false, oid);
      policy.record(stored, skip);
      chunks.push({ oid: stored.oid, size: length });
      size += length;
      if (stored.written) newChunks++;
      storedBytes += stored.storedBytes;
      return stored.oid;
    };
    // Room for the unfinished chunk (under maxSize) plus a full read: a hard cut always fits.
    const window = this.windowOf(this.spec.chunking.maxSize + WINDOW_READ);
    const fd = openSync(absPath, 'r');
    try {
      // window[start, filled) holds the current chunk, scanned up to window[scanned].
      let start = 0;
      let scanned = 0;
      let filled = 0;
      for (;;) {
        // Never full: what stays in it is under maxSize, so a zero-byte read always means the end.
        if (filled === window.length)
          throw new Error('ingest window full (a chunk longer than maxSize?)');
        const n = readSync(fd, window, filled, window.length - filled, null);
        filled += n;
        const atEnd = n === 0;
        const data = window.subarray(0, filled);
        for (;;) {
          if (guide && scanned === start) {
            const verdict = guide.check(data, start, atEnd, finder, (view) =>
              this.sealing.sealer.oidOf('chunk', view),
            );
            if (verdict === 'wait') break;
            if (verdict !== 'scan') {
              take(window.subarray(start, verdict.end), verdict.oid);
              start = scanned = verdict.end;
              continue;
            }
          }
          const cut = finder.find(data, start, scanned);
          if (cut < 0) {
            scanned = filled;
            break;
          }
          const oid = take(window.subarray(start, cut));
          guide?.resync(oid);
          start = scanned = cut;
        }
        unreported += n;
        sinceYield += n;
        if (sinceYield >= YIELD_EVERY_BYTES) {
          sinceYield = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        if (unreported >= PROGRESS_EVERY_BYTES) {
          onProgress(unreported);
          unreported = 0;
        }
        if (atEnd) {
          if (start < filled) take(window.subarray(start, filled));
          break;
        }
        // The chunks' fsyncs run on the thread pool meanwhile; each keeps a file open until done.
        if (landing.length > MAX_LANDING)
          await Promise.all(landing.splice(0, landing.length - MAX_LANDING / 2));
        if (start > 0) {
          window.copyWithin(0, start, filled);
          filled -= start;
          scanned -= start;
          start = 0;
        }
      }
    } finally {
      closeSync(fd);
      finder.reset();
    }
    if (unreported > 0) onProgress(unreported);
    return { chunks, size, newChunks, storedBytes };
  }

  /**
   * Whether the `length` bytes at `position` of the open file `fd` are chunk `oid` of the file's
   * previous version, ending where a scan would cut (`last`: the file's final chunk, which ends at
   * the end of the file instead). If so the chunk is returned, stored first should the store lack
   * it; if not, null. The main thread proposes a big file's old chunks this way, many at once.
   */
  verifyAt(
    fd: number,
    position: number,
    length: number,
    oid: Oid,
    last: boolean,
    landing: Landing,
  ): StoredChunk | null {
    if (length < 1 || length > this.spec.chunking.maxSize) return null;
    const view = this.windowOf(length).subarray(0, length);
    if (readFullySync(fd, view, length, position) < length) return null;
    if (!last && !this.cutFinder().couldEndAt(view, 0, length)) return null;
    if (this.sealing.sealer.oidOf('chunk', view) !== oid) return null;
    return this.store(view, false, landing, false, oid);
  }

  /** The reused read window (ingestFile's, verifyAt's), at least `length` bytes. */
  private windowOf(length: number): Buffer {
    if (this.window.length < length)
      this.window = this.cutFinder().window(
        Math.max(length, this.spec.chunking.maxSize + WINDOW_READ),
      );
    return this.window;
  }

  /** One per thread: the window comes from it, so that its cut loop scans the window in place. */
  private cutFinder(): CutFinder {
    return (this.finder ??= new CutFinder(this.spec.chunking, this.sealing.sealer.gear));
  }

  private finder: CutFinder | undefined;
  private window = Buffer.alloc(0);
  /** New chunks written but not yet fsynced and in place, by ID (see store). */
  private readonly landingChunks = new Map<Oid, Promise<void>>();

  /**
   * Stores `plain`. When `owned` (a chunk handed over by the main thread), it is consumed: its
   * memory, like the compressed and sealed copies, is released on return, because a worker's
   * small heap would otherwise let hundreds of MiB of finished chunks wait for a collection. A
   * borrowed `plain` (a view of the ingest window) is left alone. A new chunk is written at once
   * but gets its name only once its fsync is done (LocalStore.putPartsLater): that is added to
   * `landing`, which the job awaits before it replies.
   */
  store(
    plain: Buffer,
    skipCompression: boolean,
    landing: Landing,
    owned = true,
    knownOid?: Oid,
  ): StoredChunk {
    const oid = knownOid ?? this.sealing.sealer.oidOf('chunk', plain);
    const key = chunkKey(oid);
    if (this.objects.hasSync(key)) {
      // Stored by an earlier file of this thread whose chunks are still landing: this file's
      // manifest must wait for that chunk as for its own.
      const stillLanding = this.landingChunks.get(oid);
      if (stillLanding) landing.push(stillLanding);
      if (owned) release(plain);
      return { oid, written: false, storedBytes: 0, compressed: false };
    }
    const { parts, payload, compressed } = this.sealing.sealSync(
      'chunk',
      oid,
      plain,
      skipCompression,
    );
    const landed = this.objects.putPartsLater(key, parts, true);
    if (landed) {
      // Awaited by the job's reply; until then a failure must not count as unhandled.
      landed.catch(() => undefined);
      landing.push(landed);
      this.landingChunks.set(oid, landed);
      const landedNow = (): void => void this.landingChunks.delete(oid);
      landed.then(landedNow, landedNow);
    }
    const written = landed !== null;
    const storedBytes = written ? parts.reduce((n, p) => n + p.length, 0) : 0;
    for (const part of [plain, payload, ...parts])
      if (owned || part.buffer !== plain.buffer) release(part);
    return { oid, written, storedBytes, compressed };
  }
}

/** Index of each chunk's first occurrence in `chunks`: where a guide falls back in step. */
export function firstIndexByOid(chunks: readonly ManifestChunk[]): Map<Oid, number> {
  const at = new Map<Oid, number>();
  chunks.forEach((chunk, i) => {
    if (!at.has(chunk.oid)) at.set(chunk.oid, i);
  });
  return at;
}

/**
 * The previous version's chunk list, as a guide to where the next boundary probably is. It only
 * ever proposes: a proposal is taken when the bytes there hash to the old chunk (so they are that
 * chunk, and a scan would have cut them exactly there) and the length is one a scan can produce.
 */
class PreviousVersion {
  private readonly indexOf: Map<Oid, number>;
  /** The old chunk expected next, or -1 while the two versions are out of step. */
  private next = 0;

  constructor(
    private readonly chunks: readonly ManifestChunk[],
    private readonly maxSize: number,
  ) {
    this.indexOf = firstIndexByOid(chunks);
  }

  /**
   * At a chunk start: the chunk to take ({end, oid}), 'scan' when the guess failed or there is
   * none, or 'wait' when deciding needs bytes not read yet.
   */
  check(
    data: Uint8Array,
    start: number,
    atEnd: boolean,
    finder: CutFinder,
    oidOf: (view: Buffer) => Oid,
  ): { end: number; oid: Oid } | 'scan' | 'wait' {
    const guess = this.next >= 0 ? this.chunks[this.next] : undefined;
    if (!guess || guess.size < 1 || guess.size > this.maxSize) return this.lose();
    const end = start + guess.size;
    const last = this.next === this.chunks.length - 1;
    if (end > data.length) return atEnd ? this.lose() : 'wait';
    if (last) {
      // The old file ended here; this one only matches if it ends here too.
      if (end < data.length) return this.lose();
      if (!atEnd) return 'wait';
    } else if (!finder.couldEndAt(data, start, end)) {
      return this.lose();
    }
    const view = Buffer.from(data.buffer, data.byteOffset + start, guess.size);
    const oid = oidOf(view);
    if (oid !== guess.oid) return this.lose();
    this.next++;
    return { end, oid };
  }

  /** After a scanned chunk: back in step if the old version had it too. */
  resync(oid: Oid): void {
    const at = this.indexOf.get(oid);
    this.next = at === undefined ? -1 : at + 1;
  }

  private lose(): 'scan' {
    this.next = -1;
    return 'scan';
  }
}
