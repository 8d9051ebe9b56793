import { DEFAULT_REFLOG_EXPIRE, collectGarbage, parseGracePeriod } from '../repo/index.js';
import {
  getRemote,
  openRemoteStore,
  parseDuration,
  parsePolicy,
  sweepRemote,
} from '../sync/index.js';
import { formatBytes, plural, type CommandIo, openRepository } from './context.js';

export interface GcCommandOptions {
  prune: string;
  dryRun?: boolean;
  json?: boolean;
  remote?: string;
  keep?: string[];
  olderThan?: string;
  grace?: string;
}

export async function runGc(io: CommandIo, options: GcCommandOptions): Promise<void> {
  if (options.remote !== undefined) return runRemoteGc(io, options.remote, options);
  const graceMs = parseGracePeriod(options.prune);
  const repo = await openRepository(io);
  const reflogExpire = repo.config.get('gc.reflogExpire');
  const report = await collectGarbage(repo, {
    graceMs,
    dryRun: options.dryRun,
    reflogExpireMs: parseGracePeriod(
      reflogExpire === undefined ? DEFAULT_REFLOG_EXPIRE : String(reflogExpire),
    ),
  });
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

async function runRemoteGc(io: CommandIo, name: string, options: GcCommandOptions): Promise<void> {
  const policy = parsePolicy(options.keep ?? [], options.olderThan);
  const graceMs = parseDuration(options.grace ?? '24h', '--grace');
  const repo = await openRepository(io);
  const { store } = await openRemoteStore(getRemote(repo, name), repo.root);
  try {
    const report = await sweepRemote(repo, store, {
      policy,
      graceMs,
      dryRun: options.dryRun,
      progress: io.progress(),
    });
    if (options.json) {
      io.out(JSON.stringify(report, null, 2));
      return;
    }
    const verb = report.dryRun ? 'would delete' : 'deleted';
    for (const reason of ['unreachable', 'expired'] as const) {
      const r = report.deleted[reason];
      io.out(`${verb} ${plural(r.count, `${reason} object`)} (${formatBytes(r.bytes)})`);
    }
    if (report.deferred.count > 0)
      io.out(
        `kept ${plural(report.deferred.count, 'unreachable object')} (${formatBytes(report.deferred.bytes)}) until the grace period (${options.grace ?? '24h'}) has passed; run gc again later`,
      );
    if (!report.dryRun) io.out(`freed ${formatBytes(report.freedBytes)}`);
  } finally {
    await store.close();
  }
}
