/**
 * One copy on disk: `prune` evicts local chunks that are safely on a remote, so a workspace keeps
 * metadata plus what is neither checked out nor pushed. A chunk goes only when the remote, asked
 * right now (a has-check, never a remote-tracking ref that may be stale), says it holds it — so
 * unpushed commits, staged content and anything the remote lost always stay, and a remote that
 * cannot be reached evicts nothing. What is evicted comes back on demand: from the checked-out
 * file when its bytes are there unchanged (verified against the chunk's ID), else from the remote.
 *
 * Crash safety: chunks are deleted one by one after the check; killed midway, the store holds a
 * subset of what it had, every absent chunk is on the remote (fsck: "fetchable"), and a re-run
 * finishes the job.
 */
import { ConfigError, StoreUnavailableError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import { worktreeChunkLocations, type Repository } from '../repo/index.js';
import { chunkKey, type Store } from '../store/index.js';
import { mapLimit } from '../util/limit.js';
import { chunksOfCommits, contentCommits } from './content-policy.js';
import { readDescriptor } from './descriptor.js';
import { missingOn } from './transfer.js';

/** Config key: false keeps every fetched chunk (clone does not evict, prune refuses). */
export const ONE_COPY_KEY = 'content.one_copy';

export interface PruneOptions {
  /** Keep the content of commits made within this many ms (for offline work), unless checked out. */
  readonly keepRecentMs?: number;
  /** Only chunks whose bytes sit in checked-out files (what clone evicts). */
  readonly worktreeOnly?: boolean;
  /** Report what would go, delete nothing. */
  readonly dryRun?: boolean;
  /** The caller has just read the remote's descriptor (a clone): it is not read again. */
  readonly remoteChecked?: boolean;
  /**
   * Every chunk in the local store came from this remote moments ago (a fresh clone): the remote
   * is not asked again whether it holds them. It just served them as part of the commit checked
   * out; a sweep could delete them only after that commit stopped being reachable, and could as
   * well do so right after a check.
   */
  readonly allFetchedFromRemote?: boolean;
}

export interface PruneReport {
  /** Chunks stored locally before. */
  examined: number;
  /** Chunks evicted (or, with dryRun, that would be) and the bytes they occupied here. */
  evicted: number;
  evictedBytes: number;
  /** Kept because the remote does not have them (unpushed, staged, or lost there). */
  notOnRemote: number;
  /** Kept because a recent commit uses them (--keep-recent). */
  recent: number;
}

/** Whether this repository evicts at all (config content.one_copy, default true). */
export function oneCopyEnabled(repo: Repository): boolean {
  const value = repo.config.get(ONE_COPY_KEY);
  if (value === undefined) return true;
  if (typeof value !== 'boolean')
    throw new ConfigError(
      `config ${ONE_COPY_KEY} must be true or false, found ${JSON.stringify(value)}`,
    );
  return value;
}

export async function prune(
  repo: Repository,
  remote: Store,
  options: PruneOptions = {},
): Promise<PruneReport> {
  // An unmounted share or a moved folder opens as an empty store that "lacks" everything: that
  // would evict nothing anyway, but say why.
  if (!options.remoteChecked && !(await readDescriptor(remote)))
    throw new StoreUnavailableError('the remote holds no repository; nothing was evicted', {
      hint: 'check that the remote is reachable (a mounted share, the right URL), then run it again',
    });
  const stored = new Map<Oid, number>();
  for await (const { key, size } of repo.store.list('chunks/'))
    stored.set(key.slice('chunks/'.length), size);
  const report: PruneReport = {
    examined: stored.size,
    evicted: 0,
    evictedBytes: 0,
    notOnRemote: 0,
    recent: 0,
  };
  const inWorktree = await worktreeChunkLocations(repo);
  let candidates = [...stored.keys()];
  if (options.worktreeOnly) candidates = candidates.filter((oid) => inWorktree.has(oid));
  if (options.keepRecentMs !== undefined) {
    const heads = new Map<string, Oid>();
    for (const [name, value] of await repo.store.listRefs('refs/'))
      if (/^refs\/(heads|tags|remotes|stash)/.test(name)) heads.set(name, value.oid);
    const head = await repo.readHead();
    if (head.oid) heads.set('HEAD', head.oid);
    const recent = await chunksOfCommits(
      repo,
      await contentCommits(repo, heads, { branch: null, recentMs: options.keepRecentMs }),
      repo.includes(),
    );
    const before = candidates.length;
    // A checked-out file already is the local copy of its chunks.
    candidates = candidates.filter((oid) => !recent.has(oid) || inWorktree.has(oid));
    report.recent = before - candidates.length;
  }
  const absent = new Set(
    options.allFetchedFromRemote ? [] : await missingOn(remote, 'chunk', candidates),
  );
  report.notOnRemote = absent.size;
  const evict = candidates.filter((oid) => !absent.has(oid));
  await mapLimit(evict, 8, async (oid) => {
    if (!options.dryRun) await repo.store.delete(chunkKey(oid));
    report.evicted++;
    report.evictedBytes += stored.get(oid) ?? 0;
  });
  return report;
}
