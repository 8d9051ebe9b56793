import { defaultRemote, getRemote, hardlinksWanted, pull } from '../sync/index.js';
import { openRepository, type CommandIo } from './context.js';
import { reportMerge } from './shared/merge.js';
import { reportReplay } from './shared/replay.js';
import { openRemote, printFetch } from './shared/remotes.js';

export interface PullCommandOptions {
  ffOnly?: boolean;
  /** --rebase / --no-rebase; undefined takes pull.rebase from the config. */
  rebase?: boolean;
  quiet?: boolean;
  /** false with --no-hardlinks. */
  hardlinks?: boolean;
}

export async function runPull(
  io: CommandIo,
  remoteArg: string | undefined,
  branchArg: string | undefined,
  options: PullCommandOptions,
): Promise<void> {
  const repo = await openRepository(io);
  const remote = getRemote(repo, remoteArg ?? defaultRemote(repo));
  const opened = await openRemote(io, repo, remote);
  const result = await pull(repo, remote, opened, {
    branch: branchArg,
    ffOnly: options.ffOnly,
    rebase: options.rebase ?? repo.config.get('pull.rebase') === true,
    hardlinks: await hardlinksWanted(options.hardlinks, repo),
    progress: () => io.progress(),
    onFetched: (report) => {
      if (!options.quiet) printFetch(io, remote.url, report);
    },
  });
  if (result.merge) return reportMerge(io, result.merge, options.quiet ?? false);
  if (result.rebase.kind === 'up-to-date') {
    if (!options.quiet) io.out('Current branch is up to date.');
    return;
  }
  reportReplay(io, 'rebase', result.rebase, options.quiet ?? false);
}
