import type { BigIntStats } from 'node:fs';
import { chmod, lstat, rmdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DirtyWorktreeError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import { discardTemp, isErrno } from '../util/fs.js';
import { WORKERS_WORTH_BYTES } from '../workers/index.js';
import { mapLimit } from '../util/limit.js';
import { ATTRIBUTES_FILE, lockableMatcher } from './attributes.js';
import {
  STREAM_CONCURRENCY,
  StreamingRestorer,
  ensureManifestChunks,
  holdsStagedContent,
  materializeFile,
  stageFile,
  type ChunkStream,
} from './content.js';
import { modeToType, type Index } from './index-file.js';
import type { ProgressSink } from './progress.js';
import type { Repository } from './repository.js';
import { CleanFileChunks } from './worktree-chunks.js';
import { WorktreeTrash } from './worktree-trash.js';
import type { FileMap, FileRecord } from './tree-map.js';

export { lockableMatcher };

export interface MoveOptions {
  /** Overwrite local changes instead of refusing. */
  readonly force: boolean;
  readonly progress: ProgressSink;
  /** Verb for messages: "checkout", "merge", "reset"… */
  readonly operation: string;
  /**
   * Chunks the store lacks are fetched from here while the files are written, each verified once
   * and written to file and (unless ChunkStream.keepFetched is false) store from the same buffer
   * (StreamingRestorer). Into a new working tree (clone) files appear as they complete; into one
   * with files to keep (pull), every file is staged first and all are put in place at the end,
   * so a fetch failing halfway changes nothing.
   */
  readonly stream?: ChunkStream;
}

const same = (a: FileRecord | undefined, b: FileRecord | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.oid === b.oid && a.type === b.type);

/**
 * Moves the working tree and index from snapshot `from` (what HEAD has) to snapshot `to`, the
 * way git does: paths equal in both keep their local changes; every other path must be clean
 * (index = HEAD, file = index) unless `force`. Nothing is touched until every path is checked.
 */
export async function moveWorktree(
  repo: Repository,
  index: Index,
  from: FileMap,
  to: FileMap,
  options: MoveOptions,
): Promise<{ written: number; removed: number }> {
  const changed: string[] = [];
  for (const path of new Set([...from.keys(), ...to.keys(), ...index.entries.keys()])) {
    if (same(from.get(path), to.get(path))) {
      // Unchanged between the snapshots: local edits survive, unless forced back to the target.
      if (!options.force) continue;
      if (
        same(indexRecord(index, path), to.get(path)) &&
        (!to.has(path) || (await worktreeState(repo, index, path)) === 'clean')
      )
        continue;
    }
    changed.push(path);
  }
  changed.sort();

  /** Paths about to change whose files were just found clean: their chunks can be copied. */
  const clean: string[] = [];
  if (!options.force) {
    const blocked: string[] = [];
    const untrackedInTheWay: string[] = [];
    for (const path of changed) {
      if (repo.isSparseExcluded(path)) continue;
      const entry = indexRecord(index, path);
      if (!same(entry, from.get(path))) {
        if (!(entry && same(entry, to.get(path)))) blocked.push(path);
        continue;
      }
      const state = await worktreeState(repo, index, path);
      if (state === 'untracked') {
        // A file already holding exactly what would be written loses nothing (a killed clone's).
        if (to.has(path) && !(await holdsContent(repo, path, to.get(path)!)))
          untrackedInTheWay.push(path);
      } else if (
        state === 'modified' ||
        (state === 'missing' && entry && to.has(path) && !same(entry, to.get(path)))
      ) {
        blocked.push(path);
      } else if (state === 'clean' && entry) clean.push(path);
    }
    if (blocked.length > 0) {
      throw new DirtyWorktreeError(
        `your local changes to these files would be overwritten by ${options.operation}: ${listPaths(blocked)}`,
        {
          hint: "commit them, or discard them with 'mediagit restore <path>' (or use --force)",
        },
      );
    }
    if (untrackedInTheWay.length > 0) {
      throw new DirtyWorktreeError(
        `untracked files would be overwritten by ${options.operation}: ${listPaths(untrackedInTheWay)}`,
        {
          hint: 'move or delete them first (or use --force)',
        },
      );
    }
  }

  // Paths outside a sparse clone change in the index only; their files never exist on disk.
  const sparse = changed.filter((p) => repo.isSparseExcluded(p));
  for (const path of sparse) {
    const target = to.get(path);
    if (target)
      index.entries.set(path, {
        path,
        type: target.type,
        oid: target.oid,
        size: target.size,
        mtimeNs: 0n,
        ino: 0n,
      });
    else index.entries.delete(path);
    index.conflicts.delete(path);
  }
  const onDisk = changed.filter((p) => !repo.isSparseExcluded(p));
  const removals = onDisk.filter((p) => !to.has(p));
  const writes = onDisk.filter((p) => to.has(p));
  // A streamed checkout into a working tree with files to keep (pull) is staged: every file is
  // written to a temporary file beside it, and removals and renames happen only once all are
  // complete, so a fetch failing halfway changes nothing. A file that must make way for a folder
  // cannot wait for that: such a checkout fetches first, as without a stream.
  const keepsFiles = from.size > 0 || index.entries.size > 0;
  const stream =
    options.stream && !(keepsFiles && needsRemovedFolder(writes, removals))
      ? options.stream
      : undefined;
  const staged = stream !== undefined && keepsFiles;
  // Content a lean clone lacks comes first: if the remote cannot supply it, nothing has changed yet.
  if (!stream)
    await mapLimit(writes, 4, async (path) =>
      ensureManifestChunks(repo.odb, await repo.odb.readManifest(to.get(path)!.oid), path),
    );
  // Several at a time: one after another, each file system call waits its turn on a busy machine.
  // A folder emptied by two removals still goes: the later unlink's rmdir comes after both.
  const remove = async (): Promise<void> => {
    await mapLimit(removals, 8, async (path) => {
      await removeWorktreeFile(repo, path);
      index.entries.delete(path);
      index.conflicts.delete(path);
    });
  };
  if (!staged) await remove();
  const totalBytes = writes.reduce((n, p) => n + (to.get(p)?.size ?? 0), 0);
  const lockable = lockableMatcher(repo);
  options.progress.start(options.operation, writes.length, totalBytes);
  const ctx = repo.contentContext({
    workers: totalBytes >= WORKERS_WORTH_BYTES || stream !== undefined,
  });
  // The files' chunks, counted, when the stream needs them before the first write: to keep those
  // used twice (keepFetched false), to hear which reads are coming (expect).
  const uses =
    stream && ctx.workers && (stream.keepFetched === false || stream.expect)
      ? await chunkUses(
          repo,
          writes.map((p) => to.get(p)!.oid),
        )
      : undefined;
  if (uses) stream?.expect?.([...uses.keys()]);
  // A staged checkout keeps every file it replaces until all are written: the chunks that only
  // moved (the unchanged part of an edited file, a renamed file) are copied from those.
  const local = staged && ctx.workers ? await cleanFileChunks(repo, index, clean) : undefined;
  const restorer =
    stream && ctx.workers
      ? new StreamingRestorer(
          ctx.workers,
          repo.odb,
          stream,
          stream.keepFetched === false && uses ? (oid: Oid) => (uses.get(oid) ?? 0) > 1 : undefined,
          local,
        )
      : ctx.workers;
  const trash = new WorktreeTrash(repo);
  const record = async (path: string, stats: BigIntStats): Promise<void> => {
    const target = to.get(path)!;
    // Lockable files stay read-only until `mediagit lock` (chmod touches neither mtime nor inode, so the index entry holds).
    if (lockable?.(path)) await chmod(repo.absPath(path), Number(stats.mode) & 0o7555);
    index.entries.set(path, {
      path,
      type: target.type,
      oid: target.oid,
      size: target.size,
      mtimeNs: stats.mtimeNs,
      ino: stats.ino,
    });
    index.conflicts.delete(path);
  };
  try {
    if (staged) {
      const temps = new Map<string, string>();
      let failure: { err: unknown } | undefined;
      await mapLimit(writes, STREAM_CONCURRENCY, async (path) => {
        if (failure) return;
        const target = to.get(path)!;
        try {
          temps.set(
            path,
            await stageFile(
              repo.odb,
              target.oid,
              repo.root,
              repo.absPath(path),
              target.type,
              options.progress,
              restorer,
            ),
          );
          options.progress.fileDone();
        } catch (err) {
          failure ??= { err };
        }
      });
      if (failure) {
        await Promise.all([...temps.values()].map(discardTemp));
        throw failure.err;
      }
      // The old versions go to the trash rather than being freed here, or renamed over
      // (worktree-trash.ts): the user does not wait for the kernel to free hundreds of MB.
      try {
        await mapLimit(removals, 8, async (path) => {
          await trash.remove(path);
          index.entries.delete(path);
          index.conflicts.delete(path);
        });
        await mapLimit(writes, 8, async (path) => {
          await trash.replace(temps.get(path)!, repo.absPath(path));
          temps.delete(path);
          await record(path, await lstat(repo.absPath(path), { bigint: true }));
        });
      } finally {
        await Promise.all([...temps.values()].map(discardTemp));
      }
    } else {
      // Streaming, small files would leave the link idle four at a time; the restorer bounds requests.
      await mapLimit(writes, stream ? STREAM_CONCURRENCY : 4, async (path) => {
        const target = to.get(path)!;
        const stats = await materializeFile(
          repo.odb,
          target.oid,
          repo.root,
          repo.absPath(path),
          target.type,
          options.progress,
          restorer,
        );
        await record(path, stats);
        options.progress.fileDone();
      });
    }
  } finally {
    // Closed first: with the old versions in the trash, closing frees nothing, and the trash's
    // freeing then finds no handle keeping them.
    await local?.close();
    await trash.release();
    await ctx.close();
  }
  options.progress.stop();
  // A new or changed .mediagitattributes (a fresh clone, a pull) applies to the files written
  // with it, which were checked against the rules that held before it was written.
  if (writes.includes(ATTRIBUTES_FILE) || removals.includes(ATTRIBUTES_FILE)) {
    const now = lockableMatcher(repo);
    for (const path of writes)
      if (now?.(path) && !lockable?.(path)) {
        const abs = repo.absPath(path);
        const info = await lstat(abs);
        if (info.isFile()) await chmod(abs, info.mode & 0o7555);
      }
  }
  return { written: writes.length, removed: removals.length };
}

/**
 * The chunks of `paths` (found clean, index entries as HEAD has them), each with the stat its file
 * has now: a file changed since is not read (CleanFileChunks).
 */
async function cleanFileChunks(
  repo: Repository,
  index: Index,
  paths: readonly string[],
): Promise<CleanFileChunks> {
  const chunks = new CleanFileChunks((plain) => repo.odb.sealer.oidOfAsync('chunk', plain));
  await mapLimit(paths, 8, async (path) => {
    const entry = index.entries.get(path);
    const info = await lstat(repo.absPath(path), { bigint: true }).catch(() => null);
    if (!entry || !info?.isFile() || info.size !== BigInt(entry.size)) return;
    chunks.add(repo.absPath(path), info, await repo.odb.readManifest(entry.oid));
  });
  return chunks;
}

/** Whether a file to be written sits where a file to be removed makes way for its folder. */
function needsRemovedFolder(writes: readonly string[], removals: readonly string[]): boolean {
  if (removals.length === 0) return false;
  const removed = new Set(removals);
  return writes.some((path) => {
    for (let at = path.indexOf('/'); at > 0; at = path.indexOf('/', at + 1))
      if (removed.has(path.slice(0, at))) return true;
    return false;
  });
}

/**
 * How many times the files of `manifests` use each chunk. A streamed checkout that keeps no
 * fetched chunk must still store those used more than once, for their later uses to restore
 * from. The manifests are local by then (only chunks come through the stream), and the checkout
 * reads them again as it writes each file.
 */
async function chunkUses(repo: Repository, manifests: readonly Oid[]): Promise<Map<Oid, number>> {
  const uses = new Map<Oid, number>();
  await mapLimit(manifests, 4, async (oid) => {
    for (const chunk of (await repo.odb.readManifest(oid)).chunks)
      uses.set(chunk.oid, (uses.get(chunk.oid) ?? 0) + 1);
  });
  return uses;
}

/** Whether the file at `path` holds `record`'s content (false when that cannot be told locally). */
async function holdsContent(repo: Repository, path: string, record: FileRecord): Promise<boolean> {
  const info = await lstat(repo.absPath(path)).catch(() => null);
  if (!info?.isFile() || info.size !== record.size) return false;
  return holdsStagedContent(repo.contentContext(), repo.absPath(path), record, info.size).catch(
    () => false,
  );
}

function indexRecord(index: Index, path: string): FileRecord | undefined {
  const e = index.entries.get(path);
  return e ? { type: e.type, oid: e.oid, size: e.size } : undefined;
}

function listPaths(paths: string[]): string {
  const shown = paths.slice(0, 10).join(', ');
  return paths.length > 10 ? `${shown} and ${paths.length - 10} more` : shown;
}

/** clean / modified (vs the index) / missing / untracked (present but not in the index). */
export async function worktreeState(
  repo: Repository,
  index: Index,
  path: string,
): Promise<'clean' | 'modified' | 'missing' | 'untracked'> {
  let info;
  try {
    info = await lstat(repo.absPath(path), { bigint: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return 'missing';
    throw err;
  }
  const entry = index.entries.get(path);
  if (!info.isFile()) return entry ? 'modified' : info.isDirectory() ? 'missing' : 'untracked';
  if (!entry) return 'untracked';
  if (index.matchesStat(entry, info)) return 'clean';
  if (modeToType(info.mode) !== entry.type) return 'modified';
  return (await holdsStagedContent(
    repo.contentContext(),
    repo.absPath(path),
    entry,
    Number(info.size),
  ))
    ? 'clean'
    : 'modified';
}

/** Deletes a tracked file and any folders it leaves empty (never the root). */
export async function removeWorktreeFile(repo: Repository, path: string): Promise<void> {
  const abs = repo.absPath(path);
  try {
    const info = await lstat(abs);
    if (!info.isDirectory()) await unlink(abs);
  } catch (err) {
    if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err;
  }
  let dir = dirname(abs);
  while (dir.startsWith(repo.root + '/') && dir !== repo.root) {
    try {
      await rmdir(dir);
    } catch {
      break;
    }
    dir = dirname(dir);
  }
}
