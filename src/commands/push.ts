import { UsageError } from '../errors/index.js';
import { shortOid, type Oid } from '../objects/index.js';
import type { Repository } from '../repo/index.js';
import { isValidRefName } from '../store/index.js';
import {
  defaultRemote,
  getRemote,
  hardlinksWanted,
  push,
  type PushOutcome,
} from '../sync/index.js';
import { formatBytes, openRepository, plural, type CommandIo } from './context.js';
import { openRemote, sentLine } from './shared/remotes.js';

export interface PushOptions {
  force?: boolean;
  tags?: boolean;
  json?: boolean;
  quiet?: boolean;
  /** false with --no-hardlinks. */
  hardlinks?: boolean;
}

/** `branch`, `tag`, `src:dst`: resolved to local OID and remote ref. */
async function resolvePushSpecs(
  repo: Repository,
  specs: string[],
  tags: boolean,
): Promise<{ oid: Oid; ref: string; local: string }[]> {
  const out: { oid: Oid; ref: string; local: string }[] = [];
  if (specs.length === 0 && !tags) {
    const branch = await repo.currentBranch();
    if (!branch)
      throw new UsageError('you are not on a branch (detached HEAD)', {
        hint: "name what to push: 'mediagit push origin HEAD:refs/heads/<branch>'",
      });
    specs = [branch];
  }
  for (const spec of specs) {
    const [src, dst] = spec.includes(':') ? (spec.split(':', 2) as [string, string]) : [spec, spec];
    let localRef = src.startsWith('refs/')
      ? src
      : (await repo.readRef(`refs/heads/${src}`))
        ? `refs/heads/${src}`
        : `refs/tags/${src}`;
    const oid = src === 'HEAD' ? (await repo.readHead()).oid : await repo.readRef(localRef);
    if (src === 'HEAD') localRef = 'HEAD';
    if (!oid) throw new UsageError(`src refspec '${src}' does not match any branch or tag`);
    const remoteRef = dst.startsWith('refs/')
      ? dst
      : localRef.startsWith('refs/tags/')
        ? `refs/tags/${dst}`
        : `refs/heads/${dst}`;
    if (!isValidRefName(remoteRef)) throw new UsageError(`invalid destination ref '${dst}'`);
    out.push({ oid, ref: remoteRef, local: localRef });
  }
  if (tags)
    for (const [name, value] of await repo.store.listRefs('refs/tags/'))
      out.push({ oid: value.oid, ref: name, local: name });
  return out;
}

export async function runPush(io: CommandIo, args: string[], options: PushOptions): Promise<void> {
  const repo = await openRepository(io);
  const [remoteName = defaultRemote(repo), ...specs] = args;
  const remote = getRemote(repo, remoteName);
  const opened = await openRemote(io, repo, remote);
  const requests = await resolvePushSpecs(repo, specs, options.tags ?? false);
  const hardlinks = await hardlinksWanted(options.hardlinks, repo);
  const results: PushOutcome[] = [];
  for (const req of requests) {
    const outcome = await push(
      repo,
      opened.store,
      { oid: req.oid, ref: req.ref, force: options.force ?? false },
      io.progress(),
      { hardlinks },
    );
    results.push(outcome);
    if (req.ref.startsWith('refs/heads/')) {
      const tracking = `refs/remotes/${remote.name}/${req.ref.slice('refs/heads/'.length)}`;
      const before = await repo.store.readRef(tracking);
      await repo.store.compareAndSwapRef(tracking, before, outcome.new);
    }
  }
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
        },
        null,
        2,
      ),
    );
    return;
  }
  if (options.quiet) return;
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
