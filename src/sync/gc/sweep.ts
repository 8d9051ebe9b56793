/**
 * `gc --remote`: deletes from a remote what its refs no longer reach, and the content a retention
 * policy expires. Safe against concurrent pushes by a grace period (only objects an earlier sweep
 * already found unreachable at least `graceMs` ago are deleted) and one sweeper at a time (the
 * lease in lease.ts, which pushes also watch). The argument is in docs/remote-gc.md.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { ProgressSink } from '../../repo/index.js';
import type { Store } from '../../store/index.js';
import { mapLimit } from '../../util/limit.js';
import { EXPIRED_PREFIX, type ExpiryRecord } from './expiry.js';
import { SweepLease } from './lease.js';
import { markRemote, type MarkResult, type ObjectOpener } from './mark.js';
import type { RetentionPolicy } from './policy.js';

export type SweepReason = 'unreachable' | 'expired';

export interface RemoteGcOptions {
  readonly policy: RetentionPolicy;
  /** Unreachable objects are deleted only once a sweep has seen them unreachable this long ago. */
  readonly graceMs: number;
  readonly dryRun?: boolean;
  /** How long the sweeper lease lasts between renewals (default 10 minutes). */
  readonly leaseMs?: number;
  readonly progress?: ProgressSink;
  /**
   * Against a mediagit server: whether its report lists every key (default true). Without it the
   * answer carries only the totals, which keeps a sweep of millions of chunks small on the wire.
   */
  readonly listKeys?: boolean;
  /** Stops the sweep between deletions (what is deleted stays deleted; a re-run carries on). */
  readonly signal?: AbortSignal;
  /** Test hook: called before each deletion (a test can kill or stall the sweeper there). */
  readonly beforeDelete?: (key: string) => void | Promise<void>;
}

export interface ReasonTotals {
  count: number;
  bytes: number;
}

export interface RemoteGcReport {
  dryRun: boolean;
  graceSeconds: number;
  /** What is (or, with dry-run, would be) deleted, by reason. */
  deleted: Record<SweepReason, ReasonTotals>;
  /** Unreachable or expired, but not yet past the grace period: kept this time. */
  deferred: ReasonTotals;
  kept: ReasonTotals;
  /** Bytes actually freed (0 on a dry run). */
  freedBytes: number;
  /** Manifests whose content is now expired (their records survive). */
  expiredManifests: number;
  /** Every key deleted (or to be deleted), with its reason and size. */
  keys: { key: string; reason: SweepReason; size: number }[];
}

const PENDING_PREFIX = 'meta/gc-pending-';

/** Candidates one sweep found: deleted by a later sweep once `graceMs` has passed. */
interface PendingRecord {
  readonly seenAt: number;
  readonly keys: readonly string[];
}

export async function collectRemoteGarbage(
  repo: ObjectOpener,
  store: Store,
  options: RemoteGcOptions,
): Promise<RemoteGcReport> {
  const dryRun = options.dryRun ?? false;
  const lease = dryRun ? null : await SweepLease.acquire(store, options.leaseMs ?? 600_000);
  try {
    return await sweep(repo, store, options, dryRun, lease);
  } finally {
    await lease?.release();
  }
}

async function sweep(
  repo: ObjectOpener,
  store: Store,
  options: RemoteGcOptions,
  dryRun: boolean,
  lease: SweepLease | null,
): Promise<RemoteGcReport> {
  const now = Date.now();
  // List before marking: an object referenced by the time the mark reads the refs is then kept.
  const listed = new Map<string, number>();
  for (const prefix of ['objects/', 'chunks/'])
    for await (const { key, size } of store.list(prefix)) listed.set(key, size);
  let mark = await markRemote(repo, store, options.policy, now);

  const pending: { key: string; record: PendingRecord }[] = [];
  for await (const { key } of store.list(PENDING_PREFIX))
    pending.push({ key, record: JSON.parse((await store.get(key)).toString()) as PendingRecord });
  const ripe = new Set<string>();
  for (const { record } of pending)
    if (record.seenAt <= now - options.graceMs) for (const k of record.keys) ripe.add(k);

  const report: RemoteGcReport = {
    dryRun,
    graceSeconds: options.graceMs / 1000,
    deleted: { unreachable: { count: 0, bytes: 0 }, expired: { count: 0, bytes: 0 } },
    deferred: { count: 0, bytes: 0 },
    kept: { count: 0, bytes: 0 },
    freedBytes: 0,
    expiredManifests: mark.expiredManifests.size,
    keys: [],
  };
  const candidates: string[] = [];
  const classify = (m: MarkResult): void => {
    candidates.length = 0;
    report.keys = [];
    for (const r of [
      report.deleted.unreachable,
      report.deleted.expired,
      report.deferred,
      report.kept,
    ]) {
      r.count = 0;
      r.bytes = 0;
    }
    for (const [key, size] of listed) {
      if (m.keep.has(key)) {
        report.kept.count++;
        report.kept.bytes += size;
        continue;
      }
      candidates.push(key);
      if (options.graceMs > 0 && !ripe.has(key)) {
        report.deferred.count++;
        report.deferred.bytes += size;
        continue;
      }
      const reason: SweepReason = m.expiredChunks.has(key) ? 'expired' : 'unreachable';
      report.deleted[reason].count++;
      report.deleted[reason].bytes += size;
      report.keys.push({ key, reason, size });
    }
  };
  classify(mark);
  if (dryRun) return report;

  // Refs that moved during the mark (a push landed): mark again from the new ones.
  if (!sameRefs(mark, await store.listRefs('refs/'))) {
    mark = await markRemote(repo, store, options.policy, Date.now());
    classify(mark);
    report.expiredManifests = mark.expiredManifests.size;
  }
  if (options.graceMs > 0 && candidates.length > 0) {
    const record: PendingRecord = { seenAt: now, keys: candidates };
    await store.put(
      `${PENDING_PREFIX}${now}-${randomBytes(4).toString('hex')}`,
      Buffer.from(JSON.stringify(record)),
    );
  }
  // The expiry record goes first: a sweep killed mid-way leaves reads saying "expired", not "missing".
  if (mark.expiredManifests.size > 0 && report.deleted.expired.count > 0) {
    const record: ExpiryRecord = {
      expiredAt: new Date(now).toISOString(),
      manifests: [...mark.expiredManifests.keys()].sort(),
      chunks: report.keys
        .filter((k) => k.reason === 'expired')
        .map((k) => k.key.slice('chunks/'.length))
        .sort(),
    };
    const bytes = Buffer.from(JSON.stringify(record));
    const digest = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
    await store.put(`${EXPIRED_PREFIX}${now}-${digest}`, bytes);
  }

  // Structured objects before chunks: an interrupted sweep never leaves a manifest meant to go
  // whose chunks are already gone.
  const order = [...report.keys].sort(
    (a, b) => Number(a.key.startsWith('chunks/')) - Number(b.key.startsWith('chunks/')),
  );
  options.progress?.start(
    'gc',
    order.length,
    order.reduce((n, k) => n + k.size, 0),
  );
  try {
    for (let i = 0; i < order.length; i += 256) {
      options.signal?.throwIfAborted();
      await lease?.renew();
      await mapLimit(order.slice(i, i + 256), 8, async ({ key, size }) => {
        options.signal?.throwIfAborted();
        await options.beforeDelete?.(key);
        await store.delete(key);
        report.freedBytes += size;
        options.progress?.bytes(size);
        options.progress?.fileDone();
      });
    }
  } finally {
    options.progress?.stop();
  }
  // Records whose candidates were all decided this time are done with.
  for (const { key, record } of pending)
    if (record.seenAt <= now - options.graceMs) await store.delete(key);
  return report;
}

function sameRefs(mark: MarkResult, now: Map<string, { oid: string }>): boolean {
  const current = [...now].filter(([name]) => !name.startsWith('refs/locks/'));
  return (
    current.length === mark.refs.size &&
    current.every(([name, v]) => mark.refs.get(name)?.oid === v.oid)
  );
}
