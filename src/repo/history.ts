import type { Commit, Oid, TreeEntry } from '../objects/index.js';
import type { Repository } from './repository.js';

export interface LogEntry {
  readonly oid: Oid;
  readonly commit: Commit;
}

export interface HistoryOptions {
  readonly firstParent?: boolean;
  /**
   * Repository paths (files or folders, '' for everything): only commits that change something
   * under them are yielded, and a merge that leaves them as one parent had them is followed
   * through that parent alone — git's default history simplification.
   */
  readonly paths?: readonly string[];
  /** Commits whose ancestry (themselves included) is left out, as `^rev` or `a..b` do in git. */
  readonly exclude?: readonly Oid[];
}

/**
 * Commits reachable from `starts`, newest first by committer time (ties: discovery order),
 * each once — git log's default order.
 */
export async function* walkHistory(
  repo: Repository,
  starts: readonly Oid[],
  options: HistoryOptions = {},
): AsyncGenerator<LogEntry> {
  const seen = new Set<Oid>();
  if (options.exclude && options.exclude.length > 0)
    for await (const entry of walkHistory(repo, options.exclude)) seen.add(entry.oid);
  const paths = options.paths;
  // Max-heap on committer time; the sequence number keeps ties in discovery order.
  const heap: { entry: LogEntry; seq: number }[] = [];
  let seq = 0;
  const before = (
    a: { entry: LogEntry; seq: number },
    b: { entry: LogEntry; seq: number },
  ): boolean => {
    const ta = a.entry.commit.committer.time;
    const tb = b.entry.commit.committer.time;
    return ta > tb || (ta === tb && a.seq < b.seq);
  };
  const push = async (oid: Oid): Promise<void> => {
    if (seen.has(oid)) return;
    seen.add(oid);
    heap.push({ entry: { oid, commit: await repo.odb.readCommit(oid) }, seq: seq++ });
    for (let i = heap.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  };
  const pop = (): LogEntry => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < heap.length && before(heap[l]!, heap[best]!)) best = l;
        if (r < heap.length && before(heap[r]!, heap[best]!)) best = r;
        if (best === i) break;
        [heap[i], heap[best]] = [heap[best]!, heap[i]!];
        i = best;
      }
    }
    return top.entry;
  };
  for (const oid of starts) await push(oid);
  while (heap.length > 0) {
    const entry = pop();
    let parents = options.firstParent ? entry.commit.parents.slice(0, 1) : entry.commit.parents;
    if (paths === undefined) yield entry;
    else {
      const mine = await pathState(repo, entry.commit.tree, paths);
      let same: Oid | undefined;
      for (const parent of parents) {
        const theirs = await pathState(repo, (await repo.odb.readCommit(parent)).tree, paths);
        if (theirs === mine) {
          same = parent;
          break;
        }
      }
      if (same !== undefined) parents = [same];
      // A root commit counts as a change only when it has something under the paths.
      else if (parents.length > 0 || mine !== emptyState(paths)) yield entry;
    }
    for (const parent of parents) await push(parent);
  }
}

const ABSENT = '-';

function emptyState(paths: readonly string[]): string {
  return paths.map(() => ABSENT).join(' ');
}

/**
 * What a tree holds at each path, as one comparable string: trees and manifests are
 * content-addressed, so equal IDs at a path mean equal content below it.
 */
async function pathState(repo: Repository, tree: Oid, paths: readonly string[]): Promise<string> {
  const parts: string[] = [];
  for (const path of paths) {
    let at: { type: string; oid: Oid } | undefined = { type: 'dir', oid: tree };
    for (const name of path === '' ? [] : path.split('/')) {
      if (at.type !== 'dir') {
        at = undefined;
        break;
      }
      const found: TreeEntry | undefined = (await repo.odb.readTree(at.oid)).find(
        (e) => e.name === name,
      );
      if (!found) {
        at = undefined;
        break;
      }
      at = { type: found.type, oid: found.oid };
    }
    parts.push(at ? `${at.type}:${at.oid}` : ABSENT);
  }
  return parts.join(' ');
}

export async function isAncestor(
  repo: Repository,
  ancestor: Oid,
  descendant: Oid,
): Promise<boolean> {
  if (ancestor === descendant) return true;
  for await (const entry of walkHistory(repo, [descendant]))
    if (entry.oid === ancestor) return true;
  return false;
}

/** A best common ancestor of two commits: a common ancestor that no other common ancestor descends from. */
export async function mergeBase(repo: Repository, a: Oid, b: Oid): Promise<Oid | null> {
  const fromA = new Set<Oid>();
  for await (const entry of walkHistory(repo, [a])) fromA.add(entry.oid);
  const common: LogEntry[] = [];
  for await (const entry of walkHistory(repo, [b])) if (fromA.has(entry.oid)) common.push(entry);
  if (common.length <= 1) return common[0]?.oid ?? null;
  // Strict ancestors of any common ancestor are dominated; one walk finds them all.
  const dominated = new Set<Oid>();
  for await (const entry of walkHistory(
    repo,
    common.flatMap((c) => c.commit.parents),
  ))
    dominated.add(entry.oid);
  return common.find((c) => !dominated.has(c.oid))?.oid ?? null;
}
