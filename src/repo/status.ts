import { hashFile, holdsStagedContent } from './content.js';
import type { Conflict, Index } from './index-file.js';
import { modeToType } from './index-file.js';
import type { Repository } from './repository.js';
import { diffMaps, flattenTree, type Change, type FileMap } from './tree-map.js';
import { IgnoreRules, walkWorktree, type WalkReport, type WorktreeFile } from './worktree.js';
import type { Oid } from '../objects/index.js';

export function indexToMap(index: Index): FileMap {
  const map: FileMap = new Map();
  for (const [path, e] of index.entries) map.set(path, { type: e.type, oid: e.oid, size: e.size });
  return map;
}

export async function commitTreeMap(repo: Repository, commit: Oid | null): Promise<FileMap> {
  if (commit === null) return new Map();
  return flattenTree(repo.odb, (await repo.odb.readCommit(commit)).tree);
}

/**
 * The ID scanWorktree records, when only asked whether files changed, for a file whose content
 * differs from its index entry's: certainly changed, never fully hashed, never an object's ID.
 */
export const UNHASHED_CHANGE = '';

export interface WorktreeState {
  /** What the working tree holds for tracked paths (hashing only files whose stat changed). */
  readonly files: FileMap;
  readonly untracked: string[];
  readonly skipped: WalkReport['skipped'];
  /** Tracked paths whose stat changed but content did not: the index can learn the new stat. */
  readonly refreshed: WorktreeFile[];
}

/**
 * Reads the working tree against the index: unchanged files are recognised by stat alone, so a
 * clean 10,000-file tree costs one lstat per file and no content reads. With `changedOnly` (for
 * callers that only ask whether a file changed, as status does) a file whose stat changed is
 * compared with its staged content instead of being hashed (holdsStagedContent); a changed one
 * gets the ID UNHASHED_CHANGE.
 */
export async function scanWorktree(
  repo: Repository,
  index: Index,
  options: { under?: string[]; changedOnly?: boolean } = {},
): Promise<WorktreeState> {
  const rules = new IgnoreRules(repo.root);
  const report: WalkReport = { skipped: [] };
  const found: WorktreeFile[] = [];
  for (const start of options.under ?? [''])
    found.push(...(await walkWorktree(repo.root, rules, start, report)));
  const files: FileMap = new Map();
  const untracked: string[] = [];
  const refreshed: WorktreeFile[] = [];
  // Sparse clones: excluded tracked files are absent by design, so they count as unchanged.
  if (repo.includes() !== null) {
    for (const [path, e] of index.entries)
      if (repo.isSparseExcluded(path)) files.set(path, { type: e.type, oid: e.oid, size: e.size });
  }
  const ctx = repo.contentContext();
  for (const file of found) {
    const entry = index.entries.get(file.path);
    if (!entry) {
      // Tracked-by-conflict paths are not "untracked": they await resolution.
      if (!index.conflicts.has(file.path)) untracked.push(file.path);
      continue;
    }
    const type = modeToType(file.stats.mode);
    if (index.matchesStat(entry, file.stats)) {
      files.set(file.path, { type: entry.type, oid: entry.oid, size: entry.size });
      continue;
    }
    if (options.changedOnly) {
      // Compared with the staged content, not re-cut and re-hashed: a changed size answers at
      // once, and otherwise the first chunk that differs does.
      const size = Number(file.stats.size);
      const same = await holdsStagedContent(ctx, repo.absPath(file.path), entry, size);
      files.set(file.path, { type, oid: same ? entry.oid : UNHASHED_CHANGE, size });
      if (same && type === entry.type) refreshed.push(file);
      continue;
    }
    const hashed = await hashFile(ctx, repo.absPath(file.path), Number(file.stats.size));
    files.set(file.path, { type, oid: hashed.oid, size: hashed.size });
    if (hashed.oid === entry.oid && type === entry.type) refreshed.push(file);
  }
  return { files, untracked, skipped: report.skipped, refreshed };
}

export interface StatusReport {
  readonly branch: string | null;
  readonly head: Oid | null;
  readonly merging: Oid | null;
  /** HEAD → index. */
  readonly staged: Change[];
  /** index → working tree. */
  readonly unstaged: Change[];
  readonly untracked: string[];
  readonly conflicts: Conflict[];
  readonly skipped: WalkReport['skipped'];
}

export async function computeStatus(repo: Repository): Promise<StatusReport> {
  const head = await repo.readHead();
  const index = await repo.readIndex();
  const indexMap = indexToMap(index);
  const worktree = await scanWorktree(repo, index, { changedOnly: true });
  const unstaged = diffMaps(indexMap, worktree.files).filter((c) => !index.conflicts.has(c.path));
  if (worktree.refreshed.length > 0) await refreshIndexStats(repo, worktree.refreshed);
  return {
    branch: head.ref?.replace(/^refs\/heads\//, '') ?? null,
    head: head.oid,
    merging: await repo.readStateOid('MERGE_HEAD'),
    staged: await stagedChanges(repo, head.oid, index, indexMap),
    unstaged,
    untracked: worktree.untracked,
    conflicts: [...index.conflicts.values()].sort((a, b) => (a.path < b.path ? -1 : 1)),
    skipped: worktree.skipped,
  };
}

/** HEAD → index. When the index knows it is HEAD's tree exactly, HEAD's trees are not even read. */
async function stagedChanges(
  repo: Repository,
  head: Oid | null,
  index: Index,
  indexMap: FileMap,
): Promise<Change[]> {
  if (head !== null && index.tree !== null && (await repo.odb.readCommit(head)).tree === index.tree)
    return [];
  return diffMaps(await commitTreeMap(repo, head), indexMap).filter(
    (c) => !index.conflicts.has(c.path),
  );
}

/** Records fresh stat data for files proven unchanged, so the next status need not hash them. Best effort. */
async function refreshIndexStats(repo: Repository, files: WorktreeFile[]): Promise<void> {
  try {
    await repo.updateIndex(async (index) => {
      for (const file of files) {
        const entry = index.entries.get(file.path);
        if (!entry) continue;
        index.entries.set(file.path, {
          ...entry,
          mtimeNs: file.stats.mtimeNs,
          ino: file.stats.ino,
          size: Number(file.stats.size),
        });
      }
    });
  } catch {
    // Another process holds the index; the refresh is an optimisation only.
  }
}
