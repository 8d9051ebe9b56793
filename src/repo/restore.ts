/**
 * Bringing paths back from a commit or the index (`restore`, `checkout -- paths`, `reset -- paths`)
 * and settling conflicted paths with one side (`checkout --ours|--theirs`).
 */
import { chmod } from 'node:fs/promises';
import { PathspecError, UsageError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import { lockableMatcher, removeWorktreeFile, worktreeState } from './checkout.js';
import { materializeFile } from './content.js';
import type { Index } from './index-file.js';
import { under } from './pathspec.js';
import { silentProgress, type ProgressSink } from './progress.js';
import type { Repository } from './repository.js';
import { commitTreeMap } from './status.js';
import type { FileMap, FileRecord } from './tree-map.js';

export interface RestoreSpec {
  /** Commit to take content from; null = the index (or, with stagedFromHeadWhenNull, an empty HEAD). */
  source: Oid | null;
  /** Restore the index entries. */
  staged: boolean;
  /** Restore the files on disk. */
  worktree: boolean;
  stagedFromHeadWhenNull?: boolean;
  progress?: ProgressSink;
}

/** Brings the paths under `specs` back from `spec.source`; refuses when nothing matches. */
export async function restorePaths(
  repo: Repository,
  specs: readonly string[],
  spec: RestoreSpec,
): Promise<void> {
  await repo.updateIndex(async (index) => {
    const sourceMap: FileMap | null =
      spec.source !== null || spec.stagedFromHeadWhenNull
        ? await commitTreeMap(repo, spec.source)
        : null;
    const fromIndex: FileMap = new Map(
      [...index.entries].map(([p, e]) => [p, { type: e.type, oid: e.oid, size: e.size }]),
    );
    const source = sourceMap ?? fromIndex;
    let matched = 0;
    const candidates = new Set([
      ...source.keys(),
      ...(spec.staged ? index.entries.keys() : []),
      ...(sourceMap ? fromIndex.keys() : []),
    ]);
    const restore = new PathRestorer(repo, index, spec.progress ?? silentProgress);
    for (const path of [...candidates].sort()) {
      if (!specs.some((s) => under(path, s))) continue;
      matched++;
      if (index.conflicts.has(path) && sourceMap === null) {
        throw new UsageError(`path '${path}' is unmerged`, {
          hint: "choose a side with 'mediagit checkout --ours|--theirs'",
        });
      }
      const record = source.get(path);
      if (spec.worktree) {
        if (record) await restore.file(path, record, spec.staged || sourceMap === null);
        else if (spec.staged && sourceMap) await removeWorktreeFile(repo, path);
      }
      if (spec.staged) restore.entry(path, record);
    }
    if (matched === 0)
      throw new PathspecError(
        `pathspec '${specs.join(' ')}' did not match any file known to mediagit`,
      );
  });
}

/** The per-path steps of restorePaths, with what they share. */
class PathRestorer {
  // Lockable files come back read-only, as checkout writes them, until `mediagit lock`.
  private readonly lockable: ((path: string) => boolean) | null;

  constructor(
    private readonly repo: Repository,
    private readonly index: Index,
    private readonly progress: ProgressSink,
  ) {
    this.lockable = lockableMatcher(repo);
  }

  /** Writes the file unless it already holds `record`; `setStat` records the new file's stat. */
  async file(path: string, record: FileRecord, setStat: boolean): Promise<void> {
    const entry = this.index.entries.get(path);
    if (
      (await worktreeState(this.repo, this.index, path)) === 'clean' &&
      entry !== undefined &&
      entry.oid === record.oid &&
      entry.type === record.type
    )
      return;
    const stats = await materializeFile(
      this.repo.odb,
      record.oid,
      this.repo.root,
      this.repo.absPath(path),
      record.type,
      this.progress,
    );
    if (this.lockable?.(path)) await chmod(this.repo.absPath(path), Number(stats.mode) & 0o7555);
    if (setStat)
      this.index.entries.set(path, {
        path,
        type: record.type,
        oid: record.oid,
        size: record.size,
        mtimeNs: stats.mtimeNs,
        ino: stats.ino,
      });
  }

  /** Sets the index entry to `record` (removes it when undefined) and clears a conflict. */
  entry(path: string, record: FileRecord | undefined): void {
    const index = this.index;
    if (record) {
      const existing = index.entries.get(path);
      if (!existing || existing.oid !== record.oid || existing.type !== record.type) {
        index.entries.set(path, {
          path,
          type: record.type,
          oid: record.oid,
          size: record.size,
          mtimeNs: 0n,
          ino: 0n,
        });
      }
    } else index.entries.delete(path);
    index.conflicts.delete(path);
  }
}

export interface ConflictSideResult {
  /** Conflicted paths that matched. */
  updated: number;
  /** Of those, the paths the chosen side deleted (removed from disk; `rm` accepts that). */
  deleted: string[];
}

/** Writes one side of each conflicted path under `specs` to disk; the index keeps the conflict until `add`. */
export async function checkoutConflictSide(
  repo: Repository,
  specs: readonly string[],
  side: 'ours' | 'theirs',
  progress: ProgressSink = silentProgress,
): Promise<ConflictSideResult> {
  const index = await repo.readIndex();
  const conflicts = [...index.conflicts.values()].filter((c) =>
    specs.some((s) => under(c.path, s)),
  );
  if (conflicts.length === 0)
    throw new PathspecError(`no unmerged paths match '${specs.join(' ')}'`);
  const lockable = lockableMatcher(repo);
  const deleted: string[] = [];
  for (const conflict of conflicts) {
    const chosen = conflict[side];
    if (chosen === null) {
      await removeWorktreeFile(repo, conflict.path);
      deleted.push(conflict.path);
      continue;
    }
    const stats = await materializeFile(
      repo.odb,
      chosen.oid,
      repo.root,
      repo.absPath(conflict.path),
      chosen.type,
      progress,
    );
    if (lockable?.(conflict.path))
      await chmod(repo.absPath(conflict.path), Number(stats.mode) & 0o7555);
  }
  return { updated: conflicts.length, deleted };
}
