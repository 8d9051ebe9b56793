/**
 * Retention sweeps next to the storage (`gc --remote` against a mediagit server, docs/remote-gc.md)
 * and the answer a read of expired content gets.
 *
 * `POST /gc/sweep` (admin) runs the same mark and sweep as a client does against a bucket, here
 * against the repository's storage directly: the sweeper lease is a ref under `refs/locks/`, which
 * clients may not write through the refs endpoint. The answer is NDJSON, streamed: progress lines
 * while the sweep runs (they also keep an idle connection from timing out), then one line with the
 * report or the error. A sweep cut short (the client goes away, the request timeout) stops between
 * deletions and leaves the lease to the next run, like an interrupted client sweep.
 */
import { PassThrough } from 'node:stream';
import { MediagitError, ObjectCorruptError, UsageError } from '../../errors/index.js';
import type { ObjectKind } from '../../objects/index.js';
import type { Store } from '../../store/index.js';
import { collectRemoteGarbage, expiredChunks, parsePolicy } from '../../sync/gc/index.js';
import type { ObjectOpener, RemoteGcReport, RetentionPolicy } from '../../sync/gc/index.js';
import { readJsonObject } from '../body.js';
import { decodeLimits, modeOf, type Endpoint, type RequestContext } from '../context.js';
import { HttpError, badRequest } from '../errors.js';
import { openPlain, type DecodeLimits } from '../verify.js';

/** How often a running sweep writes a progress line, at the latest. */
const HEARTBEAT_MS = 5000;

/** The 410 for a chunk a retention policy deleted, or null when it was never expired. */
export async function expiredAnswer(store: Store, key: string): Promise<HttpError | null> {
  if (!key.startsWith('chunks/')) return null;
  const when = (await expiredChunks(store)).get(key.slice('chunks/'.length));
  if (when === undefined) return null;
  return new HttpError(
    410,
    'expired',
    `${key} expired by retention policy on ${when.slice(0, 10)}`,
    {
      expired_at: when,
    },
  );
}

interface SweepRequest {
  readonly keep: string[];
  readonly olderThanMs?: number;
  readonly graceMs: number;
  readonly dryRun: boolean;
  readonly listKeys: boolean;
}

function milliseconds(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw badRequest(`${field} must be a whole number of milliseconds, 0 or more`);
  return value;
}

function parseRequest(body: Record<string, unknown>): SweepRequest {
  const keep = body['keep'] ?? [];
  if (!Array.isArray(keep) || keep.some((k) => typeof k !== 'string') || keep.length > 100)
    throw badRequest('keep must be an array of at most 100 "<glob>=<versions>" strings');
  const dryRun = body['dry_run'] ?? false;
  if (typeof dryRun !== 'boolean') throw badRequest('dry_run must be true or false');
  const olderThanMs = milliseconds(body['older_than_ms'], 'older_than_ms');
  const listKeys = body['list_keys'] ?? true;
  if (typeof listKeys !== 'boolean') throw badRequest('list_keys must be true or false');
  return {
    listKeys,
    keep: keep as string[],
    graceMs: milliseconds(body['grace_ms'], 'grace_ms') ?? 86_400_000,
    dryRun,
    ...(olderThanMs === undefined ? {} : { olderThanMs }),
  };
}

/** The server holds no keys: it reads a plain repository's objects, verified against their IDs. */
function plainOpener(limits: DecodeLimits): ObjectOpener {
  return {
    odb: {
      async openStored(kind: ObjectKind, oid: string, stored: Buffer): Promise<Buffer> {
        let opened: Awaited<ReturnType<typeof openPlain>>;
        try {
          opened = await openPlain(oid, stored, limits);
        } catch (err) {
          throw new ObjectCorruptError(oid, err instanceof Error ? err.message : String(err));
        }
        if (opened.kind !== kind) throw new ObjectCorruptError(oid, `not a ${kind}`);
        return opened.canonical;
      },
    },
  };
}

function errorLine(err: unknown): Record<string, unknown> {
  if (err instanceof MediagitError)
    return { error: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  if (err instanceof Error && err.name === 'AbortError')
    return { error: 'E_INTERRUPTED', message: 'the sweep was interrupted' };
  return { error: 'E_INTERNAL', message: 'the sweep failed on the server' };
}

const sweepEndpoint: Endpoint = {
  method: 'POST',
  path: '/gc/sweep',
  role: 'admin',
  audit: 'delete',
  async handle(ctx: RequestContext) {
    ctx.target = 'gc/sweep';
    const request = parseRequest(await readJsonObject(ctx));
    let policy: RetentionPolicy;
    try {
      policy = parsePolicy(request.keep, undefined);
    } catch (err) {
      if (err instanceof UsageError) throw badRequest(err.message);
      throw err;
    }
    if (request.olderThanMs !== undefined) policy = { ...policy, olderThanMs: request.olderThanMs };
    const descriptor = await ctx.services.repos.require(ctx);
    if (modeOf(descriptor) === 'encrypted')
      throw new HttpError(
        409,
        'conflict',
        'the server cannot read the history of an encrypted repository, so it cannot decide what to keep; run gc --remote against the storage itself',
      );
    const store = await ctx.store();
    const out = new PassThrough();
    const line = (value: unknown): void => void out.write(`${JSON.stringify(value)}\n`);
    const progress = { total: 0, totalBytes: 0, deleted: 0, freed: 0 };
    const heartbeat = setInterval(() => line({ progress }), HEARTBEAT_MS);
    heartbeat.unref();
    const opener = plainOpener(decodeLimits(descriptor, ctx.services.config));
    void collectRemoteGarbage(opener, store, {
      policy,
      graceMs: request.graceMs,
      dryRun: request.dryRun,
      signal: ctx.signal,
      progress: {
        start(_phase, files, bytes) {
          progress.total = files;
          progress.totalBytes = bytes;
          line({ progress });
        },
        bytes(delta) {
          progress.freed += delta;
        },
        fileDone() {
          progress.deleted++;
          if (progress.deleted % 256 === 0) line({ progress });
        },
        stop() {},
      },
    })
      .then(
        (report: RemoteGcReport) =>
          line({ report: request.listKeys ? report : { ...report, keys: [] } }),
        (err: unknown) => line(errorLine(err)),
      )
      .finally(() => {
        clearInterval(heartbeat);
        // What this process remembered as connected may have just been deleted.
        if (!request.dryRun) ctx.services.connected.forget(ctx.repo);
        out.end();
      });
    return {
      status: 200,
      stream: out,
      headers: { 'content-type': 'application/x-ndjson; charset=utf-8' },
    };
  },
};

export const gcRoutes: readonly Endpoint[] = [sweepEndpoint];
