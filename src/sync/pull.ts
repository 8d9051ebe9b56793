/**
 * `pull`: fetch from a remote, then merge its branch into HEAD.
 */
import { UsageError } from '../errors/index.js';
import {
  mergeCommit,
  rebaseOnto,
  silentProgress,
  type MergeOutcome,
  type ReplayOutcome,
  type ProgressSink,
  type Repository,
} from '../repo/index.js';
import type { OpenedStore } from '../store/index.js';
import { fetchRefs, type FetchReport } from './fetch-refs.js';
import type { RemoteConfig } from './remotes.js';

export interface PullOptions {
  /** The remote branch to merge; default the current branch's name. */
  branch?: string | undefined;
  ffOnly?: boolean;
  /** Replay local commits onto the remote branch instead of merging (`pull --rebase`). */
  rebase?: boolean;
  hardlinks?: boolean;
  /** A fresh progress display per phase (fetch, then merge). */
  progress?: () => ProgressSink;
  /** Told what the fetch brought before the merge starts (which may still refuse). */
  onFetched?: (report: FetchReport) => void;
}

export type PullResult =
  | { fetched: FetchReport; merge: MergeOutcome; rebase?: undefined }
  | {
      fetched: FetchReport;
      rebase: ReplayOutcome | { readonly kind: 'up-to-date' };
      merge?: undefined;
    };

export async function pull(
  repo: Repository,
  remote: RemoteConfig,
  opened: OpenedStore,
  options: PullOptions = {},
): Promise<PullResult> {
  const progress = options.progress ?? ((): ProgressSink => silentProgress);
  const branch = options.branch ?? (await repo.currentBranch());
  const fetched = await fetchRefs(repo, remote, opened, {
    prune: false,
    hardlinks: options.hardlinks,
    progress: progress(),
    content: { branch: branch ?? null },
  });
  options.onFetched?.(fetched);
  if (!branch)
    throw new UsageError('you are not on a branch; say which remote branch to merge', {
      hint: 'mediagit pull origin <branch>',
    });
  const theirs = await repo.readRef(`refs/remotes/${remote.name}/${branch}`);
  if (!theirs) throw new UsageError(`the remote '${remote.name}' has no branch '${branch}'`);
  // A branch with no commits yet has nothing to replay: it simply takes theirs, as a merge does.
  if (options.rebase && (await repo.readHead()).oid !== null)
    return { fetched, rebase: await rebaseOnto(repo, theirs, { progress: progress() }) };
  const merge = await mergeCommit(repo, theirs, `branch '${branch}' of ${remote.url}`, {
    ffOnly: options.ffOnly ?? false,
    progress: progress(),
  });
  return { fetched, merge };
}
