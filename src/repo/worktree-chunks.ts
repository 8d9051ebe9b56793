/**
 * The working tree as a source of chunks. A checked-out file whose stat still matches its index
 * entry holds its staged chunks at known offsets, so a store that evicted them (`prune`, one copy
 * on disk) can read them back from there — each verified against its ID before it is used, so a
 * file edited since (even one that kept its size and time) is never trusted.
 */
import { open, lstat } from 'node:fs/promises';
import type { Oid } from '../objects/index.js';
import { mapLimit } from '../util/limit.js';
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
