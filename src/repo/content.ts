import { createReadStream, type BigIntStats } from 'node:fs';
import { lstat, mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Chunker, CutFinder, type ChunkingParams } from '../chunking/index.js';
import { ContentUnavailableError, UnsafePathError } from '../errors/index.js';
import {
  CompressionPolicy,
  encodeManifest,
  type Manifest,
  type ManifestChunk,
  type ObjectDatabase,
  type Oid,
} from '../objects/index.js';
import { commitTemp, isErrno, writeToTemp } from '../util/fs.js';
import type {
  ChunkWorkerPool,
  IngestedFile,
  Landing,
  LocalChunks,
  StoredChunk,
} from '../workers/index.js';
import { ingestAlongPrevious } from '../workers/guided-ingest.js';
import { Semaphore } from '../util/limit.js';
import type { ProgressSink } from './progress.js';
import type { FileType } from './tree-map.js';

const READ_BUFFER = 1024 * 1024;

export interface ContentContext {
  readonly odb: ObjectDatabase;
  readonly chunking: ChunkingParams;
  readonly gear?: Uint32Array;
  /** Bounds chunks in flight (hash → compress → write) across every file being added. */
  readonly limiter: Semaphore;
  /** Chunk work on worker threads; without it, the object database does it on the thread pool. */
  readonly workers?: ChunkWorkerPool;
  /** The workers' chunk store on the main thread, which then ingests whole files as one of them. */
  readonly mainChunks?: LocalChunks;
}

export interface IngestResult {
  readonly manifestOid: Oid;
  readonly size: number;
  readonly chunks: number;
  readonly newChunks: number;
  /** Bytes newly written to the store for this file (chunks and manifest). */
  readonly storedBytes: number;
}

export interface IngestOptions {
  /** Read, cut and store the file on one worker thread (when the context has workers). */
  readonly wholeFileInWorker?: boolean;
  /**
   * The chunks of the file's previous version: the workers take its boundaries where they still
   * hold (in the worker that reads the whole file, or, for a file too big for one, proposed to all).
   */
  readonly previous?: readonly ManifestChunk[];
  /**
   * Where the file goes (default `workers`: the context's workers when it has them). `main`: read,
   * cut and stored whole on the main thread with the context's `mainChunks`. `database`: through
   * the object database on this thread even when the context has workers, for files so small
   * that a worker's round trip is all they would cost.
   */
  readonly lane?: IngestLane;
  /**
   * Called once the thread that ingests the file is free for the next one, before the file's last
   * chunks have landed and its manifest is written: once the file is read and cut (on a worker,
   * when it reports the file's last bytes; else at the latest when it replies). Called once.
   */
  readonly onLaneFree?: () => void;
}

export type IngestLane = 'workers' | 'main' | 'database';

/** A whole file cut and stored on this thread; resolves once its chunks have landed. */
async function cutOnMainThread(
  chunks: LocalChunks,
  absPath: string,
  relPath: string,
  onBytes: (bytes: number) => void,
  options: IngestOptions,
  laneFree: () => void,
): Promise<IngestedFile> {
  const landing: Landing = [];
  const file = await chunks.ingestFile(absPath, relPath, onBytes, options.previous, landing);
  laneFree();
  await Promise.all(landing);
  return file;
}

/**
 * Streams one file through chunking, hashing, compression and the store, in bounded memory:
 * at most one chunker buffer plus the limiter's chunks are held, whatever the file size.
 */
export async function ingestFile(
  ctx: ContentContext,
  absPath: string,
  relPath: string,
  progress: ProgressSink,
  sizeHint?: number,
  options: IngestOptions = {},
): Promise<IngestResult> {
  const { odb } = ctx;
  const workers = options.lane === 'database' ? undefined : ctx.workers;
  if (workers && (options.wholeFileInWorker || options.previous?.length)) {
    let onLaneFree = options.onLaneFree;
    const laneFree = (): void => {
      const call = onLaneFree;
      onLaneFree = undefined;
      call?.();
    };
    const onBytes = (bytes: number): void => progress.bytes(bytes);
    let reported = 0;
    // A worker reports a file's last bytes once it has cut it, before its last chunks have landed
    // and it replies: it is cutting its next file by then, and needs another queued. Only for a
    // worker: a file that grew since its stat would free the main thread's lane in mid-cut.
    const onWorkerBytes = (bytes: number): void => {
      onBytes(bytes);
      reported += bytes;
      if (sizeHint !== undefined && reported >= sizeHint) laneFree();
    };
    const file =
      options.lane === 'main' && ctx.mainChunks
        ? await cutOnMainThread(ctx.mainChunks, absPath, relPath, onBytes, options, laneFree)
        : options.wholeFileInWorker
          ? await workers.ingestFile(
              absPath,
              relPath,
              sizeHint ?? 0,
              onWorkerBytes,
              options.previous,
            )
          : await ingestAlongPrevious(
              {
                workers,
                chunking: ctx.chunking,
                ...(ctx.gear ? { gear: ctx.gear } : {}),
                oidOf: (chunk) => odb.oidOf('chunk', chunk),
                limiter: ctx.limiter,
              },
              absPath,
              relPath,
              options.previous!,
              onBytes,
            );
    laneFree();
    const manifest = await odb.writeManifest({ size: file.size, chunks: file.chunks });
    return {
      manifestOid: manifest.oid,
      size: file.size,
      chunks: file.chunks.length,
      newChunks: file.newChunks,
      storedBytes: file.storedBytes + manifest.storedBytes,
    };
  }
  const pending: Promise<StoredChunk>[] = [];
  const sizes: number[] = [];
  const policy = new CompressionPolicy(relPath);
  let failure: unknown;

  const submit = async (chunk: Buffer): Promise<void> => {
    if (failure !== undefined) throw failure;
    sizes.push(chunk.length);
    await ctx.limiter.acquire();
    const skip = policy.skip(chunk);
    const stored = workers
      ? workers.store(chunk, skip)
      : ctx.odb.putChunk(chunk, { skipCompression: skip });
    const put = stored.finally(() => ctx.limiter.release());
    put.then(
      (r) => policy.record(r, skip),
      (err: unknown) => {
        failure ??= err;
      },
    );
    pending.push(put);
  };

  const handle = await open(absPath, 'r');
  try {
    await readChunks(ctx, handle, sizeHint, submit, (bytes) => progress.bytes(bytes));
  } finally {
    await handle.close();
  }
  const results = await Promise.all(pending);
  const chunks: ManifestChunk[] = results.map((r, i) => ({ oid: r.oid, size: sizes[i]! }));
  const size = sizes.reduce((a, b) => a + b, 0);
  const manifest = await ctx.odb.writeManifest({ size, chunks });
  let newChunks = 0;
  let storedBytes = manifest.storedBytes;
  for (const r of results) {
    if (r.written) newChunks++;
    storedBytes += r.storedBytes;
  }
  return { manifestOid: manifest.oid, size, chunks: chunks.length, newChunks, storedBytes };
}

/** Reads of a file cut in a window: as big as a worker's (LocalChunks), few calls per file. */
const WINDOW_READ = 4 * 1024 * 1024;

/**
 * Reads the open file through and hands each chunk, a fresh Buffer, to `take` in order. A file
 * bigger than a chunk can be is read into a CutFinder's window and cut there (in WebAssembly
 * memory: ~30 % less CPU than the Chunker, which also copies each unfinished chunk aside); a
 * smaller one through a Chunker with a read buffer its size. Same boundaries either way.
 */
async function readChunks(
  ctx: Pick<ContentContext, 'chunking' | 'gear'>,
  handle: FileHandle,
  sizeHint: number | undefined,
  take: (chunk: Buffer) => Promise<void>,
  onBytes: (bytes: number) => void,
): Promise<void> {
  if (sizeHint === undefined || sizeHint <= ctx.chunking.maxSize) {
    // One read buffer, reused: the chunker copies what it keeps, so a fresh Buffer per read would
    // only be garbage for the collector to chase.
    const chunker = new Chunker(ctx.chunking, ctx.gear);
    const buffer = Buffer.allocUnsafe(readBufferFor(sizeHint));
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      for (const chunk of chunker.push(buffer.subarray(0, bytesRead))) await take(chunk);
      onBytes(bytesRead);
    }
    for (const chunk of chunker.finish()) await take(chunk);
    return;
  }
  const finder = new CutFinder(ctx.chunking, ctx.gear);
  // Room for the unfinished chunk (under maxSize) plus a full read: a hard cut always fits.
  const window = finder.window(ctx.chunking.maxSize + WINDOW_READ);
  const copy = (from: number, to: number): Buffer => {
    const chunk = Buffer.allocUnsafeSlow(to - from);
    window.copy(chunk, 0, from, to);
    return chunk;
  };
  // window[start, filled) holds the current chunk, scanned up to window[scanned].
  let start = 0;
  let scanned = 0;
  let filled = 0;
  for (;;) {
    const { bytesRead } = await handle.read(window, filled, window.length - filled, null);
    if (bytesRead === 0) {
      if (start < filled) await take(copy(start, filled));
      return;
    }
    filled += bytesRead;
    const data = window.subarray(0, filled);
    for (let cut = finder.find(data, start, scanned); cut >= 0;) {
      await take(copy(start, cut));
      start = scanned = cut;
      cut = finder.find(data, start, scanned);
    }
    scanned = filled;
    onBytes(bytesRead);
    window.copyWithin(0, start, filled);
    filled -= start;
    scanned -= start;
    start = 0;
  }
}

/** Small files get a buffer their own size: a 1 MiB buffer per tiny file is mostly garbage to collect. */
function readBufferFor(sizeHint: number | undefined): number {
  if (sizeHint === undefined) return READ_BUFFER;
  return Math.max(16 * 1024, Math.min(READ_BUFFER, sizeHint + 1));
}

/** The manifest OID a file would get, computed without writing anything (status, diff). */
export async function hashFile(
  ctx: Pick<ContentContext, 'odb' | 'chunking' | 'gear'>,
  absPath: string,
  sizeHint?: number,
): Promise<{ oid: Oid; size: number }> {
  const chunker = new Chunker(ctx.chunking, ctx.gear);
  const chunks: ManifestChunk[] = [];
  let size = 0;
  const take = (chunk: Buffer): void => {
    chunks.push({ oid: ctx.odb.oidOf('chunk', chunk), size: chunk.length });
    size += chunk.length;
  };
  const stream = createReadStream(absPath, { highWaterMark: readBufferFor(sizeHint) });
  try {
    for await (const data of stream as AsyncIterable<Buffer>)
      for (const chunk of chunker.push(data)) take(chunk);
    for (const chunk of chunker.finish()) take(chunk);
  } finally {
    stream.destroy();
  }
  return { oid: ctx.odb.oidOf('manifest', encodeManifest({ size, chunks })), size };
}

/** The largest chunk matchesManifest reads whole (chunking allows up to 1 GiB; defaults cut at 4 MiB). */
const MATCH_MAX_CHUNK = 256 * 1024 * 1024;

/**
 * Whether the file holds exactly the content `manifest` describes, read along its chunks: no gear
 * scan, and the first chunk that differs answers (status only asks whether a file changed). Bytes
 * equal to every old chunk in turn, ending where the last one does, are the same content. Null
 * when a chunk is too big to read whole: the caller hashes the file instead.
 */
export async function matchesManifest(
  ctx: Pick<ContentContext, 'odb'>,
  absPath: string,
  manifest: Manifest,
): Promise<boolean | null> {
  const largest = manifest.chunks.reduce((max, chunk) => Math.max(max, chunk.size), 0);
  if (largest > MATCH_MAX_CHUNK) return null;
  const handle = await open(absPath, 'r');
  try {
    if ((await handle.stat()).size !== manifest.size) return false;
    const buffer = Buffer.allocUnsafe(Math.max(1, largest));
    let position = 0;
    for (const chunk of manifest.chunks) {
      const view = buffer.subarray(0, chunk.size);
      for (let got = 0; got < chunk.size;) {
        const { bytesRead } = await handle.read(view, got, chunk.size - got, position + got);
        if (bytesRead === 0) return false;
        got += bytesRead;
      }
      if (ctx.odb.oidOf('chunk', view) !== chunk.oid) return false;
      position += chunk.size;
    }
    // Nothing past the last chunk either (the file may have grown since it was measured).
    return (
      position === manifest.size &&
      (await handle.read(Buffer.alloc(1), 0, 1, position)).bytesRead === 0
    );
  } finally {
    await handle.close();
  }
}

/**
 * Whether the file holds the content staged as `staged` (a manifest ID and its size), for callers
 * that only ask whether a file changed (status, checkout's safety checks): a size change answers
 * at once, as in git; otherwise the file is compared along the manifest's chunks; hashing the
 * whole file is the fallback when the manifest cannot be read or has outsized chunks.
 */
export async function holdsStagedContent(
  ctx: Pick<ContentContext, 'odb' | 'chunking' | 'gear'>,
  absPath: string,
  staged: { oid: Oid; size: number },
  size: number,
): Promise<boolean> {
  if (size !== staged.size) return false;
  const same = await ctx.odb.readManifest(staged.oid).then(
    (manifest) => matchesManifest(ctx, absPath, manifest),
    () => null,
  );
  return same ?? (await hashFile(ctx, absPath, size)).oid === staged.oid;
}

/**
 * Refuses to write through anything but real folders between the working tree root and the
 * target: a symlink planted at `assets` must not turn `assets/x` into a write elsewhere.
 */
export async function ensureSafeParents(root: string, absPath: string): Promise<void> {
  const rel = relative(root, dirname(absPath));
  if (rel.startsWith('..') || rel.split(sep).includes('..'))
    throw new UnsafePathError(`refusing to write outside the working tree: ${absPath}`);
  let current = root;
  for (const part of rel === '' ? [] : rel.split(sep)) {
    current = join(current, part);
    let info;
    try {
      info = await lstat(current);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) {
        await mkdir(current, { recursive: true });
        continue;
      }
      throw err;
    }
    if (info.isSymbolicLink())
      throw new UnsafePathError(
        `refusing to write through the symbolic link ${relative(root, current)}`,
      );
    if (!info.isDirectory()) {
      throw new UnsafePathError(
        `cannot create folder ${relative(root, current)}: a file is in the way`,
        { hint: 'move or delete that file, then try again' },
      );
    }
  }
}

/**
 * Writes a file from its manifest: chunks fetched ahead in parallel, each verified, written in
 * order to a temporary file that is renamed over the target only once complete.
 */
export async function materializeFile(
  odb: ObjectDatabase,
  manifestOid: Oid,
  root: string,
  absPath: string,
  type: FileType,
  progress: ProgressSink,
  workers?: ChunkRestorer,
  prefetch = 4,
): Promise<BigIntStats> {
  const tmp = await stageFile(odb, manifestOid, root, absPath, type, progress, workers, prefetch);
  await commitTemp(tmp, absPath);
  return lstat(absPath, { bigint: true });
}

/**
 * materializeFile up to the rename: the complete temporary file beside `absPath`, for a caller
 * that puts files in place only once every one is written (commitTemp / discardTemp).
 */
export async function stageFile(
  odb: ObjectDatabase,
  manifestOid: Oid,
  root: string,
  absPath: string,
  type: FileType,
  progress: ProgressSink,
  workers?: ChunkRestorer,
  prefetch = 4,
): Promise<string> {
  const manifest = await odb.readManifest(manifestOid);
  // Fetched before any folder or temporary file exists: a remote that cannot supply them leaves
  // the working tree as it was. A streaming restorer fetches them itself, while it writes.
  if (!workers?.fetchesMissing)
    await ensureManifestChunks(odb, manifest, relative(root, absPath).split(sep).join('/'));
  await ensureSafeParents(root, absPath);
  return writeToTemp(
    absPath,
    { tempDir: dirname(absPath), mode: type === 'exec' ? 0o755 : 0o644, fsync: false },
    async (handle) => {
      if (workers) return restoreWithWorkers(workers, manifest, handle.fd, progress, prefetch * 2);
      const inflight: Promise<Buffer>[] = [];
      let next = 0;
      const fill = (): void => {
        while (inflight.length < prefetch && next < manifest.chunks.length) {
          const chunk = manifest.chunks[next++]!;
          const read = odb.read('chunk', chunk.oid);
          read.catch(() => undefined);
          inflight.push(read);
        }
      };
      fill();
      while (inflight.length > 0) {
        const data = await inflight.shift()!;
        fill();
        await handle.write(data);
        progress.bytes(data.length);
      }
    },
  );
}

/** Fetches what the store lacks of a file's chunks; a failure names the file. */
export async function ensureManifestChunks(
  odb: ObjectDatabase,
  manifest: Manifest,
  path: string,
): Promise<void> {
  try {
    await odb.ensureChunks(
      manifest.chunks.map((c) => c.oid),
      path,
    );
  } catch (err) {
    throw err instanceof ContentUnavailableError ? err.forPath(path) : err;
  }
}

/** Writes verified chunks into an open file at their offsets (the chunk workers). */
export interface ChunkRestorer {
  restoreInto(oid: Oid, fd: number, position: number, size: number): Promise<number>;
  /** True when it fetches chunks the store lacks itself (StreamingRestorer). */
  readonly fetchesMissing?: boolean;
  /** Chunks it copies from files already on disk, several at once (LocalChunkCopier). */
  readonly local?: LocalChunkCopier | undefined;
}

/** Where chunks the local store lacks come from, as stored and unverified (a remote's store). */
export interface ChunkStream {
  get(oid: Oid): Promise<Buffer>;
  /**
   * false: a fetched chunk is written into its file only, not into the store too — for a caller
   * that would evict it right after (a tip-only clone keeps one copy, the checked-out file). A
   * chunk the files being written use more than once is still stored, for its later uses. Default
   * true.
   */
  readonly keepFetched?: boolean;
  /**
   * Told every chunk the checkout may ask for, before the first: a stream that must prepare each
   * read (a server's presigned URLs) prepares them all at once. A hint; never fails.
   */
  expect?(oids: readonly Oid[]): void;
}

/**
 * Chunks a checkout can copy from files it already holds (CleanFileChunks): null when it has not
 * got this one, and the caller restores it another way.
 */
export interface LocalChunkCopier {
  copyInto(oid: Oid, fd: number, position: number, size: number): Promise<number | null>;
  /**
   * How many of `chunks` from index `from` on it holds one after another in one file (0: not the
   * first): those are copied as one piece (copyRun).
   */
  runAt(chunks: readonly ManifestChunk[], from: number): number;
  /** Copies chunks[from, from + count) to `position` of `fd`; false when it could not. */
  copyRun(
    chunks: readonly ManifestChunk[],
    from: number,
    count: number,
    fd: number,
    position: number,
  ): Promise<boolean>;
}

/** Chunk requests a StreamingRestorer keeps in flight, across every file being written. */
export const STREAM_CONCURRENCY = 16;

/**
 * Restores chunks into files, fetching those the store lacks from a stream as it goes: each
 * fetched chunk is verified once, on a worker, and that one plaintext is written both into the
 * file and (as stored) into the store — no second read or verification, and downloading overlaps
 * writing. Chunks the store holds (or that another file already fetched) are restored from it.
 * Meant for a new working tree (clone), where a fetch that fails halfway leaves nothing to keep.
 */
export class StreamingRestorer implements ChunkRestorer {
  readonly fetchesMissing = true;
  /** Per chunk, the first restore of it: later ones wait for it, then read the store. */
  private readonly first = new Map<Oid, Promise<number>>();
  private readonly requests = new Semaphore(STREAM_CONCURRENCY);

  /**
   * `keep` says which fetched chunks also go into the store (ChunkStream.keepFetched); by default
   * all of them. Chunks `local` holds (clean files of the working tree) are copied from there
   * before the store or the stream is asked.
   */
  constructor(
    private readonly workers: ChunkWorkerPool,
    private readonly odb: ObjectDatabase,
    private readonly stream: ChunkStream,
    private readonly keep: (oid: Oid) => boolean = () => true,
    readonly local?: LocalChunkCopier,
  ) {}

  async restoreInto(oid: Oid, fd: number, position: number, size: number): Promise<number> {
    const copied = await this.local?.copyInto(oid, fd, position, size);
    if (copied != null) return copied;
    const earlier = this.first.get(oid);
    if (earlier) {
      await earlier;
      return this.workers.restoreInto(oid, fd, position, size);
    }
    const job = this.restoreFirst(oid, fd, position, size);
    this.first.set(oid, job);
    return job;
  }

  private async restoreFirst(
    oid: Oid,
    fd: number,
    position: number,
    size: number,
  ): Promise<number> {
    const [present] = await this.odb.has('chunk', [oid]);
    if (present) return this.workers.restoreInto(oid, fd, position, size);
    return this.requests.run(async () =>
      this.workers.adoptInto(oid, await this.stream.get(oid), fd, position, size, this.keep(oid)),
    );
  }
}

/**
 * Chunks are restored out of order, each at its own offset, up to `window` at a time. On a failure
 * nothing more is started and every job already started is waited for before the error goes up:
 * the caller then closes `fd`, and a worker must never write to an fd number already reused.
 */
async function restoreWithWorkers(
  workers: ChunkRestorer,
  manifest: Manifest,
  fd: number,
  progress: ProgressSink,
  window: number,
): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  let position = 0;
  const { chunks } = manifest;
  for (let i = 0; i < chunks.length;) {
    if (failure) break;
    const run = workers.local?.runAt(chunks, i) ?? 0;
    const count = Math.max(run, 1);
    let bytes = 0;
    for (let k = i; k < i + count; k++) bytes += chunks[k]!.size;
    const at = position;
    const from = i;
    const restore = async (): Promise<number> => {
      // One piece, copied from a file already on disk; else (or if that file changed) chunk by chunk.
      if (run > 0 && (await workers.local!.copyRun(chunks, from, run, fd, at))) return bytes;
      let done = 0;
      for (let k = from; k < from + count; k++) {
        await workers.restoreInto(chunks[k]!.oid, fd, at + done, chunks[k]!.size);
        done += chunks[k]!.size;
      }
      return done;
    };
    const job = restore().then(
      (written) => progress.bytes(written),
      (err: unknown) => {
        failure ??= { err };
      },
    );
    position += bytes;
    i += count;
    const tracked = job.finally(() => running.delete(tracked));
    running.add(tracked);
    if (running.size >= window) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure) throw failure.err;
}
