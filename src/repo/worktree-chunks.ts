/**
 * The working tree as a source of chunks. A checked-out file whose stat still matches its index
 * entry holds its staged chunks at known offsets, so a store that evicted them (`prune`, one copy
 * on disk) can read them back from there — each verified against its ID before it is used, so a
 * file edited since (even one that kept its size and time) is never trusted.
 */
import type { BigIntStats } from 'node:fs';
import { write } from 'node:fs';
import { open, lstat, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Manifest, ManifestChunk, Oid } from '../objects/index.js';
import { Semaphore, mapLimit } from '../util/limit.js';
import type { LocalChunkCopier } from './content.js';
import type { Index, IndexEntry } from './index-file.js';
import type { Repository } from './repository.js';

export interface ChunkLocation {
  readonly path: string;
  readonly offset: number;
  readonly size: number;
}

/**
 * The file is there with its staged size. Its time is not compared: the index smudges the times
 * of files written in the same instant it is saved (racy clean), which is every file of a fresh
 * clone; nothing here depends on it being right, since every chunk read from it is verified.
 */
async function plausible(repo: Repository, entry: IndexEntry): Promise<boolean> {
  try {
    const info = await lstat(repo.absPath(entry.path), { bigint: true });
    return info.isFile() && info.size === BigInt(entry.size);
  } catch {
    return false;
  }
}

/** Every chunk of every checked-out file that looks unchanged (its size), with where its bytes are. */
export async function worktreeChunkLocations(
  repo: Repository,
  index?: Index,
): Promise<Map<Oid, ChunkLocation>> {
  const entries = [...(index ?? (await repo.readIndex())).entries.values()];
  const found = new Map<Oid, ChunkLocation>();
  await mapLimit(entries, 8, async (entry) => {
    if (repo.isSparseExcluded(entry.path) || !(await plausible(repo, entry))) return;
    let offset = 0;
    for (const c of (await repo.odb.readManifest(entry.oid)).chunks) {
      if (!found.has(c.oid)) found.set(c.oid, { path: entry.path, offset, size: c.size });
      offset += c.size;
    }
  });
  return found;
}

/**
 * Stores the chunks of `oids` that sit, verified, in the working tree; returns the ones it could
 * not (not there, or the file changed).
 */
export async function chunksFromWorktree(
  repo: Repository,
  oids: readonly Oid[],
  locations: ReadonlyMap<Oid, ChunkLocation>,
): Promise<Oid[]> {
  const rest: Oid[] = [];
  await mapLimit(oids, 4, async (oid) => {
    const at = locations.get(oid);
    if (!at || !(await readVerified(repo, oid, at))) rest.push(oid);
  });
  return rest;
}

async function readVerified(repo: Repository, oid: Oid, at: ChunkLocation): Promise<boolean> {
  const plain = Buffer.alloc(at.size);
  try {
    const handle = await open(repo.absPath(at.path), 'r');
    try {
      const { bytesRead } = await handle.read(plain, 0, at.size, at.offset);
      if (bytesRead !== at.size) return false;
    } finally {
      await handle.close();
    }
  } catch {
    return false;
  }
  if ((await repo.odb.sealer.oidOfAsync('chunk', plain)) !== oid) return false;
  await repo.odb.putChunk(plain, { skipCompression: false, oid });
  return true;
}

const writeAt = promisify(write);

/** What a file's stat said when it was found clean: a later open must find the same file. */
interface CleanFile {
  readonly abs: string;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ino: bigint;
  handle?: Promise<FileHandle | null>;
}

/** Copies in flight at once: each holds one chunk in memory. */
const COPIES_IN_FLIGHT = 8;
/**
 * A run of chunks copied as one job, in order: long enough that its reads and writes go in file
 * order, short enough that a big file's runs still go several at once.
 */
const RUN_BYTES = 32 * 1024 * 1024;

/**
 * The chunks of files a checkout has just found clean (their stat matches the index, or their
 * content was compared), copied from there straight into the files being written: a chunk that
 * only moved (the unchanged part of an edited file, a file renamed) is neither decompressed nor
 * stored again, only read, checked against its ID (hashed on the thread pool) and written. The
 * check is what a clean stat cannot promise: a file edited with its size and time kept, or rotted
 * on disk, gives a chunk whose bytes do not match; that chunk (the whole run) comes the usual way
 * instead. A file whose stat changed after it was found clean is not read at all.
 */
export class CleanFileChunks implements LocalChunkCopier {
  private readonly at = new Map<Oid, { file: CleanFile; offset: number; size: number }>();
  private readonly copies = new Semaphore(COPIES_IN_FLIGHT);
  /**
   * Read buffers of copies that have finished, for the next copies: a fresh buffer per chunk made
   * every copied byte new memory to fault in and, hundreds of MB later, to collect.
   */
  private readonly spare: Buffer[] = [];
  /** Chunks copied from clean files so far (for tests and reports). */
  copied = 0;
  /** Read buffers allocated so far: at most one per copy in flight (for tests). */
  buffers = 0;
  /** Chunks whose bytes in a clean file did not match their ID, so not copied. */
  mismatched = 0;

  /** `oidOf`: a chunk's ID from its bytes, as the repository computes it (keyed when encrypted). */
  constructor(private readonly oidOf: (plain: Uint8Array) => Promise<Oid>) {}

  /** Offers the chunks of `manifest`, held by the clean file at `abs` whose stat was `info`. */
  add(abs: string, info: BigIntStats, manifest: Manifest): void {
    const file: CleanFile = { abs, size: info.size, mtimeNs: info.mtimeNs, ino: info.ino };
    let offset = 0;
    for (const c of manifest.chunks) {
      if (!this.at.has(c.oid)) this.at.set(c.oid, { file, offset, size: c.size });
      offset += c.size;
    }
  }

  get size(): number {
    return this.at.size;
  }

  runAt(chunks: readonly ManifestChunk[], from: number): number {
    const first = this.at.get(chunks[from]!.oid);
    if (!first || first.size !== chunks[from]!.size) return 0;
    let count = 1;
    let next = first.offset + first.size;
    let bytes = first.size;
    for (let k = from + 1; k < chunks.length && bytes < RUN_BYTES; k++) {
      const at = this.at.get(chunks[k]!.oid);
      // The same chunk may sit elsewhere too: enough that this file holds it right here.
      if (!at || at.file !== first.file || at.offset !== next || at.size !== chunks[k]!.size) break;
      count++;
      next += at.size;
      bytes += at.size;
    }
    return count;
  }

  async copyRun(
    chunks: readonly ManifestChunk[],
    from: number,
    count: number,
    fd: number,
    position: number,
  ): Promise<boolean> {
    const first = this.at.get(chunks[from]!.oid)!;
    return this.copies.run(async () => {
      const handle = await this.opened(first.file);
      if (!handle) return false;
      let done = 0;
      for (let k = from; k < from + count; k++) {
        const { oid, size } = chunks[k]!;
        if (!(await this.copyChecked(handle, oid, first.offset + done, size, fd, position + done)))
          return false;
        done += size;
      }
      this.copied += count;
      return true;
    });
  }

  async copyInto(oid: Oid, fd: number, position: number, size: number): Promise<number | null> {
    const at = this.at.get(oid);
    if (!at || at.size !== size) return null;
    return this.copies.run(async () => {
      const handle = await this.opened(at.file);
      if (!handle || !(await this.copyChecked(handle, oid, at.offset, size, fd, position)))
        return null;
      this.copied++;
      return size;
    });
  }

  /** Reads one chunk at `offset`, checks it is `oid`, writes it at `position`; false if not it. */
  private async copyChecked(
    handle: FileHandle,
    oid: Oid,
    offset: number,
    size: number,
    fd: number,
    position: number,
  ): Promise<boolean> {
    const buffer = this.buffer(size);
    try {
      const bytes = buffer.subarray(0, size);
      for (let got = 0; got < size;) {
        const { bytesRead } = await handle.read(bytes, got, size - got, offset + got);
        if (bytesRead === 0) return false;
        got += bytesRead;
      }
      if ((await this.oidOf(bytes)) !== oid) {
        this.mismatched++;
        return false;
      }
      for (let put = 0; put < size;)
        put += (await writeAt(fd, bytes, put, size - put, position + put)).bytesWritten;
      return true;
    } finally {
      this.spare.push(buffer);
    }
  }

  /** A spare read buffer of at least `size` bytes, or a new one (a spare too small is dropped). */
  private buffer(size: number): Buffer {
    const spare = this.spare.pop();
    if (spare && spare.length >= size) return spare;
    this.buffers++;
    return Buffer.allocUnsafeSlow(Math.max(size, spare?.length ?? 0));
  }

  /** Closes every file opened for copying. */
  async close(): Promise<void> {
    const files = new Set([...this.at.values()].map((a) => a.file));
    await Promise.all(
      [...files].map(async (f) => {
        const handle = await f.handle?.catch(() => null);
        await handle?.close().catch(() => undefined);
      }),
    );
  }

  private opened(file: CleanFile): Promise<FileHandle | null> {
    file.handle ??= (async () => {
      const handle = await open(file.abs, 'r').catch(() => null);
      if (!handle) return null;
      const info = await handle.stat({ bigint: true }).catch(() => null);
      if (
        info?.isFile() &&
        info.size === file.size &&
        info.mtimeNs === file.mtimeNs &&
        info.ino === file.ino
      )
        return handle;
      await handle.close().catch(() => undefined);
      return null;
    })();
    return file.handle;
  }
}
