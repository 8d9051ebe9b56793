/**
 * A branch's upstream and how far apart they are (`status`: "ahead 2, behind 1"), from the
 * remote-tracking ref as last fetched — never asking the remote, so status stays offline.
 */
import type { Oid } from '../objects/index.js';
import type { Repository } from './repository.js';

export interface TrackingState {
  /** Short name of the upstream, e.g. "origin/main". */
  upstream: string;
  /** Commits on the branch the upstream lacks, and the reverse. */
  ahead: number;
  behind: number;
  /** The upstream is configured but its remote-tracking ref is gone (deleted on the remote and pruned). */
  gone: boolean;
}

function remoteNames(repo: Repository): string[] {
  const names = new Set<string>();
  for (const [key] of repo.config.entries()) {
    const m = /^remote\.([^.]+)\.url$/.exec(key);
    if (m) names.add(m[1]!);
  }
  return [...names];
}

/**
 * The remote-tracking ref a branch follows: `branch.<name>.remote` / `branch.<name>.merge` when
 * set (as git's `push -u` records them), else the same-named branch of the repository's content
 * remote, `origin`, or its only remote. null: none.
 */
export function upstreamRef(repo: Repository, branch: string): string | null {
  const remote = repo.config.get(`branch.${branch}.remote`);
  const merge = repo.config.get(`branch.${branch}.merge`);
  if (typeof remote === 'string' && remote !== '') {
    const name =
      typeof merge === 'string' && merge !== '' ? merge.replace(/^refs\/heads\//, '') : branch;
    return `refs/remotes/${remote}/${name}`;
  }
  const names = remoteNames(repo);
  const content = repo.config.get('content.remote');
  const chosen =
    typeof content === 'string' && names.includes(content)
      ? content
      : names.includes('origin')
        ? 'origin'
        : names.length === 1
          ? names[0]!
          : null;
  return chosen === null ? null : `refs/remotes/${chosen}/${branch}`;
}

/** Records what `push -u` sets: the remote and the branch there (a full ref) that `branch` follows. */
export function setUpstream(repo: Repository, branch: string, remote: string, ref: string): void {
  repo.config.set(`branch.${branch}.remote`, remote);
  repo.config.set(`branch.${branch}.merge`, ref);
}

/**
 * What a bare `push` means on a branch with a configured upstream: its remote, and a refspec
 * sending the branch to the remote branch it follows. null: no upstream configured.
 */
export function configuredPush(
  repo: Repository,
  branch: string,
): { remote: string; spec: string } | null {
  const remote = repo.config.get(`branch.${branch}.remote`);
  if (typeof remote !== 'string' || remote === '') return null;
  const merge = repo.config.get(`branch.${branch}.merge`);
  const dst = typeof merge === 'string' && merge !== '' ? merge : `refs/heads/${branch}`;
  return { remote, spec: `refs/heads/${branch}:${dst}` };
}

/** Where `branch` stands against its upstream; null when it has none (or the branch no commits). */
export async function trackingState(
  repo: Repository,
  branch: string,
): Promise<TrackingState | null> {
  const ref = upstreamRef(repo, branch);
  if (ref === null) return null;
  const upstream = ref.slice('refs/remotes/'.length);
  const local = await repo.readRef(`refs/heads/${branch}`);
  const theirs = await repo.readRef(ref);
  if (theirs === null) {
    // Only a configured upstream can be "gone"; a guessed one simply does not exist yet.
    if (repo.config.get(`branch.${branch}.remote`) === undefined) return null;
    return { upstream, ahead: 0, behind: 0, gone: true };
  }
  if (local === null) return null;
  return { upstream, ...(await aheadBehind(repo, local, theirs)), gone: false };
}

const OURS = 1;
const THEIRS = 2;
const BOTH = OURS | THEIRS;

/**
 * Commits reachable from `ours` but not `theirs` (ahead) and the reverse (behind). Walks newest
 * first from both, painting each commit with who reaches it, and stops once every commit still
 * queued is reached by both: the shared history below is never read.
 */
export async function aheadBehind(
  repo: Repository,
  ours: Oid,
  theirs: Oid,
): Promise<{ ahead: number; behind: number }> {
  if (ours === theirs) return { ahead: 0, behind: 0 };
  const paint = new Map<Oid, number>();
  const time = new Map<Oid, number>();
  const queue: Oid[] = [];
  const push = async (oid: Oid, flags: number): Promise<void> => {
    const had = paint.get(oid) ?? 0;
    if ((had | flags) === had) return;
    paint.set(oid, had | flags);
    if (!time.has(oid)) time.set(oid, (await repo.odb.readCommit(oid)).committer.time);
    if (!queue.includes(oid)) queue.push(oid);
  };
  await push(ours, OURS);
  await push(theirs, THEIRS);
  while (queue.some((oid) => paint.get(oid) !== BOTH)) {
    // Newest first: a shared ancestor is usually painted by both before anything below it is read.
    let best = 0;
    for (let i = 1; i < queue.length; i++)
      if (time.get(queue[i]!)! > time.get(queue[best]!)!) best = i;
    const oid = queue.splice(best, 1)[0]!;
    const flags = paint.get(oid)!;
    for (const parent of (await repo.odb.readCommit(oid)).parents) await push(parent, flags);
  }
  let ahead = 0;
  let behind = 0;
  for (const flags of paint.values()) {
    if (flags === OURS) ahead++;
    else if (flags === THEIRS) behind++;
  }
  return { ahead, behind };
}
