/**
 * A small in-memory Google Cloud Storage JSON API server for tests, written from the public API
 * documentation and driven by the real @google-cloud/storage client. It covers what mediagit's
 * GcsStore and its tests use — buckets, the three upload protocols, metadata, media downloads,
 * listing, deletion, generations and preconditions — and answers anything else with 501 so a
 * gap shows up as a clear failure instead of a silently wrong answer.
 *
 * Atomicity: every request body is read completely before the request is routed, and routing,
 * precondition checks and commits are synchronous. With one JS thread, each request's
 * check-then-commit is therefore indivisible, as a real object store's single-object operations
 * are.
 *
 * Optional auth (for credential-failure tests): a minimal OAuth 2.0 token-exchange endpoint at
 * POST /token trades the configured subject token for a bearer token; with auth enabled, every
 * API call needs one of those bearer tokens.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32cBase64 } from './crc32c.js';

export interface FakeGcsOptions {
  /** Default 127.0.0.1; the fake is never meant to be reachable from other machines. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Require bearer tokens, obtainable from POST /token with this subject token. */
  auth?: { subjectToken: string };
  /** Receives one line per request. */
  log?: (line: string) => void;
  /**
   * GCS allows about one write per second to one object name and answers 429 (rateLimitExceeded)
   * beyond it; a write here (insert, overwrite, delete, metadata patch) sooner than this many ms
   * after the previous one to the same name gets that 429. Default 0 (no limit), so suites that
   * rewrite one ref many times stay fast; the tests of how clients ride out the limit turn it on.
   */
  objectWriteIntervalMs?: number;
}

export interface FakeGcs {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Requests served so far, per `METHOD path-kind`, for tests that count round trips. */
  readonly stats: Map<string, number>;
  close(): Promise<void>;
}

/** Resumable uploads persist non-final chunks in whole units of this size, as GCS does. */
export const RESUMABLE_QUANTUM = 256 * 1024;
const MAX_LIST_RESULTS = 1000;
const PRECONDITION_MESSAGE = 'At least one of the pre-conditions you specified did not hold.';
const NO_BUCKET_MESSAGE = 'The specified bucket does not exist.';

interface StoredObject {
  readonly bucket: string;
  readonly name: string;
  readonly data: Buffer;
  readonly generation: number;
  metageneration: number;
  contentType: string;
  contentEncoding: string | undefined;
  contentDisposition: string | undefined;
  contentLanguage: string | undefined;
  cacheControl: string | undefined;
  metadata: Record<string, string>;
  readonly md5Hash: string;
  readonly crc32c: string;
  readonly timeCreated: string;
  updated: string;
}

interface Bucket {
  readonly name: string;
  readonly timeCreated: string;
  readonly objects: Map<string, StoredObject>;
  /** Seconds an object must live before it may be deleted or overwritten (bucket retention policy). */
  readonly retentionSeconds: number | undefined;
  /** When each object name was last written, for the per-object write rate limit. */
  readonly lastWrite: Map<string, number>;
}

interface Preconditions {
  ifGenerationMatch?: number;
  ifGenerationNotMatch?: number;
  ifMetagenerationMatch?: number;
  ifMetagenerationNotMatch?: number;
}

/** Object resource fields a client may set on insert or patch. */
interface WritableFields {
  name?: string;
  contentType?: string;
  contentEncoding?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  cacheControl?: string;
  metadata?: Record<string, string>;
  md5Hash?: string;
  crc32c?: string;
}

interface UploadSession {
  readonly id: string;
  readonly bucket: string;
  readonly name: string;
  readonly fields: WritableFields;
  readonly preconditions: Preconditions;
  /** From X-Upload-Content-Length or a Content-Range total; fixed once known. */
  expectedSize: number | undefined;
  readonly chunks: Buffer[];
  received: number;
  state: 'open' | 'done' | 'failed' | 'cancelled';
  result?: StoredObject;
  failure?: HttpError;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface Context {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly body: Buffer;
  readonly base: string;
  /** Media downloads answer errors in plain text, as GCS does; everything else in JSON. */
  media: boolean;
}

export async function startFakeGcs(options: FakeGcsOptions = {}): Promise<FakeGcs> {
  const state = new FakeGcsState(options);
  const server = createServer((req, res) => {
    state.handle(req, res).catch((err: unknown) => {
      // Only reached when even the error response could not be written (client went away).
      options.log?.(`internal error: ${String(err)}`);
      res.destroy();
    });
  });
  // Clients keep connections alive between requests; the default 5 s is shorter than some tests' gaps.
  server.keepAliveTimeout = 30_000;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    host,
    port,
    stats: state.stats,
    close: () => closeServer(server),
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

class FakeGcsState {
  readonly stats = new Map<string, number>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly sessions = new Map<string, UploadSession>();
  private readonly tokens = new Set<string>();
  private lastGeneration = 0;

  constructor(private readonly options: FakeGcsOptions) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch {
      // An aborted upload must leave no trace: nothing was committed, so just drop the socket.
      res.destroy();
      return;
    }
    const ctx: Context = {
      req,
      res,
      url,
      body,
      base: `http://${req.headers.host ?? 'localhost'}`,
      media: false,
    };
    try {
      this.route(ctx);
    } catch (err) {
      // A bug in the fake must fail loudly as a 500 with the reason, not as a dropped connection.
      const httpError =
        err instanceof HttpError
          ? err
          : new HttpError(
              500,
              `fake GCS server bug: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
              'backendError',
            );
      this.sendError(ctx, httpError);
    }
    this.options.log?.(`${req.method} ${url.pathname}${url.search} -> ${res.statusCode}`);
  }

  private count(kind: string): void {
    this.stats.set(kind, (this.stats.get(kind) ?? 0) + 1);
  }

  private route(ctx: Context): void {
    const method = ctx.req.method ?? 'GET';
    const path = ctx.url.pathname;
    if (path === '/token' && this.options.auth) {
      this.count('POST token');
      if (method !== 'POST') throw new HttpError(405, 'Method not allowed', 'methodNotAllowed');
      return this.exchangeToken(ctx);
    }
    this.authorize(ctx);

    // /storage/v1/b/…, /upload/storage/v1/b/…, /download/storage/v1/b/…
    const all = path.split('/').slice(1);
    const root = all[0] === 'upload' || all[0] === 'download' ? all[0] : 'storage';
    const segments = root === 'storage' ? all : all.slice(1);
    if (segments[0] !== 'storage' || segments[1] !== 'v1' || segments[2] !== 'b') {
      throw new HttpError(
        501,
        `not implemented by the fake GCS server: ${method} ${path}`,
        'notImplemented',
      );
    }

    const bucketName = segments[3] === undefined ? undefined : decodeURIComponent(segments[3]);
    const collection = segments[4];
    // Object names are percent-encoded, slashes included; tolerate clients that leave slashes raw.
    const objectName =
      segments.length > 5 ? decodeURIComponent(segments.slice(5).join('/')) : undefined;
    this.count(
      `${method} ${root}${bucketName === undefined ? ' buckets' : collection === undefined ? ' bucket' : objectName === undefined ? ' objects' : ' object'}`,
    );

    if (root === 'storage' && bucketName === undefined) {
      if (method === 'POST') return this.insertBucket(ctx);
      if (method === 'GET') return this.listBuckets(ctx);
    } else if (root === 'storage' && collection === undefined && bucketName !== undefined) {
      if (method === 'GET')
        return this.sendJson(ctx, 200, bucketResource(this.bucket(bucketName), ctx.base));
      if (method === 'DELETE') return this.deleteBucket(ctx, bucketName);
    } else if (
      root === 'storage' &&
      collection === 'o' &&
      bucketName !== undefined &&
      objectName === undefined
    ) {
      if (method === 'GET') return this.listObjects(ctx, bucketName);
    } else if (
      root === 'storage' &&
      collection === 'o' &&
      bucketName !== undefined &&
      objectName !== undefined
    ) {
      if (method === 'GET')
        return ctx.url.searchParams.get('alt') === 'media'
          ? this.download(ctx, bucketName, objectName)
          : this.getObject(ctx, bucketName, objectName);
      if (method === 'DELETE') return this.deleteObject(ctx, bucketName, objectName);
      if (method === 'PATCH') return this.patchObject(ctx, bucketName, objectName);
    } else if (
      root === 'download' &&
      collection === 'o' &&
      bucketName !== undefined &&
      objectName !== undefined
    ) {
      if (method === 'GET') return this.download(ctx, bucketName, objectName);
    } else if (
      root === 'upload' &&
      collection === 'o' &&
      bucketName !== undefined &&
      objectName === undefined
    ) {
      const uploadId = ctx.url.searchParams.get('upload_id');
      if (uploadId !== null) {
        if (method === 'PUT' || method === 'POST') return this.resumableChunk(ctx, uploadId);
        if (method === 'DELETE') return this.cancelUpload(ctx, uploadId);
      } else if (method === 'POST') {
        return this.upload(ctx, bucketName);
      }
    }
    throw new HttpError(
      501,
      `not implemented by the fake GCS server: ${method} ${path}`,
      'notImplemented',
    );
  }

  // ---- auth ----

  private exchangeToken(ctx: Context): void {
    const form = new URLSearchParams(ctx.body.toString('utf8'));
    const send = (status: number, body: object): void => {
      ctx.res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'cache-control': 'no-store',
      });
      ctx.res.end(JSON.stringify(body));
    };
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:token-exchange') {
      return send(400, {
        error: 'unsupported_grant_type',
        error_description: 'Only token exchange is supported.',
      });
    }
    if (form.get('subject_token') !== this.options.auth?.subjectToken) {
      return send(400, {
        error: 'invalid_grant',
        error_description: 'The subject token is invalid.',
      });
    }
    const token = `fake-${randomBytes(16).toString('hex')}`;
    this.tokens.add(token);
    send(200, {
      access_token: token,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: 3600,
    });
  }

  private authorize(ctx: Context): void {
    if (!this.options.auth) return;
    const header = ctx.req.headers.authorization;
    const challenge = { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' };
    if (!header)
      throw new HttpError(
        401,
        'Anonymous caller does not have storage.objects.list access to the Google Cloud Storage bucket.',
        'required',
        challenge,
      );
    const match = /^Bearer (\S+)$/i.exec(header);
    if (!match || !this.tokens.has(match[1]!))
      throw new HttpError(401, 'Invalid Credentials', 'authError', challenge);
  }

  // ---- buckets ----

  private bucket(name: string): Bucket {
    const bucket = this.buckets.get(name);
    if (!bucket) throw new HttpError(404, NO_BUCKET_MESSAGE, 'notFound');
    return bucket;
  }

  private insertBucket(ctx: Context): void {
    if (!ctx.url.searchParams.get('project'))
      throw new HttpError(400, 'Required parameter: project', 'required');
    const body = parseJsonBody(ctx.body);
    const name = typeof body.name === 'string' ? body.name : '';
    if (!/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/.test(name) || name.includes('..'))
      throw new HttpError(400, 'Invalid bucket name', 'invalid');
    if (this.buckets.has(name))
      throw new HttpError(
        409,
        'Your previous request to create the named bucket succeeded and you already own it.',
        'conflict',
      );
    const bucket: Bucket = {
      name,
      timeCreated: new Date().toISOString(),
      objects: new Map(),
      retentionSeconds: parseRetentionPolicy(body.retentionPolicy),
      lastWrite: new Map(),
    };
    this.buckets.set(name, bucket);
    this.sendJson(ctx, 200, bucketResource(bucket, ctx.base));
  }

  private listBuckets(ctx: Context): void {
    if (!ctx.url.searchParams.get('project'))
      throw new HttpError(400, 'Required parameter: project', 'required');
    const items = [...this.buckets.values()]
      .sort((a, b) => compareNames(a.name, b.name))
      .map((bucket) => bucketResource(bucket, ctx.base));
    this.sendJson(ctx, 200, { kind: 'storage#buckets', ...(items.length ? { items } : {}) });
  }

  private deleteBucket(ctx: Context, name: string): void {
    const bucket = this.bucket(name);
    if (bucket.objects.size > 0)
      throw new HttpError(409, 'The bucket you tried to delete is not empty.', 'conflict');
    this.buckets.delete(name);
    ctx.res.writeHead(204);
    ctx.res.end();
  }

  // ---- objects: reads ----

  /** The live object, honouring `generation=` (there are no noncurrent versions here). */
  private liveObject(ctx: Context, bucketName: string, name: string): StoredObject {
    const bucket = this.bucket(bucketName);
    const object = bucket.objects.get(name);
    const generation = optionalInt(ctx.url.searchParams, 'generation');
    if (!object || (generation !== undefined && generation !== object.generation)) {
      throw new HttpError(404, `No such object: ${bucketName}/${name}`, 'notFound');
    }
    return object;
  }

  private getObject(ctx: Context, bucketName: string, name: string): void {
    const p = parsePreconditions(ctx.url.searchParams);
    const object = this.liveObject(ctx, bucketName, name);
    if (!this.checkReadPreconditions(ctx, object, p)) return;
    this.sendJson(ctx, 200, objectResource(object, ctx.base), { etag: etagOf(object) });
  }

  private download(ctx: Context, bucketName: string, name: string): void {
    ctx.media = true;
    const p = parsePreconditions(ctx.url.searchParams);
    const object = this.liveObject(ctx, bucketName, name);
    if (!this.checkReadPreconditions(ctx, object, p)) return;
    const headers: Record<string, string> = {
      'content-type': object.contentType,
      'x-goog-generation': String(object.generation),
      'x-goog-metageneration': String(object.metageneration),
      'x-goog-stored-content-length': String(object.data.length),
      // The client validates downloads only when it knows the stored bytes are what it receives.
      'x-goog-stored-content-encoding': object.contentEncoding ?? 'identity',
      'x-goog-hash': `crc32c=${object.crc32c},md5=${object.md5Hash}`,
      etag: etagOf(object),
      'last-modified': new Date(object.updated).toUTCString(),
      'accept-ranges': 'bytes',
    };
    const range = ctx.req.headers.range;
    if (range) {
      const parsed = parseRange(range, object.data.length);
      if (parsed === 'unsatisfiable') {
        throw new HttpError(
          416,
          'The requested range cannot be satisfied.',
          'requestedRangeNotSatisfiable',
          { 'content-range': `bytes */${object.data.length}` },
        );
      }
      if (parsed) {
        const [start, end] = parsed;
        ctx.res.writeHead(206, {
          ...headers,
          'content-range': `bytes ${start}-${end}/${object.data.length}`,
          'content-length': String(end - start + 1),
        });
        ctx.res.end(object.data.subarray(start, end + 1));
        return;
      }
    }
    ctx.res.writeHead(200, { ...headers, 'content-length': String(object.data.length) });
    ctx.res.end(object.data);
  }

  /** Match preconditions fail with 412; NotMatch ones on a read mean "not modified" (304). */
  private checkReadPreconditions(ctx: Context, object: StoredObject, p: Preconditions): boolean {
    if (p.ifGenerationMatch !== undefined && p.ifGenerationMatch !== object.generation)
      throw preconditionFailed();
    if (p.ifMetagenerationMatch !== undefined && p.ifMetagenerationMatch !== object.metageneration)
      throw preconditionFailed();
    if (
      (p.ifGenerationNotMatch !== undefined && p.ifGenerationNotMatch === object.generation) ||
      (p.ifMetagenerationNotMatch !== undefined &&
        p.ifMetagenerationNotMatch === object.metageneration)
    ) {
      ctx.res.writeHead(304, { etag: etagOf(object) });
      ctx.res.end();
      return false;
    }
    return true;
  }

  private listObjects(ctx: Context, bucketName: string): void {
    const bucket = this.bucket(bucketName);
    const q = ctx.url.searchParams;
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') ?? '';
    const startOffset = q.get('startOffset') ?? '';
    const endOffset = q.get('endOffset');
    const maxResults = Math.min(optionalInt(q, 'maxResults') ?? MAX_LIST_RESULTS, MAX_LIST_RESULTS);
    if (maxResults < 1) throw new HttpError(400, 'Invalid value for maxResults', 'invalid');
    const token = q.get('pageToken');
    const after = token === null || token === '' ? undefined : decodePageToken(token);

    // One ordered sequence of entries — objects, and each rolled-up prefix at its first name — so
    // a page boundary can fall anywhere and the token is simply the last key returned.
    const names = [...bucket.objects.keys()]
      .filter(
        (n) => n.startsWith(prefix) && n >= startOffset && (endOffset === null || n < endOffset),
      )
      .sort(compareNames);
    const entries: { key: string; object?: StoredObject }[] = [];
    const seenPrefixes = new Set<string>();
    for (const name of names) {
      const cut = delimiter ? name.indexOf(delimiter, prefix.length) : -1;
      if (cut >= 0) {
        const rolled = name.slice(0, cut + delimiter.length);
        if (!seenPrefixes.has(rolled)) {
          seenPrefixes.add(rolled);
          entries.push({ key: rolled });
        }
      } else {
        entries.push({ key: name, object: bucket.objects.get(name)! });
      }
    }
    const remaining =
      after === undefined ? entries : entries.filter((e) => compareNames(e.key, after) > 0);
    const page = remaining.slice(0, maxResults);
    const items = page.filter((e) => e.object).map((e) => objectResource(e.object!, ctx.base));
    const prefixes = page.filter((e) => !e.object).map((e) => e.key);
    const last = page.at(-1);
    this.sendJson(ctx, 200, {
      kind: 'storage#objects',
      ...(remaining.length > page.length && last
        ? { nextPageToken: encodePageToken(last.key) }
        : {}),
      ...(prefixes.length ? { prefixes } : {}),
      ...(items.length ? { items } : {}),
    });
  }

  // ---- objects: writes ----

  /** The single place an object becomes visible: preconditions and hashes are checked first. */
  private commit(
    bucketName: string,
    name: string,
    data: Buffer,
    fields: WritableFields,
    p: Preconditions,
    hashHeader: string | undefined,
  ): StoredObject {
    const bucket = this.bucket(bucketName);
    validateObjectName(name);
    const current = bucket.objects.get(name);
    if (!writePreconditionsHold(current, p)) throw preconditionFailed();
    this.checkWriteAllowed(bucket, name, current);

    const md5Hash = createHash('md5').update(data).digest('base64');
    const crc32c = crc32cBase64(data);
    const claimed = parseHashHeader(hashHeader);
    const claimedMd5 = fields.md5Hash ?? claimed.md5;
    const claimedCrc = fields.crc32c ?? claimed.crc32c;
    if (claimedMd5 !== undefined && claimedMd5 !== md5Hash) {
      throw new HttpError(
        400,
        `Provided MD5 hash "${claimedMd5}" doesn't match calculated MD5 hash "${md5Hash}".`,
        'invalid',
      );
    }
    if (claimedCrc !== undefined && claimedCrc !== crc32c) {
      throw new HttpError(
        400,
        `Provided CRC32C "${claimedCrc}" doesn't match calculated CRC32C "${crc32c}".`,
        'invalid',
      );
    }

    const now = new Date().toISOString();
    const object: StoredObject = {
      bucket: bucketName,
      name,
      data,
      generation: this.nextGeneration(),
      metageneration: 1,
      contentType: fields.contentType || 'application/octet-stream',
      contentEncoding: fields.contentEncoding,
      contentDisposition: fields.contentDisposition,
      contentLanguage: fields.contentLanguage,
      cacheControl: fields.cacheControl,
      metadata: { ...(fields.metadata ?? {}) },
      md5Hash,
      crc32c,
      timeCreated: now,
      updated: now,
    };
    bucket.objects.set(name, object);
    return object;
  }

  /**
   * The two rules GCS applies to every write of an object after its preconditions: the per-object
   * write rate (429 rateLimitExceeded) and, when the write would replace or remove `current`, the
   * bucket's retention policy (403 retentionPolicyNotMet). A write that passes is recorded.
   */
  private checkWriteAllowed(bucket: Bucket, name: string, current: StoredObject | undefined): void {
    const now = Date.now();
    const interval = this.options.objectWriteIntervalMs ?? 0;
    const last = bucket.lastWrite.get(name);
    if (interval > 0 && last !== undefined && now - last < interval) {
      throw new HttpError(
        429,
        'The object exceeded the rate limit for object mutation operations (create, update, and delete). Please reduce your request rate.',
        'rateLimitExceeded',
      );
    }
    if (current && bucket.retentionSeconds !== undefined) {
      const retainUntil = Date.parse(current.timeCreated) + bucket.retentionSeconds * 1000;
      if (now < retainUntil) {
        throw new HttpError(
          403,
          `Object '${bucket.name}/${name}' is subject to bucket's retention policy or object retention and cannot be deleted or overwritten until ${new Date(retainUntil).toISOString()}`,
          'retentionPolicyNotMet',
        );
      }
    }
    bucket.lastWrite.set(name, now);
  }

  /** Microsecond timestamps like GCS's, forced strictly increasing so no two writes share one. */
  private nextGeneration(): number {
    this.lastGeneration = Math.max(this.lastGeneration + 1, Date.now() * 1000);
    return this.lastGeneration;
  }

  private upload(ctx: Context, bucketName: string): void {
    const q = ctx.url.searchParams;
    const uploadType = q.get('uploadType');
    const p = parsePreconditions(q);
    const hashHeader = headerValue(ctx.req, 'x-goog-hash');
    if (uploadType === 'media') {
      const name = q.get('name');
      if (!name) throw new HttpError(400, 'Required parameter: name', 'required');
      this.bucket(bucketName);
      const object = this.commit(
        bucketName,
        name,
        ctx.body,
        { contentType: headerValue(ctx.req, 'content-type') },
        p,
        hashHeader,
      );
      return this.sendJson(ctx, 200, objectResource(object, ctx.base));
    }
    if (uploadType === 'multipart') {
      this.bucket(bucketName);
      const { metadata, media, mediaType } = parseMultipartRelated(ctx.req, ctx.body);
      const fields = writableFields(metadata);
      const name = q.get('name') ?? fields.name;
      if (!name) throw new HttpError(400, 'Required parameter: name', 'required');
      const object = this.commit(
        bucketName,
        name,
        media,
        { ...fields, contentType: fields.contentType ?? mediaType },
        p,
        hashHeader,
      );
      return this.sendJson(ctx, 200, objectResource(object, ctx.base));
    }
    if (uploadType === 'resumable') return this.startResumable(ctx, bucketName, p);
    throw new HttpError(400, `Invalid upload type: ${uploadType ?? '(none)'}`, 'invalid');
  }

  private startResumable(ctx: Context, bucketName: string, p: Preconditions): void {
    this.bucket(bucketName);
    const fields = ctx.body.length ? writableFields(parseJsonBody(ctx.body)) : {};
    const name = ctx.url.searchParams.get('name') ?? fields.name;
    if (!name) throw new HttpError(400, 'Required parameter: name', 'required');
    validateObjectName(name);
    const uploadType = headerValue(ctx.req, 'x-upload-content-type');
    const declared = headerValue(ctx.req, 'x-upload-content-length');
    const expectedSize =
      declared === undefined ? undefined : parseNonNegative(declared, 'X-Upload-Content-Length');
    const id = randomBytes(18).toString('base64url');
    // Preconditions are remembered and judged when the upload completes, against the object as it
    // is then: that is what makes a resumable create-if-absent safe against a racing writer.
    this.sessions.set(id, {
      id,
      bucket: bucketName,
      name,
      fields: { ...fields, contentType: fields.contentType ?? uploadType },
      preconditions: p,
      expectedSize,
      chunks: [],
      received: 0,
      state: 'open',
    });
    const location = `${ctx.base}/upload/storage/v1/b/${encodeURIComponent(bucketName)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
    ctx.res.writeHead(200, { location, 'x-guploader-uploadid': id, 'content-length': '0' });
    ctx.res.end();
  }

  private session(uploadId: string): UploadSession {
    const session = this.sessions.get(uploadId);
    if (!session || session.state === 'cancelled')
      throw new HttpError(
        404,
        'No such upload session (it may have expired or been cancelled).',
        'notFound',
      );
    return session;
  }

  private resumableChunk(ctx: Context, uploadId: string): void {
    const session = this.session(uploadId);
    if (session.state === 'done')
      return this.sendJson(ctx, 200, objectResource(session.result!, ctx.base));
    if (session.state === 'failed') throw session.failure!;

    const range = parseContentRange(headerValue(ctx.req, 'content-range'), ctx.body.length);
    if (range.total !== undefined) {
      if (session.expectedSize !== undefined && session.expectedSize !== range.total) {
        throw new HttpError(
          400,
          `Upload total size ${range.total} differs from the ${session.expectedSize} declared earlier.`,
          'invalid',
        );
      }
      session.expectedSize = range.total;
    }

    if (range.start !== undefined) {
      if (range.start > session.received) {
        throw new HttpError(
          400,
          `Content-Range starts at byte ${range.start} but only ${session.received} bytes have been persisted.`,
          'invalid',
        );
      }
      const end = range.start + ctx.body.length;
      const fresh = ctx.body.subarray(Math.min(ctx.body.length, session.received - range.start));
      const isFinal =
        range.openEnded || (session.expectedSize !== undefined && end === session.expectedSize);
      if (session.expectedSize !== undefined && end > session.expectedSize) {
        throw new HttpError(
          400,
          `Upload exceeds the declared size of ${session.expectedSize} bytes.`,
          'invalid',
        );
      }
      if (isFinal) {
        session.chunks.push(fresh);
        session.received += fresh.length;
        return this.finish(ctx, session);
      }
      // Non-final chunks are kept only up to a whole number of 256 KiB units; the client learns
      // how far it got from the Range header and resends the rest.
      const keepUntil = Math.max(
        session.received,
        Math.floor(end / RESUMABLE_QUANTUM) * RESUMABLE_QUANTUM,
      );
      const keep = fresh.subarray(0, Math.max(0, keepUntil - session.received));
      session.chunks.push(keep);
      session.received += keep.length;
    } else if (session.expectedSize !== undefined && session.expectedSize === session.received) {
      // "bytes */N" once all N bytes are in: the client asks us to finish.
      return this.finish(ctx, session);
    }

    const headers: Record<string, string> = { 'content-length': '0' };
    if (session.received > 0) headers.range = `bytes=0-${session.received - 1}`;
    ctx.res.writeHead(308, headers);
    ctx.res.end();
  }

  private finish(ctx: Context, session: UploadSession): void {
    const data = Buffer.concat(session.chunks);
    if (session.expectedSize !== undefined && data.length !== session.expectedSize) {
      throw new HttpError(
        400,
        `Upload ended after ${data.length} of ${session.expectedSize} bytes.`,
        'invalid',
      );
    }
    try {
      session.result = this.commit(
        session.bucket,
        session.name,
        data,
        session.fields,
        session.preconditions,
        headerValue(ctx.req, 'x-goog-hash'),
      );
    } catch (err) {
      if (err instanceof HttpError) {
        // A finished upload that was refused stays refused; retrying the last chunk repeats the answer.
        session.state = 'failed';
        session.failure = err;
        session.chunks.length = 0;
      }
      throw err;
    }
    session.state = 'done';
    session.chunks.length = 0;
    this.sendJson(ctx, 200, objectResource(session.result, ctx.base));
  }

  private cancelUpload(ctx: Context, uploadId: string): void {
    const session = this.session(uploadId);
    session.state = 'cancelled';
    session.chunks.length = 0;
    // GCS acknowledges a cancelled session with 499 (Client Closed Request).
    ctx.res.writeHead(499, { 'content-length': '0' });
    ctx.res.end();
  }

  private deleteObject(ctx: Context, bucketName: string, name: string): void {
    const p = parsePreconditions(ctx.url.searchParams);
    const object = this.liveObject(ctx, bucketName, name);
    if (!writePreconditionsHold(object, p)) throw preconditionFailed();
    const bucket = this.bucket(bucketName);
    this.checkWriteAllowed(bucket, name, object);
    bucket.objects.delete(name);
    ctx.res.writeHead(204);
    ctx.res.end();
  }

  /** Metadata-only update: bumps metageneration, keeps generation (that is what tells them apart). */
  private patchObject(ctx: Context, bucketName: string, name: string): void {
    const p = parsePreconditions(ctx.url.searchParams);
    const body = parseJsonBody(ctx.body);
    const object = this.liveObject(ctx, bucketName, name);
    if (!writePreconditionsHold(object, p)) throw preconditionFailed();
    this.checkWriteAllowed(this.bucket(bucketName), name, undefined);
    if (body.metadata === null) object.metadata = {};
    else if (isRecord(body.metadata)) {
      for (const [k, v] of Object.entries(body.metadata)) {
        if (v === null) delete object.metadata[k];
        else object.metadata[k] = String(v);
      }
    }
    for (const field of [
      'contentType',
      'contentEncoding',
      'contentDisposition',
      'contentLanguage',
      'cacheControl',
    ] as const) {
      if (field in body) {
        const value = body[field];
        if (field === 'contentType')
          object.contentType = typeof value === 'string' ? value : 'application/octet-stream';
        else object[field] = typeof value === 'string' ? value : undefined;
      }
    }
    object.metageneration += 1;
    object.updated = new Date().toISOString();
    this.sendJson(ctx, 200, objectResource(object, ctx.base), { etag: etagOf(object) });
  }

  // ---- responses ----

  private sendJson(
    ctx: Context,
    status: number,
    body: Record<string, unknown>,
    headers: Record<string, string> = {},
  ): void {
    const fields = ctx.url.searchParams.get('fields');
    const shaped = fields ? applyFields(body, parseFields(fields)) : body;
    const text = JSON.stringify(shaped);
    ctx.res.writeHead(status, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    });
    ctx.res.end(text);
  }

  private sendError(ctx: Context, err: HttpError): void {
    if (ctx.res.headersSent) {
      ctx.res.destroy();
      return;
    }
    if (ctx.media) {
      ctx.res.writeHead(err.status, {
        'content-type': 'text/plain; charset=utf-8',
        ...err.headers,
      });
      ctx.res.end(err.message);
      return;
    }
    const detail: Record<string, string> = {
      message: err.message,
      domain: 'global',
      reason: err.reason,
    };
    if (err.status === 412) Object.assign(detail, { locationType: 'header', location: 'If-Match' });
    const text = JSON.stringify({
      error: { code: err.status, message: err.message, errors: [detail] },
    });
    ctx.res.writeHead(err.status, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': String(Buffer.byteLength(text)),
      ...err.headers,
    });
    ctx.res.end(text);
  }
}

// ---- helpers ----

function preconditionFailed(): HttpError {
  return new HttpError(412, PRECONDITION_MESSAGE, 'conditionNotMet');
}

/**
 * Write-side semantics from the JSON API reference: ifGenerationMatch=0 means "no live object";
 * every other condition needs a live object to compare against and fails without one.
 */
function writePreconditionsHold(current: StoredObject | undefined, p: Preconditions): boolean {
  if (p.ifGenerationMatch !== undefined) {
    if (
      p.ifGenerationMatch === 0
        ? current !== undefined
        : current?.generation !== p.ifGenerationMatch
    )
      return false;
  }
  if (
    p.ifGenerationNotMatch !== undefined &&
    (current === undefined || current.generation === p.ifGenerationNotMatch)
  )
    return false;
  if (
    p.ifMetagenerationMatch !== undefined &&
    (current === undefined || current.metageneration !== p.ifMetagenerationMatch)
  )
    return false;
  if (
    p.ifMetagenerationNotMatch !== undefined &&
    (current === undefined || current.metageneration === p.ifMetagenerationNotMatch)
  )
    return false;
  return true;
}

function parsePreconditions(q: URLSearchParams): Preconditions {
  const p: Preconditions = {};
  for (const key of [
    'ifGenerationMatch',
    'ifGenerationNotMatch',
    'ifMetagenerationMatch',
    'ifMetagenerationNotMatch',
  ] as const) {
    const value = optionalInt(q, key);
    if (value !== undefined) p[key] = value;
  }
  return p;
}

/** `retentionPolicy: { retentionPeriod: "<seconds>" }` from a bucket insert, as the JSON API takes it. */
function parseRetentionPolicy(raw: unknown): number | undefined {
  if (raw === undefined || raw === null) return undefined;
  const period = isRecord(raw) ? Number(raw.retentionPeriod) : NaN;
  if (!Number.isInteger(period) || period < 0)
    throw new HttpError(400, 'Invalid retentionPeriod', 'invalid');
  return period;
}

function optionalInt(q: URLSearchParams, key: string): number | undefined {
  const raw = q.get(key);
  if (raw === null) return undefined;
  return parseNonNegative(raw, key);
}

function parseNonNegative(raw: string, what: string): number {
  if (!/^\d{1,16}$/.test(raw))
    throw new HttpError(
      400,
      `Invalid value for ${what}: ${JSON.stringify(raw).slice(0, 40)}`,
      'invalid',
    );
  return Number(raw);
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('request aborted')));
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJsonBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'Parse Error', 'parseError');
  }
  if (!isRecord(parsed)) throw new HttpError(400, 'Request body must be a JSON object', 'invalid');
  return parsed;
}

function writableFields(raw: Record<string, unknown>): WritableFields {
  const fields: WritableFields = {};
  for (const key of [
    'name',
    'contentType',
    'contentEncoding',
    'contentDisposition',
    'contentLanguage',
    'cacheControl',
    'md5Hash',
    'crc32c',
  ] as const) {
    const value = raw[key];
    if (typeof value === 'string') fields[key] = value;
  }
  if (isRecord(raw.metadata)) {
    fields.metadata = {};
    for (const [k, v] of Object.entries(raw.metadata))
      if (v !== null && v !== undefined) fields.metadata[k] = String(v);
  }
  return fields;
}

function validateObjectName(name: string): void {
  const bytes = Buffer.byteLength(name);
  if (bytes === 0 || bytes > 1024 || /[\r\n]/.test(name) || name === '.' || name === '..') {
    throw new HttpError(
      400,
      `Invalid object name: ${JSON.stringify(name).slice(0, 80)}`,
      'invalid',
    );
  }
}

/** GCS orders names by their UTF-8 bytes. */
function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function encodePageToken(key: string): string {
  return Buffer.from(JSON.stringify({ after: key })).toString('base64url');
}

function decodePageToken(token: string): string {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (isRecord(parsed) && typeof parsed.after === 'string') return parsed.after;
  } catch {
    // fall through to the 400 below
  }
  throw new HttpError(400, 'Invalid pageToken', 'invalid');
}

/** `bytes=a-b`, `bytes=a-`, `bytes=-n`; multi-range is not supported (GCS ignores it too). */
function parseRange(header: string, size: number): [number, number] | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return [start, end];
}

interface ContentRange {
  /** First byte of this request's body; undefined for a status query ("bytes *\/…"). */
  start: number | undefined;
  /** "bytes a-*\/…": the body runs to the end of the upload (single-request streaming). */
  openEnded: boolean;
  total: number | undefined;
}

function parseContentRange(header: string | undefined, bodyLength: number): ContentRange {
  // No header: the whole object in one request.
  if (header === undefined) return { start: 0, openEnded: true, total: bodyLength };
  const m = /^bytes (?:(\d+)-(\d+|\*)|\*)\/(\d+|\*)$/.exec(header.trim());
  if (!m) throw new HttpError(400, `Invalid Content-Range: ${header.slice(0, 60)}`, 'invalid');
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (m[1] === undefined) {
    if (bodyLength > 0)
      throw new HttpError(400, 'A status query ("bytes */…") must have an empty body.', 'invalid');
    return { start: undefined, openEnded: false, total };
  }
  const start = Number(m[1]);
  if (m[2] === '*') return { start, openEnded: true, total };
  const end = Number(m[2]);
  if (end < start || end - start + 1 !== bodyLength) {
    throw new HttpError(
      400,
      `Content-Range ${header} does not match a body of ${bodyLength} bytes.`,
      'invalid',
    );
  }
  return { start, openEnded: false, total };
}

function parseHashHeader(header: string | undefined): { md5?: string; crc32c?: string } {
  const out: { md5?: string; crc32c?: string } = {};
  for (const part of (header ?? '').split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const kind = part.slice(0, eq).trim().toLowerCase();
    const value = part.slice(eq + 1).trim();
    if (kind === 'md5') out.md5 = value;
    if (kind === 'crc32c') out.crc32c = value;
  }
  return out;
}

/** multipart/related with a JSON metadata part followed by the media part. */
function parseMultipartRelated(
  req: IncomingMessage,
  body: Buffer,
): { metadata: Record<string, unknown>; media: Buffer; mediaType: string | undefined } {
  const type = headerValue(req, 'content-type') ?? '';
  const bm = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
  if (!/^multipart\/related/i.test(type) || !bm)
    throw new HttpError(
      400,
      'Multipart upload needs Content-Type multipart/related with a boundary',
      'invalid',
    );
  const boundary = Buffer.from(`--${bm[1] ?? bm[2]}`);
  const parts: { headers: string; body: Buffer }[] = [];
  let pos = body.indexOf(boundary);
  if (pos < 0) throw new HttpError(400, 'Multipart body has no boundary', 'invalid');
  for (;;) {
    pos += boundary.length;
    if (body.subarray(pos, pos + 2).toString() === '--') break;
    if (body.subarray(pos, pos + 2).toString() === '\r\n') pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0) throw new HttpError(400, 'Malformed multipart part', 'invalid');
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), boundary]), headerEnd + 4);
    if (next < 0) throw new HttpError(400, 'Multipart body is not terminated', 'invalid');
    parts.push({
      headers: body.subarray(pos, headerEnd).toString('utf8'),
      body: body.subarray(headerEnd + 4, next),
    });
    pos = next + 2;
  }
  if (parts.length !== 2)
    throw new HttpError(400, `Multipart upload needs 2 parts, got ${parts.length}`, 'invalid');
  const mediaType = /^content-type:\s*(.+)$/im.exec(parts[1]!.headers)?.[1]?.trim();
  return { metadata: parseJsonBody(parts[0]!.body), media: Buffer.from(parts[1]!.body), mediaType };
}

function etagOf(object: StoredObject): string {
  return Buffer.from(`${object.generation}/${object.metageneration}`).toString('base64');
}

function objectResource(o: StoredObject, base: string): Record<string, unknown> {
  const path = `b/${encodeURIComponent(o.bucket)}/o/${encodeURIComponent(o.name)}`;
  return {
    kind: 'storage#object',
    id: `${o.bucket}/${o.name}/${o.generation}`,
    selfLink: `${base}/storage/v1/${path}`,
    mediaLink: `${base}/download/storage/v1/${path}?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket: o.bucket,
    generation: String(o.generation),
    metageneration: String(o.metageneration),
    contentType: o.contentType,
    storageClass: 'STANDARD',
    size: String(o.data.length),
    md5Hash: o.md5Hash,
    crc32c: o.crc32c,
    etag: etagOf(o),
    timeCreated: o.timeCreated,
    updated: o.updated,
    timeStorageClassUpdated: o.timeCreated,
    timeFinalized: o.timeCreated,
    ...(o.contentEncoding ? { contentEncoding: o.contentEncoding } : {}),
    ...(o.contentDisposition ? { contentDisposition: o.contentDisposition } : {}),
    ...(o.contentLanguage ? { contentLanguage: o.contentLanguage } : {}),
    ...(o.cacheControl ? { cacheControl: o.cacheControl } : {}),
    ...(Object.keys(o.metadata).length ? { metadata: { ...o.metadata } } : {}),
  };
}

function bucketResource(b: Bucket, base: string): Record<string, unknown> {
  return {
    kind: 'storage#bucket',
    id: b.name,
    selfLink: `${base}/storage/v1/b/${encodeURIComponent(b.name)}`,
    projectNumber: '0',
    name: b.name,
    timeCreated: b.timeCreated,
    updated: b.timeCreated,
    metageneration: '1',
    location: 'US',
    locationType: 'multi-region',
    storageClass: 'STANDARD',
    etag: 'CAE=',
    ...(b.retentionSeconds === undefined
      ? {}
      : {
          retentionPolicy: {
            retentionPeriod: String(b.retentionSeconds),
            effectiveTime: b.timeCreated,
          },
        }),
  };
}

// ---- partial responses (`fields=items(name,size),nextPageToken`) ----

type FieldTree = Map<string, FieldTree | null>;

function parseFields(spec: string): FieldTree {
  let pos = 0;
  const parseList = (): FieldTree => {
    const tree: FieldTree = new Map();
    for (;;) {
      const m = /^[A-Za-z0-9_*]+(?:\/[A-Za-z0-9_*]+)*/.exec(spec.slice(pos));
      if (!m) throw new HttpError(400, `Invalid field selection ${spec}`, 'invalidParameter');
      pos += m[0].length;
      let sub: FieldTree | null = null;
      if (spec[pos] === '(') {
        pos++;
        sub = parseList();
        if (spec[pos] !== ')')
          throw new HttpError(400, `Invalid field selection ${spec}`, 'invalidParameter');
        pos++;
      }
      const path = m[0].split('/');
      let node = tree;
      for (let i = 0; i < path.length - 1; i++) {
        const existing = node.get(path[i]!);
        const child: FieldTree = existing ?? new Map();
        node.set(path[i]!, child);
        node = child;
      }
      node.set(path.at(-1)!, sub);
      if (spec[pos] !== ',') break;
      pos++;
    }
    return tree;
  };
  const tree = parseList();
  if (pos !== spec.length)
    throw new HttpError(400, `Invalid field selection ${spec}`, 'invalidParameter');
  return tree;
}

function applyFields(value: Record<string, unknown>, tree: FieldTree): Record<string, unknown> {
  if (tree.has('*')) return value;
  const out: Record<string, unknown> = {};
  for (const [key, sub] of tree) {
    if (!(key in value)) continue;
    const v = value[key];
    if (sub === null) out[key] = v;
    else if (Array.isArray(v))
      out[key] = v.map((item: unknown) => (isRecord(item) ? applyFields(item, sub) : item));
    else if (isRecord(v)) out[key] = applyFields(v, sub);
    else out[key] = v;
  }
  return out;
}
