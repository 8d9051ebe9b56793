import { UsageError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import {
  abortReplay,
  continueReplay,
  rebaseOnto,
  resolveCommit,
  skipReplay,
  startReplay,
  walkHistory,
  type ReplayKind,
  type Repository,
} from '../repo/index.js';
import { openRepository, type CommandIo } from './context.js';
import { reportReplay } from './shared/replay.js';

export interface ReplayFlags {
  continue?: boolean;
  abort?: boolean;
  skip?: boolean;
  quiet?: boolean;
}

export async function runReplay(
  io: CommandIo,
  kind: ReplayKind,
  args: string[],
  flags: ReplayFlags,
): Promise<void> {
  const actions = [flags.continue, flags.abort, flags.skip].filter(Boolean).length;
  if (actions > 1) throw new UsageError('choose one of --continue, --abort, --skip');
  if (actions === 1 && args.length > 0)
    throw new UsageError('--continue, --abort and --skip take no commits');
  const repo = await openRepository(io);
  const progress = io.progress();
  const quiet = flags.quiet ?? false;
  if (flags.abort) {
    await abortReplay(repo, { progress });
    return;
  }
  if (flags.continue)
    return reportReplay(io, kind, await continueReplay(repo, { progress }), quiet);
  if (flags.skip) return reportReplay(io, kind, await skipReplay(repo, { progress }), quiet);
  if (kind === 'rebase') {
    if (args.length !== 1) throw new UsageError('name the branch or commit to rebase onto');
    const outcome = await rebaseOnto(repo, await resolveCommit(repo, args[0]!), { progress });
    if (outcome.kind === 'up-to-date') {
      if (!quiet) io.out('Current branch is up to date.');
      return;
    }
    return reportReplay(io, kind, outcome, quiet);
  }
  if (args.length === 0) throw new UsageError(`name the commits to ${kind}`);
  const commits: Oid[] = [];
  for (const arg of args) commits.push(...(await expand(repo, arg)));
  reportReplay(io, kind, await startReplay(repo, kind, commits, { progress }), quiet);
}

/** A commit, or the commits of an `a..b` range oldest first (merges left out, as git does). */
async function expand(repo: Repository, arg: string): Promise<Oid[]> {
  const range = /^(.*?)\.\.(.*)$/.exec(arg);
  if (!range) return [await resolveCommit(repo, arg)];
  const from = await resolveCommit(repo, range[1] || 'HEAD');
  const to = await resolveCommit(repo, range[2] || 'HEAD');
  const found: Oid[] = [];
  for await (const e of walkHistory(repo, [to], { exclude: [from] }))
    if (e.commit.parents.length <= 1) found.push(e.oid);
  return found.reverse();
}
