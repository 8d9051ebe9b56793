import { constants as osConstants } from 'node:os';
import { UsageError } from '../errors/index.js';
import { DEFAULT_REFLOG_EXPIRE, collectGarbage, parseGracePeriod } from '../repo/index.js';
import {
  getRemote,
  openRemoteStore,
  parseDuration,
  parsePolicy,
  sweepRemote,
  type RemoteGcReport,
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
  lease?: string;
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
  if (report.trashFilesRemoved > 0)
    io.out(`${verb} ${plural(report.trashFilesRemoved, 'old file version')} left in the trash`);
}

async function runRemoteGc(io: CommandIo, name: string, options: GcCommandOptions): Promise<void> {
  const policy = parsePolicy(options.keep ?? [], options.olderThan);
  const graceMs = parseDuration(options.grace ?? '24h', '--grace');
  const leaseMs = parseDuration(options.lease ?? '10m', '--lease');
  if (leaseMs === 0) throw new UsageError('--lease must be longer than 0');
  const repo = await openRepository(io);
  // Ctrl-C stops the sweep between deletions and releases the lease, so a re-run can start at once.
  const abort = new AbortController();
  let interrupted: NodeJS.Signals | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted !== null) return;
    interrupted = signal;
    io.err(`gc interrupted: stopping after the deletions in flight; run it again to carry on`);
    abort.abort();
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  const { store } = await openRemoteStore(getRemote(repo, name), repo.root);
  let report: RemoteGcReport;
  try {
    report = await sweepRemote(repo, store, {
      policy,
      graceMs,
      leaseMs,
      dryRun: options.dryRun,
      listKeys: options.json ?? false,
      progress: io.progress(),
      signal: abort.signal,
    });
  } catch (err) {
    if (interrupted !== null) io.exit(128 + (osConstants.signals[interrupted] ?? 0));
    throw err;
  } finally {
    for (const signal of SIGNALS) process.off(signal, onSignal);
    await store.close();
  }
  if (options.json) {
    io.out(JSON.stringify(report, null, 2));
    return;
  }
  const verb = report.dryRun ? 'would delete' : 'deleted';
  for (const reason of ['unreachable', 'expired'] as const) {
    const r = report.deleted[reason];
    io.out(`${verb} ${plural(r.count, `${reason} object`)} (${formatBytes(r.bytes)})`);
  }
  if (report.expiredManifests > 0)
    io.out(`${plural(report.expiredManifests, 'file version')} expired by the retention policy`);
  if (report.deferred.count > 0)
    io.out(
      `kept ${plural(report.deferred.count, 'unreachable object')} (${formatBytes(report.deferred.bytes)}) until the grace period (${options.grace ?? '24h'}) has passed; run gc again later`,
    );
  if (!report.dryRun) io.out(`freed ${formatBytes(report.freedBytes)}`);
}

const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
