import { ObjectCorruptError } from '../errors/index.js';
import {
  ObjectDatabase,
  decodeEnvelopeHeader,
  type ObjectKind,
  type Oid,
} from '../objects/index.js';
import type { ProgressSink } from '../repo/index.js';
import type { Store, TransferPacing } from '../store/index.js';
import { WeightedSemaphore, mapLimit } from '../util/limit.js';
import { releaseMemory } from '../util/memory.js';

/** Objects moved at once between stores that do not pace their transfers themselves. */
export const TRANSFER_CONCURRENCY = 8;
const HAS_BATCH = 512;

export interface TransferStats {
  objects: number;
  /** Stored (compressed, sealed) bytes moved. */
  bytes: number;
}

/**
 * How fast a transfer between `stores` may go: the slowest pace any of them asks for
 * (StoreCapabilities.pacing), else TRANSFER_CONCURRENCY requests with no byte budget, as every
 * transfer had before stores could say.
 */
export function transferPacing(...stores: readonly Store[]): TransferPacing {
  let requests = Number.POSITIVE_INFINITY;
  let bytes = Number.POSITIVE_INFINITY;
  for (const store of stores) {
    const pacing = store.capabilities.pacing;
    if (!pacing) continue;
    requests = Math.min(requests, pacing.requests);
    bytes = Math.min(bytes, pacing.bytes);
  }
  return { requests: Number.isFinite(requests) ? requests : TRANSFER_CONCURRENCY, bytes };
}

/** Which of `oids` of one kind the store lacks, asked in batches (one round trip per batch). */
export async function missingOn(
  store: Store,
  kind: ObjectKind,
  oids: Iterable<Oid>,
): Promise<Oid[]> {
  const all = [...oids];
  const missing: Oid[] = [];
  for (let i = 0; i < all.length; i += HAS_BATCH) {
    const batch = all.slice(i, i + HAS_BATCH);
    const present = await store.has(batch.map((oid) => ObjectDatabase.keyFor(kind, oid)));
    batch.forEach((oid, j) => {
      if (!present[j]) missing.push(oid);
    });
  }
  return missing;
}

export interface CopyOptions {
  /**
   * Take the local fast path when both stores have it (capabilities.localFiles: two folders
   * on one machine): objects are hard-linked, or copied inside the kernel, without being read.
   * Default true; false (`--no-hardlinks`, config `transfer.hardlinks = false`) always reads,
   * verifies and writes every object.
   */
  readonly hardlinks?: boolean;
  readonly concurrency?: number;
  /**
   * Verifies and writes chunks into the receiving repository on worker threads (its chunk pool):
   * `to` must then be that repository's own store. Structured objects are unaffected.
   */
  readonly workers?: { adopt(oid: Oid, stored: Buffer): Promise<number> };
  /**
   * `from` is the repository's own store, whose objects were verified when they were written
   * (hashed from the plaintext at ingest, or verified on fetch): they are sent as stored after an
   * envelope check, not decoded and hashed again. Why that is safe: docs/transfer.md.
   */
  readonly sourceVerified?: boolean;
  /**
   * Each object's size as far as known before it is read (stored size, or content size as an
   * estimate): what it reserves of the byte budget (TransferPacing.bytes) while it is held. An
   * object of unknown size reserves nothing.
   */
  readonly sizeOf?: (oid: Oid) => number | undefined;
  /**
   * Told of each object once it is stored on `to` (what may now go that needs it there). Only on
   * the one-object-a-request path: folder adoption and batches do not call it.
   */
  readonly onCopied?: (oid: Oid) => void;
}

/**
 * The check an object read from an already-verified store still gets: its envelope names the kind
 * it is stored as, so a truncated, emptied or misplaced file is refused before it is sent.
 */
export function checkEnvelope(kind: ObjectKind, oid: Oid, stored: Buffer): void {
  let found: ObjectKind;
  try {
    found = decodeEnvelopeHeader(stored).kind;
  } catch (err) {
    throw new ObjectCorruptError(oid, err instanceof Error ? err.message : String(err));
  }
  if (found !== kind) throw new ObjectCorruptError(oid, `is stored as a ${found}, not a ${kind}`);
}

/**
 * Objects in the order a transfer of one object a request should start them: the largest, the
 * smallest, the next largest, the next smallest... A small object is a round trip for a few
 * hundred bytes; started beside the large ones, the small ones go while the large ones fill the
 * link. In walk order a run of them (a file of many chunks, or many small files) idled it: on the
 * bench corpus 30 of 70 chunks are under 64 KiB, and a push to S3 through a 200 Mbit/s link sat
 * idle ~0.25 s of 2.5 s. Largest first alone leaves them all to the end, in waves of round trips
 * with the link idle again. Unknown sizes count as 0.
 */
export function largeAndSmallInTurn(
  oids: readonly Oid[],
  sizeOf: (oid: Oid) => number | undefined,
): Oid[] {
  const sorted = [...oids].sort((a, b) => (sizeOf(b) ?? 0) - (sizeOf(a) ?? 0));
  const out: Oid[] = [];
  for (let large = 0, small = sorted.length - 1; large <= small; large++, small--) {
    out.push(sorted[large]!);
    if (small > large) out.push(sorted[small]!);
  }
  return out;
}

/** Whether copyObjects would take the local fast path between these two stores. */
export function canAdopt(from: Store, to: Store, options: CopyOptions = {}): boolean {
  return (
    options.hardlinks !== false &&
    from.capabilities.localFiles !== undefined &&
    to.capabilities.localFiles !== undefined
  );
}

/**
 * Copies objects from one store to another in parallel, bytes as stored (sealed objects stay
 * sealed). Every object is verified on the way with `verifier` (the receiving repository's object
 * database: hash, or GCM tag then HMAC) before it is written, so a corrupt or forged object never
 * lands, whichever side it came from.
 *
 * Except on the local fast path (see `canAdopt`): between two folders, objects are hard-linked
 * (or copied in the kernel) and never read, so NOT verified here — as in git's local clone,
 * which hard-links objects without checking them. What guards the receiving repository then is
 * that every read goes through its ObjectDatabase, which verifies each object it opens: a clone
 * verifies every chunk it checks out, and `fsck --full` every object. Callers that must not
 * take objects unverified pass `hardlinks: false`.
 */
export async function copyObjects(
  from: Store,
  to: Store,
  kind: ObjectKind,
  oids: readonly Oid[],
  verifier: ObjectDatabase,
  progress: ProgressSink,
  stats: TransferStats,
  options: CopyOptions = {},
): Promise<void> {
  if (canAdopt(from, to, options)) return adoptObjects(from, to, kind, oids, progress, stats);
  // Manifests, trees, commits and tags are small and many: where a side batches, one round trip
  // carries a whole batch instead of one object.
  if (kind !== 'chunk' && (to.capabilities.batch || from.capabilities.batch))
    return copyBatched(from, to, kind, oids, verifier, progress, stats, options);
  const workers = kind === 'chunk' ? options.workers : undefined;
  const pacing = transferPacing(from, to);
  // The request count alone would let that many large objects be held at once (16 × a 1 GiB chunk).
  const budget = Number.isFinite(pacing.bytes) ? new WeightedSemaphore(pacing.bytes) : null;
  const copyOne = async (oid: Oid): Promise<void> => {
    const key = ObjectDatabase.keyFor(kind, oid);
    const stored = await from.get(key);
    let size = stored.length;
    if (workers) {
      size = await workers.adopt(oid, stored);
    } else if (options.sourceVerified) {
      checkEnvelope(kind, oid, stored);
      await to.put(key, stored);
      if (from.capabilities.freshBuffers) releaseMemory(stored);
    } else {
      // Freed as soon as they are done with, not at a collection: MiBs of external memory per
      // chunk set off a full collection every few dozen chunks (58 in one push to a server, a
      // third of the client's CPU). The decoded copy is ours; `stored` only when the store says
      // its reads are fresh buffers nobody else holds (a folder's), not whatever an SDK returned.
      const canonical = await verifier.openStored(kind, oid, stored);
      if (canonical.buffer !== stored.buffer) releaseMemory(canonical);
      await to.put(key, stored);
      if (from.capabilities.freshBuffers) releaseMemory(stored);
    }
    stats.objects++;
    stats.bytes += size;
    progress.bytes(size);
    progress.fileDone();
    options.onCopied?.(oid);
  };
  await mapLimit(oids, options.concurrency ?? pacing.requests, (oid) =>
    budget ? budget.run(options.sizeOf?.(oid) ?? 0, () => copyOne(oid)) : copyOne(oid),
  );
}

/** Objects per lend/adopt call: each call fsyncs the folders it touched once. */
export const ADOPT_BATCH = 1024;

/** The local fast path: whole batches of object files handed from one folder store to another. */
async function adoptObjects(
  from: Store,
  to: Store,
  kind: ObjectKind,
  oids: readonly Oid[],
  progress: ProgressSink,
  stats: TransferStats,
): Promise<void> {
  const source = from.capabilities.localFiles!;
  const target = to.capabilities.localFiles!;
  for (let i = 0; i < oids.length; i += ADOPT_BATCH) {
    const files = await source.lend(
      oids.slice(i, i + ADOPT_BATCH).map((oid) => ObjectDatabase.keyFor(kind, oid)),
    );
    const result = await target.adopt(files);
    // Bytes are what the target gained (objects it already had cost nothing), as the meter counts them.
    stats.objects += files.length;
    stats.bytes += result.bytes;
    progress.bytes(result.bytes);
    for (let j = 0; j < files.length; j++) progress.fileDone();
  }
}

/** Structured objects per putMany/getMany request: whichever limit is reached first. */
export const BATCH_OBJECTS = 256;
export const BATCH_BYTES = 8 * 1024 * 1024;
const BATCHES_IN_FLIGHT = 2;

/** Reads many keys: getMany where the store has it, parallel gets otherwise. A key not found is an error either way. */
export async function readMany(
  store: Store,
  keys: readonly string[],
): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  const batch = store.capabilities.batch;
  if (batch) {
    const groups: string[][] = [];
    for (let i = 0; i < keys.length; i += BATCH_OBJECTS)
      groups.push(keys.slice(i, i + BATCH_OBJECTS));
    await mapLimit(groups, BATCHES_IN_FLIGHT, async (group) => {
      for (const [key, data] of await batch.getMany(group)) found.set(key, data);
    });
  }
  // Whatever a batch left out is asked for alone: the single get reports NotFound precisely.
  const rest = keys.filter((k) => !found.has(k));
  await mapLimit(rest, transferPacing(store).requests, async (key) => {
    found.set(key, await store.get(key));
  });
  return found;
}

async function copyBatched(
  from: Store,
  to: Store,
  kind: ObjectKind,
  oids: readonly Oid[],
  verifier: ObjectDatabase,
  progress: ProgressSink,
  stats: TransferStats,
  options: CopyOptions,
): Promise<void> {
  const groups: Oid[][] = [];
  for (let i = 0; i < oids.length; i += BATCH_OBJECTS)
    groups.push(oids.slice(i, i + BATCH_OBJECTS));
  await mapLimit(groups, BATCHES_IN_FLIGHT, async (group) => {
    const keys = group.map((oid) => ObjectDatabase.keyFor(kind, oid));
    const data = await readMany(from, keys);
    let batch: { key: string; data: Buffer }[] = [];
    let bytes = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const sending = batch;
      batch = [];
      bytes = 0;
      const batching = to.capabilities.batch;
      if (batching) await batching.putMany(sending);
      else await mapLimit(sending, transferPacing(to).requests, (e) => to.put(e.key, e.data));
      for (const e of sending) {
        stats.objects++;
        stats.bytes += e.data.length;
        progress.bytes(e.data.length);
        progress.fileDone();
      }
    };
    for (const [i, oid] of group.entries()) {
      const stored = data.get(keys[i]!)!;
      if (options.sourceVerified) checkEnvelope(kind, oid, stored);
      else await verifier.openStored(kind, oid, stored);
      if (batch.length > 0 && bytes + stored.length > BATCH_BYTES) await flush();
      batch.push({ key: keys[i]!, data: stored });
      bytes += stored.length;
    }
    await flush();
  });
}

/** Downloads and verifies one structured object whose kind is learnt from its envelope. */
export async function fetchVerified(
  from: Store,
  oid: Oid,
  expected: readonly ObjectKind[],
  verifier: ObjectDatabase,
): Promise<{ kind: ObjectKind; stored: Buffer; plain: Buffer }> {
  const stored = await from.get(
    ObjectDatabase.keyFor(expected[0] === 'chunk' ? 'chunk' : 'commit', oid),
  );
  return openFetched(oid, stored, expected, verifier);
}

/** Verifies an object already downloaded (say, by getMany) whose kind is learnt from its envelope. */
export async function openFetched(
  oid: Oid,
  stored: Buffer,
  expected: readonly ObjectKind[],
  verifier: ObjectDatabase,
): Promise<{ kind: ObjectKind; stored: Buffer; plain: Buffer }> {
  let kind: ObjectKind;
  try {
    kind = decodeEnvelopeHeader(stored).kind;
  } catch {
    kind = expected[0]!;
  }
  if (!expected.includes(kind)) kind = expected[0]!;
  const plain = await verifier.openStored(kind, oid, stored);
  return { kind, stored, plain };
}
