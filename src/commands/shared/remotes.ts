/** What the commands that talk to a remote share: opening it, and reporting traffic and fetches. */
import { shortOid } from '../../objects/index.js';
import type { Repository } from '../../repo/index.js';
import type { MetricsSnapshot, OpenedStore } from '../../store/index.js';
import { openRemoteStore, type FetchReport, type RemoteConfig } from '../../sync/index.js';
import { formatBytes, plural, type CommandIo } from '../context.js';

/** Opens a remote's store; each retry of a failed request is noted on stderr. */
export function openRemote(
  io: CommandIo,
  repo: Repository,
  remote: RemoteConfig,
): Promise<OpenedStore> {
  return openRemoteStore(remote, repo.root, (info) =>
    io.err(
      `note: ${remote.name}: ${info.operation} failed (${info.error instanceof Error ? info.error.message : 'error'}); retry ${info.attempt} in ${Math.round(info.delayMs)} ms`,
    ),
  );
}

export function sentLine(meter: MetricsSnapshot): string {
  return `${formatBytes(meter.totals.bytesWritten)} sent, ${formatBytes(meter.totals.bytesRead)} received in ${meter.totals.calls} requests`;
}

/** The refs a fetch moved, git-style, then what it received; nothing when nothing moved. */
export function printFetch(io: CommandIo, url: string, report: FetchReport): void {
  if (report.updated.length === 0) return;
  io.out(`From ${url}`);
  for (const u of report.updated) {
    const name = u.ref.replace(/^refs\/(remotes\/|tags\/)/, '');
    io.out(
      u.new === null
        ? ` - [deleted]  ${name}`
        : u.old === null
          ? ` * [new]      ${name}`
          : `   ${shortOid(u.old)}..${shortOid(u.new)}  ${name}`,
    );
  }
  io.out(`received ${plural(report.objects, 'object')} (${formatBytes(report.bytes)})`);
}
