/**
 * Garbage collection: deleting stored objects and chunks that nothing reaches (`gc`).
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ObjectCorruptError, ObjectMissingError, UsageError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import { isErrno, withLock } from '../util/fs.js';
import { collectRoots, walkReachable, type ReachableObjects } from './reachability.js';
import { DEFAULT_REFLOG_EXPIRE, expireReflogs } from './reflog.js';
import type { Repository } from './repository.js';
import { emptyTrash } from './worktree-trash.js';

export interface GcOptions {
  /** Unreachable objects that arrived less than this long ago stay (Infinity: all stay). */
  graceMs: number;
  /** Only count what would be deleted. */
  dryRun?: boolean;
  /**
   * Reflog entries younger than this keep their commits; older ones are removed from the logs
   * (gc.reflogExpire, default 90 days; Infinity: never expire).
   */
  reflogExpireMs?: number;
}

export interface GcReport {
  dryRun: boolean;
  graceSeconds: number | null;
  /** Unreachable objects and chunks deleted (or, with --dry-run, that would be). */
  removed: number;
  removedBytes: number;
  /** Objects and chunks left in the store: the reachable ones plus unreachable ones still in their grace period. */
  kept: number;
  keptUnreachable: number;
  reachable: { tags: number; commits: number; trees: number; manifests: number; chunks: number };
  tempFilesRemoved: number;
  /** Old versions of replaced files left in .mediagit/trash (worktree-trash.ts), removed. */
  trashFilesRemoved: number;
  /** Reflog entries older than gc.reflogExpire removed (or, with --dry-run, that would be: 0). */
  reflogEntriesExpired: number;
}

const UNIT_MS: Record<string, number> = {
  second: 1000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 7 * 86_400_000,
};

/**
 * Grace period in milliseconds, in the style of git's gc.pruneExpire: 'now', 'never', or
 * 'N.unit' / 'N.units' (seconds, minutes, hours, days, weeks), optionally followed by '.ago'.
 */
export function parseGracePeriod(text: string): number {
  const value = text.trim().toLowerCase();
  if (value === 'now' || value === 'all') return 0;
  if (value === 'never') return Number.POSITIVE_INFINITY;
  const m = /^(\d+)[. ](second|minute|hour|day|week)s?(?:[. ]ago)?$/.exec(value);
  if (!m)
    throw new UsageError(`invalid --prune value '${text}'`, {
      hint: "use 'now', 'never', or a period like '30.minutes', '2.hours', '14.days', '2.weeks'",
    });
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/**
 * Deletes what no branch, tag, HEAD, unexpired reflog entry or the index reaches and arrived before the grace period,
 * plus old leftovers of interrupted writes. Refuses (deleting nothing) when a reachable object is
 * missing or corrupt.
 */
export async function collectGarbage(repo: Repository, options: GcOptions): Promise<GcReport> {
  const dryRun = options.dryRun ?? false;
  const cutoff = Date.now() - options.graceMs;
  // The index lock is held throughout: add and commit (which write new objects and reuse stored
  // chunks) cannot run until every deletion is done. It is the lock Repository.updateIndex takes;
  // gc only reads the index, so it does not rewrite it (a rewrite would also make racily-clean
  // entries look clean).
  return withLock(repo.path('index.lock'), { what: 'the index', timeoutMs: 30_000 }, async () => {
    const expireMs = options.reflogExpireMs ?? parseGracePeriod(DEFAULT_REFLOG_EXPIRE);
    const reflogsSince = Number.isFinite(expireMs) ? Math.floor((Date.now() - expireMs) / 1000) : 0;
    const reflogEntriesExpired = dryRun ? 0 : await expireReflogs(repo, reflogsSince);
    const reach = await reachableNow(repo, reflogsSince);
    const report: GcReport = {
      dryRun,
      graceSeconds: Number.isFinite(options.graceMs) ? options.graceMs / 1000 : null,
      removed: 0,
      removedBytes: 0,
      kept: 0,
      keptUnreachable: 0,
      reachable: {
        tags: reach.tags.size,
        commits: reach.commits.size,
        trees: reach.trees.size,
        manifests: reach.manifests.size,
        chunks: reach.chunks.size,
      },
      tempFilesRemoved: 0,
      trashFilesRemoved: 0,
      reflogEntriesExpired,
    };
    await sweepStore(repo, reach, cutoff, dryRun, report);
    report.tempFilesRemoved = await sweepTemp(repo.path('tmp'), cutoff, dryRun);
    // No grace period: under the index lock no checkout is filling the trash, and what is in it
    // is already gone from the working tree.
    report.trashFilesRemoved = await emptyTrash(repo, dryRun);
    return report;
  });
}

/** Everything reachable from the refs, the unexpired reflog entries and the index; throws on the first missing or corrupt object. */
async function reachableNow(repo: Repository, reflogsSince: number): Promise<ReachableObjects> {
  const index = await repo.readIndex();
  const roots = await collectRoots(repo, { index, reflogsSince });
  const reach = await walkReachable(repo, roots, { tolerant: true });
  if (reach.problems.length > 0) {
    const first = reach.problems[0]!;
    const count = reach.problems.length;
    const hint = `gc deleted nothing: ${count} ${count === 1 ? 'reachable object is' : 'reachable objects are'} missing or corrupt (first: ${first.where}); run 'mediagit fsck' for the full list`;
    throw first.problem === 'missing'
      ? new ObjectMissingError(first.oid, first.kind, { hint })
      : new ObjectCorruptError(first.oid, first.reason, { hint });
  }
  return reach;
}

function isReachable(reach: ReachableObjects, namespace: 'chunks' | 'objects', oid: Oid): boolean {
  if (namespace === 'chunks') return reach.chunks.has(oid);
  return (
    reach.commits.has(oid) ||
    reach.trees.has(oid) ||
    reach.manifests.has(oid) ||
    reach.tags.has(oid)
  );
}

/** Deletes unreachable objects older than the cutoff, counting into `report`. */
async function sweepStore(
  repo: Repository,
  reach: ReachableObjects,
  cutoff: number,
  dryRun: boolean,
  report: GcReport,
): Promise<void> {
  // Structured objects first, chunks last: an interrupted gc never leaves a surviving manifest
  // whose chunks are gone while the manifest itself was meant to go too.
  for (const namespace of ['objects', 'chunks'] as const) {
    for await (const { key, size } of repo.store.list(`${namespace}/`)) {
      const oid = key.slice(namespace.length + 1);
      if (isReachable(reach, namespace, oid)) {
        report.kept++;
        continue;
      }
      const arrived = await arrivalOf(repo.store.pathOf(key));
      if (arrived === null) continue;
      if (arrived > cutoff) {
        report.kept++;
        report.keptUnreachable++;
        continue;
      }
      if (!dryRun) await repo.store.delete(key);
      report.removed++;
      report.removedBytes += size;
    }
  }
}

/**
 * When the object last arrived in this store, in ms — the later of mtime and ctime — or null when
 * the file is gone already. An object hard-linked in by fetch or clone keeps the mtime it got in
 * the repository it came from, possibly months ago; link(2) updates only its ctime. Without ctime
 * a gc running during a fetch would take such objects for old garbage and delete them before the
 * fetch's ref made them reachable.
 */
async function arrivalOf(path: string): Promise<number | null> {
  try {
    const info = await stat(path);
    return Math.max(info.mtimeMs, info.ctimeMs);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
}

/** Removes files in .mediagit/tmp older than the cutoff: debris of writes interrupted by a crash. */
async function sweepTemp(dir: string, cutoff: number, dryRun: boolean): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return 0;
    throw err;
  }
  let removed = 0;
  for (const name of names) {
    const path = join(dir, name);
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) continue;
      throw err;
    }
    if (!info.isFile() || info.mtimeMs > cutoff) continue;
    if (!dryRun) {
      try {
        await unlink(path);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
    removed++;
  }
  return removed;
}
