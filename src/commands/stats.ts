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
  /** Reachable chunks stored here, and their logical bytes. */
  localChunks: number;
  localBytes: number;
  /** Reachable chunks not stored here that the content remote holds (a lean clone), and their logical bytes. */
  remoteOnlyChunks: number;
  remoteOnlyBytes: number;
  /** Reachable chunks not stored here whose remote could not be asked (offline), and their logical bytes. */
  unconfirmedChunks: number;
  unconfirmedBytes: number;
  /** The remote content not stored here comes from; null without one. */
  contentRemote: string | null;
}

const ratio = (a: number, b: number): number => (b === 0 ? 1 : a / b);

export async function computeStats(
  repo: Repository,
  warn: (line: string) => void = () => {},
): Promise<RepoStats> {
  // Root trees record the size of everything below them, so a commit's snapshot size is one read.
  const rootTreeUses = new Map<Oid, number>();
  const chunkSizes = new Map<Oid, number>();
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
      manifest(_oid, manifest) {
        for (const c of manifest.chunks) chunkSizes.set(c.oid, c.size);
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
  const local = new Set<Oid>();
  for await (const { key, size } of repo.store.list('chunks/')) {
    storedBytes += size;
    const oid = key.slice('chunks/'.length);
    if (reach.chunks.has(oid)) {
      storedChunkBytes += size;
      local.add(oid);
    }
  }
  const away = await whereAbsent(
    repo,
    [...reach.chunks].filter((oid) => !local.has(oid)),
  );
  const bytesOf = (oids: Iterable<Oid>): number => {
    let n = 0;
    for (const oid of oids) n += chunkSizes.get(oid) ?? 0;
    return n;
  };
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
    localChunks: local.size,
    localBytes: bytesOf(local),
    remoteOnlyChunks: away.remote.length,
    remoteOnlyBytes: bytesOf(away.remote),
    unconfirmedChunks: away.unconfirmed.length,
    unconfirmedBytes: bytesOf(away.unconfirmed),
    contentRemote: repo.odb.chunkSource?.remoteName ?? null,
  };
}

/** Splits chunks absent here into those the content remote has, and those it could not be asked about. */
async function whereAbsent(
  repo: Repository,
  absent: readonly Oid[],
): Promise<{ remote: Oid[]; unconfirmed: Oid[] }> {
  const source = repo.odb.chunkSource;
  if (!source || absent.length === 0) return { remote: [], unconfirmed: [...absent] };
  try {
    const has = await source.has(absent);
    return { remote: absent.filter((_, i) => has[i]), unconfirmed: [] };
  } catch {
    return { remote: [], unconfirmed: [...absent] };
  }
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
    [
      'content here',
      `${formatBytes(stats.localBytes)} (${plural(stats.localChunks, 'chunk')} stored locally)`,
    ],
    ...(stats.remoteOnlyChunks > 0
      ? [
          [
            `on '${stats.contentRemote}' only`,
            `${formatBytes(stats.remoteOnlyBytes)} (${plural(stats.remoteOnlyChunks, 'chunk')}, fetched when needed)`,
          ] as [string, string],
        ]
      : []),
    ...(stats.unconfirmedChunks > 0
      ? [
          [
            'not stored locally',
            `${formatBytes(stats.unconfirmedBytes)} (${plural(stats.unconfirmedChunks, 'chunk')}${stats.contentRemote ? `; '${stats.contentRemote}' could not be reached to confirm it has them` : '; no remote has been asked'})`,
          ] as [string, string],
        ]
      : []),
    ['deduplication', `${stats.dedupRatio.toFixed(2)}x (logical / unique)`],
    ['compression', `${stats.compressionRatio.toFixed(2)}x (unique / stored chunks)`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length)) + 1;
  for (const [label, value] of rows) io.out(`${`${label}:`.padEnd(width + 1)}${value}`);
}
