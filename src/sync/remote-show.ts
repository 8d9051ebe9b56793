/**
 * `remote show <name>`: what git's command reports — the remote's branches against what this
 * repository tracks, which local branches pull from it, and where each push would land.
 */
import type { Oid } from '../objects/index.js';
import { isAncestor, type Repository } from '../repo/index.js';
import type { OpenedStore } from '../store/index.js';
import type { RemoteConfig } from './remotes.js';

export type PushState = 'up to date' | 'fast-forwardable' | 'local out of date' | 'create';

export interface RemoteShowReport {
  name: string;
  url: string;
  /** The branch a clone would check out (the remote keeps no HEAD of its own). */
  headBranch: string | null;
  /** Each branch on the remote; tracked: this repository has its remote-tracking ref. */
  branches: { name: string; tracked: boolean }[];
  /** Remote-tracking refs whose branch is gone from the remote (a fetch --prune removes them). */
  stale: string[];
  /** Local branches whose upstream is a branch of this remote. */
  pull: { branch: string; merges: string }[];
  /** Local branches a push would send to this remote, and how that would go. */
  push: { branch: string; to: string; state: PushState }[];
}

const HEADS = 'refs/heads/';

export async function remoteShow(
  repo: Repository,
  remote: RemoteConfig,
  opened: OpenedStore,
): Promise<RemoteShowReport> {
  const theirs = new Map<string, Oid>();
  for (const [ref, value] of await opened.store.listRefs(HEADS))
    theirs.set(ref.slice(HEADS.length), value.oid);
  const names = [...theirs.keys()].sort();
  const trackingPrefix = `refs/remotes/${remote.name}/`;
  const tracking = new Set(
    [...(await repo.store.listRefs(trackingPrefix)).keys()].map((r) =>
      r.slice(trackingPrefix.length),
    ),
  );
  const headBranch = names.includes('main')
    ? 'main'
    : names.includes('master')
      ? 'master'
      : (names[0] ?? null);
  const pull: RemoteShowReport['pull'] = [];
  const push: RemoteShowReport['push'] = [];
  const locals = [...(await repo.store.listRefs(HEADS))].sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [ref, value] of locals) {
    const branch = ref.slice(HEADS.length);
    const configured = repo.config.get(`branch.${branch}.remote`) === remote.name;
    const merge = repo.config.get(`branch.${branch}.merge`);
    const to =
      configured && typeof merge === 'string' && merge.startsWith(HEADS)
        ? merge.slice(HEADS.length)
        : branch;
    if (configured) pull.push({ branch, merges: to });
    const remoteOid = theirs.get(to);
    if (!configured && remoteOid === undefined) continue;
    push.push({ branch, to, state: await pushState(repo, value.oid, remoteOid) });
  }
  return {
    name: remote.name,
    url: remote.url,
    headBranch,
    branches: names.map((name) => ({ name, tracked: tracking.has(name) })),
    stale: [...tracking].filter((name) => !theirs.has(name)).sort(),
    pull,
    push,
  };
}

async function pushState(
  repo: Repository,
  local: Oid,
  remote: Oid | undefined,
): Promise<PushState> {
  if (remote === undefined) return 'create';
  if (remote === local) return 'up to date';
  // A remote tip this repository has never fetched cannot be an ancestor of the local one.
  if (!(await repo.odb.has('commit', [remote]))[0]) return 'local out of date';
  return (await isAncestor(repo, remote, local)) ? 'fast-forwardable' : 'local out of date';
}
