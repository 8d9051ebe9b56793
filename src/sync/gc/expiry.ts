/**
 * Reading content a retention policy expired. Each sweep that deletes expired content first
 * writes a record (`meta/gc-expired-<ms>-<hash>`, see sweep.ts) naming the manifests and chunks
 * and the date; readers consult the records only once a chunk turned out to be absent, so an
 * expired version reports "expired by retention policy on <date>" instead of "missing".
 */
import type { Oid } from '../../objects/index.js';
import type { Store } from '../../store/index.js';

export const EXPIRED_PREFIX = 'meta/gc-expired-';

/** Manifests a sweep expired, the chunks it deleted for that, and when. */
export interface ExpiryRecord {
  readonly expiredAt: string;
  readonly manifests: readonly Oid[];
  /** Chunks deleted as expired (records written before this field existed lack it). */
  readonly chunks?: readonly Oid[];
}

async function* records(store: Store): AsyncGenerator<ExpiryRecord> {
  for await (const { key } of store.list(EXPIRED_PREFIX))
    yield JSON.parse((await store.get(key)).toString()) as ExpiryRecord;
}

/** When the content of `manifest` was expired by a retention policy, or null if it never was. */
export async function expiryOf(store: Store, manifest: Oid): Promise<string | null> {
  for await (const record of records(store))
    if (record.manifests.includes(manifest)) return record.expiredAt;
  return null;
}

/** Every manifest a retention policy expired on this store, with the earliest date. */
export async function expiredManifests(store: Store): Promise<Map<Oid, string>> {
  return collect(store, (r) => r.manifests);
}

/** Every chunk a sweep deleted as expired on this store, with the earliest date. */
export async function expiredChunks(store: Store): Promise<Map<Oid, string>> {
  return collect(store, (r) => r.chunks ?? []);
}

async function collect(
  store: Store,
  pick: (record: ExpiryRecord) => readonly Oid[],
): Promise<Map<Oid, string>> {
  const out = new Map<Oid, string>();
  for await (const record of records(store))
    for (const oid of pick(record)) {
      const known = out.get(oid);
      if (known === undefined || record.expiredAt < known) out.set(oid, record.expiredAt);
    }
  return out;
}

/** The date the first of `chunks` was expired on, or null when none of them was. */
export async function expiryOfChunks(store: Store, chunks: readonly Oid[]): Promise<string | null> {
  if (chunks.length === 0) return null;
  const expired = await expiredChunks(store);
  for (const oid of chunks) {
    const when = expired.get(oid);
    if (when !== undefined) return when;
  }
  return null;
}
