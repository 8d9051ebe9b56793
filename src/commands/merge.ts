import { UsageError } from '../errors/index.js';
import { shortOid } from '../objects/index.js';
import { abortMerge, mergeCommit, resolveCommit } from '../repo/index.js';
import { openRepository, type CommandIo } from './context.js';
import { reportMerge } from './shared/merge.js';

export interface MergeCommandOptions {
  abort?: boolean;
  ffOnly?: boolean;
  noFf?: boolean;
  message?: string;
  quiet?: boolean;
}

export async function runMerge(
  io: CommandIo,
  rev: string | undefined,
  options: MergeCommandOptions,
): Promise<void> {
  const repo = await openRepository(io);
  if (options.abort) {
    await abortMerge(repo, io.progress());
    if (!options.quiet) io.out('Merge aborted.');
    return;
  }
  if (!rev) throw new UsageError('name the branch or commit to merge');
  const theirs = await resolveCommit(repo, rev);
  const label = /^[0-9a-f]{4,64}$/.test(rev) ? `commit ${shortOid(theirs)}` : `branch '${rev}'`;
  const outcome = await mergeCommit(repo, theirs, label, {
    ffOnly: options.ffOnly,
    noFf: options.noFf,
    message: options.message,
    progress: io.progress(),
  });
  reportMerge(io, outcome, options.quiet ?? false);
}
