import {
  defaultRemote,
  fetchRefs,
  getRemote,
  hardlinksWanted,
  parseRecent,
} from '../sync/index.js';
import { tryRefreshLockCache } from '../sync/locks.js';
import { openRepository, type CommandIo } from './context.js';
import { openRemote, printFetch } from './shared/remotes.js';

export interface FetchCommandOptions {
  prune?: boolean;
  json?: boolean;
  quiet?: boolean;
  /** false with --no-hardlinks. */
  hardlinks?: boolean;
  /** --recent <duration>. */
  recent?: string;
  allContent?: boolean;
}

export async function runFetch(
  io: CommandIo,
  remoteArg: string | undefined,
  options: FetchCommandOptions,
): Promise<void> {
  const recentMs = options.recent === undefined ? undefined : parseRecent(options.recent);
  const repo = await openRepository(io);
  const remote = getRemote(repo, remoteArg ?? defaultRemote(repo));
  const opened = await openRemote(io, repo, remote);
  const report = await fetchRefs(repo, remote, opened, {
    prune: options.prune ?? false,
    hardlinks: await hardlinksWanted(options.hardlinks, repo),
    progress: io.progress(),
    content: {
      branch: await repo.currentBranch(),
      ...(recentMs === undefined ? {} : { recentMs }),
      ...(options.allContent ? { all: true } : {}),
    },
  });
  // Keep the lock view status shows current while we are talking to the remote anyway.
  await tryRefreshLockCache(repo, remote.name, opened.store);
  if (options.json) io.out(JSON.stringify(report, null, 2));
  else if (!options.quiet) printFetch(io, remote.url, report);
}
