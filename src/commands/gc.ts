import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ObjectCorruptError, ObjectMissingError, UsageError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import { collectRoots, walkReachable, type ReachableObjects } from '../repo/index.js';
import { isErrno, withLock } from '../util/fs.js';
import { formatBytes, plural, type CommandIo, openRepository } from './context.js';

export interface GcOptions {
  prune: string;
  dryRun?: boolean;
  json?: boolean;
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

function isReachable(reach: ReachableObjects, namespace: 'chunks' | 'objects', oid: Oid): boolean {
  if (namespace === 'chunks') return reach.chunks.has(oid);
  return (
    reach.commits.has(oid) ||
    reach.trees.has(oid) ||
    reach.manifests.has(oid) ||
    reach.tags.has(oid)
  );
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

export async function runGc(io: CommandIo, options: GcOptions): Promise<void> {
  const graceMs = parseGracePeriod(options.prune);
  const dryRun = options.dryRun ?? false;
  const repo = await openRepository(io);
  const cutoff = Date.now() - graceMs;

  // The index lock is held throughout: add and commit (which write new objects and reuse stored
  // chunks) cannot run until every deletion is done. It is the lock Repository.updateIndex takes;
  // gc only reads the index, so it does not rewrite it (a rewrite would also make racily-clean
  // entries look clean).
  const report = await withLock(
    repo.path('index.lock'),
    { what: 'the index', timeoutMs: 30_000 },
    async (): Promise<GcReport> => {
      const index = await repo.readIndex();
      const roots = await collectRoots(repo, { index });
      const reach = await walkReachable(repo, roots, { tolerant: true });
      if (reach.problems.length > 0) {
        const first = reach.problems[0]!;
        const hint = `gc deleted nothing: ${plural(reach.problems.length, 'reachable object is', 'reachable objects are')} missing or corrupt (first: ${first.where}); run 'mediagit fsck' for the full list`;
        throw first.problem === 'missing'
          ? new ObjectMissingError(first.oid, first.kind, { hint })
          : new ObjectCorruptError(first.oid, first.reason, { hint });
      }
      const result: GcReport = {
        dryRun,
        graceSeconds: Number.isFinite(graceMs) ? graceMs / 1000 : null,
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
      };
      // Structured objects first, chunks last: an interrupted gc never leaves a surviving manifest
      // whose chunks are gone while the manifest itself was meant to go too.
      for (const namespace of ['objects', 'chunks'] as const) {
        for await (const { key, size } of repo.store.list(`${namespace}/`)) {
          const oid = key.slice(namespace.length + 1);
          if (isReachable(reach, namespace, oid)) {
            result.kept++;
            continue;
          }
          const arrived = await arrivalOf(repo.store.pathOf(key));
          if (arrived === null) continue;
          if (arrived > cutoff) {
            result.kept++;
            result.keptUnreachable++;
            continue;
          }
          if (!dryRun) await repo.store.delete(key);
          result.removed++;
          result.removedBytes += size;
        }
      }
      result.tempFilesRemoved = await sweepTemp(repo.path('tmp'), cutoff, dryRun);
      return result;
    },
  );

  if (options.json) {
    io.out(JSON.stringify(report, null, 2));
    return;
  }
  const verb = dryRun ? 'would remove' : 'removed';
  const grace =
    report.keptUnreachable > 0
      ? ` (${plural(report.keptUnreachable, 'unreachable object')} younger than ${options.prune} kept)`
      : '';
  io.out(
    `${verb} ${plural(report.removed, 'object')} (${formatBytes(report.removedBytes)}), kept ${report.kept}${grace}`,
  );
  if (report.tempFilesRemoved > 0)
    io.out(`${verb} ${plural(report.tempFilesRemoved, 'leftover temporary file')}`);
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
