import { readdir } from 'node:fs/promises';
import { MediagitError, NotFoundError, ObjectCorruptError } from '../errors/index.js';
import {
  decodeEnvelopeHeader,
  type ObjectDatabase,
  type ObjectKind,
  type Oid,
} from '../objects/index.js';
import { chunkKey, objectKey } from '../store/index.js';
import {
  Repository,
  collectRoots,
  walkReachable,
  type ReachabilityProblem,
  type ReachabilityVisitor,
  type ReachableObjects,
  type Root,
} from '../repo/index.js';
import { isErrno } from '../util/fs.js';
import { mapLimit } from '../util/limit.js';
import { formatBytes, plural, type CommandIo, openRepository } from './context.js';

/** fsck found missing or corrupt objects (the report has already been printed). */
export class FsckError extends MediagitError {
  override readonly code = 'E_FSCK';
  override readonly exitCode = 6;
}

export interface FsckOptions {
  full?: boolean;
  json?: boolean;
  /** Check a remote instead of the local repository (multi remotes: also primary/secondary divergence). */
  remote?: string;
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
  /** Chunks read and verified (--full only). */
  verifiedChunks: number;
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

export async function runFsck(io: CommandIo, options: FsckOptions): Promise<void> {
  const repo = await openRepository(io);
  if (options.remote !== undefined) {
    const { fsckRemote } = await import('./fsck-remote.js');
    return fsckRemote(io, repo, options.remote, options);
  }
  const roots = await collectRoots(repo);
  const sizes = new SizeCheck();
  const reach = await walkReachable(repo, roots, { tolerant: true, visitor: sizes.visitor() });
  const problems: FsckProblem[] = [
    ...reach.problems.map((p: ReachabilityProblem) => ({ ...p })),
    ...sizes.problems,
  ];

  // Inventory of the store: dangling objects are information, not problems.
  let danglingObjects = 0;
  let danglingChunks = 0;
  const danglingObjectOids: Oid[] = [];
  for await (const { key } of repo.store.list('objects/')) {
    const oid = key.slice('objects/'.length);
    if (reachableObject(reach, oid)) continue;
    danglingObjects++;
    if (options.full) danglingObjectOids.push(oid);
  }
  const storedChunks: { oid: Oid; size: number }[] = [];
  let storedChunkBytes = 0;
  for await (const { key, size } of repo.store.list('chunks/')) {
    const oid = key.slice('chunks/'.length);
    if (!reach.chunks.has(oid)) danglingChunks++;
    if (options.full) {
      storedChunks.push({ oid, size });
      storedChunkBytes += size;
    }
  }

  let verifiedChunks = 0;
  if (options.full) {
    // Every chunk in the store, reachable or not: a corrupt dangling chunk would be trusted (and
    // not rewritten) the next time the same content is added.
    const corruptChunks = new Map<Oid, string>();
    const progress = io.progress();
    progress.start('fsck', storedChunks.length, storedChunkBytes);
    try {
      await mapLimit(storedChunks, VERIFY_CONCURRENCY, async ({ oid, size }) => {
        const defect = await verifyStored(repo.odb, 'chunks', oid);
        if (defect !== null) corruptChunks.set(oid, defect.reason);
        verifiedChunks++;
        progress.bytes(size);
        progress.fileDone();
      });
    } finally {
      progress.stop();
    }
    const reachableCorrupt = new Map([...corruptChunks].filter(([oid]) => reach.chunks.has(oid)));
    const whereOf = await locateChunks(repo, roots, new Set(reachableCorrupt.keys()));
    for (const [oid, reason] of [...corruptChunks].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      problems.push({
        kind: 'chunk',
        oid,
        problem: 'corrupt',
        reason,
        where: whereOf.get(oid) ?? 'unreachable: no commit or staged file uses it',
      });
    }
    // Reachable structured objects were verified by the walk; check the dangling ones too.
    const defects = await mapLimit(danglingObjectOids, VERIFY_CONCURRENCY, (oid) =>
      verifyStored(repo.odb, 'objects', oid),
    );
    danglingObjectOids.forEach((oid, i) => {
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
  }

  const counts: FsckCounts = {
    tags: reach.tags.size,
    commits: reach.commits.size,
    trees: reach.trees.size,
    manifests: reach.manifests.size,
    chunks: reach.chunks.size,
    chunkBytes: reach.chunkBytes,
    danglingObjects,
    danglingChunks,
    tempFiles: await countTempFiles(repo),
    verifiedChunks,
  };

  if (options.json) {
    io.out(
      JSON.stringify(
        { ok: problems.length === 0, full: options.full ?? false, counts, problems },
        null,
        2,
      ),
    );
  } else {
    for (const p of problems) {
      const detail = p.problem === 'corrupt' ? `: ${p.reason}` : '';
      io.out(`${p.problem} ${p.kind} ${p.oid}${detail} (${p.where})`);
    }
    const checked = [
      ...(counts.tags > 0 ? [plural(counts.tags, 'tag')] : []),
      plural(counts.commits, 'commit'),
      plural(counts.trees, 'tree'),
      plural(counts.manifests, 'manifest'),
      `${plural(counts.chunks, 'chunk')} (${formatBytes(counts.chunkBytes)})`,
    ].join(', ');
    const verdict =
      problems.length === 0 ? 'no problems found' : `${plural(problems.length, 'problem')} found`;
    io.out(
      `checked ${checked}${options.full ? `, read ${plural(verifiedChunks, 'stored chunk')}` : ''}: ${verdict}`,
    );
    const info: string[] = [];
    if (danglingObjects > 0) info.push(plural(danglingObjects, 'unreachable object'));
    if (danglingChunks > 0) info.push(plural(danglingChunks, 'unreachable chunk'));
    if (counts.tempFiles > 0) info.push(plural(counts.tempFiles, 'leftover temporary file'));
    if (info.length > 0)
      io.out(`note: ${info.join(', ')} (not a problem; 'mediagit gc' removes them)`);
  }
  if (problems.length > 0) {
    throw new FsckError(
      `the repository has ${plural(problems.length, 'missing or corrupt object', 'missing or corrupt objects')}`,
      {
        hint: 'restore the listed objects from a clone or a remote that has them; files that use them cannot be checked out',
      },
    );
  }
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
