/**
 * `push`: the refs the user names (refspecs) go to a remote, each with the objects it lacks
 * (push.ts), and the remote-tracking branches follow what was pushed.
 */
import { UsageError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import { setUpstream, silentProgress, type ProgressSink, type Repository } from '../repo/index.js';
import { isValidRefName, type OpenedStore } from '../store/index.js';
import { hardlinksWanted } from './fetch-refs.js';
import { push, type PushOutcome } from './push.js';
import { ensurePushTarget } from './folder-remote.js';
import type { RemoteConfig } from './remotes.js';

export interface PushRefsOptions {
  /** Overwrite remote branches even where that loses their commits. */
  force?: boolean;
  /** Also push every tag. */
  tags?: boolean;
  /** false: never hard-link to a folder remote (else config transfer.hardlinks decides). */
  hardlinks?: boolean | undefined;
  /** A fresh progress display per ref pushed. */
  progress?: () => ProgressSink;
  /** A folder remote that does not exist yet is created (else refused: a typo must not make one). */
  create?: boolean;
  /** `-u`: each local branch pushed records the remote branch as its upstream. */
  setUpstream?: boolean;
}

/** Pushes what `specs` name (default: the current branch) to the remote, one ref after another. */
export async function pushRefs(
  repo: Repository,
  remote: RemoteConfig,
  opened: OpenedStore,
  specs: readonly string[],
  options: PushRefsOptions = {},
): Promise<PushOutcome[]> {
  const requests = await resolvePushSpecs(repo, specs, options.tags ?? false);
  await ensurePushTarget(remote, repo.root, options.create ?? false);
  const hardlinks = await hardlinksWanted(options.hardlinks, repo);
  const results: PushOutcome[] = [];
  const current = await repo.currentBranch();
  let tracked = false;
  // What this clone last saw there: a remote that negotiates is asked about what a push from
  // these would send, so one round trip usually answers everything (push.ts).
  const seen = [...(await repo.store.listRefs(`refs/remotes/${remote.name}/`)).values()].map(
    (v) => v.oid,
  );
  for (const req of requests) {
    const outcome = await push(
      repo,
      opened.store,
      { oid: req.oid, ref: req.ref, force: options.force ?? false },
      (options.progress ?? (() => silentProgress))(),
      { hardlinks, assumeRemoteHas: seen },
    );
    results.push(outcome);
    if (req.ref.startsWith('refs/heads/')) {
      const tracking = `refs/remotes/${remote.name}/${req.ref.slice('refs/heads/'.length)}`;
      const before = await repo.store.readRef(tracking);
      await repo.store.compareAndSwapRef(tracking, before, outcome.new);
      const local = req.local === 'HEAD' && current ? `refs/heads/${current}` : req.local;
      if (options.setUpstream && local.startsWith('refs/heads/')) {
        setUpstream(repo, local.slice('refs/heads/'.length), remote.name, req.ref);
        tracked = true;
      }
    }
  }
  if (tracked) await repo.config.save();
  return results;
}

/** `branch`, `tag`, `src:dst` (none: the current branch): resolved to local OID and remote ref. */
export async function resolvePushSpecs(
  repo: Repository,
  given: readonly string[],
  tags: boolean,
): Promise<{ oid: Oid; ref: string; local: string }[]> {
  const out: { oid: Oid; ref: string; local: string }[] = [];
  let specs = given;
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
