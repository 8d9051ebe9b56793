/**
 * The questions a push asks before it moves anything (docs/protocol.md "Negotiate"), for every
 * kind of remote. A mediagit server answers them in one POST /negotiate; a folder or a bucket has
 * no one to ask, so here they become the separate reads — sent all at once instead of one after
 * another, which over a link is the difference between the slowest of them and their sum. The
 * answers are the ones those reads give on their own, in the server's order: the gc lease before
 * anything else, because a push compares it with the lease after its ref update to learn whether
 * a sweep ran meanwhile, so it must be older than the refs it trusts and every existence the
 * check reports.
 */
import type { Repository } from '../repo/index.js';
import type { LockVerification, NegotiateAnswer, NegotiateRequest, Store } from '../store/index.js';
import { readDescriptor } from './descriptor.js';
import { readLeaseParts } from './gc/lease.js';
import { lockClientFor, lockOwner } from './locks.js';

/**
 * The negotiation's separate reads, for a remote without its own negotiator, while the keys to
 * check may still be being worked out (a push's walk of its local history): the lease goes out
 * at once and the reads that need no keys right after it, so a push's first round trips overlap
 * its walk instead of following it; only the existence check waits for the keys. A walk that
 * fails rejects the answer.
 */
export async function negotiateWhileWalking(
  repo: Repository,
  remote: Store,
  request: Omit<NegotiateRequest, 'check'>,
  check: Promise<readonly string[]> | undefined,
): Promise<NegotiateAnswer> {
  // Nobody awaits the walk until the lease is in: its failure must not go unhandled meanwhile.
  check?.catch(() => undefined);
  // Beside the lease, not after it: the descriptor is not among what the lease must predate, and
  // the existence check waits for it.
  const described = readDescriptor(remote);
  described.catch(() => undefined);
  const lease = request.gcLease ? await readLeaseParts(remote) : undefined;
  const [descriptor, refs, present, locks, keys] = await Promise.all([
    described,
    request.refs === undefined ? undefined : remote.listRefs(request.refs),
    check?.then(async (keys) => {
      if (keys.length === 0) return [];
      // No descriptor: nothing was ever pushed here (a push writes it before any object), so
      // there is nothing to find. Asking would cost a first push its existence listings; a
      // concurrent first pusher's objects are only sent twice (PUT of a content key is idempotent).
      if ((await described) === null) return keys.map(() => false);
      return remote.has(keys);
    }),
    request.locks ? theirLocks(repo, remote) : undefined,
    request.keys ? keyNames(remote) : undefined,
  ]);
  const checked = check === undefined ? undefined : await check;
  return {
    descriptor,
    ...(refs ? { refs } : {}),
    ...(checked && present ? { missing: new Set(checked.filter((_, i) => !present[i])) } : {}),
    ...(locks ? { locks } : {}),
    ...(keys ? { keys } : {}),
    ...(lease ? { gcLease: lease } : {}),
  };
}

/** As checkPushLocks asks: without a known identity, every lock on the remote is someone else's. */
async function theirLocks(repo: Repository, remote: Store): Promise<LockVerification> {
  const owner = remote.capabilities.locks ? undefined : ((await lockOwner(repo)) ?? '');
  return lockClientFor(remote, remote.description, owner).verifyLocks();
}

async function keyNames(remote: Store): Promise<string[]> {
  const names: string[] = [];
  for await (const { key } of remote.list('keys/'))
    if (key.startsWith('keys/')) names.push(key.slice('keys/'.length));
  return names.sort();
}
