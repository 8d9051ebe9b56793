import type { Oid } from '../objects/index.js';
import { Repository, collectRoots, walkReachable } from '../repo/index.js';
import { formatBytes, plural, type CommandIo, openRepository } from './context.js';

export interface StatsOptions {
  json?: boolean;
}

export interface RepoStats {
  /** Reachable commits. */
  commits: number;
  /** Distinct file contents (manifests) reachable from any commit or the index. */
  files: number;
  /** Distinct reachable chunks. */
  chunks: number;
  /** Sum over every reachable commit of its snapshot's total size: what checking out every commit would write. */
  logicalBytes: number;
  /** Logical bytes of the distinct reachable chunks, each counted once. */
  uniqueBytes: number;
  /** Bytes every object and chunk in the store occupies (reachable or not). */
  storedBytes: number;
  /** Bytes the reachable chunks occupy in the store (after compression). */
  storedChunkBytes: number;
  /** logicalBytes / uniqueBytes. */
  dedupRatio: number;
  /** uniqueBytes / storedChunkBytes. */
  compressionRatio: number;
}

const ratio = (a: number, b: number): number => (b === 0 ? 1 : a / b);

export async function computeStats(
  repo: Repository,
  warn: (line: string) => void = () => {},
): Promise<RepoStats> {
  // Root trees record the size of everything below them, so a commit's snapshot size is one read.
  const rootTreeUses = new Map<Oid, number>();
  let logicalBytes = 0;
  const reach = await walkReachable(repo, await collectRoots(repo), {
    tolerant: true,
    chunks: 'skip',
    visitor: {
      commit(_oid, commit) {
        rootTreeUses.set(commit.tree, (rootTreeUses.get(commit.tree) ?? 0) + 1);
      },
      tree(oid, entries) {
        const uses = rootTreeUses.get(oid);
        if (uses === undefined) return;
        let size = 0;
        for (const entry of entries) size += entry.size;
        logicalBytes += size * uses;
      },
    },
  });
  if (reach.problems.length > 0) {
    warn(
      `warning: ${plural(reach.problems.length, 'reachable object is', 'reachable objects are')} missing or corrupt; figures are incomplete (run 'mediagit fsck')`,
    );
  }
  let storedBytes = 0;
  let storedChunkBytes = 0;
  for await (const { size } of repo.store.list('objects/')) storedBytes += size;
  for await (const { key, size } of repo.store.list('chunks/')) {
    storedBytes += size;
    if (reach.chunks.has(key.slice('chunks/'.length))) storedChunkBytes += size;
  }
  return {
    commits: reach.commits.size,
    files: reach.manifests.size,
    chunks: reach.chunks.size,
    logicalBytes,
    uniqueBytes: reach.chunkBytes,
    storedBytes,
    storedChunkBytes,
    dedupRatio: ratio(logicalBytes, reach.chunkBytes),
    compressionRatio: ratio(reach.chunkBytes, storedChunkBytes),
  };
}

export async function runStats(io: CommandIo, options: StatsOptions): Promise<void> {
  const repo = await openRepository(io);
  const stats = await computeStats(repo, io.err);
  if (options.json) {
    io.out(JSON.stringify(stats, null, 2));
    return;
  }
  const rows: [string, string][] = [
    ['commits', String(stats.commits)],
    ['distinct files', String(stats.files)],
    ['unique chunks', `${stats.chunks} (${formatBytes(stats.uniqueBytes)})`],
    ['logical size', `${formatBytes(stats.logicalBytes)} (every commit's snapshot, summed)`],
    [
      'stored size',
      `${formatBytes(stats.storedBytes)} (chunks in use: ${formatBytes(stats.storedChunkBytes)})`,
    ],
    ['deduplication', `${stats.dedupRatio.toFixed(2)}x (logical / unique)`],
    ['compression', `${stats.compressionRatio.toFixed(2)}x (unique / stored chunks)`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length)) + 1;
  for (const [label, value] of rows) io.out(`${`${label}:`.padEnd(width + 1)}${value}`);
}
