import { PathspecError } from '../errors/index.js';
import { addPaths } from '../repo/index.js';
import { formatBytes, pathspecs, plural, type CommandIo, openRepository } from './context.js';

export interface AddOptions {
  all?: boolean;
  force?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

export async function runAdd(io: CommandIo, paths: string[], options: AddOptions): Promise<void> {
  const repo = await openRepository(io);
  if (paths.length === 0 && !options.all)
    throw new PathspecError('nothing specified, nothing added', {
      hint: "maybe you wanted to say 'mediagit add .'?",
    });
  const specs = options.all ? [''] : pathspecs(repo, io, paths);
  const { summary, wouldStage, wouldRemove } = await addPaths(repo, specs, {
    force: options.force,
    dryRun: options.dryRun,
    progress: io.progress(),
    onSkipped: (path, reason) => io.err(`warning: skipping ${path}: ${reason}`),
  });
  for (const path of wouldStage) io.out(`add '${path}'`);
  for (const path of wouldRemove) io.out(`remove '${path}'`);
  if (options.json) {
    io.out(JSON.stringify(summary));
    return;
  }
  if (options.dryRun) return;
  if (summary.staged === 0 && summary.removed === 0) return;
  io.out(
    `staged ${plural(summary.staged, 'file')} (${formatBytes(summary.bytes)})` +
      (summary.removed ? `, ${summary.removed} removed` : '') +
      `: ${summary.newChunks} of ${plural(summary.chunks, 'chunk')} new, ${formatBytes(summary.storedBytes)} stored`,
  );
}
