/**
 * Rename detection, cheap for chunked media: a file that keeps its manifest kept its content
 * (100%), and one that shares chunks with a deleted file is a rename with an edit when the bytes
 * of the chunks they share reach the threshold. No file content is read, only manifests.
 */
import type { Oid } from '../objects/index.js';
import { walkHistory, type HistoryOptions, type LogEntry } from './history.js';
import { commitTreeMap } from './status.js';
import type { Repository } from './repository.js';
import type { Change, FileRecord } from './tree-map.js';

/** git's default: half the content in common. */
export const RENAME_THRESHOLD = 0.5;

export interface Rename {
  readonly from: string;
  readonly to: string;
  /** 0..100, as git prints it (R100, R087). */
  readonly similarity: number;
}

/** How alike two files are: bytes of the chunks they share over the larger size, 0..1. */
export async function similarity(repo: Repository, a: FileRecord, b: FileRecord): Promise<number> {
  if (a.oid === b.oid) return 1;
  const larger = Math.max(a.size, b.size);
  if (larger === 0) return 1;
  // Sizes alone bound it: a file half the size of the other shares at most half.
  if (Math.min(a.size, b.size) / larger < RENAME_THRESHOLD) return 0;
  // Working-tree content is hashed, not stored: without both manifests there is nothing to compare.
  const present = await repo.odb.has('manifest', [a.oid, b.oid]);
  if (!present.every(Boolean)) return 0;
  const [ma, mb] = await Promise.all([repo.odb.readManifest(a.oid), repo.odb.readManifest(b.oid)]);
  const have = new Map<Oid, number>();
  for (const c of ma.chunks) have.set(c.oid, (have.get(c.oid) ?? 0) + 1);
  let shared = 0;
  for (const c of mb.chunks) {
    const n = have.get(c.oid) ?? 0;
    if (n > 0) {
      shared += c.size;
      have.set(c.oid, n - 1);
    }
  }
  return shared / larger;
}

/**
 * Pairs deleted with added files: exact matches first (same manifest), then the most similar pair
 * at or above `threshold`, each file used once.
 */
export async function findRenames(
  repo: Repository,
  deleted: ReadonlyMap<string, FileRecord>,
  added: ReadonlyMap<string, FileRecord>,
  threshold = RENAME_THRESHOLD,
): Promise<Rename[]> {
  const renames: Rename[] = [];
  const left = new Map(deleted);
  const right = new Map(added);
  const byOid = new Map<Oid, string[]>();
  for (const [path, rec] of left) byOid.set(rec.oid, [...(byOid.get(rec.oid) ?? []), path]);
  for (const [to, rec] of [...right]) {
    const from = byOid.get(rec.oid)?.shift();
    if (from === undefined) continue;
    renames.push({ from, to, similarity: 100 });
    left.delete(from);
    right.delete(to);
  }
  // Inexact: every remaining pair is scored (manifests only); bounded so a huge reorganisation
  // does not read thousands of manifests squared.
  if (left.size === 0 || right.size === 0 || left.size * right.size > 10_000) return renames;
  const scored: { from: string; to: string; score: number }[] = [];
  for (const [from, a] of left)
    for (const [to, b] of right) {
      const score = await similarity(repo, a, b);
      if (score >= threshold) scored.push({ from, to, score });
    }
  scored.sort((x, y) => y.score - x.score || (x.to < y.to ? -1 : 1));
  for (const s of scored) {
    if (!left.has(s.from) || !right.has(s.to)) continue;
    renames.push({ from: s.from, to: s.to, similarity: Math.floor(s.score * 100) });
    left.delete(s.from);
    right.delete(s.to);
  }
  return renames;
}

export interface RenamedChange {
  readonly path: string;
  readonly status: Change['status'] | 'R';
  readonly before: FileRecord | null;
  readonly after: FileRecord | null;
  /** For 'R': the old path and the similarity (0..100). */
  readonly from?: string;
  readonly similarity?: number;
}

/** A change list with each detected rename's D and A folded into one R, sorted by path. */
export async function withRenames(
  repo: Repository,
  changes: readonly Change[],
  threshold = RENAME_THRESHOLD,
): Promise<RenamedChange[]> {
  const deleted = new Map<string, FileRecord>();
  const added = new Map<string, FileRecord>();
  for (const c of changes) {
    if (c.status === 'D') deleted.set(c.path, c.before!);
    if (c.status === 'A') added.set(c.path, c.after!);
  }
  const renames = await findRenames(repo, deleted, added, threshold);
  if (renames.length === 0) return [...changes];
  const from = new Set(renames.map((r) => r.from));
  const to = new Map(renames.map((r) => [r.to, r]));
  const out: RenamedChange[] = [];
  for (const c of changes) {
    if (c.status === 'D' && from.has(c.path)) continue;
    const r = c.status === 'A' ? to.get(c.path) : undefined;
    if (r)
      out.push({
        path: c.path,
        status: 'R',
        before: deleted.get(r.from)!,
        after: c.after,
        from: r.from,
        similarity: r.similarity,
      });
    else out.push(c);
  }
  return out;
}

/**
 * `log --follow <file>`: the commits that change one file, continuing under its old name past a
 * rename (a commit adding the file while deleting one with the same or similar content). Like
 * git's, one name is tracked at a time along the walk.
 */
export async function* followHistory(
  repo: Repository,
  starts: readonly Oid[],
  path: string,
  options: Pick<HistoryOptions, 'firstParent' | 'exclude'> = {},
): AsyncGenerator<LogEntry & { path: string }> {
  let current = path;
  for await (const entry of walkHistory(repo, starts, options)) {
    const after = await commitTreeMap(repo, entry.oid);
    const mine = after.get(current);
    const parents = options.firstParent ? entry.commit.parents.slice(0, 1) : entry.commit.parents;
    const parentMaps = await Promise.all(parents.map((p) => commitTreeMap(repo, p)));
    // Unchanged against some parent: not this commit's doing (git's simplification).
    if (parentMaps.some((m) => sameRecord(m.get(current), mine))) continue;
    if (mine === undefined && parents.length === 0) continue;
    yield { ...entry, path: current };
    const first = parentMaps[0];
    if (mine === undefined || first === undefined || first.has(current)) continue;
    // Added here: was it a rename of something this commit deleted?
    const deleted = new Map([...first].filter(([p]) => !after.has(p)));
    const [rename] = await findRenames(repo, deleted, new Map([[current, mine]]));
    if (rename) current = rename.from;
  }
}

function sameRecord(a: FileRecord | undefined, b: FileRecord | undefined): boolean {
  return a?.oid === b?.oid && a?.type === b?.type;
}
