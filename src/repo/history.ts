import type { Commit, Oid } from '../objects/index.js';
import type { Repository } from './repository.js';

export interface LogEntry {
  readonly oid: Oid;
  readonly commit: Commit;
}

/**
 * Commits reachable from `starts`, newest first by committer time (ties: discovery order),
 * each once — git log's default order.
 */
export async function* walkHistory(
  repo: Repository,
  starts: readonly Oid[],
  options: { firstParent?: boolean } = {},
): AsyncGenerator<LogEntry> {
  const seen = new Set<Oid>();
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
    yield entry;
    const parents = options.firstParent ? entry.commit.parents.slice(0, 1) : entry.commit.parents;
    for (const parent of parents) await push(parent);
  }
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
