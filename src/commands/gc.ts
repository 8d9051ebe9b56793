import { collectGarbage, parseGracePeriod } from '../repo/index.js';
import { formatBytes, plural, type CommandIo, openRepository } from './context.js';

export interface GcCommandOptions {
  prune: string;
  dryRun?: boolean;
  json?: boolean;
}

export async function runGc(io: CommandIo, options: GcCommandOptions): Promise<void> {
  const graceMs = parseGracePeriod(options.prune);
  const repo = await openRepository(io);
  const report = await collectGarbage(repo, { graceMs, dryRun: options.dryRun });
  if (options.json) {
    io.out(JSON.stringify(report, null, 2));
    return;
  }
  const verb = report.dryRun ? 'would remove' : 'removed';
  const grace =
    report.keptUnreachable > 0
      ? ` (${plural(report.keptUnreachable, 'unreachable object')} younger than ${options.prune} kept)`
      : '';
  io.out(
    `${verb} ${plural(report.removed, 'object')} (${formatBytes(report.removedBytes)}), kept ${report.kept}${grace}`,
  );
  if (report.tempFilesRemoved > 0)
    io.out(`${verb} ${plural(report.tempFilesRemoved, 'leftover temporary file')}`);
}
