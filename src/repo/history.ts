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
export async function* walkHistory(repo: Repository, starts: readonly Oid[], options: { firstParent?: boolean } = {}): AsyncGenerator<LogEntry> {
  const seen = new Set<Oid>();
  const queue: LogEntry[] = [];
  const push = async (oid: Oid): Promise<void> => {
    if (seen.has(oid)) return;
    seen.add(oid);
    queue.push({ oid, commit: await repo.odb.readCommit(oid) });
  };
  for (const oid of starts) await push(oid);
  while (queue.length > 0) {
    let best = 0;
    for (let i = 1; i < queue.length; i++) if (queue[i]!.commit.committer.time > queue[best]!.commit.committer.time) best = i;
    const entry = queue.splice(best, 1)[0]!;
    yield entry;
    const parents = options.firstParent ? entry.commit.parents.slice(0, 1) : entry.commit.parents;
    for (const parent of parents) await push(parent);
  }
}

export async function isAncestor(repo: Repository, ancestor: Oid, descendant: Oid): Promise<boolean> {
  if (ancestor === descendant) return true;
  for await (const entry of walkHistory(repo, [descendant])) if (entry.oid === ancestor) return true;
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
  for await (const entry of walkHistory(repo, common.flatMap((c) => c.commit.parents))) dominated.add(entry.oid);
  return common.find((c) => !dominated.has(c.oid))?.oid ?? null;
}
