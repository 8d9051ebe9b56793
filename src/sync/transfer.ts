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

/** Downloads and verifies one structured object whose kind is learnt from its envelope. */
export async function fetchVerified(from: Store, oid: Oid, expected: readonly ObjectKind[], verifier: ObjectDatabase): Promise<{ kind: ObjectKind; stored: Buffer; plain: Buffer }> {
  const stored = await from.get(ObjectDatabase.keyFor(expected[0] === 'chunk' ? 'chunk' : 'commit', oid));
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
