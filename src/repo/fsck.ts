/**
 * Checking the local repository (`fsck`): every object reachable from the refs and the index is
 * present and intact, trees record their children's true sizes, and with `full` every stored
 * chunk (reachable or not) and every unreachable object is read and verified too.
 */
import { readdir } from 'node:fs/promises';
import { NotFoundError, ObjectCorruptError } from '../errors/index.js';
import {
  decodeEnvelopeHeader,
  type ObjectDatabase,
  type ObjectKind,
  type Oid,
} from '../objects/index.js';
import { chunkKey, objectKey } from '../store/index.js';
import { isErrno } from '../util/fs.js';
import { mapLimit } from '../util/limit.js';
import { silentProgress, type ProgressSink } from './progress.js';
import {
  collectRoots,
  walkReachable,
  type ReachabilityVisitor,
  type ReachableObjects,
  type Root,
} from './reachability.js';
import type { Repository } from './repository.js';
import { trashEntries } from './worktree-trash.js';

export interface FsckOptions {
  /** Also read and verify every stored chunk and every unreachable object. */
  full?: boolean;
  progress?: ProgressSink;
}

export interface FsckProblem {
  readonly kind: ObjectKind;
  readonly oid: Oid;
  readonly problem: 'missing' | 'corrupt';
  readonly reason: string;
  readonly where: string;
}

export interface FsckCounts {
  tags: number;
  commits: number;
  trees: number;
  manifests: number;
  chunks: number;
  /** Logical bytes of the distinct reachable chunks. */
  chunkBytes: number;
  /** Stored objects and chunks nothing reaches: not a problem, `gc` removes them. */
  danglingObjects: number;
  danglingChunks: number;
  /** Leftovers in .mediagit/tmp from interrupted writes: not a problem, `gc` removes them. */
  tempFiles: number;
  /**
   * Old versions of replaced files in .mediagit/trash that a crash (or a missing `rm`) left
   * unfreed (worktree-trash.ts): not a problem, `gc` removes them.
   */
  trashFiles: number;
  /** Chunks read and verified (--full only). */
  verifiedChunks: number;
  /** Reachable chunks not stored here that the content remote holds: fetched on demand. */
  remoteOnlyChunks: number;
  /** Reachable chunks not stored here whose remote could not be reached to confirm it has them. */
  unconfirmedChunks: number;
  /** Reachable chunks gone here and on the content remote, expired there by a retention policy. */
  expiredChunks: number;
  /** The remote content missing here comes from; null without one. */
  contentRemote: string | null;
}

const STRUCTURED_SETS = ['tags', 'commits', 'trees', 'manifests'] as const;
const VERIFY_CONCURRENCY = 4;

function reachableObject(reach: ReachableObjects, oid: Oid): boolean {
  return STRUCTURED_SETS.some((name) => reach[name].has(oid));
}

async function countTempFiles(repo: Repository): Promise<number> {
  try {
    return (await readdir(repo.path('tmp'))).length;
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return 0;
    throw err;
  }
}

function corruptReason(err: ObjectCorruptError): string {
  const prefix = `object ${err.oid} is corrupt: `;
  return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}

/** Reads stored bytes and checks them against the OID: the defect, or null when sound (or deleted meanwhile). */
async function verifyStored(
  odb: ObjectDatabase,
  namespace: 'chunks' | 'objects',
  oid: Oid,
): Promise<{ kind: ObjectKind; reason: string } | null> {
  let kind: ObjectKind = namespace === 'chunks' ? 'chunk' : 'manifest';
  try {
    const stored = await odb.store.get(namespace === 'chunks' ? chunkKey(oid) : objectKey(oid));
    if (namespace === 'objects') {
      try {
        kind = decodeEnvelopeHeader(stored).kind;
      } catch (err) {
        return { kind, reason: err instanceof Error ? err.message : String(err) };
      }
      if (kind === 'chunk') return { kind, reason: 'a chunk stored among the structured objects' };
    }
    await odb.openStored(kind, oid, stored);
    return null;
  } catch (err) {
    if (err instanceof ObjectCorruptError) return { kind, reason: corruptReason(err) };
    // Deleted by a concurrent gc between the listing and the read: nothing left to verify.
    if (err instanceof NotFoundError) return null;
    throw err;
  }
}

export interface FsckReport {
  counts: FsckCounts;
  /** Sorted as found: reachability first, then tree sizes, then (full) corrupt chunks and objects. */
  problems: FsckProblem[];
}

export async function checkRepository(
  repo: Repository,
  options: FsckOptions = {},
): Promise<FsckReport> {
  const full = options.full ?? false;
  // Every reflog entry is a root, as in git: what gc keeps for the reflog is not "unreachable".
  const roots = await collectRoots(repo, { reflogsSince: 0 });
  const sizes = new SizeCheck();
  const reach = await walkReachable(repo, roots, { tolerant: true, visitor: sizes.visitor() });
  const problems: FsckProblem[] = [...reach.problems.map((p) => ({ ...p })), ...sizes.problems];
  const inventory = await takeInventory(repo, reach, full);
  let verifiedChunks = 0;
  if (full) {
    const chunks = await verifyChunks(repo, inventory, options.progress ?? silentProgress);
    verifiedChunks = chunks.verified;
    problems.push(...(await placeCorruptChunks(repo, roots, reach, chunks.corrupt)));
    problems.push(...(await verifyDanglingObjects(repo, inventory.danglingObjectOids)));
  }
  return {
    counts: {
      tags: reach.tags.size,
      commits: reach.commits.size,
      trees: reach.trees.size,
      manifests: reach.manifests.size,
      chunks: reach.chunks.size,
      chunkBytes: reach.chunkBytes,
      danglingObjects: inventory.danglingObjects,
      danglingChunks: inventory.danglingChunks,
      tempFiles: await countTempFiles(repo),
      trashFiles: await trashEntries(repo),
      verifiedChunks,
      remoteOnlyChunks: reach.remoteOnly.size,
      unconfirmedChunks: reach.unconfirmed.size,
      expiredChunks: reach.expired.size,
      contentRemote: repo.odb.chunkSource?.remoteName ?? null,
    },
    problems,
  };
}

interface Inventory {
  danglingObjects: number;
  danglingChunks: number;
  /** With full: the unreachable structured objects, and every stored chunk, to verify. */
  danglingObjectOids: Oid[];
  storedChunks: { oid: Oid; size: number }[];
  storedChunkBytes: number;
}

/** What the store holds beyond the reachable: information, not problems (`gc` removes it). */
async function takeInventory(
  repo: Repository,
  reach: ReachableObjects,
  full: boolean,
): Promise<Inventory> {
  const inventory: Inventory = {
    danglingObjects: 0,
    danglingChunks: 0,
    danglingObjectOids: [],
    storedChunks: [],
    storedChunkBytes: 0,
  };
  for await (const { key } of repo.store.list('objects/')) {
    const oid = key.slice('objects/'.length);
    if (reachableObject(reach, oid)) continue;
    inventory.danglingObjects++;
    if (full) inventory.danglingObjectOids.push(oid);
  }
  for await (const { key, size } of repo.store.list('chunks/')) {
    const oid = key.slice('chunks/'.length);
    if (!reach.chunks.has(oid)) inventory.danglingChunks++;
    if (full) {
      inventory.storedChunks.push({ oid, size });
      inventory.storedChunkBytes += size;
    }
  }
  return inventory;
}

/**
 * Reads every chunk in the store, reachable or not: a corrupt dangling chunk would be trusted (and
 * not rewritten) the next time the same content is added.
 */
async function verifyChunks(
  repo: Repository,
  inventory: Inventory,
  progress: ProgressSink,
): Promise<{ verified: number; corrupt: Map<Oid, string> }> {
  const corrupt = new Map<Oid, string>();
  let verified = 0;
  progress.start('fsck', inventory.storedChunks.length, inventory.storedChunkBytes);
  try {
    await mapLimit(inventory.storedChunks, VERIFY_CONCURRENCY, async ({ oid, size }) => {
      const defect = await verifyStored(repo.odb, 'chunks', oid);
      if (defect !== null) corrupt.set(oid, defect.reason);
      verified++;
      progress.bytes(size);
      progress.fileDone();
    });
  } finally {
    progress.stop();
  }
  return { verified, corrupt };
}

/** Corrupt chunks as problems, each with the first file using it (or saying nothing does). */
async function placeCorruptChunks(
  repo: Repository,
  roots: readonly Root[],
  reach: ReachableObjects,
  corrupt: ReadonlyMap<Oid, string>,
): Promise<FsckProblem[]> {
  const reachable = new Set([...corrupt.keys()].filter((oid) => reach.chunks.has(oid)));
  const whereOf = await locateChunks(repo, roots, reachable);
  return [...corrupt]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([oid, reason]) => ({
      kind: 'chunk' as const,
      oid,
      problem: 'corrupt' as const,
      reason,
      where: whereOf.get(oid) ?? 'unreachable: no commit or staged file uses it',
    }));
}

/** Reachable structured objects were verified by the walk; this checks the unreachable ones. */
async function verifyDanglingObjects(
  repo: Repository,
  oids: readonly Oid[],
): Promise<FsckProblem[]> {
  const defects = await mapLimit(oids, VERIFY_CONCURRENCY, (oid) =>
    verifyStored(repo.odb, 'objects', oid),
  );
  const problems: FsckProblem[] = [];
  oids.forEach((oid, i) => {
    const defect = defects[i];
    if (defect)
      problems.push({
        kind: defect.kind,
        oid,
        problem: 'corrupt',
        reason: defect.reason,
        where: 'unreachable: no ref or staged file uses it',
      });
  });
  return problems;
}

interface SizeClaim {
  readonly parent: Oid;
  /** The parent folder's path, '' for a root tree. */
  readonly folder: string;
  readonly path: string;
  readonly size: number;
}

/**
 * Trees record each entry's size (a file's length, a folder's total). Each object is individually
 * sound when its hash matches, but a tree could still claim a size its child does not have; that
 * would mislead status, stats and checkout progress. Claims are checked as the children are read.
 */
class SizeCheck {
  readonly problems: FsckProblem[] = [];
  /** Actual sizes of the trees and manifests read so far. */
  private readonly actual = new Map<Oid, number>();
  /** Claims about children not read yet (the walk reads a child after its parent). */
  private readonly pending = new Map<Oid, SizeClaim[]>();

  visitor(): ReachabilityVisitor {
    return {
      tree: (oid, entries, path) => {
        let total = 0;
        for (const entry of entries) {
          total += entry.size;
          const claim: SizeClaim = {
            parent: oid,
            folder: path,
            path: path === '' ? entry.name : `${path}/${entry.name}`,
            size: entry.size,
          };
          const known = this.actual.get(entry.oid);
          if (known !== undefined) this.check(claim, known);
          else this.pending.set(entry.oid, [...(this.pending.get(entry.oid) ?? []), claim]);
        }
        this.settle(oid, total);
      },
      manifest: (oid, manifest) => this.settle(oid, manifest.size),
    };
  }

  private settle(oid: Oid, size: number): void {
    this.actual.set(oid, size);
    for (const claim of this.pending.get(oid) ?? []) this.check(claim, size);
    this.pending.delete(oid);
  }

  private check(claim: SizeClaim, actual: number): void {
    if (claim.size === actual) return;
    this.problems.push({
      kind: 'tree',
      oid: claim.parent,
      problem: 'corrupt',
      reason: `records ${claim.size} bytes for ${claim.path}, whose content has ${actual}`,
      where: claim.folder === '' ? 'a root tree' : `the tree of folder ${claim.folder}/`,
    });
  }
}

/** For chunks found corrupt, where the first file using each is (one more walk, only when needed). */
async function locateChunks(
  repo: Repository,
  roots: readonly Root[],
  wanted: Set<Oid>,
): Promise<Map<Oid, string>> {
  const found = new Map<Oid, string>();
  if (wanted.size === 0) return found;
  await walkReachable(repo, roots, {
    tolerant: true,
    depth: 'manifests',
    visitor: {
      manifest(oid, manifest, path) {
        for (const chunk of manifest.chunks) {
          if (wanted.has(chunk.oid) && !found.has(chunk.oid))
            found.set(chunk.oid, `in manifest ${oid} of ${path || '(staged file)'}`);
        }
      },
    },
  });
  return found;
}
