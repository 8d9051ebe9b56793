import { NonFastForwardError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import { isAncestor, walkReachable, type ProgressSink, type Repository } from '../repo/index.js';
import { presentEverywhere, type RefValue, type Store } from '../store/index.js';
import {
  layoutMismatch,
  makeDescriptor,
  readDescriptor,
  sameLayout,
  writeDescriptor,
} from './descriptor.js';
import { readLease, sweepOverlapped } from './gc/lease.js';
import { checkPushLocks } from './locks.js';
import { copyObjects, missingOn, type CopyOptions, type TransferStats } from './transfer.js';

export interface PushRequest {
  /** The local commit (or annotated tag) to publish. */
  readonly oid: Oid;
  /** Ref name on the remote, e.g. refs/heads/main. */
  readonly ref: string;
  readonly force: boolean;
}

export interface PushOutcome {
  readonly ref: string;
  readonly old: Oid | null;
  readonly new: Oid;
  readonly status: 'up-to-date' | 'created' | 'fast-forward' | 'forced';
  readonly stats: TransferStats;
}

/**
 * Makes the remote usable by this repository: the descriptor (chunking, encryption) is written on
 * first push and checked on every later one; key files of an encrypted repository travel with it.
 */
export async function prepareRemote(repo: Repository, remote: Store): Promise<void> {
  const mine = makeDescriptor(repo.settings.chunking, repo.encrypted);
  const theirs = await readDescriptor(remote);
  if (theirs && !sameLayout(theirs, mine)) throw layoutMismatch(remote, false);
  // The descriptor first: a mediagit server stores nothing in a repository without one. The write
  // is create-only, so a first push that lost a race to another one stops here.
  if (!theirs) await writeDescriptor(remote, mine);
  if (repo.encrypted) {
    const keys: string[] = [];
    for await (const { key } of repo.store.list('keys/')) keys.push(key);
    const present = await remote.has(keys);
    for (const [i, key] of keys.entries())
      if (!present[i]) await remote.put(key, await repo.store.get(key));
  }
}

/**
 * Publishes one ref: have/want against what the remote's refs already cover, uploads only the
 * objects the remote lacks (chunks first, then manifests, trees, commits, tags, so the remote
 * never holds an object whose dependencies are missing), then compare-and-swaps the remote ref.
 * Re-running an interrupted push sends only what is still missing. To a folder remote the objects
 * are hard-linked where possible (see copyObjects); `options.hardlinks: false` copies them.
 */
export async function push(
  repo: Repository,
  target: Store,
  request: PushRequest,
  progress: ProgressSink,
  options: Pick<CopyOptions, 'hardlinks'> & {
    /** Test hook only (the race test switches the gc safety off to show it matters). */
    readonly sweepGuard?: boolean;
  } = {},
): Promise<PushOutcome> {
  // Each copy of a mirror is checked: its ref must not move over objects only the other holds.
  const remote = presentEverywhere(target);
  const stats: TransferStats = { objects: 0, bytes: 0 };
  const current: RefValue | null = await remote.readRef(request.ref);
  if (current?.oid === request.oid)
    return { ref: request.ref, old: current.oid, new: request.oid, status: 'up-to-date', stats };
  let status: PushOutcome['status'] = current ? 'fast-forward' : 'created';
  if (current) {
    const known = (await repo.odb.kindOf(current.oid)) !== null;
    const fastForward = known && (await isAncestor(repo, current.oid, request.oid));
    if (!fastForward) {
      if (!request.force) {
        throw new NonFastForwardError(
          `rejected: ${request.ref} on the remote has commits you do not have (non-fast-forward)`,
          {
            hint: known
              ? "merge them first with 'mediagit pull', or overwrite with --force"
              : "fetch them first with 'mediagit pull', or overwrite with --force",
          },
        );
      }
      status = 'forced';
    }
  }
  // Read before deciding what the remote has: a gc sweep running meanwhile shows as a new value.
  const lease = options.sweepGuard === false ? null : await readLease(remote);
  // What the remote certainly has: the history of every remote ref we also have locally.
  const remoteRefs = await remote.listRefs('refs/');
  const exclude = new Set<Oid>();
  for (const value of remoteRefs.values())
    if ((await repo.odb.kindOf(value.oid)) !== null) exclude.add(value.oid);
  const want = await walkReachable(
    repo,
    [{ oid: request.oid, kind: 'object', where: request.ref }],
    { exclude, excludeBoundaryContent: true, chunks: 'skip' },
  );
  // A server that keeps locks: refuse, before uploading anything, commits that change a path someone else holds.
  await checkPushLocks(repo, remote, want.commits);
  await prepareRemote(repo, remote);

  const missingChunks = await missingOn(remote, 'chunk', want.chunks);
  // A lean clone pushing to another remote: what it never fetched comes from its content remote.
  await repo.odb.ensureChunks(missingChunks);
  const levels = [
    ['manifest', await missingOn(remote, 'manifest', want.manifests)],
    ['tree', await missingOn(remote, 'tree', want.trees)],
    ['commit', await missingOn(remote, 'commit', want.commits)],
    ['tag', await missingOn(remote, 'tag', want.tags)],
  ] as const;
  // Our own store's objects were verified when they were written: sent as stored (docs/transfer.md).
  const sent: CopyOptions = { ...options, sourceVerified: true };
  const count = missingChunks.length + levels.reduce((n, [, oids]) => n + oids.length, 0);
  progress.start('push', count, await storedSize(repo, missingChunks));
  try {
    await copyObjects(repo.store, remote, 'chunk', missingChunks, repo.odb, progress, stats, sent);
    for (const [kind, oids] of levels)
      await copyObjects(repo.store, remote, kind, oids, repo.odb, progress, stats, sent);
  } finally {
    progress.stop();
  }
  if (!(await remote.compareAndSwapRef(request.ref, current, request.oid))) {
    throw new NonFastForwardError(
      `rejected: ${request.ref} on the remote moved while pushing (someone else pushed first)`,
      {
        hint: "run 'mediagit pull' to merge their work, then push again; your objects are already uploaded",
      },
    );
  }
  // A gc sweep overlapped this push: it may have deleted objects the push found present. Once no
  // sweep runs, put back whatever is missing before reporting success (docs/remote-gc.md).
  if (lease && (await sweepOverlapped(remote, lease))) {
    const kinds = [
      ['chunk', want.chunks],
      ['manifest', want.manifests],
      ['tree', want.trees],
      ['commit', want.commits],
      ['tag', want.tags],
    ] as const;
    for (const [kind, oids] of kinds) {
      const gone = await missingOn(remote, kind, oids);
      await copyObjects(repo.store, remote, kind, gone, repo.odb, progress, stats, sent);
    }
  }
  return { ref: request.ref, old: current?.oid ?? null, new: request.oid, status, stats };
}

async function storedSize(repo: Repository, chunks: readonly Oid[]): Promise<number> {
  let total = 0;
  for (const oid of chunks) {
    const stat = await repo.store.statSize(`chunks/${oid}`).catch(() => 0);
    total += stat;
  }
  return total;
}
