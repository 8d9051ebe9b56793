import { ObjectCorruptError } from '../errors/index.js';
import { decodeCommit, decodeManifest, decodeTag, decodeTree, type Oid } from '../objects/index.js';
import type { ProgressSink, Repository } from '../repo/index.js';
import type { Store } from '../store/index.js';
import { mapLimit } from '../util/limit.js';
import {
  TRANSFER_CONCURRENCY,
  canAdopt,
  copyObjects,
  fetchVerified,
  missingOn,
  openFetched,
  readMany,
  type CopyOptions,
  type TransferStats,
} from './transfer.js';

/** Below this many chunks, starting worker threads costs more than it saves. */
const WORKERS_WORTH_CHUNKS = 16;

export interface FetchOptions {
  /** Only files whose repository path this accepts get their chunks fetched (clone --include). */
  readonly include?: (path: string) => boolean;
  readonly progress: ProgressSink;
  /**
   * Chunks from a folder remote are hard-linked where possible, unverified (see copyObjects);
   * false reads and verifies every one. Default true.
   */
  readonly hardlinks?: boolean;
}

interface Held {
  readonly oid: Oid;
  readonly stored: Buffer;
  /** For commits: parents, so they can be written before their children. */
  readonly parents?: readonly Oid[];
}

/**
 * Brings every object reachable from `tips` (commits or annotated tags on the remote) into the
 * local store, verifying each one. Objects are written children first — chunks, manifests,
 * trees, commits, tags — so the local invariant "an object present means everything it points
 * to is present" holds even if the fetch is interrupted; a re-run fetches only what is missing.
 */
export async function fetchObjects(
  repo: Repository,
  remote: Store,
  tips: readonly Oid[],
  options: FetchOptions,
): Promise<TransferStats> {
  const stats: TransferStats = { objects: 0, bytes: 0 };
  const local = repo.store;
  const odb = repo.odb;
  const have = async (kind: 'commit' | 'tag' | 'tree' | 'manifest', oid: Oid): Promise<boolean> =>
    (await odb.has(kind, [oid]))[0] === true;
  /** The items whose object the local store lacks (one local batch query). */
  const absent = async <T extends { oid: Oid }>(
    kind: 'tree' | 'manifest',
    items: readonly T[],
  ): Promise<T[]> => {
    const present = await odb.has(
      kind,
      items.map((i) => i.oid),
    );
    return items.filter((_, i) => !present[i]);
  };

  // 1. History: tags and commits not present locally.
  const tags: Held[] = [];
  const commits: Held[] = [];
  const rootTrees: Oid[] = [];
  const seen = new Set<Oid>();
  // Wave by wave (every object the previous wave pointed at), so a store that batches fetches a
  // whole wave — several tips, the parents of merges — in one request.
  let frontier = [...tips];
  while (frontier.length > 0) {
    const wave: Oid[] = [];
    for (const oid of frontier) {
      if (seen.has(oid)) continue;
      seen.add(oid);
      if ((await odb.kindOf(oid)) === null) wave.push(oid);
    }
    frontier = [];
    const batched =
      remote.capabilities.batch && wave.length > 1
        ? await readMany(
            remote,
            wave.map((oid) => `objects/${oid}`),
          )
        : null;
    for (const oid of wave) {
      const got = batched
        ? await openFetched(oid, batched.get(`objects/${oid}`)!, ['commit', 'tag'], odb)
        : await fetchVerified(remote, oid, ['commit', 'tag'], odb);
      stats.objects++;
      stats.bytes += got.stored.length;
      if (got.kind === 'tag') {
        tags.push({ oid, stored: got.stored });
        frontier.push(decodeOrCorrupt(oid, 'tag', () => decodeTag(got.plain)).object);
        continue;
      }
      const commit = decodeOrCorrupt(oid, 'commit', () => decodeCommit(got.plain));
      commits.push({ oid, stored: got.stored, parents: commit.parents });
      rootTrees.push(commit.tree);
      frontier.push(...commit.parents);
    }
  }

  // 2. Trees and manifests, breadth by breadth; collect the chunks the chosen files need.
  const trees: Held[][] = [];
  const manifests: Held[] = [];
  const chunks = new Set<Oid>();
  const visitedTrees = new Set<Oid>();
  const visitedManifests = new Set<Oid>();
  let level: { oid: Oid; path: string }[] = rootTrees.map((oid) => ({ oid, path: '' }));
  while (level.length > 0) {
    const next: { oid: Oid; path: string }[] = [];
    const fileRefs: { oid: Oid; path: string }[] = [];
    const fetched: Held[] = [];
    const todo = level.filter((t) => !visitedTrees.has(t.oid) && visitedTrees.add(t.oid));
    const treesBatched = remote.capabilities.batch
      ? await readMany(
          remote,
          (await absent('tree', todo)).map((t) => `objects/${t.oid}`),
        )
      : null;
    await mapLimit(todo, TRANSFER_CONCURRENCY, async (item) => {
      if (await have('tree', item.oid)) return;
      const stored =
        treesBatched?.get(`objects/${item.oid}`) ?? (await remote.get(`objects/${item.oid}`));
      const plain = await odb.openStored('tree', item.oid, stored);
      const entries = decodeOrCorrupt(item.oid, 'tree', () => decodeTree(plain));
      fetched.push({ oid: item.oid, stored });
      stats.objects++;
      stats.bytes += stored.length;
      for (const e of entries) {
        const path = item.path === '' ? e.name : `${item.path}/${e.name}`;
        if (e.type === 'dir') next.push({ oid: e.oid, path });
        else fileRefs.push({ oid: e.oid, path });
      }
    });
    trees.push(fetched);
    const files = fileRefs.filter(
      (f) => !visitedManifests.has(f.oid) && visitedManifests.add(f.oid),
    );
    const manifestsBatched = remote.capabilities.batch
      ? await readMany(
          remote,
          (await absent('manifest', files)).map((f) => `objects/${f.oid}`),
        )
      : null;
    await mapLimit(files, TRANSFER_CONCURRENCY, async (file) => {
      const wanted = options.include ? options.include(file.path) : true;
      if (await have('manifest', file.oid)) {
        // A sparse clone may hold the manifest but not yet the chunks of a newly included file.
        if (wanted && options.include)
          for (const c of (await odb.readManifest(file.oid)).chunks) chunks.add(c.oid);
        return;
      }
      const stored =
        manifestsBatched?.get(`objects/${file.oid}`) ?? (await remote.get(`objects/${file.oid}`));
      const plain = await odb.openStored('manifest', file.oid, stored);
      const manifest = decodeOrCorrupt(file.oid, 'manifest', () => decodeManifest(plain));
      manifests.push({ oid: file.oid, stored });
      stats.objects++;
      stats.bytes += stored.length;
      if (wanted) for (const c of manifest.chunks) chunks.add(c.oid);
    });
    level = next;
  }

  // 3. Chunks the local store lacks, in parallel, each verified before it is written — or, from a
  // folder remote, hard-linked unverified, to be verified by whatever reads them (checkout, fsck).
  const missing = await missingOn(local, 'chunk', chunks);
  const copy: CopyOptions = options.hardlinks === undefined ? {} : { hardlinks: options.hardlinks };
  // Chunks that arrive as bytes are verified and written on the repository's chunk workers: every
  // core, and none of the decrypted or decoded copies left on this thread for the collector.
  const ctx =
    missing.length >= WORKERS_WORTH_CHUNKS && !canAdopt(remote, local, copy)
      ? repo.contentContext({ workers: true })
      : null;
  options.progress.start('fetch', missing.length, 0);
  try {
    await copyObjects(remote, local, 'chunk', missing, odb, options.progress, stats, {
      ...copy,
      ...(ctx?.workers ? { workers: ctx.workers } : {}),
    });
  } finally {
    options.progress.stop();
    await ctx?.close();
  }

  // 4. Structured objects, dependencies first.
  const write = (items: Held[]): Promise<unknown> =>
    mapLimit(items, TRANSFER_CONCURRENCY, (h) => local.put(`objects/${h.oid}`, h.stored));
  await write(manifests);
  for (let i = trees.length - 1; i >= 0; i--) await write(trees[i]!);
  const pendingCommits = new Map(commits.map((c) => [c.oid, c]));
  const writeCommit = async (c: Held): Promise<void> => {
    if (!pendingCommits.delete(c.oid)) return;
    for (const parent of c.parents ?? []) {
      const held = pendingCommits.get(parent);
      if (held) await writeCommit(held);
    }
    await local.put(`objects/${c.oid}`, c.stored);
  };
  // Iterative over roots; recursion depth is bounded by chains of commits fetched in one go.
  for (const c of [...commits].reverse()) await writeCommit(c);
  await write(tags);
  return stats;
}

function decodeOrCorrupt<T>(oid: Oid, kind: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    throw new ObjectCorruptError(
      oid,
      `undecodable ${kind}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}
