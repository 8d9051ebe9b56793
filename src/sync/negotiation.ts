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
import type {
  LockVerification,
  NegotiateAnswer,
  NegotiateRequest,
  Negotiator,
  Store,
} from '../store/index.js';
import { readDescriptor } from './descriptor.js';
import { readLeaseParts } from './gc/lease.js';
import { lockClientFor, lockOwner } from './locks.js';

/** `remote`'s own negotiator when it has one, else the same questions asked with separate reads. */
export function negotiatorFor(repo: Repository, remote: Store): Negotiator {
  return (
    remote.capabilities.negotiate ?? {
      negotiate: (request) => negotiateWithReads(repo, remote, request),
    }
  );
}

async function negotiateWithReads(
  repo: Repository,
  remote: Store,
  request: NegotiateRequest,
): Promise<NegotiateAnswer> {
  const lease = request.gcLease ? await readLeaseParts(remote) : undefined;
  const check = request.check ?? [];
  const [descriptor, refs, present, locks, keys] = await Promise.all([
    readDescriptor(remote),
    request.refs === undefined ? undefined : remote.listRefs(request.refs),
    check.length === 0 ? [] : remote.has(check),
    request.locks ? theirLocks(repo, remote) : undefined,
    request.keys ? keyNames(remote) : undefined,
  ]);
  return {
    descriptor,
    ...(refs ? { refs } : {}),
    ...(request.check ? { missing: new Set(check.filter((_, i) => !present[i])) } : {}),
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
