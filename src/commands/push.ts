import { shortOid } from '../objects/index.js';
import { configuredPush } from '../repo/index.js';
import {
  defaultRemote,
  getRemote,
  pushRefs,
  withMirrorUpkeep,
  type MirrorUpkeep,
} from '../sync/index.js';
import { releaseAfterPush } from '../sync/locks.js';
import { formatBytes, openRepository, plural, type CommandIo } from './context.js';
import { openRemote, sentLine } from './shared/remotes.js';

export interface PushOptions {
  force?: boolean;
  tags?: boolean;
  json?: boolean;
  quiet?: boolean;
  /** false with --no-hardlinks. */
  hardlinks?: boolean;
  create?: boolean;
  setUpstream?: boolean;
}

export async function runPush(io: CommandIo, args: string[], options: PushOptions): Promise<void> {
  const repo = await openRepository(io);
  const branch = await repo.currentBranch();
  const configured =
    args.length === 0 && !options.tags && branch ? configuredPush(repo, branch) : null;
  const [remoteName = configured?.remote ?? defaultRemote(repo), ...given] = args;
  const specs = configured ? [configured.spec] : given;
  const remote = getRemote(repo, remoteName);
  const opened = await openRemote(io, repo, remote);
  // A multi remote: earlier half-failed writes are repaired first, this push's are recorded.
  const { result: results, upkeep } = await withMirrorUpkeep(repo, remote.name, opened.store, () =>
    pushRefs(repo, remote, opened, specs, {
      force: options.force,
      tags: options.tags,
      hardlinks: options.hardlinks,
      create: options.create,
      setUpstream: options.setUpstream,
      progress: () => io.progress(),
    }),
  );
  const released = await releaseAfterPush(repo, opened.store, remote.name, results);
  if (!options.quiet && !options.json)
    for (const path of released) io.err(`Released the lock on ${path}`);
  const meter = opened.meter.snapshot();
  if (options.json) {
    io.out(
      JSON.stringify(
        {
          remote: remote.name,
          url: remote.url,
          refs: results,
          bytesSent: meter.totals.bytesWritten,
          bytesReceived: meter.totals.bytesRead,
          requests: meter.totals.calls,
          ...(upkeep.repaired ? { mirror: upkeep } : {}),
        },
        null,
        2,
      ),
    );
    return;
  }
  if (options.quiet) return;
  reportMirror(io, remote.name, upkeep);
  io.out(`To ${remote.url}`);
  for (const r of results) {
    const name = r.ref.replace(/^refs\/(heads|tags)\//, '');
    const range =
      r.status === 'up-to-date'
        ? '[up to date]'
        : r.status === 'created'
          ? r.ref.startsWith('refs/tags/')
            ? '* [new tag]'
            : '* [new branch]'
          : `${shortOid(r.old!)}${r.status === 'forced' ? '...' : '..'}${shortOid(r.new)}${r.status === 'forced' ? ' (forced update)' : ''}`;
    io.out(
      `   ${range}  ${name} -> ${name}${r.stats.objects ? `  (${plural(r.stats.objects, 'object')}, ${formatBytes(r.stats.bytes)})` : ''}`,
    );
  }
  io.out(sentLine(meter));
}

function reportMirror(io: CommandIo, remote: string, upkeep: MirrorUpkeep): void {
  const r = upkeep.repaired;
  if (r && r.copied.length + r.replaced.length + r.refsMoved.length > 0) {
    const moved = r.refsMoved.map((m) => `${m.name} -> ${shortOid(m.to)}`);
    io.err(
      `Repaired the mirror of '${remote}': ${plural(r.copied.length + r.replaced.length, 'object')} copied to the side that lacked ${r.copied.length + r.replaced.length === 1 ? 'it' : 'them'}${moved.length ? `; secondary ${moved.join(', ')}` : ''}`,
    );
  }
  const left = upkeep.recorded;
  if (left) {
    const objects = Object.keys(left.objects).length;
    const parts = [
      ...(objects ? [plural(objects, 'object')] : []),
      ...(left.refs.length ? [plural(left.refs.length, 'ref')] : []),
    ];
    io.err(
      `warning: '${remote}' is a mirror with one side missing ${parts.join(' and ')} (recorded in .mediagit/mirrors.json); the next push or 'mediagit fsck --remote ${remote} --repair' repairs ${objects + left.refs.length === 1 ? 'it' : 'them'}`,
    );
  }
}
