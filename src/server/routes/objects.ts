/**
 * Chunks and objects: single PUT/GET/HEAD/DELETE by ID, the batched existence check, packs up and
 * down, and the key listing.
 */
import { Readable } from 'node:stream';
import { decodeEnvelopeHeader, kindFromCode, type ObjectKind } from '../../objects/index.js';
import { isValidKey, type Store, type StreamedObject } from '../../store/index.js';
import { readBinaryBody, readJsonObject, streamBinaryBody } from '../body.js';
import { expiredAnswer } from './gc.js';
import { applyRefUpdate, parseRefUpdate, readRefState, type RefUpdateRequest } from './refs.js';
import { checkDescriptor } from './repository.js';
import {
  binary,
  empty,
  decodeLimits,
  getOrNull,
  json,
  modeOf,
  queryParam,
  streamOrNull,
  streamed,
  withSignal,
  type Endpoint,
  type EndpointResult,
  type RequestContext,
} from '../context.js';
import { HttpError, badRequest, invalidObject, notFound } from '../errors.js';
import { isOid, keyPrefix, oidParam, quote, storeKeyParam } from '../names.js';
import {
  PackReader,
  entryKey,
  packHeader,
  recordHeader,
  type PackEntry,
  type PackRecord,
} from '../pack.js';
import type { VerifiedBytes } from '../verifier.js';
import { WeightedSemaphore } from '../../util/limit.js';
import { releaseMemory } from '../../util/memory.js';
import {
  canonicalCap,
  type DecodeLimits,
  type ExpectedKind,
  type VerifiedUpload,
  type VerifyOptions,
} from '../verify.js';

/** IDs (or keys) one check or fetch request may name. */
export const MAX_BATCH = 10_000;
/** Objects stored (single uploads), or fetched ahead of the response stream, at once. */
const STORE_CONCURRENCY = 8;
/**
 * Records of one pack stored at once. A push's last pack (its structured objects: many and small)
 * is alone on the wire, so its writes (an fsync each, or an S3 PUT each) are all it waits for.
 */
const PACK_STORE_CONCURRENCY = 16;
const DEFAULT_LIST_LIMIT = 1000;

interface ObjectRoute {
  /** URL segment. */
  readonly segment: 'chunks' | 'manifests' | 'objects';
  /** Store namespace. */
  readonly namespace: 'chunks' | 'objects';
  readonly accepts: ExpectedKind;
}

const OBJECT_ROUTES: readonly ObjectRoute[] = [
  { segment: 'chunks', namespace: 'chunks', accepts: 'chunk' },
  { segment: 'manifests', namespace: 'objects', accepts: 'manifest' },
  { segment: 'objects', namespace: 'objects', accepts: 'structured' },
];

/** Canonical bytes a pack may decode to in all: the CPU one request may spend on decoding. */
const MIN_DECODE_BUDGET = 256 * 1024 * 1024;
const DECODE_BUDGET_RATIO = 8;

/**
 * How uploads to this repository are verified, from its descriptor (which must exist: nothing is
 * stored before it). Asked before the body is read, so a refusal costs no upload.
 */
async function verifyOptions(ctx: RequestContext): Promise<VerifyOptions> {
  const descriptor = await ctx.services.repos.require(ctx);
  return { mode: modeOf(descriptor), ...decodeLimits(descriptor, ctx.services.config) };
}

const DESCRIPTOR_HEADER = 'mediagit-descriptor';
/** A descriptor is ~160 bytes of JSON: a header, not a body. */
const MAX_DESCRIPTOR_HEADER = 4096;

/**
 * verifyOptions for a pack, which may offer the repository's descriptor (header
 * `Mediagit-Descriptor`, base64url of the bytes a PUT of meta/repository would send): a first
 * push then sends no PUT before its packs, and the descriptor's write (an fsync, or a PUT to the
 * bucket) goes beside the pack's upload and verification. `ready` settles once the descriptor is
 * in storage; nothing of the pack is stored before. Ignored, as the ref update is, when the
 * server serves only the version-1 calls.
 */
async function packVerifyOptions(
  ctx: RequestContext,
): Promise<{ options: VerifyOptions; ready: Promise<void> }> {
  const raw = ctx.request.headers[DESCRIPTOR_HEADER];
  if (raw === undefined || ctx.services.config.negotiate === false)
    return { options: await verifyOptions(ctx), ready: Promise.resolve() };
  if (typeof raw !== 'string' || raw.length > MAX_DESCRIPTOR_HEADER || !/^[\w-]+$/.test(raw))
    throw badRequest(`${DESCRIPTOR_HEADER} must be the base64url of a repository descriptor`);
  const bytes = Buffer.from(raw, 'base64url');
  const offer = checkDescriptor(bytes);
  const { descriptor, stored } = await ctx.services.repos.offered(ctx, bytes, offer);
  return {
    options: { mode: modeOf(descriptor), ...decodeLimits(descriptor, ctx.services.config) },
    ready: stored,
  };
}

/**
 * A manifest is stored only once its chunks are (the client uploads chunks first), so a ref can
 * never lead to a file whose content is missing. `alsoHere`: chunks arriving in the same pack.
 */
async function requireChunks(
  ctx: RequestContext,
  store: Store,
  manifests: readonly { oid: string; verified: VerifiedUpload }[],
  alsoHere: ReadonlySet<string>,
): Promise<void> {
  const wanted = new Set<string>();
  const connected = ctx.services.connected;
  for (const { verified } of manifests)
    for (const chunk of verified.chunks) {
      const key = `chunks/${chunk}`;
      // Stored by this process, earlier in the same push (or before): no second look.
      if (!alsoHere.has(key) && !connected.has(ctx.repo, key)) wanted.add(key);
    }
  if (wanted.size === 0) return;
  const missing = await missingKeys(ctx, store, [...wanted]);
  if (missing.size === 0) return;
  for (const { oid, verified } of manifests) {
    const absent = verified.chunks.find((c) => missing.has(`chunks/${c}`));
    if (absent !== undefined)
      throw invalidObject(oid, `the manifest names chunk ${absent}, which is not on the server`);
  }
}

/**
 * Writes a verified upload unless storage already holds it; true when it was written. `present`:
 * storage said it holds the key (remembered as connected, like a write), or `duplicate`: an
 * earlier record of the same request is writing it (that one remembers it once it landed).
 */
async function storeVerified(
  ctx: RequestContext,
  store: Store,
  key: string,
  data: Buffer,
  verified: VerifiedUpload,
  present: boolean,
  duplicate = false,
): Promise<boolean> {
  if (!present && !duplicate) await pacedPut(ctx, store, key, data);
  if (!duplicate) rememberConnected(ctx, key, verified);
  ctx.services.metrics.objectUpload(
    data.length,
    !present,
    verified.encrypted ? null : verified.canonicalLength,
  );
  return !present && !duplicate;
}

/** Writes in flight per store that asks for a pace, over all requests (see pacedPut). */
const storeGates = new WeakMap<Store, WeightedSemaphore>();

/**
 * store.put, within the store's own pace where it has one (S3: `max_concurrent_requests`, 16 by
 * default): what a client pushing to the bucket directly keeps in flight. Packs arrive several
 * at once and each stores 16 records at once, so without it a push through the server had up to
 * 40 PUTs at the bucket (its connection pool's bound).
 */
async function pacedPut(
  ctx: RequestContext,
  store: Store,
  key: string,
  data: Buffer,
): Promise<void> {
  const pacing = store.capabilities.pacing;
  // Only called for keys just found absent (the check's answer, or a look): no second look.
  const options = { ...withSignal(ctx), absent: true };
  if (pacing === undefined) return store.put(key, data, options);
  let gate = storeGates.get(store);
  if (gate === undefined) {
    gate = new WeightedSemaphore(pacing.requests);
    storeGates.set(store, gate);
  }
  await gate.acquire(1, ctx.signal);
  try {
    await store.put(key, data, options);
  } finally {
    gate.release(1);
  }
}

/** A chunk or manifest now in storage is connected (connected.ts); other kinds are walked. */
function rememberConnected(ctx: RequestContext, key: string, verified: VerifiedUpload): void {
  if (key.startsWith('chunks/')) ctx.services.connected.add(ctx.repo, key);
  else if (verified.kind === 'manifest')
    ctx.services.connected.add(ctx.repo, key.slice('objects/'.length));
}

function objectEndpoints(route: ObjectRoute): Endpoint[] {
  const keyOf = (ctx: RequestContext): string =>
    `${route.namespace}/${oidParam(ctx.params['oid'] ?? '')}`;

  /** Stored bytes for a GET, or null; `/manifests` answers only for manifests. */
  const fetchStored = async (ctx: RequestContext, key: string): Promise<Buffer | null> => {
    const data = await getOrNull(await ctx.store(), key, ctx);
    if (data === null || route.accepts !== 'manifest') return data;
    try {
      return decodeEnvelopeHeader(data).kind === 'manifest' ? data : null;
    } catch {
      // Corrupt bytes are the client's to detect (it verifies every read); serve them as stored.
      return data;
    }
  };

  return [
    {
      method: 'PUT',
      path: `/${route.segment}/:oid`,
      role: 'write',
      audit: 'put',
      rateLimit: 'failure',
      async handle(ctx) {
        const key = keyOf(ctx);
        ctx.target = key;
        const oid = key.slice(key.indexOf('/') + 1);
        const options = await verifyOptions(ctx);
        const body = await readBinaryBody(ctx, ctx.services.config.maxObjectBytes);
        ctx.services.metrics.bytesUploaded.inc(body.length);
        const { verified, data } = await ctx.services.verifier.verify(
          route.accepts,
          oid,
          body,
          options,
          ctx.signal,
        );
        const store = await ctx.store();
        // A key the client's check just found absent needs no second look (recently-absent.ts).
        const present = ctx.services.absent.take(ctx.repo, key)
          ? false
          : ((await store.has([key], withSignal(ctx)))[0] ?? false);
        if (!present) await requireChunks(ctx, store, [{ oid, verified }], new Set());
        const written = await storeVerified(ctx, store, key, data, verified, present);
        releaseMemory(data);
        return json(written ? 201 : 200, { key, stored: written });
      },
    },
    {
      method: 'GET',
      path: `/${route.segment}/:oid`,
      role: 'read',
      rateLimit: 'failure',
      async handle(ctx) {
        const key = keyOf(ctx);
        const streaming = (await ctx.store()).capabilities.streaming;
        // Relayed as it arrives from the cloud store, never held whole. /manifests reads the
        // header first, and manifests are small: those stay buffered.
        if (streaming !== undefined && route.accepts !== 'manifest') {
          const opened = await streamOrNull(streaming, key, ctx);
          if (opened === null)
            throw (
              (await expiredAnswer(await ctx.store(), key)) ?? notFound(`no such object ${key}`)
            );
          ctx.services.metrics.bytesDownloaded.inc(opened.size);
          return streamed(ctx, opened);
        }
        const data = await fetchStored(ctx, key);
        if (data === null)
          throw (await expiredAnswer(await ctx.store(), key)) ?? notFound(`no such object ${key}`);
        ctx.services.metrics.bytesDownloaded.inc(data.length);
        return binary(data);
      },
    },
    {
      method: 'HEAD',
      path: `/${route.segment}/:oid`,
      role: 'read',
      async handle(ctx) {
        const key = keyOf(ctx);
        if (route.accepts === 'manifest') {
          if ((await fetchStored(ctx, key)) === null) throw notFound(`no such object ${key}`);
          return empty(200);
        }
        const [present] = await (await ctx.store()).has([key], withSignal(ctx));
        if (!present) throw notFound(`no such object ${key}`);
        return empty(200);
      },
    },
  ];
}

function deleteEndpoint(namespace: 'chunks' | 'objects'): Endpoint {
  return {
    method: 'DELETE',
    path: `/${namespace}/:oid`,
    role: 'admin',
    audit: 'delete',
    async handle(ctx) {
      const key = `${namespace}/${oidParam(ctx.params['oid'] ?? '')}`;
      ctx.target = key;
      await (await ctx.store()).delete(key, withSignal(ctx));
      // What this process remembers as connected may have led here.
      ctx.services.connected.forget(ctx.repo);
      return empty(204);
    },
  };
}

/** A JSON array of 64-hex IDs, or absent (empty). */
export function oidList(value: unknown, field: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw badRequest(`${field} must be an array of object IDs`);
  for (const oid of value)
    if (!isOid(oid)) throw badRequest(`${field} holds an invalid object ID ${quote(oid)}`);
  return value as string[];
}

/** Keys absent from the store, in the order asked; batched so one call stays a reasonable size. */
export async function missingKeys(
  ctx: RequestContext,
  store: Store,
  keys: readonly string[],
): Promise<Set<string>> {
  const missing = new Set<string>();
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const present = await store.has(batch, withSignal(ctx));
    batch.forEach((key, j) => {
      if (!present[j]) missing.add(key);
    });
  }
  return missing;
}

/**
 * missingKeys for uploads: keys the client's check or negotiation just found absent (recently-
 * absent.ts) are taken as absent without a second look, so a pack of a push costs storage no
 * existence requests (over S3 a HEAD or LIST round before the first PUT); the rest are looked up.
 */
async function missingAfterCheck(
  ctx: RequestContext,
  store: Store,
  keys: readonly string[],
): Promise<Set<string>> {
  const vouched = new Set<string>();
  const unknown: string[] = [];
  for (const key of keys) {
    if (vouched.has(key)) continue;
    if (ctx.services.absent.take(ctx.repo, key)) vouched.add(key);
    else unknown.push(key);
  }
  const missing = unknown.length === 0 ? new Set<string>() : await missingKeys(ctx, store, unknown);
  for (const key of vouched) missing.add(key);
  return missing;
}

const checkEndpoint: Endpoint = {
  method: 'POST',
  path: '/chunks/check',
  role: 'read',
  async handle(ctx) {
    const body = await readJsonObject(ctx);
    const chunks = oidList(body['chunks'], 'chunks');
    const objects = oidList(body['objects'], 'objects');
    if (chunks.length + objects.length > MAX_BATCH)
      throw badRequest(`at most ${MAX_BATCH} IDs per check`);
    const store = await ctx.store();
    const keys = [
      ...new Set([...chunks.map((o) => `chunks/${o}`), ...objects.map((o) => `objects/${o}`)]),
    ];
    const missing = await missingKeys(ctx, store, keys);
    ctx.services.absent.note(ctx.repo, missing);
    const absent = (prefix: string, oids: string[]): string[] =>
      [...new Set(oids)].filter((o) => missing.has(`${prefix}/${o}`));
    return json(200, { chunks: absent('chunks', chunks), objects: absent('objects', objects) });
  },
};

const packUploadEndpoint: Endpoint = {
  method: 'POST',
  path: '/objects/pack',
  role: 'write',
  audit: 'pack',
  rateLimit: 'failure',
  async handle(ctx) {
    ctx.target = 'objects/pack';
    // Refused before a byte of the pack is read: a bad update must not cost the upload.
    const update = refUpdateOf(ctx);
    const { options, ready } = await packVerifyOptions(ctx);
    let entries: PackEntry[], verified: VerifiedUpload[];
    try {
      ({ entries, verified } = await receivePack(ctx, options));
    } finally {
      // A descriptor this pack offered is created whatever became of the pack, as a PUT of it
      // would have been; its failure is this pack's answer only once the pack was received.
      await ready;
    }
    const store = await ctx.store();
    // What the update reads before its walk goes beside the pack's writes, not after them.
    const refState =
      update !== null && update.next !== null ? readRefState(ctx, store, update) : undefined;
    refState?.catch(() => undefined);
    const keys = entries.map(entryKey);
    const missing = await missingAfterCheck(ctx, store, keys);
    await requireChunks(
      ctx,
      store,
      entries.flatMap((entry, i) =>
        missing.has(keys[i]!) ? [{ oid: entry.oid, verified: verified[i]! }] : [],
      ),
      new Set(keys.filter((k) => k.startsWith('chunks/'))),
    );
    let stored = 0;
    let existing = 0;
    const seen = new Set<string>();
    const work = entries.map((entry, i) => ({ entry, key: keys[i]!, verified: verified[i]! }));
    // The commits, tags and trees the ref update will walk, kept from the pack rather than read
    // back from storage one after another (over S3, a GET each in a row).
    const landed = new Map<string, Buffer>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < work.length) {
        const { entry, key, verified: v } = work[next++]!;
        const duplicate = seen.has(key);
        seen.add(key);
        if (await storeVerified(ctx, store, key, entry.data, v, !missing.has(key), duplicate))
          stored++;
        else existing++;
        const walked = update !== null && entry.kind !== 'chunk' && entry.kind !== 'manifest';
        if (walked) landed.set(entry.oid, entry.data);
        // Each record has memory of its own (pack.ts): freed once stored, not at a collection,
        // which a pack's megabytes of records would otherwise set off on the server's one thread.
        else releaseMemory(entry.data);
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(PACK_STORE_CONCURRENCY, work.length) }, worker),
    );
    if (update === null) return json(200, { stored, existing });
    ctx.refUpdated = update.name;
    return json(200, {
      stored,
      existing,
      ref: await applyRefUpdate(ctx, update, landed, refState),
    });
  },
};

/**
 * The ref update a pack carries in its `Mediagit-Ref-Update` header (base64url of the JSON
 * POST /refs takes), applied once the pack is stored: a push's last pack and its ref update in
 * one round trip. Only moves a ref to an object (a pack carries no deletion). Ignored when the
 * server serves only the version-1 calls, as a server from before it would.
 */
function refUpdateOf(ctx: RequestContext): RefUpdateRequest | null {
  const raw = ctx.request.headers[REF_UPDATE_HEADER];
  if (raw === undefined || ctx.services.config.negotiate === false) return null;
  if (typeof raw !== 'string' || raw.length > MAX_REF_UPDATE_HEADER || !/^[\w-]+$/.test(raw))
    throw badRequest(`${REF_UPDATE_HEADER} must be one base64url JSON object`);
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw badRequest(`${REF_UPDATE_HEADER} is not base64url JSON`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest(`${REF_UPDATE_HEADER} must be a JSON object`);
  const update = parseRefUpdate(body as Record<string, unknown>);
  if (update.next === null) throw badRequest('a pack cannot carry the deletion of a ref');
  return update;
}

const REF_UPDATE_HEADER = 'mediagit-ref-update';
/** A ref name (≤ 1 KiB as refName allows), two IDs and a version, with room: a header, not a body. */
const MAX_REF_UPDATE_HEADER = 4096;

/**
 * Reads an uploaded pack and verifies its records while the body streams in: each record goes to
 * the verification pool once whole, and while the pool's queue is full the socket waits. Every
 * record is verified before any is stored, so a bad pack leaves nothing behind; the first refusal
 * ends the upload at once.
 */
async function receivePack(
  ctx: RequestContext,
  options: VerifyOptions,
): Promise<{ entries: PackEntry[]; verified: VerifiedUpload[] }> {
  const limit = ctx.services.config.maxPackBytes;
  let reader: PackReader | null = null;
  const records: PackRecord[] = [];
  const results: Promise<VerifiedBytes>[] = [];
  let refused: unknown = null;
  let declared = 0;
  let packLength: number | undefined;
  /** Admits the records a piece completed to verification, in order (waiting while it is full). */
  const admitAll = async (whole: readonly PackRecord[], from: PackReader): Promise<void> => {
    for (const record of whole) {
      if (options.mode === 'plain') declared += declaredCanonical(record, options);
      // Canonical bytes the whole pack may decode to: capped per record already, this caps their sum.
      const budget = Math.max(MIN_DECODE_BUDGET, DECODE_BUDGET_RATIO * (packLength ?? from.bytes));
      if (declared > budget)
        throw new HttpError(
          413,
          'too_large',
          `the pack's objects would decode to ${declared} bytes, over the limit of ${budget} for one request`,
        );
      const admitted = await ctx.services.verifier.admit(
        record.kind,
        record.oid,
        record.data,
        options,
        ctx.signal,
      );
      records.push(record);
      results.push(admitted.result);
      admitted.result.catch((err: unknown) => {
        refused ??= err;
      });
    }
  };
  await streamBinaryBody(
    ctx,
    limit,
    (piece) => {
      if (refused !== null) throw refused;
      ctx.services.metrics.bytesUploaded.inc(piece.length);
      reader ??= new PackReader(packLength ?? limit);
      const whole = reader.push(piece);
      // Most pieces complete no record, and are taken without a promise: one pauses the body until
      // it settles (body.ts), a turn of the event loop per 64 KiB piece, and the socket's unread
      // bytes then held its receive window shut (packs on new connections arrived at ~10 MB/s).
      return whole.length === 0 ? undefined : admitAll(whole, reader);
    },
    (length) => {
      packLength = length;
    },
  );
  // An empty body is as much "not a pack" as a short one.
  (reader ?? new PackReader(limit)).finish();
  const entries: PackEntry[] = [];
  const verified: VerifiedUpload[] = [];
  // Awaited in order, so of several bad records the first is the one named.
  for (let i = 0; i < results.length; i++) {
    const { verified: v, data } = await results[i]!;
    const record = records[i]!;
    entries.push({ kind: record.kind, oid: record.oid, data });
    verified.push(v);
  }
  return { entries, verified };
}

/** Canonical bytes a record declares, within its kind's cap (0 when its header does not parse). */
function declaredCanonical(record: PackRecord, limits: DecodeLimits): number {
  try {
    return Math.min(
      decodeEnvelopeHeader(record.data).plainLength,
      canonicalCap(record.kind, limits),
    );
  } catch {
    return 0; // the verification names it
  }
}

/** The kind a fetched record declares: `chunks/` keys are chunks; objects say what they are in their header. */
function recordKind(key: string, data: Buffer): ObjectKind {
  if (key.startsWith('chunks/')) return 'chunk';
  const kind = data.length > 5 ? kindFromCode(data.readUInt8(5)) : undefined;
  // A damaged object still goes out as a structured record: the client verifies it and names it.
  return kind === undefined || kind === 'chunk' ? 'manifest' : kind;
}

/** One record's bytes on their way into a download: whole, or a stream from the cloud store. */
type Fetched = { readonly data: Buffer } | { readonly opened: StreamedObject };

/**
 * Pack of `keys` (all present when counted), read a few ahead of the socket, never all at once.
 * From a store that streams, chunks are relayed as they arrive (a window of each in memory, not
 * the chunk) and the reads opened ahead wait in their sockets; structured objects are small and
 * their header names their kind, so they are read whole.
 */
function packStream(ctx: RequestContext, store: Store, keys: readonly string[]): Readable {
  const streaming = store.capabilities.streaming;
  async function* pieces(): AsyncGenerator<Buffer> {
    yield packHeader(keys.length);
    const pending: Promise<Fetched>[] = [];
    let next = 0;
    const startOne = (): void => {
      const key = keys[next++]!;
      const p: Promise<Fetched> =
        streaming !== undefined && key.startsWith('chunks/')
          ? streaming.getStream(key, withSignal(ctx)).then((opened) => ({ opened }))
          : store.get(key, withSignal(ctx)).then((data) => ({ data }));
      p.catch(() => undefined);
      pending.push(p);
    };
    try {
      while (next < keys.length && pending.length < STORE_CONCURRENCY) startOne();
      for (const key of keys) {
        // An object deleted since it was counted cannot be left out any more: the stream fails and the client retries.
        const fetched = await pending.shift()!;
        if (next < keys.length) startOne();
        const oid = key.slice(key.indexOf('/') + 1);
        if ('data' in fetched) {
          ctx.services.metrics.bytesDownloaded.inc(fetched.data.length);
          // Header and bytes as two pieces: joining them would copy every object once more.
          yield recordHeader(recordKind(key, fetched.data), oid, fetched.data.length);
          yield fetched.data;
          continue;
        }
        const { size, body } = fetched.opened;
        ctx.services.metrics.bytesDownloaded.inc(size);
        yield recordHeader('chunk', oid, size);
        let sent = 0;
        for await (const piece of body as AsyncIterable<Buffer>) {
          sent += piece.length;
          yield piece;
        }
        if (sent !== size) throw new Error(`storage sent ${sent} of the ${size} bytes of ${key}`);
      }
    } finally {
      // A download cut short: reads opened ahead are closed, not drained.
      for (const p of pending)
        p.then(
          (f) => {
            if ('opened' in f) f.opened.body.destroy();
          },
          () => undefined,
        );
    }
  }
  return Readable.from(pieces(), { objectMode: false });
}

const fetchEndpoint: Endpoint = {
  method: 'POST',
  path: '/objects/fetch',
  role: 'read',
  rateLimit: 'failure',
  async handle(ctx): Promise<EndpointResult> {
    const body = await readJsonObject(ctx);
    const want = body['want'];
    if (!Array.isArray(want)) throw badRequest('want must be an array of keys');
    if (want.length > MAX_BATCH) throw badRequest(`at most ${MAX_BATCH} keys per fetch`);
    const keys = [...new Set(want.map((k) => storeKeyParam(k)))];
    for (const key of keys)
      if (!key.startsWith('chunks/') && !key.startsWith('objects/'))
        throw badRequest(`a pack carries only chunks/ and objects/ keys, not ${quote(key)}`);
    const store = await ctx.store();
    const missing = await missingKeys(ctx, store, keys);
    const present = keys.filter((k) => !missing.has(k));
    return {
      status: 200,
      stream: packStream(ctx, store, present),
      headers: {
        'content-type': 'application/octet-stream',
        'x-missing-objects': String(missing.size),
      },
    };
  },
};

const listEndpoint: Endpoint = {
  method: 'GET',
  path: '/list',
  role: 'read',
  async handle(ctx) {
    const prefix = keyPrefix(queryParam(ctx, 'prefix'));
    const afterParam = queryParam(ctx, 'after');
    const after = afterParam === undefined || afterParam === '' ? '' : storeKeyParam(afterParam);
    const limitParam = queryParam(ctx, 'limit');
    if (limitParam !== undefined && !/^\d{1,5}$/.test(limitParam))
      throw badRequest('limit must be a number from 1 to 10000');
    const limit = limitParam === undefined ? DEFAULT_LIST_LIMIT : Number(limitParam);
    if (limit < 1 || limit > MAX_BATCH) throw badRequest('limit must be a number from 1 to 10000');
    // Stores list in no particular order: keep the smallest `limit + 1` keys after `after`, trimming as we go.
    let page: { key: string; size: number }[] = [];
    const trim = (): void => {
      page.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      page = page.slice(0, limit + 1);
    };
    for await (const entry of (await ctx.store()).list(prefix, withSignal(ctx))) {
      if (!isValidKey(entry.key) || !entry.key.startsWith(prefix) || entry.key <= after) continue;
      page.push({ key: entry.key, size: entry.size });
      if (page.length > 4 * (limit + 1)) trim();
    }
    trim();
    const more = page.length > limit;
    const entries = page.slice(0, limit);
    return json(200, { entries, next: more ? entries[entries.length - 1]!.key : null });
  },
};

export const objectRoutes: readonly Endpoint[] = [
  checkEndpoint,
  packUploadEndpoint,
  fetchEndpoint,
  listEndpoint,
  ...OBJECT_ROUTES.flatMap(objectEndpoints),
  deleteEndpoint('chunks'),
  deleteEndpoint('objects'),
];
