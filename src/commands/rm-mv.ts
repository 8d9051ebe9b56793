import { UsageError } from '../errors/index.js';
import { movePaths, removePaths } from '../repo/index.js';
import { openRepository, pathspecs, type CommandIo } from './context.js';

export interface RmOptions {
  cached?: boolean;
  force?: boolean;
  recursive?: boolean;
  quiet?: boolean;
}

export async function runRm(io: CommandIo, paths: string[], options: RmOptions): Promise<void> {
  const repo = await openRepository(io);
  if (paths.length === 0) throw new UsageError('name the files to remove');
  const removed = await removePaths(repo, pathspecs(repo, io, paths), options);
  if (!options.quiet) for (const path of removed) io.out(`rm '${path}'`);
}

export interface MvOptions {
  force?: boolean;
}

export async function runMv(
  io: CommandIo,
  sources: string[],
  destination: string,
  options: MvOptions,
): Promise<void> {
  const repo = await openRepository(io);
  const [dest] = pathspecs(repo, io, [destination]);
  const srcs = pathspecs(repo, io, sources);
  if (dest === undefined || dest === '') throw new UsageError('bad destination');
  await movePaths(repo, srcs, dest, { force: options.force, typed: destination });
}
