import { ObjectDatabase, decodeEnvelopeHeader, type ObjectKind, type Oid } from '../objects/index.js';
import type { ProgressSink } from '../repo/index.js';
import type { Store } from '../store/index.js';
import { mapLimit } from '../util/limit.js';

export const TRANSFER_CONCURRENCY = 8;
const HAS_BATCH = 512;

export interface TransferStats {
  objects: number;
  /** Stored (compressed, sealed) bytes moved. */
  bytes: number;
}

/** Which of `oids` of one kind the store lacks, asked in batches (one round trip per batch). */
export async function missingOn(store: Store, kind: ObjectKind, oids: Iterable<Oid>): Promise<Oid[]> {
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

/**
 * Copies objects from one store to another in parallel, bytes as stored (sealed objects stay
 * sealed). Every object is verified on the way with `verifier` (the receiving repository's object
 * database: hash, or GCM tag then HMAC) before it is written, so a corrupt or forged object never
 * lands, whichever side it came from.
 */
export async function copyObjects(
  from: Store,
  to: Store,
  kind: ObjectKind,
  oids: readonly Oid[],
  verifier: ObjectDatabase,
  progress: ProgressSink,
  stats: TransferStats,
  concurrency = TRANSFER_CONCURRENCY,
): Promise<void> {
  // Manifests, trees, commits and tags are small and many: where a side batches, one round trip
  // carries a whole batch instead of one object.
  if (kind !== 'chunk' && (to.putMany || from.getMany)) return copyBatched(from, to, kind, oids, verifier, progress, stats);
  await mapLimit(oids, concurrency, async (oid) => {
    const key = ObjectDatabase.keyFor(kind, oid);
    const stored = await from.get(key);
    await verifier.openStored(kind, oid, stored);
    await to.put(key, stored);
    stats.objects++;
    stats.bytes += stored.length;
    progress.bytes(stored.length);
    progress.fileDone();
  });
}

/** Structured objects per putMany/getMany request: whichever limit is reached first. */
export const BATCH_OBJECTS = 256;
export const BATCH_BYTES = 8 * 1024 * 1024;
const BATCHES_IN_FLIGHT = 2;

/** Reads many keys: getMany where the store has it, parallel gets otherwise. A key not found is an error either way. */
export async function readMany(store: Store, keys: readonly string[]): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  const getMany = store.getMany?.bind(store);
  if (getMany) {
    const groups: string[][] = [];
    for (let i = 0; i < keys.length; i += BATCH_OBJECTS) groups.push(keys.slice(i, i + BATCH_OBJECTS));
    await mapLimit(groups, BATCHES_IN_FLIGHT, async (group) => {
      for (const [key, data] of await getMany(group)) found.set(key, data);
    });
  }
  // Whatever a batch left out is asked for alone: the single get reports NotFound precisely.
  const rest = keys.filter((k) => !found.has(k));
  await mapLimit(rest, TRANSFER_CONCURRENCY, async (key) => {
    found.set(key, await store.get(key));
  });
  return found;
}

async function copyBatched(from: Store, to: Store, kind: ObjectKind, oids: readonly Oid[], verifier: ObjectDatabase, progress: ProgressSink, stats: TransferStats): Promise<void> {
  const groups: Oid[][] = [];
  for (let i = 0; i < oids.length; i += BATCH_OBJECTS) groups.push(oids.slice(i, i + BATCH_OBJECTS));
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
      if (to.putMany) await to.putMany(sending);
      else await mapLimit(sending, TRANSFER_CONCURRENCY, (e) => to.put(e.key, e.data));
      for (const e of sending) {
        stats.objects++;
        stats.bytes += e.data.length;
        progress.bytes(e.data.length);
        progress.fileDone();
      }
    };
    for (const [i, oid] of group.entries()) {
      const stored = data.get(keys[i]!)!;
      await verifier.openStored(kind, oid, stored);
      if (batch.length > 0 && bytes + stored.length > BATCH_BYTES) await flush();
      batch.push({ key: keys[i]!, data: stored });
      bytes += stored.length;
    }
    await flush();
  });
}

/** Downloads and verifies one structured object whose kind is learnt from its envelope. */
export async function fetchVerified(from: Store, oid: Oid, expected: readonly ObjectKind[], verifier: ObjectDatabase): Promise<{ kind: ObjectKind; stored: Buffer; plain: Buffer }> {
  const stored = await from.get(ObjectDatabase.keyFor(expected[0] === 'chunk' ? 'chunk' : 'commit', oid));
  return openFetched(oid, stored, expected, verifier);
}

/** Verifies an object already downloaded (say, by getMany) whose kind is learnt from its envelope. */
export async function openFetched(oid: Oid, stored: Buffer, expected: readonly ObjectKind[], verifier: ObjectDatabase): Promise<{ kind: ObjectKind; stored: Buffer; plain: Buffer }> {
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
