import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Bucket, CreateWriteStreamOptions, File, StorageOptions } from '@google-cloud/storage';
import {
  ConfigError,
  MediagitError,
  RetentionLockedError,
  StoreUnavailableError,
} from '../../errors/index.js';
import { mapLimit } from '../../util/limit.js';
import { parseOptions, pickOptions, type OptionValues } from '../options/schema.js';
import { compareAndSwapRef, type ConditionalRefWrites } from '../remote-service/conditional-ref.js';
import {
  failureError,
  networkCodeOf,
  parseRetryAfter,
  plainCause,
  type FailureFacts,
} from '../remote-service/failure.js';
import {
  BASIC_CAPABILITIES,
  assertCreatableKey,
  assertValidKey,
  assertValidRefName,
  isValidKey,
  isValidRefName,
  type ListedKey,
  type OperationOptions,
  type RefValue,
  type Store,
} from '../store.js';
import { GCS_OPTIONS } from './options.js';

/** The remote's option keys (./options.ts) plus the bucket and prefix from the URL. */
export type GcsStoreOptions = OptionValues<typeof GCS_OPTIONS> & {
  bucket: string;
  /** Folder inside the bucket, so several repositories can share one bucket. */
  prefix?: string;
};

const LIST_PAGE_SIZE = 1000;
/** Custom-metadata key holding a ref's OID, so listRefs gets every value from the listing alone. */
const REF_OID_METADATA = 'oid';
const BUCKET_MISSING = /bucket does not exist/i;

/**
 * Google Cloud Storage backend. Keys map 1:1 to objects under `<prefix>`; each ref is a small
 * object `<prefix>refs/heads/<name>` holding the OID (also in custom metadata), and its generation
 * is the CAS version: ifGenerationMatch=0 creates, ifGenerationMatch=<generation> replaces or deletes.
 *
 * The SDK is imported on first use so commands that never touch the remote start fast, and its
 * retries are disabled: retries, throttling and metrics are wrappers around every Store.
 */
export class GcsStore implements Store {
  readonly description: string;
  readonly capabilities = BASIC_CAPABILITIES;
  readonly endpoint: string;
  private readonly bucketName: string;
  private readonly prefix: string;
  private readonly resumableThreshold: number;
  private readonly requestTimeoutMs: number;
  private readonly chunkSize: number | undefined;
  private readonly verifyDownloads: boolean;
  private readonly resumableAllowed: boolean;
  private readonly hasConcurrency: number;
  private bucketPromise: Promise<Bucket> | undefined;

  constructor(private readonly options: GcsStoreOptions) {
    this.bucketName = options.bucket;
    validateBucketName(options.bucket);
    this.prefix = normalizePrefix(options.prefix);
    this.endpoint =
      options.endpoint === undefined
        ? 'https://storage.googleapis.com'
        : normalizeEndpoint(options.endpoint);
    const parsed = parseOptions(GCS_OPTIONS, pickOptions(GCS_OPTIONS, options), 'a GCS remote');
    this.resumableThreshold = parsed.resumable_threshold;
    this.requestTimeoutMs = parsed.request_timeout_ms;
    this.chunkSize = parsed.chunk_size;
    this.verifyDownloads = parsed.verify_downloads;
    // The SDK's resumable uploader sends no credentials to endpoints outside googleapis.com, even
    // with useAuthWithCustomEndpoint; there, everything goes up as authenticated multipart uploads.
    this.resumableAllowed =
      options.endpoint === undefined ||
      !authenticatesEndpoint(this.endpoint, options.credentials_path) ||
      isGoogleHost(this.endpoint);
    this.hasConcurrency = parsed.has_concurrency;
    this.description = `gs://${this.bucketName}${this.prefix ? `/${this.prefix.slice(0, -1)}` : ''}${options.endpoint === undefined ? '' : ` (${this.endpoint})`}`;
  }

  private bucket(): Promise<Bucket> {
    if (!this.bucketPromise) {
      this.bucketPromise = this.connect();
      // A failed import or unreadable credentials file must not poison every later call.
      this.bucketPromise.catch(() => {
        this.bucketPromise = undefined;
      });
    }
    return this.bucketPromise;
  }

  private async connect(): Promise<Bucket> {
    const o = this.options;
    if (o.credentials_path !== undefined) await checkCredentialsFile(o.credentials_path);
    const { Storage } = await import('@google-cloud/storage');
    const storageOptions: StorageOptions = {
      // autoRetry=false is what turns retries off (maxRetries: 0 alone is read as "use the default");
      // retryableErrorFn makes resumable uploads report the real HTTP status instead of "Retry limit exceeded".
      retryOptions: { autoRetry: false, maxRetries: 0, retryableErrorFn: () => false },
      userAgent: 'mediagit',
      // The SDK's own per-request timer too, so a stalled request is cut even without the wrapper.
      timeout: this.requestTimeoutMs,
      ...(o.project !== undefined ? { projectId: o.project } : {}),
      ...(o.endpoint !== undefined ? { apiEndpoint: this.endpoint } : {}),
      ...(o.credentials_path !== undefined ? { keyFilename: o.credentials_path } : {}),
      // The SDK drops authentication for custom endpoints unless told otherwise, which would send
      // regional and Private Service Connect endpoints anonymous requests.
      ...(o.endpoint !== undefined && authenticatesEndpoint(this.endpoint, o.credentials_path)
        ? { useAuthWithCustomEndpoint: true }
        : {}),
    };
    return new Storage(storageOptions).bucket(this.bucketName);
  }

  private objectName(key: string): string {
    assertValidKey(key);
    return this.prefix + key;
  }

  private refObjectName(name: string): string {
    assertValidRefName(name);
    return this.prefix + name;
  }

  async get(key: string, options: OperationOptions = {}): Promise<Buffer> {
    const name = this.objectName(key);
    const bucket = await this.bucket();
    try {
      return await this.download(bucket.file(name), options);
    } catch (err) {
      throw this.fail(err, `get ${key}`, options, key);
    }
  }

  private download(file: File, options: OperationOptions): Promise<Buffer> {
    options.signal?.throwIfAborted();
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let expected: number | undefined;
      const stream = file.createReadStream({ validation: this.verifyDownloads ? 'crc32c' : false });
      const onAbort = (): void => {
        stream.destroy(
          options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted'),
        );
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      // Without checksum validation nothing else notices a body cut short, so compare lengths.
      stream.once('response', (response: unknown) => {
        const headers = isRecord(response) ? response : undefined;
        const encoding = headerOf(headers, 'x-goog-stored-content-encoding');
        const length = headerOf(headers, 'x-goog-stored-content-length');
        if (
          (encoding === undefined || encoding === 'identity') &&
          length !== undefined &&
          /^\d+$/.test(length)
        )
          expected = Number(length);
      });
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.once('error', (err) => {
        options.signal?.removeEventListener('abort', onAbort);
        reject(err);
      });
      stream.once('end', () => {
        options.signal?.removeEventListener('abort', onAbort);
        const data = Buffer.concat(chunks);
        if (expected !== undefined && data.byteLength !== expected) {
          reject(
            new StoreUnavailableError(
              `Google Cloud Storage download ended after ${data.byteLength} of ${expected} bytes (${this.endpoint})`,
            ),
          );
        } else resolve(data);
      });
    });
  }

  async put(key: string, data: Uint8Array, options: OperationOptions = {}): Promise<void> {
    await this.upload(key, data, options);
  }

  /** Upload with ifGenerationMatch=0 (put already never replaces); false when the object existed. */
  async create(key: string, data: Uint8Array, options: OperationOptions = {}): Promise<boolean> {
    assertCreatableKey(key);
    return this.upload(key, data, options);
  }

  private async upload(key: string, data: Uint8Array, options: OperationOptions): Promise<boolean> {
    const name = this.objectName(key);
    const bucket = await this.bucket();
    const file = bucket.file(name);
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const resumable = this.resumableAllowed && bytes.byteLength > this.resumableThreshold;
    // Probing first only pays off when it can save a long upload.
    if (resumable && (await this.exists(file, key, options))) return false;
    try {
      await this.write(
        file,
        bytes,
        {
          resumable,
          ...(resumable && this.chunkSize !== undefined ? { chunkSize: this.chunkSize } : {}),
          metadata: {
            contentType: 'application/octet-stream',
            ...(resumable ? { contentLength: bytes.byteLength } : {}),
          },
          // Never replace: content-addressed keys hold the same bytes, and a lost race must not clobber.
          preconditionOpts: { ifGenerationMatch: 0 },
        },
        options,
      );
      return true;
    } catch (err) {
      const info = gcsErrorInfo(err);
      if (info.status === 412) return false;
      throw this.fail(err, `put ${key}`, options, key);
    }
  }

  /**
   * Uploads through the SDK's write stream. The MD5 goes along as object metadata so GCS itself
   * refuses a corrupted upload before committing it; the SDK's own check runs only after the
   * commit and then deletes the object unconditionally, which could remove a racing writer's copy.
   */
  private write(
    file: File,
    bytes: Buffer,
    streamOptions: CreateWriteStreamOptions,
    options: OperationOptions,
  ): Promise<void> {
    options.signal?.throwIfAborted();
    const md5Hash = createHash('md5').update(bytes).digest('base64');
    const full: CreateWriteStreamOptions = {
      ...streamOptions,
      validation: false,
      metadata: { ...streamOptions.metadata, md5Hash },
    };
    return new Promise<void>((resolve, reject) => {
      let lastResponse: unknown;
      const stream = file.createWriteStream(full);
      const onAbort = (): void => {
        stream.destroy(
          options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted'),
        );
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      // Resumable uploads report failures without the response, whose Retry-After we still want.
      stream.on('response', (response: unknown) => {
        lastResponse = response;
      });
      stream.once('error', (err) => {
        options.signal?.removeEventListener('abort', onAbort);
        reject(withResponse(err, lastResponse));
      });
      stream.once('finish', () => {
        options.signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      stream.end(bytes);
    });
  }

  async has(keys: readonly string[], options: OperationOptions = {}): Promise<boolean[]> {
    const names = keys.map((key) => this.objectName(key));
    const bucket = await this.bucket();
    return mapLimit(names, this.hasConcurrency, (name, i) =>
      this.exists(bucket.file(name), keys[i]!, options),
    );
  }

  private async exists(file: File, key: string, options: OperationOptions): Promise<boolean> {
    options.signal?.throwIfAborted();
    try {
      await file.getMetadata();
      return true;
    } catch (err) {
      const info = gcsErrorInfo(err);
      // File.exists() would also answer false for a missing bucket; that must be loud.
      if (info.status === 404 && !BUCKET_MISSING.test(info.text)) return false;
      throw this.fail(err, `has ${key}`, options);
    }
  }

  async *list(prefix: string, options: OperationOptions = {}): AsyncIterable<ListedKey> {
    const bucket = await this.bucket();
    for await (const item of this.listObjects(
      bucket,
      this.prefix + prefix,
      'items(name,size),nextPageToken',
      options,
    )) {
      const key = item.name.slice(this.prefix.length);
      // Refs and foreign objects share the namespace; only store keys are listed.
      if (isValidKey(key)) yield { key, size: Number(item.size ?? 0) };
    }
  }

  /** Raw listing pages; `fields` trims each item to what the caller reads. */
  private async *listObjects(
    bucket: Bucket,
    prefix: string,
    fields: string,
    options: OperationOptions,
  ): AsyncIterable<RawObject> {
    let pageToken: string | undefined;
    do {
      options.signal?.throwIfAborted();
      let response: unknown;
      try {
        [, , response] = await bucket.getFiles({
          prefix,
          autoPaginate: false,
          maxResults: LIST_PAGE_SIZE,
          fields,
          ...(pageToken ? { pageToken } : {}),
        });
      } catch (err) {
        throw this.fail(err, `list ${prefix}`, options);
      }
      const page = isRecord(response) ? response : {};
      const items = Array.isArray(page.items) ? page.items : [];
      for (const item of items) {
        if (isRecord(item) && typeof item.name === 'string')
          yield {
            name: item.name,
            size: scalar(item.size),
            generation: scalar(item.generation),
            metadata: item.metadata,
          };
      }
      pageToken =
        typeof page.nextPageToken === 'string' && page.nextPageToken
          ? page.nextPageToken
          : undefined;
    } while (pageToken);
  }

  async delete(key: string, options: OperationOptions = {}): Promise<void> {
    const name = this.objectName(key);
    const bucket = await this.bucket();
    options.signal?.throwIfAborted();
    try {
      await bucket.file(name).delete();
    } catch (err) {
      const info = gcsErrorInfo(err);
      if (info.status === 404 && !BUCKET_MISSING.test(info.text)) return;
      throw this.fail(err, `delete ${key}`, options);
    }
  }

  async readRef(name: string, options: OperationOptions = {}): Promise<RefValue | null> {
    const objectName = this.refObjectName(name);
    const bucket = await this.bucket();
    // Two tries: a ref without OID metadata is read by generation, which can vanish in between.
    for (let attempt = 0; ; attempt++) {
      options.signal?.throwIfAborted();
      let generation: string;
      let oid: unknown;
      try {
        const [metadata] = await bucket.file(objectName).getMetadata();
        generation = String(metadata.generation);
        oid = metadata.metadata?.[REF_OID_METADATA];
      } catch (err) {
        const info = gcsErrorInfo(err);
        if (info.status === 404 && !BUCKET_MISSING.test(info.text)) return null;
        throw this.fail(err, `read ref ${name}`, options);
      }
      // The OID in metadata was written in the same request as the body, so it names this generation.
      if (typeof oid === 'string' && oid) return { oid, version: generation };
      // Written by another tool: read the body of exactly the generation we saw.
      try {
        const body = await this.download(bucket.file(objectName, { generation }), options);
        return { oid: body.toString('utf8').trim(), version: generation };
      } catch (err) {
        const info = gcsErrorInfo(err);
        if (info.status === 404 && !BUCKET_MISSING.test(info.text) && attempt === 0) continue;
        throw this.fail(err, `read ref ${name}`, options);
      }
    }
  }

  /** GCS request preconditions, which the service evaluates atomically with the write. */
  private readonly refWrites: ConditionalRefWrites<RefValue> = {
    read: (name, signal) => this.readRef(name, { signal }),
    // A generation is a precondition as it is; any other version but the OID can never match.
    pin: (expected) =>
      expected === null
        ? null
        : expected.version === expected.oid
          ? undefined
          : /^[1-9]\d{0,18}$/.test(expected.version)
            ? expected
            : 'stale',
    write: async (name, base, next, signal) => {
      const file = (await this.bucket()).file(this.refObjectName(name));
      const options = { signal };
      try {
        if (next === null) {
          signal?.throwIfAborted();
          await file.delete({ ifGenerationMatch: base?.version ?? 0 });
          return true;
        }
        await this.write(
          file,
          Buffer.from(`${next}\n`, 'utf8'),
          {
            resumable: false,
            metadata: {
              contentType: 'text/plain; charset=utf-8',
              cacheControl: 'no-store',
              metadata: { [REF_OID_METADATA]: next },
            },
            preconditionOpts: { ifGenerationMatch: base === null ? 0 : base.version },
          },
          options,
        );
        return true;
      } catch (err) {
        if (this.lostRace(err)) return false;
        throw this.fail(err, `${next === null ? 'delete' : 'update'} ref ${name}`, options);
      }
    },
  };

  compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options: OperationOptions = {},
  ): Promise<boolean> {
    return compareAndSwapRef(this.refWrites, name, expected, next, options);
  }

  /** 412: the generation moved (or the object appeared/vanished); 404: deleted meanwhile. */
  private lostRace(err: unknown): boolean {
    const info = gcsErrorInfo(err);
    return info.status === 412 || (info.status === 404 && !BUCKET_MISSING.test(info.text));
  }

  async listRefs(prefix: string, options: OperationOptions = {}): Promise<Map<string, RefValue>> {
    const bucket = await this.bucket();
    const refs = new Map<string, RefValue>();
    const missingMetadata: string[] = [];
    for await (const item of this.listObjects(
      bucket,
      this.prefix + prefix,
      'items(name,generation,metadata),nextPageToken',
      options,
    )) {
      const name = item.name.slice(this.prefix.length);
      if (!isValidRefName(name) || !name.startsWith(prefix)) continue;
      const oid = isRecord(item.metadata) ? item.metadata[REF_OID_METADATA] : undefined;
      if (typeof oid === 'string' && oid && item.generation !== undefined)
        refs.set(name, { oid, version: String(item.generation) });
      else missingMetadata.push(name);
    }
    // Ref objects written by other tools carry no metadata; their body is still authoritative.
    for (const name of missingMetadata) {
      const value = await this.readRef(name, options);
      if (value) refs.set(name, value);
    }
    return refs;
  }

  async close(): Promise<void> {
    this.bucketPromise = undefined;
  }

  /**
   * Turns an SDK failure into the project's error classes (remote-service/failure.ts decides what
   * a failure means; only GCS's own cases are here). See docs/backends/gcs.md.
   */
  private fail(err: unknown, what: string, options: OperationOptions, key?: string): Error {
    if (options.signal?.aborted)
      return options.signal.reason instanceof Error ? options.signal.reason : toError(err);
    if (err instanceof MediagitError) return err;
    const info = gcsErrorInfo(err);
    const facts: FailureFacts = {
      status: info.status,
      serviceCode: info.oauthError,
      networkCode: info.code,
      message: info.message,
      credentialFailure:
        info.oauthError !== undefined ||
        /could not load the default credentials/i.test(info.message),
    };
    const cause = plainCause(facts, info.message);
    if (info.status === 404 && BUCKET_MISSING.test(info.text)) {
      return new ConfigError(
        `GCS bucket '${this.bucketName}' does not exist${this.options.endpoint === undefined ? '' : ` at ${this.endpoint}`}`,
        {
          hint: "create the bucket (gcloud storage buckets create) or fix the remote's bucket setting",
          cause,
        },
      );
    }
    if (info.status === 403 && RETENTION_REFUSAL.test(info.text)) {
      return new RetentionLockedError(
        `Google Cloud Storage refused ${what} on ${this.description}: the object is under the bucket's retention policy (${firstLine(info.message)})`,
        {
          hint: 'objects under a retention policy cannot be replaced or deleted until their retention period ends; refs need a bucket (or prefix) without one',
          cause,
        },
      );
    }
    return failureError(
      facts,
      {
        service: 'Google Cloud Storage',
        endpoint: this.endpoint,
        location: this.description,
        action: what,
        key,
        authHint:
          this.options.credentials_path === undefined
            ? 'set credentials_path, or configure Application Default Credentials (gcloud auth application-default login)'
            : `check the account in ${this.options.credentials_path} and its access to the bucket`,
        detail: firstLine(info.message),
        retryAfterMs: info.retryAfterMs ?? (info.status === 429 ? rateLimitBackoffMs() : undefined),
      },
      cause,
    );
  }
}

/** GCS's answer to replacing or deleting an object its retention policy still holds. */
const RETENTION_REFUSAL = /retentionPolicyNotMet|retention policy|object retention/i;

/**
 * GCS answers 429 without Retry-After when one object is written more than about once a second
 * (refs are one object each), and asks for exponential backoff from 1 s: a shorter wait only earns
 * another 429. Jittered over a second so contending writers do not come back together.
 */
function rateLimitBackoffMs(): number {
  return 1000 + Math.floor(Math.random() * 1000);
}

interface RawObject {
  name: string;
  size?: string | number;
  generation?: string | number;
  metadata?: unknown;
}

interface GcsErrorInfo {
  status: number | undefined;
  /** A system or library error code such as ECONNREFUSED. */
  code: string | undefined;
  message: string;
  /** Everything textual the error carries, for recognising GCS's messages. */
  text: string;
  retryAfterMs: number | undefined;
  /** The OAuth error of a failed token request (invalid_grant, …). */
  oauthError: string | undefined;
}

const RESPONSE = Symbol('gcs-last-response');

function withResponse(err: unknown, response: unknown): unknown {
  if (isRecord(err) && response !== undefined)
    (err as Record<symbol, unknown>)[RESPONSE] = response;
  return err;
}

/**
 * The SDK fails in several shapes — ApiError (code = HTTP status), GaxiosError (status, response),
 * a bare `{ code, message, errors }` from a resumable session, fetch errors with a system code
 * somewhere in the cause chain — so each field is looked for wherever it can live.
 */
function gcsErrorInfo(err: unknown): GcsErrorInfo {
  const e = isRecord(err) ? err : {};
  const response = isRecord(e.response)
    ? e.response
    : isRecord((e as Record<symbol, unknown>)[RESPONSE])
      ? ((e as Record<symbol, unknown>)[RESPONSE] as Record<string, unknown>)
      : undefined;
  const message = typeof e.message === 'string' ? e.message : String(err);

  let status: number | undefined;
  if (typeof e.code === 'number') status = e.code;
  else if (typeof e.status === 'number') status = e.status;
  else if (response && typeof response.status === 'number') status = response.status;
  else if (response && typeof response.statusCode === 'number') status = response.statusCode;
  else {
    const m = /\bstatus: (\d{3})\b/.exec(message);
    if (m) status = Number(m[1]);
  }

  const code = networkCodeOf(err);

  const data = response && isRecord(response.data) ? response.data : undefined;
  const oauthError = data && typeof data.error === 'string' ? data.error : undefined;
  // A token endpoint failure is not a storage response, whatever its status.
  if (oauthError !== undefined) status = undefined;

  let text = message;
  try {
    text += ` ${JSON.stringify(e.errors ?? '')} ${typeof response?.body === 'string' ? response.body : ''} ${data ? JSON.stringify(data) : ''}`;
  } catch {
    // Circular structures: the message alone will do.
  }

  return {
    status,
    code,
    message,
    text,
    retryAfterMs: parseRetryAfter(headerOf(response, 'retry-after')),
    oauthError,
  };
}

function headerOf(response: Record<string, unknown> | undefined, name: string): string | undefined {
  const headers = response?.headers;
  if (!isRecord(headers)) return undefined;
  if (typeof headers.get === 'function') {
    const value: unknown = (headers.get as (n: string) => unknown).call(headers, name);
    return typeof value === 'string' ? value : undefined;
  }
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() === name)
      return Array.isArray(v) ? String(v[0]) : typeof v === 'string' ? v : undefined;
  }
  return undefined;
}

function scalar(value: unknown): string | number | undefined {
  return typeof value === 'string' || typeof value === 'number' ? value : undefined;
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? '';
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

const CREDENTIAL_TYPES = new Set([
  'service_account',
  'authorized_user',
  'external_account',
  'external_account_authorized_user',
  'impersonated_service_account',
]);

/**
 * Fails early, and without quoting the file, on what the auth library would otherwise report
 * deep inside the first request (or, for an unknown type, as a confusing fallback to other sources).
 */
async function checkCredentialsFile(path: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = isRecord(err) && typeof err.code === 'string' ? ` (${err.code})` : '';
    throw new ConfigError(`GCS credentials_path cannot be read: ${path}${code}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(`GCS credentials_path is not a JSON credentials file: ${path}`);
  }
  const type = isRecord(parsed) ? parsed.type : undefined;
  if (typeof type !== 'string' || !CREDENTIAL_TYPES.has(type)) {
    throw new ConfigError(`GCS credentials_path has no supported "type": ${path}`, {
      hint: `expected one of ${[...CREDENTIAL_TYPES].join(', ')}`,
    });
  }
}

function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (trimmed.includes('//') || /(^|\/)\.\.?(\/|$)/.test(trimmed))
    throw new ConfigError(`GCS prefix ${JSON.stringify(prefix)} is not a clean folder path`);
  return trimmed ? `${trimmed}/` : '';
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/**
 * Whether requests to a custom endpoint carry credentials: always with a credentials file, and with
 * Application Default Credentials for every endpoint but a local test server (emulators on the
 * loopback expect anonymous requests). A regional `*.rep.googleapis.com` or a Private Service
 * Connect name is a real service and refuses anonymous requests.
 */
export function authenticatesEndpoint(
  endpoint: string,
  credentialsPath: string | undefined,
): boolean {
  return credentialsPath !== undefined || !LOOPBACK_HOSTS.has(new URL(endpoint).hostname);
}

function isGoogleHost(endpoint: string): boolean {
  const host = new URL(endpoint).hostname;
  return host === 'googleapis.com' || host.endsWith('.googleapis.com');
}

function normalizeEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ConfigError(`GCS endpoint is not a URL: ${JSON.stringify(endpoint).slice(0, 200)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new ConfigError(`GCS endpoint must be http(s): ${url.protocol}`);
  if (url.username || url.password || url.search)
    throw new ConfigError('GCS endpoint must not carry credentials or a query string');
  return url.toString().replace(/\/+$/, '');
}

/** GCS's naming rules (without the domain-name form), checked here for a clearer message than a 400. */
function validateBucketName(name: string): void {
  if (
    typeof name !== 'string' ||
    !/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/.test(name) ||
    name.includes('..') ||
    name.startsWith('goog')
  ) {
    throw new ConfigError(`invalid GCS bucket name ${JSON.stringify(name)}`, {
      hint: '3-63 characters: lowercase letters, digits, dots, hyphens and underscores, starting and ending with a letter or digit',
    });
  }
}
