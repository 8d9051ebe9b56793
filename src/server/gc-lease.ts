/**
 * The gc sweeper's lease (sync/gc/lease.ts, docs/remote-gc.md) as the server answers it: its ref,
 * and the record the ref names. Negotiate answers it before anything else; a ref update asked
 * for it answers it right after the swap, so a push learns whether a sweep overlapped it.
 */
import type { RefValue, Store } from '../store/index.js';
import { getOrNull, withSignal, type RequestContext } from './context.js';

const SWEEPER_REF = 'refs/locks/gc-sweeper';
const leaseRecordKey = (oid: string): string => `meta/gc-lease-${oid}`;

export async function gcLease(
  ctx: RequestContext,
  store: Store,
): Promise<{ ref: RefValue | null; record: string | null }> {
  const ref = await store.readRef(SWEEPER_REF, withSignal(ctx));
  if (ref === null) return { ref: null, record: null };
  const record = /^[0-9a-f]{64}$/.test(ref.oid)
    ? await getOrNull(store, leaseRecordKey(ref.oid), ctx)
    : null;
  return {
    ref: { oid: ref.oid, version: ref.version },
    record: record === null ? null : record.toString('utf8'),
  };
}
