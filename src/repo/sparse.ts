/**
 * `sparse-checkout`: which tracked paths are materialised in the working tree. Paths outside the
 * sparse set stay in the index with their committed content (every new commit keeps them), are
 * never written, never reported deleted and never staged as deleted. Changing the set writes
 * exactly the paths it adds (their content fetched first, on demand, so an unreachable remote
 * changes nothing) and removes the files of the paths it drops.
 *
 * Crash safety: files are written before the new patterns are saved, and removed after; the index
 * is saved last. Killed at any point, every file on disk holds its staged content or is absent,
 * status is clean, and running the command again finishes the job.
 */
import { chmod, lstat } from 'node:fs/promises';
import picomatch from 'picomatch';
import { DirtyWorktreeError, UsageError } from '../errors/index.js';
import { mapLimit } from '../util/limit.js';
import { WORKERS_WORTH_BYTES } from '../workers/index.js';
import { lockableMatcher, removeWorktreeFile, worktreeState } from './checkout.js';
import { ensureManifestChunks, materializeFile } from './content.js';
import type { Index } from './index-file.js';
import type { ProgressSink } from './progress.js';
import type { Repository } from './repository.js';

export interface SparseChange {
  /** The patterns now in force; empty: everything is checked out. */
  patterns: string[];
  /** Paths written to the working tree. */
  added: string[];
  /** Paths whose files were removed (they stay tracked). */
  removed: string[];
}

function matcher(patterns: readonly string[] | null): ((path: string) => boolean) | null {
  if (!patterns || patterns.length === 0) return null;
  for (const p of patterns)
    if (p.trim() === '') throw new UsageError('an empty sparse-checkout pattern matches nothing');
  return picomatch([...patterns], { dot: true });
}

/** `sparse-checkout set <patterns>` (null: `disable`, everything checked out). */
export async function setSparse(
  repo: Repository,
  patterns: readonly string[] | null,
  progress: ProgressSink,
): Promise<SparseChange> {
  const wanted = patterns && patterns.length > 0 ? [...new Set(patterns)] : null;
  const next = matcher(wanted);
  return repo.updateIndex(async (index) => {
    const before = repo.includes();
    const isIn = (m: ((p: string) => boolean) | null, p: string): boolean => m === null || m(p);
    const added: string[] = [];
    const removed: string[] = [];
    for (const path of [...index.entries.keys()].sort()) {
      const was = isIn(before, path);
      const now = isIn(next, path);
      if (!was && now) added.push(path);
      else if (was && !now) removed.push(path);
    }
    await refuseLoss(repo, index, added, removed);
    await writePaths(repo, index, added, progress);
    await repo.saveSparsePatterns(wanted);
    for (const path of removed) {
      await removeWorktreeFile(repo, path);
      const entry = index.entries.get(path)!;
      // Stat fields zeroed: the entry no longer describes a file on disk.
      index.entries.set(path, { ...entry, mtimeNs: 0n, ino: 0n });
    }
    return { patterns: wanted ?? [], added, removed };
  });
}

/** `sparse-checkout add <patterns>`: the current set plus these (a full checkout stays full). */
export async function addSparse(
  repo: Repository,
  patterns: readonly string[],
  progress: ProgressSink,
): Promise<SparseChange> {
  if (patterns.length === 0) throw new UsageError('sparse-checkout add needs at least one pattern');
  const current = repo.sparsePatterns();
  if (current.length === 0) return { patterns: [], added: [], removed: [] };
  return setSparse(repo, [...current, ...patterns], progress);
}

/**
 * Nothing is lost: a dropped path's file must hold its staged content (else its edits would go
 * with it), and an added path must not have a different untracked file in the way.
 */
async function refuseLoss(
  repo: Repository,
  index: Index,
  added: readonly string[],
  removed: readonly string[],
): Promise<void> {
  const modified: string[] = [];
  for (const path of removed)
    if ((await worktreeState(repo, index, path)) === 'modified') modified.push(path);
  if (modified.length > 0)
    throw new DirtyWorktreeError(
      `leaving these files out would lose their local changes: ${modified.slice(0, 10).join(', ')}${modified.length > 10 ? ` and ${modified.length - 10} more` : ''}`,
      { hint: "commit them, or discard them with 'mediagit restore <path>', then run it again" },
    );
  const inTheWay: string[] = [];
  for (const path of added)
    if ((await worktreeState(repo, index, path)) === 'modified') inTheWay.push(path);
  if (inTheWay.length > 0)
    throw new DirtyWorktreeError(
      `files that differ from the committed ones are in the way: ${inTheWay.slice(0, 10).join(', ')}`,
      { hint: 'move or delete them first' },
    );
}

/** Writes the staged content of `paths` (fetched first, all of it, before any file is written). */
async function writePaths(
  repo: Repository,
  index: Index,
  paths: readonly string[],
  progress: ProgressSink,
): Promise<void> {
  // Already there from an interrupted run: a file holding the staged content is kept as it is.
  const writes: string[] = [];
  for (const path of paths) {
    const state = await worktreeState(repo, index, path);
    if (state === 'clean') {
      const info = await lstat(repo.absPath(path), { bigint: true });
      index.entries.set(path, {
        ...index.entries.get(path)!,
        mtimeNs: info.mtimeNs,
        ino: info.ino,
      });
    } else writes.push(path);
  }
  await mapLimit(writes, 4, async (path) =>
    ensureManifestChunks(repo.odb, await repo.odb.readManifest(index.entries.get(path)!.oid), path),
  );
  const totalBytes = writes.reduce((n, p) => n + index.entries.get(p)!.size, 0);
  const lockable = lockableMatcher(repo);
  progress.start('checkout', writes.length, totalBytes);
  const ctx = repo.contentContext({ workers: totalBytes >= WORKERS_WORTH_BYTES });
  try {
    await mapLimit(writes, 4, async (path) => {
      const entry = index.entries.get(path)!;
      const stats = await materializeFile(
        repo.odb,
        entry.oid,
        repo.root,
        repo.absPath(path),
        entry.type,
        progress,
        ctx.workers,
      );
      if (lockable?.(path)) await chmod(repo.absPath(path), Number(stats.mode) & 0o7555);
      index.entries.set(path, { ...entry, mtimeNs: stats.mtimeNs, ino: stats.ino });
      progress.fileDone();
    });
  } finally {
    await ctx.close();
    progress.stop();
  }
}
