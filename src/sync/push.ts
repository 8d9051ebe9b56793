import { NonFastForwardError } from '../errors/index.js';
import { ObjectDatabase, type ObjectKind, type Oid } from '../objects/index.js';
import {
  isAncestor,
  walkReachable,
  type ProgressSink,
  type ReachableObjects,
  type Repository,
} from '../repo/index.js';
import { Semaphore, mapLimit } from '../util/limit.js';
import { releaseMemory } from '../util/memory.js';
import {
  presentEverywhere,
  type LockRecord,
  type RefUpdate,
  type RefValue,
  type Store,
  type SwapOptions,
} from '../store/index.js';
import {
  checkDescriptor,
  encodeDescriptor,
  layoutMismatch,
  makeDescriptor,
  readDescriptor,
  sameLayout,
  writeDescriptor,
  type RepositoryDescriptor,
} from './descriptor.js';
import { leaseFrom, readLease, sweepOverlapped, type LeaseState } from './gc/lease.js';
import { checkPushLocks } from './locks.js';
import { negotiateWhileWalking } from './negotiation.js';
import {
  checkEnvelope,
  copyObjects,
  largeAndSmallInTurn,
  missingOn,
  transferPacing,
  type CopyOptions,
  type TransferStats,
} from './transfer.js';

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

/** What a negotiation already told about the remote, so prepareRemote need not ask again. */
export interface KnownRemote {
  readonly descriptor: RepositoryDescriptor | null;
  /** Names of its key files (keys/<name>); asked when absent. */
  readonly keys?: ReadonlySet<string>;
  /** It creates a missing descriptor from the one its batches carry (`PackOptions.descriptor`). */
  readonly descriptorInPack?: boolean;
}

/**
 * Makes the remote usable by this repository: the descriptor (chunking, encryption) is written on
 * first push and checked on every later one; key files of an encrypted repository travel with it.
 */
export async function prepareRemote(
  repo: Repository,
  remote: Store,
  known?: KnownRemote,
): Promise<void> {
  const mine = makeDescriptor(repo.settings.chunking, repo.encrypted);
  const theirs = known ? known.descriptor : await readDescriptor(remote);
  if (theirs && !sameLayout(theirs, mine)) throw layoutMismatch(remote, false);
  // The descriptor first: a mediagit server stores nothing in a repository without one. The write
  // is create-only, so a first push that lost a race to another one stops here.
  if (!theirs) await writeDescriptor(remote, mine);
  if (repo.encrypted) {
    const keys: string[] = [];
    for await (const { key } of repo.store.list('keys/')) keys.push(key);
    const names = known?.keys;
    const present = names
      ? keys.map((k) => names.has(k.slice('keys/'.length)))
      : await remote.has(keys);
    for (const [i, key] of keys.entries())
      if (!present[i]) await remote.put(key, await repo.store.get(key));
  }
}

/** What one POST /negotiate told, and the guess it was asked with. */
interface Negotiated {
  readonly refs: Map<string, RefValue>;
  readonly lease: LeaseState;
  readonly theirLocks: readonly LockRecord[];
  readonly remote: KnownRemote;
  /** The tips the check assumed the remote has, and what the walk from them found to send. */
  readonly assumed: ReadonlySet<Oid>;
  readonly want: ReachableObjects;
  /** Keys whose presence the remote answered, and those of them it lacks. */
  readonly checked: ReadonlySet<string>;
  readonly missing: ReadonlySet<string>;
  /** Stored sizes of `want`'s objects, asked of the local store while the remote answered. */
  readonly sizes: Promise<Map<string, number>>;
}

export interface PushOptions extends Pick<CopyOptions, 'hardlinks'> {
  /**
   * Commits the remote probably has (this repository's remote-tracking refs for it): a remote
   * that negotiates is asked, with its refs, about the objects a push from them would send, so
   * most pushes learn everything in one round trip. A wrong guess costs a second check, never a
   * wrong answer.
   */
  readonly assumeRemoteHas?: readonly Oid[];
  /** Test hook only (the race test switches the gc safety off to show it matters). */
  readonly sweepGuard?: boolean;
}

/** Most keys the negotiation checks; a push that sends more asks about the rest with `has`. */
const NEGOTIATE_CHECK = 10_000;
/** File sizes asked at once: hundreds of stats one after another idle the link for tens of ms. */
const STAT_CONCURRENCY = 32;
/** Objects in one pack at most (the HTTP client's limit). */
const ONE_PACK_OBJECTS = 1024;

/**
 * Publishes one ref: have/want against what the remote's refs already cover, uploads only the
 * objects the remote lacks (chunks first, so the remote never holds a manifest whose chunks are
 * missing; then manifests, trees, commits and tags together: only the ref makes them reachable,
 * and it moves once all have landed), then compare-and-swaps the remote ref.
 * Re-running an interrupted push sends only what is still missing. To a folder remote the objects
 * are hard-linked where possible (see copyObjects); `options.hardlinks: false` copies them.
 *
 * A remote that negotiates (a mediagit server, docs/protocol.md "Negotiate") is asked its refs,
 * descriptor, locks, key names, gc lease and which of the objects to send it lacks in one round
 * trip; everything it lacks then goes in one pack when it fits: an incremental push is four
 * sequential round trips (negotiate, pack, ref update, the gc lease check).
 */
export async function push(
  repo: Repository,
  target: Store,
  request: PushRequest,
  progress: ProgressSink,
  options: PushOptions = {},
): Promise<PushOutcome> {
  // Each copy of a mirror is checked: its ref must not move over objects only the other holds.
  const remote = presentEverywhere(target);
  const stats: TransferStats = { objects: 0, bytes: 0 };
  // Whatever the store readies for ref updates (S3's conditional-write probe, two round trips on a
  // bucket it has not met) runs beside the negotiation's reads rather than after them.
  remote.capabilities.prepareRefUpdates?.();
  // The negotiation's connection opens while the local walk runs, not after it.
  remote.capabilities.warmConnections?.(1);
  const told = await negotiate(repo, remote, request, options.assumeRemoteHas ?? []);
  const current: RefValue | null = told
    ? (told.refs.get(request.ref) ?? null)
    : await remote.readRef(request.ref);
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
  // (A negotiating server reads it before anything else it answers.)
  const lease = options.sweepGuard === false ? null : told ? told.lease : await readLease(remote);
  // What the remote certainly has: the history of every remote ref we also have locally.
  const remoteRefs = told ? told.refs : await remote.listRefs('refs/');
  const exclude = new Set<Oid>();
  for (const value of remoteRefs.values())
    if ((await repo.odb.kindOf(value.oid)) !== null) exclude.add(value.oid);
  const want =
    told && sameSet(told.assumed, exclude)
      ? told.want
      : await walkReachable(repo, [{ oid: request.oid, kind: 'object', where: request.ref }], {
          exclude,
          excludeBoundaryContent: true,
          chunks: 'skip',
        });
  // A server that keeps locks: refuse, before uploading anything, commits that change a path someone else holds.
  await checkPushLocks(repo, remote, want.commits, told?.theirLocks);
  // A first push's descriptor write (and an encrypted one's key files) goes beside the work up to
  // the first upload, the reads of the first packs included, instead of in front of it: nothing
  // is uploaded before it is answered (sendInPacks waits for it), and its refusal (another layout,
  // a first push that lost the race) is the error reported whatever else failed meanwhile.
  // To a server that takes it with a pack, a plain repository's first push writes no descriptor
  // first: every pack carries it, and the server creates it beside the first one's upload (the
  // write, an fsync or a bucket PUT, was a round trip in front of every upload).
  const carried = descriptorCarried(repo, remote, told);
  const prepared = carried ? Promise.resolve() : prepareRemote(repo, remote, told?.remote);
  prepared.catch(() => undefined);
  try {
    return await pushPrepared(repo, remote, request, progress, options, {
      told,
      want,
      current,
      status,
      lease,
      prepared,
      carried,
    });
  } catch (err) {
    await prepared;
    // A first push of another layout that won the race: told as the descriptor's write tells it.
    if (carried) {
      const theirs = await readDescriptor(remote).catch(() => null);
      if (theirs && !sameLayout(theirs, makeDescriptor(repo.settings.chunking, false)))
        throw layoutMismatch(remote, true);
    }
    throw err;
  }
}

/**
 * The descriptor a first push's packs carry (docs/protocol.md "Packs"), or undefined when it is
 * written first: the remote has one already, cannot take it with a pack, or the push also sends
 * key files (an encrypted repository's), which the remote stores only after its descriptor.
 */
function descriptorCarried(
  repo: Repository,
  remote: Store,
  told: Negotiated | null,
): Buffer | undefined {
  if (!told || told.remote.descriptor !== null || told.remote.descriptorInPack !== true)
    return undefined;
  if (repo.encrypted || !remote.capabilities.batch) return undefined;
  return encodeDescriptor(makeDescriptor(repo.settings.chunking, false));
}

/** The rest of push once the remote's state is known: what it lacks goes up, then the ref. */
async function pushPrepared(
  repo: Repository,
  remote: Store,
  request: PushRequest,
  progress: ProgressSink,
  options: PushOptions,
  known: {
    readonly told: Negotiated | null;
    readonly want: ReachableObjects;
    readonly current: RefValue | null;
    readonly status: PushOutcome['status'];
    readonly lease: LeaseState | null;
    readonly prepared: Promise<void>;
    /** The descriptor every pack carries, when it is not written first. */
    readonly carried: Buffer | undefined;
  },
): Promise<PushOutcome> {
  const { told, want, current, status, lease, carried } = known;
  const stats: TransferStats = { objects: 0, bytes: 0 };
  const missing = told
    ? await missingAfterNegotiation(remote, want, told)
    : await missingLevelByLevel(remote, want);
  const missingChunks = missing.get('chunk')!;
  // A lean clone pushing to another remote: what it never fetched comes from its content remote.
  await repo.odb.ensureChunks(missingChunks);
  const levels = STRUCTURED.map((kind) => [kind, missing.get(kind)!] as const);
  // Our own store's objects were verified when they were written: sent as stored (docs/transfer.md).
  const count = missingChunks.length + levels.reduce((n, [, oids]) => n + oids.length, 0);
  // Nothing to carry it (a remote without a descriptor holds nothing, so a first push always
  // sends something; this is for safety): then it is written before the ref update, as before.
  const prepared =
    carried && count === 0
      ? writeDescriptor(remote, makeDescriptor(repo.settings.chunking, false))
      : known.prepared;
  const sizes = await storedSizes(repo, missing, await told?.sizes);
  const sent: CopyOptions = {
    ...options,
    sourceVerified: true,
    // What each object holds while it goes up, against the remote's byte budget.
    sizeOf: (oid) =>
      sizes.get(ObjectDatabase.keyFor('chunk', oid)) ??
      sizes.get(ObjectDatabase.keyFor('tag', oid)),
  };
  let chunkBytes = 0;
  for (const oid of missingChunks) chunkBytes += sizes.get(ObjectDatabase.keyFor('chunk', oid))!;
  // The ref at our commit is all a push asks, whoever put it there: no read before the update.
  let leaseAfter: LeaseState | undefined;
  let leaseRead: Promise<LeaseState> | undefined;
  const swapOptions: SwapOptions = {
    endAtNextIsEnough: true,
    // A server reads the lease right after the swap and answers it with the update.
    ...(lease && told
      ? { onLeaseAfter: (read) => (leaseAfter = leaseFrom(read.ref, read.record)) }
      : {}),
    // A store that confirms its update after writing it (S3) says when the new value became
    // visible: a sweep that starts after that sees it, so the lease read from then on is as good
    // as one after the confirmation, and goes beside it. The latest write's read is the one kept.
    ...(lease
      ? {
          onWritten: () => {
            leaseRead = readLease(remote, lease);
            leaseRead.catch(() => undefined);
          },
        }
      : {}),
  };
  const update: RefUpdate = { name: request.ref, expected: current, next: request.oid };
  // Whether the last pack's request updated the ref as well; null: it is still to be updated.
  let swappedWithPack: boolean | null = null;
  progress.start('push', count, chunkBytes);
  try {
    const packed =
      told !== null &&
      (await sendInPacks(repo, remote, missing, sizes, progress, stats, prepared, carried, {
        update,
        options: swapOptions,
        swapped: (swapped) => (swappedWithPack = swapped),
      }));
    if (!packed) {
      await prepared;
      // Largest, smallest, next largest... (largeAndSmallInTurn): the small ones go while the
      // large ones fill the link, not in a run of round trips with it idle.
      const chunks = largeAndSmallInTurn(missingChunks, (oid) =>
        sizes.get(ObjectDatabase.keyFor('chunk', oid)),
      );
      // Trees, commits and tags go once every chunk has landed, beside the manifests still going,
      // not a round trip per kind after them: none is reachable before the ref update, which
      // waits for all of them (an incremental push to a bucket: 2 sequential round trips less).
      const others = levels.filter(([kind]) => kind !== 'manifest');
      const rest = (): Promise<unknown> =>
        mapLimit(others, others.length, ([kind, oids]) =>
          copyObjects(repo.store, remote, kind, oids, repo.odb, progress, stats, sent),
        );
      await chunksThenTheirManifests(repo, remote, chunks, missing.get('manifest')!, rest, {
        progress,
        stats,
        sent,
      });
    }
  } finally {
    progress.stop();
  }
  // Whatever was sent, the ref moves only once the descriptor is in place (a push with nothing
  // else to send has waited for it nowhere else): a server refuses a ref in a repository without one.
  await prepared;
  const swapped =
    swappedWithPack ??
    (await remote.compareAndSwapRef(request.ref, current, request.oid, swapOptions));
  if (!swapped) {
    throw new NonFastForwardError(
      `rejected: ${request.ref} on the remote moved while pushing (someone else pushed first)`,
      {
        hint: "run 'mediagit pull' to merge their work, then push again; your objects are already uploaded",
      },
    );
  }
  // A gc sweep overlapped this push: it may have deleted objects the push found present. Once no
  // sweep runs, put back whatever is missing before reporting success (docs/remote-gc.md).
  if (lease && leaseAfter === undefined && leaseRead !== undefined) leaseAfter = await leaseRead;
  if (lease && (await sweepOverlapped(remote, lease, leaseAfter))) {
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

const STRUCTURED = ['manifest', 'tree', 'commit', 'tag'] as const;
const KINDS = ['chunk', ...STRUCTURED] as const;

function wantOf(want: ReachableObjects, kind: ObjectKind): ReadonlySet<Oid> {
  switch (kind) {
    case 'chunk':
      return want.chunks;
    case 'manifest':
      return want.manifests;
    case 'tree':
      return want.trees;
    case 'commit':
      return want.commits;
    case 'tag':
      return want.tags;
  }
}

function sameSet<T>(a: ReadonlySet<T>, b: ReadonlySet<T>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

/**
 * The negotiation, asked about what a push from `assumeRemoteHas` would send: one POST /negotiate
 * to a server, the same reads at once to any other remote (negotiation.ts); null from a server
 * from before it.
 */
async function negotiate(
  repo: Repository,
  remote: Store,
  request: PushRequest,
  assumeRemoteHas: readonly Oid[],
): Promise<Negotiated | null> {
  const walked = (async () => {
    const assumed = new Set<Oid>();
    for (const oid of assumeRemoteHas) if ((await repo.odb.kindOf(oid)) !== null) assumed.add(oid);
    const want = await walkReachable(
      repo,
      [{ oid: request.oid, kind: 'object', where: request.ref }],
      {
        exclude: assumed,
        excludeBoundaryContent: true,
        chunks: 'skip',
      },
    );
    const check: string[] = [];
    for (const kind of KINDS)
      for (const oid of wantOf(want, kind)) {
        if (check.length >= NEGOTIATE_CHECK) break;
        check.push(ObjectDatabase.keyFor(kind, oid));
      }
    // New files mean chunk packs several at once right after the answer: their connections open
    // now, their handshakes beside the negotiation's round trip instead of one after it.
    if (want.manifests.size > 0) remote.capabilities.warmConnections?.(PACKS_IN_FLIGHT);
    return { assumed, want, check };
  })();
  // The sizes a push needs of what it sends, asked while the remote answers, not after.
  const sizes = walked.then(({ want }) =>
    storedSizes(repo, new Map(KINDS.map((kind) => [kind, [...wantOf(want, kind)]]))),
  );
  sizes.catch(() => undefined);
  const questions = { refs: 'refs/', locks: true, keys: repo.encrypted, gcLease: true };
  // A remote that answers in one request is asked once the walk has the keys; any other gets its
  // first reads while the walk is still going (negotiateWhileWalking).
  const own = remote.capabilities.negotiate;
  const [answer, { assumed, want, check }] = await Promise.all([
    own
      ? walked.then(({ check }) => own.negotiate({ ...questions, check }))
      : negotiateWhileWalking(
          repo,
          remote,
          questions,
          walked.then(({ check }) => check),
        ),
    walked,
  ]);
  if (answer === null) return null;
  const descriptor = answer.descriptor === null ? null : checkDescriptor(answer.descriptor);
  return {
    refs: answer.refs ?? new Map(),
    lease: leaseFrom(answer.gcLease?.ref ?? null, answer.gcLease?.record ?? null),
    theirLocks: answer.locks?.theirs ?? [],
    remote: {
      descriptor,
      ...(answer.keys ? { keys: new Set(answer.keys) } : {}),
      ...(answer.descriptorInPack ? { descriptorInPack: true } : {}),
    },
    assumed,
    want,
    checked: new Set(check),
    missing: answer.missing ?? new Set(),
    sizes,
  };
}

/** What the remote lacks of `want`, one existence check per kind, in dependency order. */
async function missingLevelByLevel(
  remote: Store,
  want: ReachableObjects,
): Promise<Map<ObjectKind, Oid[]>> {
  const out = new Map<ObjectKind, Oid[]>();
  for (const kind of KINDS) out.set(kind, await missingOn(remote, kind, wantOf(want, kind)));
  return out;
}

/** What the remote lacks of `want`: the negotiation's answer, and one check for anything it did not cover. */
async function missingAfterNegotiation(
  remote: Store,
  want: ReachableObjects,
  told: Negotiated,
): Promise<Map<ObjectKind, Oid[]>> {
  const ask: string[] = [];
  for (const kind of KINDS)
    for (const oid of wantOf(want, kind)) {
      const key = ObjectDatabase.keyFor(kind, oid);
      if (!told.checked.has(key)) ask.push(key);
    }
  const present = ask.length === 0 ? [] : await remote.has(ask);
  const absent = new Set(told.missing);
  ask.forEach((key, i) => {
    if (!present[i]) absent.add(key);
  });
  const out = new Map<ObjectKind, Oid[]>();
  for (const kind of KINDS)
    out.set(
      kind,
      [...wantOf(want, kind)].filter((oid) => absent.has(ObjectDatabase.keyFor(kind, oid))),
    );
  return out;
}

/** Stored bytes a pack of chunks carries at most: the HTTP client's pack limit, less record headers. */
const PACK_BYTES = 4 * 1024 * 1024 - 64 * 1024;
/**
 * Packs of chunks in flight at once. Over a link whose bandwidth-delay product is ~1 MB (200
 * Mbit/s, 40 ms) two would keep it busy; more let a push of up to this many packs go in one round
 * trip, and cost memory only for what is in flight.
 */
const PACKS_IN_FLIGHT = 4;
/** Files of the local store read at once for each pack being filled. */
const READS_IN_FLIGHT = 8;

/**
 * Everything missing, in packs, to a remote that batches: chunks first, in packs of about equal
 * size sent several at once and one after another with no wait between them, then the structured
 * objects (the server stores a manifest only once its chunks are there) in one batch. When
 * everything fits in one pack, chunks and all go in that one request. The ref update rides on
 * the last request where the remote can take it there (`putManyThenSwap`): `lastly.swapped` then
 * hears its outcome. False: the remote does not batch, nothing was sent.
 */
async function sendInPacks(
  repo: Repository,
  remote: Store,
  missing: ReadonlyMap<ObjectKind, readonly Oid[]>,
  sizes: ReadonlyMap<string, number>,
  progress: ProgressSink,
  stats: TransferStats,
  prepared: Promise<void>,
  descriptor: Buffer | undefined,
  lastly: {
    readonly update: RefUpdate;
    readonly options: SwapOptions;
    readonly swapped: (swapped: boolean) => void;
  },
): Promise<boolean> {
  const batch = remote.capabilities.batch;
  if (!batch) return false;
  const putMany = async (entries: readonly { key: string; data: Buffer }[]): Promise<void> => {
    await prepared;
    return batch.putMany(entries, descriptor ? { descriptor } : {});
  };
  const putLast = async (entries: readonly { key: string; data: Buffer }[]): Promise<void> => {
    if (!batch.putManyThenSwap) return putMany(entries);
    await prepared;
    const swapped = await batch.putManyThenSwap(
      entries,
      lastly.update,
      descriptor ? { ...lastly.options, descriptor } : lastly.options,
    );
    if (swapped !== null) lastly.swapped(swapped);
  };
  let total = 0;
  for (const size of sizes.values()) total += size;
  const objects = sizes.size;
  if (objects === 0) return true;
  // Several reads at once: one after another, a pack's files kept the link idle for their sum.
  // One line for all packs, taken in the order they were asked: with a line per pack, the packs
  // in flight shared the reads (and the thread pool's 4 threads) and each left only once nearly
  // all of them had been read; this way the first leaves once its own files are read.
  const reads = new Semaphore(READS_IN_FLIGHT);
  const read = (kind: ObjectKind, oids: readonly Oid[]) =>
    Promise.all(
      oids.map((oid) =>
        reads.run(async () => {
          const key = ObjectDatabase.keyFor(kind, oid);
          const data = await repo.store.get(key);
          // Sent as stored, after the envelope check (docs/transfer.md), as copyObjects does.
          checkEnvelope(kind, oid, data);
          return { key, data };
        }),
      ),
    );
  // Read buffers are freed once their pack landed, not at a collection: MiBs of external memory
  // per chunk set off full collections (as copyObjects found). Only the store's own fresh reads.
  const fresh = repo.store.capabilities.freshBuffers;
  const sent = (entries: readonly { data: Buffer }[]): void => {
    for (const { data } of entries) {
      stats.objects++;
      stats.bytes += data.length;
      progress.bytes(data.length);
      progress.fileDone();
      if (fresh) releaseMemory(data);
    }
  };
  if (total <= PACK_BYTES && objects <= ONE_PACK_OBJECTS) {
    const entries: { key: string; data: Buffer }[] = [];
    for (const kind of KINDS) entries.push(...(await read(kind, missing.get(kind)!)));
    await putLast(entries);
    sent(entries);
    return true;
  }
  const chunks = missing.get('chunk')!;
  const chunksSent = mapLimit(chunkPacks(chunks, sizes), PACKS_IN_FLIGHT, async (pack) => {
    const entries = await read('chunk', pack);
    await putMany(entries);
    sent(entries);
  });
  // Read while the chunk packs are on the wire, so their pack leaves as soon as the last is
  // answered; in line behind the first chunk packs' files, which go first.
  const readStructured = (async () => {
    const out: { key: string; data: Buffer }[] = [];
    for (const kind of STRUCTURED) out.push(...(await read(kind, missing.get(kind)!)));
    return out;
  })();
  readStructured.catch(() => undefined);
  await chunksSent;
  const structured = await readStructured;
  if (structured.length > 0) {
    await putLast(structured);
    sent(structured);
  }
  return true;
}

/**
 * Chunks grouped into as few packs as PACK_BYTES allows, of about equal size (two packs of 2.2 MB
 * in flight together finish before a 4 MiB one and its 0.4 MB rest one after the other).
 */
function chunkPacks(chunks: readonly Oid[], sizes: ReadonlyMap<string, number>): Oid[][] {
  const size = (oid: Oid): number => sizes.get(ObjectDatabase.keyFor('chunk', oid)) ?? 0;
  let total = 0;
  for (const oid of chunks) total += size(oid);
  const target = Math.min(
    PACK_BYTES,
    Math.ceil(total / Math.max(1, Math.ceil(total / PACK_BYTES))),
  );
  const packs: Oid[][] = [];
  let pack: Oid[] = [];
  let bytes = 0;
  for (const oid of chunks) {
    const n = size(oid);
    if (
      pack.length > 0 &&
      (pack.length >= ONE_PACK_OBJECTS || bytes + n > PACK_BYTES || bytes >= target)
    ) {
      packs.push(pack);
      pack = [];
      bytes = 0;
    }
    pack.push(oid);
    bytes += n;
  }
  if (pack.length > 0) packs.push(pack);
  return packs;
}

/** Manifests read at once to learn which of the chunks being sent each one waits for. */
const MANIFEST_READS = 16;

/**
 * The chunks, and, when they take more than one wave of requests, each manifest as soon as the
 * chunks of it that were missing have landed, not after the last chunk: a bucket still never holds a manifest without its chunks, and the
 * manifests' requests (a round trip each for a few dozen bytes, in waves of 16) go while the
 * large chunks fill the link instead of after them. Whatever is left goes once every chunk has
 * landed (a store that does not say when each lands, a folder's adoption, tells only then), and
 * `afterChunks` (the other structured objects) starts at that moment too.
 */
async function chunksThenTheirManifests(
  repo: Repository,
  remote: Store,
  chunks: readonly Oid[],
  manifests: readonly Oid[],
  afterChunks: () => Promise<unknown>,
  to: {
    readonly progress: ProgressSink;
    readonly stats: TransferStats;
    readonly sent: CopyOptions;
  },
): Promise<void> {
  const send = (kind: 'chunk' | 'manifest', oids: readonly Oid[], sent = to.sent): Promise<void> =>
    copyObjects(repo.store, remote, kind, oids, repo.odb, to.progress, to.stats, sent);
  if (chunks.length <= transferPacing(repo.store, remote).requests) {
    // Every chunk goes in the first wave: the last to land decides when the manifests can, and
    // sent one by one as their chunks land they would only stretch the chain of round trips.
    await send('chunk', chunks);
    // Both settle before a failure is thrown: nothing is still being sent once push reports it.
    await mapLimit([() => send('manifest', manifests), afterChunks], 2, (start) => start());
    return;
  }
  const sending = new Set(chunks);
  const waitingFor = new Map<Oid, number>();
  const waitedOnBy = new Map<Oid, Oid[]>();
  const ready: Oid[] = [];
  const owns = await mapLimit(manifests, MANIFEST_READS, async (oid) => {
    const own = new Set<Oid>();
    for (const chunk of (await repo.odb.readManifest(oid)).chunks)
      if (sending.has(chunk.oid)) own.add(chunk.oid);
    return own;
  });
  manifests.forEach((oid, i) => {
    const own = owns[i]!;
    if (own.size === 0) return void ready.push(oid);
    waitingFor.set(oid, own.size);
    for (const chunk of own) {
      const list = waitedOnBy.get(chunk);
      if (list) list.push(oid);
      else waitedOnBy.set(chunk, [oid]);
    }
  });
  let wake: (() => void) | undefined;
  let chunksDone = false;
  const landed = (chunk: Oid): void => {
    for (const oid of waitedOnBy.get(chunk) ?? []) {
      const left = waitingFor.get(oid)! - 1;
      waitingFor.set(oid, left);
      if (left === 0) ready.push(oid);
    }
    waitedOnBy.delete(chunk);
    wake?.();
  };
  const sendChunks = send('chunk', chunks, { ...to.sent, onCopied: landed });
  // Each set of manifests that became ready goes at once, beside those still on the wire (the
  // store bounds the requests in flight): one after another they would add round trips.
  const sendManifests = async (): Promise<void> => {
    const batches: Promise<void>[] = [];
    for (;;) {
      if (ready.length > 0) {
        const batch = send('manifest', ready.splice(0));
        batch.catch(() => undefined);
        batches.push(batch);
        continue;
      }
      if (chunksDone) break;
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    await Promise.all(batches);
  };
  const manifestsSent = sendManifests();
  let failure: { reason: unknown } | undefined;
  try {
    await sendChunks;
  } catch (err) {
    failure = { reason: err };
  }
  // Every chunk has landed (or the push fails): none of the manifests waits any longer, though
  // after a failure only those whose chunks are all there were or are sent.
  chunksDone = true;
  if (!failure) for (const [oid, left] of waitingFor) if (left > 0) ready.push(oid);
  wake?.();
  const rest = failure ? undefined : afterChunks();
  const settled = await Promise.allSettled([manifestsSent, rest]);
  if (failure) throw failure.reason;
  for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
}

/**
 * The stored size of every object to send, by key (0 when it cannot be told), asked in parallel;
 * those in `known` (asked earlier) are not asked again, unless it could not tell them then (a lean
 * clone's chunks arrive from its content remote in between).
 */
async function storedSizes(
  repo: Repository,
  missing: ReadonlyMap<ObjectKind, readonly Oid[]>,
  known: ReadonlyMap<string, number> = new Map(),
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const keys: string[] = [];
  for (const kind of KINDS)
    for (const oid of missing.get(kind)!) {
      const key = ObjectDatabase.keyFor(kind, oid);
      const size = known.get(key);
      if (size === undefined || size === 0) keys.push(key);
      else out.set(key, size);
    }
  const sizes = await mapLimit(keys, STAT_CONCURRENCY, (key) =>
    repo.store.statSize(key).catch(() => 0),
  );
  keys.forEach((key, i) => out.set(key, sizes[i]!));
  return out;
}
