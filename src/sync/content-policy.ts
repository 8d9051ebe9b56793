/**
 * The fetch policy: which chunk content a clone, fetch or pull brings. Commits, trees and
 * manifests always all come (they are small, and every command that reads history needs them);
 * chunk content by default only for what will be checked out — the tip of one branch, within the
 * sparse set. Everything else stays on the remote and is fetched on demand (chunk-source.ts).
 *
 * `clone.history = 'all'` (repository or per-user config, or `clone --history-content all`) fetches
 * everything, for backups and offline work; `fetch --recent <dur>` adds the content of recent
 * commits and `fetch --all-content` the content of every commit.
 */
import { ConfigError, UsageError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import {
  loadGlobalConfig,
  silentProgress,
  type ProgressSink,
  type Repository,
} from '../repo/index.js';
import type { Store } from '../store/index.js';
import { mapLimit } from '../util/limit.js';
import { skipExpired } from './fetch.js';
import { parseDuration } from './gc/policy.js';
import {
  TRANSFER_CONCURRENCY,
  canAdopt,
  copyObjects,
  missingOn,
  type CopyOptions,
  type TransferStats,
} from './transfer.js';

/** Config key: 'tip' (the default) or 'all'. Clone saves it in the new repository. */
export const HISTORY_CONTENT_KEY = 'clone.history';

export type HistoryContent = 'tip' | 'all';

/** What content one fetch brings besides metadata. */
export interface ContentRequest {
  /** The branch (remote name) whose tip's content comes; null: none (detached, or no branch). */
  readonly branch: string | null;
  /** Also the content of commits at most this old (ms, by committer time). */
  readonly recentMs?: number;
  /** The content of every fetched commit, including history fetched earlier without it. */
  readonly all?: boolean;
}

/** Below this many chunks, starting worker threads costs more than it saves. */
const WORKERS_WORTH_CHUNKS = 16;

export function parseHistoryContent(value: unknown, source: string): HistoryContent {
  if (value === 'tip' || value === 'all') return value;
  throw new ConfigError(`${source} must be 'tip' or 'all', found ${JSON.stringify(value)}`, {
    hint: "'tip' fetches content only for what is checked out; 'all' fetches every version",
  });
}

/** The policy in force: the repository's config, else the per-user config, else 'tip'. */
export async function historyContent(repo?: Repository): Promise<HistoryContent> {
  const own = repo?.config.get(HISTORY_CONTENT_KEY);
  if (own !== undefined) return parseHistoryContent(own, `config ${HISTORY_CONTENT_KEY}`);
  const global = (await loadGlobalConfig()).get(HISTORY_CONTENT_KEY);
  if (global !== undefined) return parseHistoryContent(global, `config ${HISTORY_CONTENT_KEY}`);
  return 'tip';
}

/** `--recent 7d` → milliseconds. */
export function parseRecent(text: string): number {
  const ms = parseDuration(text, '--recent');
  if (ms <= 0) throw new UsageError('--recent needs a duration above zero, e.g. 7d');
  return ms;
}

/**
 * The commits whose content a fetch brings: the requested branch's tip among `heads` (remote ref
 * name → commit or tag), every commit with `all`, and those committed within `recentMs`.
 */
export async function contentCommits(
  repo: Repository,
  heads: ReadonlyMap<string, Oid>,
  request: ContentRequest,
  now = Date.now(),
): Promise<Oid[]> {
  const chosen = new Set<Oid>();
  const tip = request.branch === null ? undefined : heads.get(`refs/heads/${request.branch}`);
  if (tip) chosen.add(await peel(repo, tip));
  if (!request.all && request.recentMs === undefined) return [...chosen];
  const cutoff = request.all ? -Infinity : (now - request.recentMs!) / 1000;
  const seen = new Set<Oid>();
  let frontier = await Promise.all([...heads.values()].map((oid) => peel(repo, oid)));
  while (frontier.length > 0) {
    const next: Oid[] = [];
    for (const oid of frontier) {
      if (seen.has(oid)) continue;
      seen.add(oid);
      const commit = await repo.odb.readCommit(oid);
      if (commit.committer.time >= cutoff) chosen.add(oid);
      // Older commits' parents may still be recent (clocks differ, rebases): keep walking.
      next.push(...commit.parents);
    }
    frontier = next;
  }
  return [...chosen];
}

/** A tag's commit (annotated tags may point at tags). */
async function peel(repo: Repository, oid: Oid): Promise<Oid> {
  let current = oid;
  while ((await repo.odb.kindOf(current)) === 'tag')
    current = (await repo.odb.readTag(current)).object;
  return current;
}

/**
 * The chunks the files of `commits` need (paths `include` accepts; null: all), with their content
 * sizes, read from the local trees and manifests. Each tree is read once per path it appears at,
 * each manifest once.
 */
export async function chunksOfCommits(
  repo: Repository,
  commits: readonly Oid[],
  include: ((path: string) => boolean) | null,
): Promise<Map<Oid, number>> {
  const chunks = new Map<Oid, number>();
  const seenTrees = new Set<string>();
  const manifests = new Set<Oid>();
  let level: { oid: Oid; path: string }[] = [];
  for (const oid of commits) level.push({ oid: (await repo.odb.readCommit(oid)).tree, path: '' });
  while (level.length > 0) {
    const next: { oid: Oid; path: string }[] = [];
    const fresh = level.filter((t) => {
      // Without include patterns what a tree holds does not depend on where it is.
      const key = include ? `${t.path}\0${t.oid}` : t.oid;
      return !seenTrees.has(key) && seenTrees.add(key);
    });
    await mapLimit(fresh, TRANSFER_CONCURRENCY, async (t) => {
      for (const e of await repo.odb.readTree(t.oid)) {
        const path = t.path === '' ? e.name : `${t.path}/${e.name}`;
        if (e.type === 'dir') next.push({ oid: e.oid, path });
        else if (!include || include(path)) manifests.add(e.oid);
      }
    });
    level = next;
  }
  await mapLimit([...manifests], TRANSFER_CONCURRENCY, async (oid) => {
    for (const c of (await repo.odb.readManifest(oid)).chunks) chunks.set(c.oid, c.size);
  });
  return chunks;
}

/**
 * Fetches the chunks of `chunks` (ID → content size) the local store lacks, verified (or
 * hard-linked from a folder remote, as fetch does), with the progress of a fetch. Content a
 * retention policy expired on the remote is skipped, as fetch does.
 */
export async function fetchChunkSet(
  repo: Repository,
  remote: Store,
  chunks: ReadonlyMap<Oid, number>,
  options: { hardlinks?: boolean; progress?: ProgressSink },
): Promise<TransferStats> {
  const stats: TransferStats = { objects: 0, bytes: 0 };
  const missing = await skipExpired(remote, await missingOn(repo.store, 'chunk', chunks.keys()));
  // Nothing to get (a clone's checkout streamed the tip already): no second progress phase.
  if (missing.length === 0) return stats;
  const copy: CopyOptions = options.hardlinks === undefined ? {} : { hardlinks: options.hardlinks };
  const ctx =
    missing.length >= WORKERS_WORTH_CHUNKS && !canAdopt(remote, repo.store, copy)
      ? repo.contentContext({ workers: true })
      : null;
  const progress = options.progress ?? silentProgress;
  let total = 0;
  for (const oid of missing) total += chunks.get(oid) ?? 0;
  progress.start('fetch', missing.length, total);
  try {
    await copyObjects(remote, repo.store, 'chunk', missing, repo.odb, progress, stats, {
      ...copy,
      ...(ctx?.workers ? { workers: ctx.workers } : {}),
    });
  } finally {
    progress.stop();
    await ctx?.close();
  }
  return stats;
}
