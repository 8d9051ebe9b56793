/**
 * The `http(s)://host:port/<repo>` remote: the Store contract spoken to a `mediagit server` over
 * the protocol of docs/protocol.md, on keep-alive connections (./transport.ts) so parallel
 * transfers reuse a handful of them.
 *
 * Every answer is mapped to the typed errors the rest of mediagit already handles (see
 * ./errors.ts), so retries, non-fast-forward reports and "not found" work unchanged. The token
 * goes only into the Authorization header: never into a URL, a message or a log line.
 */
import {
  LockedError,
  MediagitError,
  NotFoundError,
  StoreUnavailableError,
} from '../../errors/index.js';
import { kindFromCode, type ObjectKind } from '../object-kinds.js';
import {
  assertCreatableKey,
  assertValidKey,
  assertValidRefName,
  assertValidRefTarget,
  isValidKey,
  isValidRefName,
  type GcLeaseAnswer,
  type HistoryRequest,
  type ListedKey,
  type LockRecord,
  type LockVerification,
  type NegotiateAnswer,
  type NegotiateRequest,
  type OperationOptions,
  type PackOptions,
  type RefUpdate,
  type RefValue,
  type Store,
  type StoreCapabilities,
  type SwapOptions,
} from '../store.js';
import { abortableSleep, throwIfAborted, type Sleep } from '../wrappers/operations.js';
import { mapLimit } from '../../util/limit.js';
import {
  ProtocolError,
  configError,
  networkError,
  parseErrorBody,
  parseRetryAfter,
  statusError,
  type ErrorContext,
} from './errors.js';
import {
  decodePack,
  decodePackPrefix,
  encodePackPieces,
  packRecordKey,
  packSize,
  PackFormatError,
  type PackRecord,
} from './pack.js';
import type { Dispatcher } from 'undici';
import type { PresignedReads, PresignedStats } from './presigned.js';
import { HttpTransport, type HttpMethod, type TransportResponse } from './transport.js';

/** Protocol limits (docs/protocol.md): IDs per check or fetch request. */
export const MAX_IDS_PER_REQUEST = 10_000;
export const DEFAULT_PACK_MAX_OBJECTS = 1024;
/**
 * No bigger than the largest chunk of the default chunking (4 MiB): then no request of a push is
 * bigger than its biggest chunk, and a link or proxy that drops long uploads (every connection
 * reset after 8 MiB, say) passes packs whenever it passes chunks.
 */
export const DEFAULT_PACK_MAX_BYTES = 4 * 1024 * 1024;
/** Packs of one putMany sent at once: a batch of two packs still costs one round trip. */
const PACKS_IN_FLIGHT = 2;
const FETCH_BATCH = 1000;
const LIST_PAGE = 1000;
const DEFAULT_CONNECTIONS = 16;
/** Keys per POST objects/urls (the server takes up to 1000). */
const MAX_URLS_PER_REQUEST = 1000;
const DEFAULT_RATE_LIMIT_RETRIES = 8;
const DEFAULT_MAX_RETRY_AFTER_MS = 60_000;
/** Wait used for a 429 that gave no Retry-After. */
const DEFAULT_RATE_LIMIT_WAIT_MS = 1000;

/**
 * What a server may answer, whatever it declares (docs/protocol.md "Limits"): a hostile or broken
 * server must not be able to make the client buffer gigabytes. JSON answers (ref listings, check
 * results, listing pages) are at most 16 MiB; error bodies are read up to 64 KiB and the rest is
 * dropped; key files and metadata at most 1 MiB, as the server stores them; objects and fetched
 * packs at most `maxObjectBytes`.
 */
export const MAX_JSON_ANSWER_BYTES = 16 * 1024 * 1024;
export const MAX_ERROR_ANSWER_BYTES = 64 * 1024;
export const MAX_SMALL_FILE_ANSWER_BYTES = 1024 * 1024;
export const DEFAULT_MAX_OBJECT_BYTES = 64 * 1024 * 1024;

const REPO_SEGMENT = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const RESERVED_REPOS = new Set(['health', 'metrics', 'api']);

export type { LockRecord, LockVerification };

export interface HttpStoreOptions {
  /** `http(s)://host[:port]`. */
  readonly origin: string;
  /** Repository name on the server: `name` or `group/name`. */
  readonly repo: string;
  /** The bearer token, or how to get it on first use (the caller's token lookup). */
  readonly token?: string | (() => Promise<string | undefined>);
  /** Keep-alive connections to the server. Default 16. */
  readonly connections?: number;
  /**
   * 429 answers absorbed here — waiting out Retry-After, with every other request of this store
   * waiting too — before a StoreUnavailableError reaches the caller (whose RetryingStore then
   * waits again). Default 8; 0 surfaces the first 429.
   */
  readonly rateLimitRetries?: number;
  /** Ceiling on a server's Retry-After. Default 60 s. */
  readonly maxRetryAfterMs?: number;
  /** Longest silence while waiting for headers or between body bytes. Default 120 s. */
  readonly readTimeoutMs?: number;
  /** Longest wait for a TCP (and TLS) connection. Default 10 s. */
  readonly connectTimeoutMs?: number;
  readonly packMaxObjects?: number;
  readonly packMaxBytes?: number;
  /**
   * Largest object (and fetched pack) accepted in one answer. Default 64 MiB: four times the
   * server's default max_object_bytes; a server configured above it needs this raised.
   */
  readonly maxObjectBytes?: number;
  /** For tests: reach the bucket of presigned downloads through this dispatcher. */
  readonly bucketDispatcher?: Dispatcher;
  readonly sleep?: Sleep;
}

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  /** The answer was longer than the call's limit and only its first `limit` bytes were read (`truncate` calls). */
  readonly truncated: boolean;
}

interface Call {
  readonly method: HttpMethod;
  /** Below the repository: `chunks/<oid>`, `refs`, `locks/verify`… */
  readonly path: string;
  readonly query?: Record<string, string>;
  readonly json?: unknown;
  /** A body, or a body's pieces written one after another (a pack: headers between records). */
  readonly binary?: Uint8Array | readonly Buffer[];
  /** For messages: "GET chunks/…". */
  readonly action: string;
  readonly key?: string;
  readonly signal?: AbortSignal | undefined;
  /** Most bytes a successful answer may have; MAX_JSON_ANSWER_BYTES unless given. */
  readonly limit?: number;
  /** Over the limit, keep the first `limit` bytes (and say so) instead of failing: packs, whose complete records are still good. */
  readonly truncate?: boolean;
  /** Headers of this call beyond the ones every call carries. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Validates `name` or `group/name` as the server will (docs/protocol.md "Names"). */
export function assertValidRepoName(repo: string): void {
  const parts = repo.split('/');
  if (
    repo === '' ||
    parts.length > 2 ||
    !parts.every((p) => REPO_SEGMENT.test(p)) ||
    RESERVED_REPOS.has(parts[0]!)
  ) {
    throw configError(
      repo === ''
        ? 'a server remote URL needs the repository name after the host (http(s)://host/<repo>)'
        : `'${repo}' is not a valid repository name for a mediagit server`,
      'repository names are lowercase letters, digits, ".", "_" and "-" (at most 64), optionally as group/name; health, metrics and api are reserved',
    );
  }
}

let trustedCas: string[] | undefined;

/**
 * Node's bundled CAs plus NODE_EXTRA_CA_CERTS ("default") plus the operating system's store, so
 * a company CA installed system-wide works as it does for curl or a browser.
 */
function trustedCertificates(): string[] | undefined {
  if (trustedCas) return trustedCas;
  // Taken here, not imported: node:tls is the TLS stack, which an http:// remote never loads.
  const { getCACertificates } = process.getBuiltinModule('node:tls');
  if (typeof getCACertificates !== 'function') return undefined;
  const all = new Set<string>(getCACertificates('default'));
  try {
    for (const cert of getCACertificates('system')) all.add(cert);
  } catch {
    // No readable system store (minimal containers): the defaults still apply.
  }
  trustedCas = [...all];
  return trustedCas;
}

/** The kind a stored envelope declares (byte 5), or undefined when `data` is not an envelope. */
function envelopeKind(data: Uint8Array): ObjectKind | undefined {
  if (
    data.byteLength < 16 ||
    data[0] !== 0x4d ||
    data[1] !== 0x47 ||
    data[2] !== 0x4f ||
    data[3] !== 0x42
  )
    return undefined;
  return kindFromCode(data[5]!);
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function isLockRecord(value: unknown): value is LockRecord {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v['id'] === 'string' &&
    typeof v['path'] === 'string' &&
    typeof v['owner'] === 'string' &&
    typeof v['locked_at'] === 'string'
  );
}

function lockList(value: unknown, field: string): LockRecord[] {
  if (!Array.isArray(value))
    throw new ProtocolError(`the server's lock answer has no '${field}' list`);
  return value.filter(isLockRecord);
}

/** A PUT of one key's bytes, as put and create send it. */
function putCall(key: string, data: Uint8Array, options: OperationOptions | undefined): Call {
  return {
    method: 'PUT',
    path: key,
    binary: data,
    action: `PUT ${key}`,
    key,
    signal: options?.signal,
  };
}

/** Carries a ref update on a pack upload (docs/protocol.md "Pack with a ref update"). */
const REF_UPDATE_HEADER = 'mediagit-ref-update';
/** A first push's packs carry the descriptor (docs/protocol.md "Packs"). */
const DESCRIPTOR_HEADER = 'mediagit-descriptor';

/**
 * Entries split into what a pack can carry and what goes by plain PUT: only stored envelopes
 * travel in packs, since the pack format names each record's kind (key files, meta and bytes
 * that are not an envelope do not). Repeated keys are sent once.
 */
function packable(entries: readonly { key: string; data: Uint8Array }[]): {
  records: PackRecord[];
  singles: { key: string; data: Uint8Array }[];
} {
  for (const { key } of entries) assertValidKey(key);
  const records: PackRecord[] = [];
  const singles: { key: string; data: Uint8Array }[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    if (seen.has(entry.key)) continue;
    seen.add(entry.key);
    const [space, oid] = entry.key.split('/') as [string, string];
    const declared = envelopeKind(entry.data);
    const kind: ObjectKind | undefined =
      space === 'chunks'
        ? 'chunk'
        : space === 'objects' && declared !== undefined && declared !== 'chunk'
          ? declared
          : undefined;
    if (
      kind === undefined ||
      (space === 'chunks' && declared !== undefined && declared !== 'chunk')
    )
      singles.push(entry);
    else records.push({ kind, oid, data: entry.data });
  }
  return { records, singles };
}

/** The `error` code of a server's error answer, if it has one. */
function errorCodeOf(body: Buffer): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    const code = (parsed as { error?: unknown } | null)?.error;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

export class HttpStore implements Store {
  readonly description: string;
  /** Packs carry many objects per request, and the server keeps locks. */
  readonly capabilities: StoreCapabilities = {
    freshBuffers: false,
    batch: {
      putMany: (entries, options) => this.putMany(entries, options),
      getMany: (keys, options) => this.getMany(keys, options),
      putManyThenSwap: (entries, update, options) => this.putManyThenSwap(entries, update, options),
    },
    locks: {
      createLock: (path, options) => this.createLock(path, options),
      listLocks: (prefix, options) => this.listLocks(prefix, options),
      verifyLocks: (options) => this.verifyLocks(options),
      unlock: (id, force, options) => this.unlock(id, force, options),
    },
    negotiate: {
      negotiate: (request, options) => this.negotiate(request, options),
      history: (request, options) => this.history(request, options),
    },
    readAhead: {
      expect: (keys) => {
        const chunks = keys.filter((k) => k.startsWith('chunks/'));
        // The offer's module may still be loading: the hint waits for it, the caller does not.
        if (this.presigned !== null) this.presigned.expect(chunks);
        else void this.presignLoading?.then(() => this.presigned?.expect(chunks));
      },
    },
    warmConnections: (count) => this.transport.warm(count),
  };
  /** `http(s)://host[:port]/<repo>`, the URL `mediagit login` takes. */
  readonly url: string;
  readonly origin: string;
  readonly repo: string;
  private readonly transport: HttpTransport;
  private readonly tokenSource: string | (() => Promise<string | undefined>) | undefined;
  private tokenPromise: Promise<string | undefined> | undefined;
  private readonly rateLimitRetries: number;
  private readonly maxRetryAfterMs: number;
  private readonly readTimeoutMs: number;
  private readonly packMaxObjects: number;
  private readonly packMaxBytes: number;
  private readonly maxObjectBytes: number;
  private readonly sleep: Sleep;
  /** False once the server said it has no negotiate endpoint: the version-1 calls from then on. */
  private negotiates = true;
  /** False once the server said it has no history endpoint (or cannot read this repository's). */
  private histories = true;
  /** Set by a 429: no request of this store leaves before then, so a burst backs off as one. */
  private pausedUntil = 0;
  /**
   * Objects whose upload failed: the server may have stored them all the same (the reply was
   * lost, the connection reset after the last byte, the server killed after storing; or, in a
   * batch, the packs before the one that failed). The next upload of such a key — the retry —
   * first asks the server, and sends only what it lacks. Emptied as they are settled.
   */
  private readonly unsettled = new Set<string>();
  private closed = false;
  /** Direct downloads from the server's bucket, once its negotiate answer offered them. */
  private presigned: PresignedReads | null = null;
  /**
   * Loading the direct-download client, once a server offered it. Loaded only then: it brings a
   * client library whose start-up every other command would pay.
   */
  private presignLoading: Promise<void> | null = null;
  private readonly connections: number;
  private readonly connectTimeoutMs: number;
  private readonly presignDispatcher: Dispatcher | undefined;

  constructor(options: HttpStoreOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.origin);
    } catch {
      throw configError(`'${options.origin}' is not a valid server URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw configError(`'${parsed.protocol}' is not http: or https:`);
    if (parsed.username || parsed.password)
      throw configError(
        'credentials do not belong in the URL',
        "use 'mediagit login' or MEDIAGIT_TOKEN",
      );
    assertValidRepoName(options.repo);
    this.origin = parsed.origin;
    this.repo = options.repo;
    this.url = `${this.origin}/${this.repo}`;
    this.description = this.url;
    this.tokenSource = options.token;
    this.rateLimitRetries = Math.max(
      0,
      Math.floor(options.rateLimitRetries ?? DEFAULT_RATE_LIMIT_RETRIES),
    );
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
    this.readTimeoutMs = options.readTimeoutMs ?? 120_000;
    const connectTimeout = options.connectTimeoutMs ?? 10_000;
    this.connectTimeoutMs = connectTimeout;
    this.connections = options.connections ?? DEFAULT_CONNECTIONS;
    this.presignDispatcher = options.bucketDispatcher;
    this.packMaxObjects = Math.max(1, options.packMaxObjects ?? DEFAULT_PACK_MAX_OBJECTS);
    this.packMaxBytes = Math.max(1024, options.packMaxBytes ?? DEFAULT_PACK_MAX_BYTES);
    this.maxObjectBytes = Math.max(1024, options.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES);
    this.sleep = options.sleep ?? abortableSleep;
    this.transport = new HttpTransport({
      origin: this.origin,
      connections: options.connections ?? DEFAULT_CONNECTIONS,
      connectTimeoutMs: connectTimeout,
      readTimeoutMs: this.readTimeoutMs,
      ca: parsed.protocol === 'https:' ? trustedCertificates() : undefined,
    });
  }

  // ---- transport ---------------------------------------------------------------------------

  private token(): Promise<string | undefined> {
    if (this.tokenPromise) return this.tokenPromise;
    const source = this.tokenSource;
    this.tokenPromise = typeof source === 'function' ? source() : Promise.resolve(source);
    // A failed lookup (say, a credentials file with a bad mode) is reported every time, not cached away.
    this.tokenPromise.catch(() => {
      this.tokenPromise = undefined;
    });
    return this.tokenPromise;
  }

  private async context(call: Pick<Call, 'action' | 'key'>): Promise<ErrorContext> {
    const token = await this.token().catch(() => undefined);
    return {
      action: call.action,
      where: this.url,
      loginUrl: this.url,
      authenticated: token !== undefined,
      secrets: token ? [token] : [],
      ...(call.key !== undefined ? { key: call.key } : {}),
    };
  }

  /** Sends one request and reads the whole answer, whatever its status; only the network can make it throw. */
  private async send(call: Call): Promise<Reply> {
    const token = await this.token();
    const headers: Record<string, string> = {
      'user-agent': 'mediagit-client/1',
      accept: 'application/json, application/octet-stream',
      ...call.headers,
    };
    if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
    let body: Buffer | string | readonly Buffer[] | undefined;
    if (call.json !== undefined) {
      body = JSON.stringify(call.json);
      headers['content-type'] = 'application/json';
    } else if (call.binary !== undefined) {
      body = Array.isArray(call.binary) ? call.binary : asBuffer(call.binary as Uint8Array);
      headers['content-type'] = 'application/octet-stream';
    } else if (call.method === 'PUT' || call.method === 'POST') {
      body = '';
    }
    const search = call.query ? `?${new URLSearchParams(call.query).toString()}` : '';
    try {
      const response = await this.transport.request({
        path: `/${this.repo}/${call.path}${search}`,
        method: call.method,
        headers,
        body,
        signal: call.signal,
      });
      return await this.readAnswer(call, response);
    } catch (err) {
      if (call.signal?.aborted || err instanceof MediagitError) throw err;
      throw networkError(err, this.url, call.action);
    }
  }

  /**
   * Reads an answer's body within the call's limit, never more: a Content-Length over it is
   * refused before a byte is read, and a body without one is cut off at the limit. A body that
   * ends short of its Content-Length was cut in transit (retriable).
   */
  private async readAnswer(call: Call, response: TransportResponse): Promise<Reply> {
    const { statusCode: status, headers } = response;
    const ok = status >= 200 && status < 300;
    // An error's message is all we use of its body: the rest of an oversize one is dropped.
    const truncate = ok ? call.truncate === true : true;
    const limit = ok ? (call.limit ?? MAX_JSON_ANSWER_BYTES) : MAX_ERROR_ANSWER_BYTES;
    const lengthHeader = headers['content-length'];
    const declaredText = Array.isArray(lengthHeader) ? lengthHeader[0] : lengthHeader;
    const declared =
      declaredText !== undefined && /^\d{1,16}$/.test(declaredText)
        ? Number(declaredText)
        : undefined;
    const tooLarge = (what: string): ProtocolError =>
      new ProtocolError(
        `${this.url} answered ${call.action} with ${what}, over the client's limit of ${limit} bytes`,
        {
          status,
          hint: 'a server does not send answers this large; check that the remote URL points at a mediagit server you trust',
        },
      );
    const body = response.body;
    if (declared !== undefined && declared > limit && !truncate) {
      body.destroy();
      throw tooLarge(`a body of ${declared} bytes`);
    }
    const parts: Buffer[] = [];
    let received = 0;
    let truncated = false;
    for await (const piece of body as AsyncIterable<Buffer>) {
      const room = limit - received;
      if (piece.length > room) {
        if (!truncate) {
          body.destroy();
          throw tooLarge('more bytes than that');
        }
        if (room > 0) parts.push(piece.subarray(0, room));
        received = limit;
        truncated = true;
        body.destroy();
        break;
      }
      parts.push(piece);
      received += piece.length;
    }
    if (!truncated && declared !== undefined && received !== declared)
      throw new StoreUnavailableError(
        `${this.url} cut its answer to ${call.action} short: ${received} of ${declared} bytes`,
      );
    return { status, headers, body: Buffer.concat(parts, received), truncated };
  }

  /**
   * `send` with the rate limiter obeyed: waits while the store is paused, and absorbs up to
   * `rateLimitRetries` 429s (pausing everyone for Retry-After) before letting one through.
   */
  /** A pack answer's records (its whole records only when the server cut it at our limit). */
  private packRecords(reply: Reply): PackRecord[] {
    try {
      return reply.truncated ? decodePackPrefix(reply.body) : decodePack(reply.body);
    } catch (err) {
      if (err instanceof PackFormatError)
        throw new StoreUnavailableError(`${this.url} sent a damaged pack (${err.message})`, {
          cause: err,
        });
      throw err;
    }
  }

  private async exchange(call: Call): Promise<Reply> {
    for (let attempt = 0; ; attempt++) {
      // Re-checked after every wait: another request's 429 may have pushed the pause further.
      for (let until = this.pausedUntil; until > Date.now(); until = this.pausedUntil) {
        await this.sleep(until - Date.now(), call.signal);
        if (this.pausedUntil <= until) break;
      }
      throwIfAborted(call.signal);
      const reply = await this.send(call);
      if (reply.status !== 429) return reply;
      const after = Math.min(
        parseRetryAfter(reply.headers['retry-after']) ?? DEFAULT_RATE_LIMIT_WAIT_MS,
        this.maxRetryAfterMs,
      );
      this.pausedUntil = Math.max(this.pausedUntil, Date.now() + after);
      if (attempt >= this.rateLimitRetries) return reply;
    }
  }

  private async fail(call: Call, reply: Reply): Promise<Error> {
    return statusError(reply.status, reply.headers, reply.body, await this.context(call));
  }

  /** Runs `call`; answers with one of `ok` statuses are returned, every other status is thrown as its typed error. */
  private async expect(call: Call, ok: readonly number[]): Promise<Reply> {
    const reply = await this.exchange(call);
    if (ok.includes(reply.status)) return reply;
    throw await this.fail(call, reply);
  }

  private parseJson(reply: Reply, call: Call): Record<string, unknown> {
    try {
      const parsed: unknown = JSON.parse(reply.body.toString('utf8'));
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
        return parsed as Record<string, unknown>;
    } catch {
      // fall through
    }
    throw new ProtocolError(
      `${this.url} answered ${call.action} with a body that is not the expected JSON object`,
      { status: reply.status },
    );
  }

  // ---- objects -----------------------------------------------------------------------------

  async get(key: string, options?: OperationOptions): Promise<Buffer> {
    assertValidKey(key);
    // Chunks only: structured objects are small, and one is read alone only while a fetch walks
    // history, where a URL first would cost a round trip more than it saves.
    if (this.presignLoading !== null && key.startsWith('chunks/')) await this.presignLoading;
    if (this.presigned !== null && key.startsWith('chunks/')) {
      const direct = await this.presigned.get(key, options?.signal);
      if (direct !== null) return direct;
    }
    const call: Call = {
      method: 'GET',
      path: key,
      action: `GET ${key}`,
      key,
      signal: options?.signal,
      limit: this.answerLimit(key),
    };
    return (await this.expect(call, [200])).body;
  }

  /** Objects up to maxObjectBytes; key files and metadata as the server stores them (≤ 1 MiB). */
  private answerLimit(key: string): number {
    return key.startsWith('chunks/') || key.startsWith('objects/')
      ? this.maxObjectBytes
      : MAX_SMALL_FILE_ANSWER_BYTES;
  }

  async put(key: string, data: Uint8Array, options?: OperationOptions): Promise<void> {
    assertValidKey(key);
    if ((await this.landedBefore([key], options)).has(key)) return;
    await this.settling([key], this.expect(putCall(key, data, options), [200, 201, 204]));
  }

  /**
   * The server's PUT of a key file or metadata is create-only itself (docs/protocol.md): 201 when
   * this request stored it, 200 when the same bytes were there, 409 when different ones were. A
   * 409 can also mean "no descriptor yet", so it counts as "existed" only when the key is there.
   */
  async create(key: string, data: Uint8Array, options?: OperationOptions): Promise<boolean> {
    assertCreatableKey(key);
    const call = putCall(key, data, options);
    const reply = await this.exchange(call);
    if (reply.status === 201) return true;
    if (reply.status === 200) return false;
    if (reply.status === 409 && (await this.exists(key, options))) return false;
    throw await this.fail(call, reply);
  }

  /** Of `keys`, those an earlier, failed upload stored after all (asked only about unsettled ones). */
  private async landedBefore(
    keys: readonly string[],
    options?: OperationOptions,
  ): Promise<Set<string>> {
    const unsure = keys.filter((k) => this.unsettled.has(k) && isObjectKey(k));
    if (unsure.length === 0) return new Set();
    const present = await this.has(unsure, options);
    const landed = new Set(unsure.filter((_, i) => present[i]));
    for (const key of landed) this.unsettled.delete(key);
    return landed;
  }

  /** Runs an upload of `keys`: settled when it succeeds, unsettled when it fails. */
  private async settling<T>(keys: readonly string[], upload: Promise<T>): Promise<T> {
    try {
      const result = await upload;
      for (const key of keys) this.unsettled.delete(key);
      return result;
    } catch (err) {
      for (const key of keys) if (isObjectKey(key)) this.unsettled.add(key);
      throw err;
    }
  }

  async has(keys: readonly string[], options?: OperationOptions): Promise<boolean[]> {
    for (const key of keys) assertValidKey(key);
    const result = new Array<boolean>(keys.length).fill(false);
    const ids: number[] = [];
    const others: number[] = [];
    keys.forEach((key, i) =>
      (key.startsWith('chunks/') || key.startsWith('objects/') ? ids : others).push(i),
    );
    for (let start = 0; start < ids.length; start += MAX_IDS_PER_REQUEST) {
      const batch = ids.slice(start, start + MAX_IDS_PER_REQUEST);
      const chunks = new Set<string>();
      const objects = new Set<string>();
      for (const i of batch) {
        const [space, oid] = keys[i]!.split('/') as [string, string];
        (space === 'chunks' ? chunks : objects).add(oid);
      }
      const call: Call = {
        method: 'POST',
        path: 'chunks/check',
        json: { chunks: [...chunks], objects: [...objects] },
        action: `check ${batch.length} objects`,
        signal: options?.signal,
      };
      const reply = await this.exchange(call);
      if (reply.status === 404) continue; // nothing pushed yet: every key is missing
      if (reply.status !== 200) throw await this.fail(call, reply);
      const body = this.parseJson(reply, call);
      const missingChunks = body['chunks'];
      const missingObjects = body['objects'];
      if (!Array.isArray(missingChunks) || !Array.isArray(missingObjects))
        throw new ProtocolError(
          `${this.url} answered a check without 'chunks' and 'objects' lists`,
        );
      const missing = new Set<string>([
        ...missingChunks.map((o) => `chunks/${String(o)}`),
        ...missingObjects.map((o) => `objects/${String(o)}`),
      ]);
      for (const i of batch) result[i] = !missing.has(keys[i]!);
    }
    if (others.length > 0) {
      let keyFiles: Set<string> | undefined;
      for (const i of others) {
        const key = keys[i]!;
        if (key.startsWith('keys/')) {
          keyFiles ??= await this.keyFileNames(options);
          result[i] = keyFiles.has(key.slice('keys/'.length));
        } else {
          result[i] = await this.exists(key, options);
        }
      }
    }
    return result;
  }

  private async keyFileNames(options?: OperationOptions): Promise<Set<string>> {
    const call: Call = { method: 'GET', path: 'keys', action: 'GET keys', signal: options?.signal };
    const reply = await this.exchange(call);
    if (reply.status === 404) return new Set();
    if (reply.status !== 200) throw await this.fail(call, reply);
    const names = this.parseJson(reply, call)['keys'];
    if (!Array.isArray(names))
      throw new ProtocolError(`${this.url} answered GET keys without a 'keys' list`);
    return new Set(names.map(String));
  }

  private async exists(key: string, options?: OperationOptions): Promise<boolean> {
    try {
      await this.get(key, options);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  async *list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey> {
    // Only the four namespaces exist; a prefix outside them needs no round trip.
    const spaces = ['chunks/', 'objects/', 'keys/', 'meta/'];
    if (!spaces.some((s) => s.startsWith(prefix) || prefix.startsWith(s))) return;
    let after: string | null = null;
    for (;;) {
      const query: Record<string, string> = { prefix, limit: String(LIST_PAGE) };
      if (after !== null) query['after'] = after;
      const call: Call = {
        method: 'GET',
        path: 'list',
        query,
        action: `list ${prefix || '(all)'}`,
        signal: options?.signal,
      };
      const reply = await this.exchange(call);
      if (reply.status === 404) return;
      if (reply.status !== 200) throw await this.fail(call, reply);
      const body = this.parseJson(reply, call);
      const entries = body['entries'];
      const next = body['next'];
      if (!Array.isArray(entries) || (next !== null && typeof next !== 'string'))
        throw new ProtocolError(`${this.url} answered a listing without 'entries' and 'next'`);
      for (const entry of entries as unknown[]) {
        if (typeof entry !== 'object' || entry === null) continue;
        const { key, size } = entry as { key?: unknown; size?: unknown };
        if (
          typeof key === 'string' &&
          typeof size === 'number' &&
          isValidKey(key) &&
          key.startsWith(prefix)
        )
          yield { key, size };
      }
      if (next === null) return;
      if (next === after)
        throw new ProtocolError(
          `${this.url} returned the same listing page twice (next=${next.slice(0, 80)})`,
        );
      after = next;
    }
  }

  async delete(key: string, options?: OperationOptions): Promise<void> {
    assertValidKey(key);
    await this.expect(
      { method: 'DELETE', path: key, action: `DELETE ${key}`, key, signal: options?.signal },
      [200, 204, 404],
    );
  }

  /**
   * Many objects in as few requests as the limits allow (POST /objects/pack). Only stored
   * envelopes travel in packs — the pack format names each record's kind — so anything else
   * (key files, meta, bytes that are not an envelope) is sent with a plain PUT.
   */
  async putMany(
    entries: readonly { key: string; data: Uint8Array }[],
    options?: PackOptions,
  ): Promise<void> {
    const { records, singles } = packable(entries);
    const pending = await this.notLanded(records, options);
    // A pack that fails leaves every object of this call unsettled, the packs sent before it
    // included, so a retry of the whole call sends only what did not land.
    await this.settling(
      pending.map((r) => packRecordKey(r)),
      this.sendPacksInOrder([...this.packBatches(pending)], options),
    );
    for (const entry of singles) await this.put(entry.key, entry.data, options);
  }

  /**
   * putMany whose last pack carries the ref update (header `Mediagit-Ref-Update`,
   * docs/protocol.md "Pack with a ref update"): the server stores the pack, then updates the
   * ref as POST /refs would, and answers both. Null when the server did not update the ref (one
   * from before it ignores the header) or there is no pack to carry it.
   */
  async putManyThenSwap(
    entries: readonly { key: string; data: Uint8Array }[],
    update: RefUpdate,
    options?: SwapOptions & PackOptions,
  ): Promise<boolean | null> {
    assertValidRefName(update.name);
    assertValidRefTarget(update.next);
    const { records, singles } = packable(entries);
    if (singles.length > 0) {
      await this.putMany(entries, options);
      return null;
    }
    const batches = [...this.packBatches(await this.notLanded(records, options))];
    const last = batches.pop();
    if (last === undefined) return null;
    const onLease = options?.onLeaseAfter;
    const header = Buffer.from(
      JSON.stringify({
        name: update.name,
        expected: update.expected
          ? { oid: update.expected.oid, version: update.expected.version }
          : null,
        next: update.next,
        end_at_next: true,
        ...(onLease ? { gc_lease: true } : {}),
      }),
    ).toString('base64url');
    const answer = await this.settling(
      [...batches, last].flat().map((r) => packRecordKey(r)),
      (async () => {
        await this.sendPacksInOrder(batches, options);
        return this.sendPack(last, options, { [REF_UPDATE_HEADER]: header });
      })(),
    );
    if (answer === null) return false;
    const ref = answer['ref'];
    // A server from before it stored the pack and left the ref alone.
    if (typeof ref !== 'object' || ref === null || (ref as { ok?: unknown }).ok !== true)
      return null;
    if (onLease) {
      const lease = this.leaseAnswer((ref as Record<string, unknown>)['gc_lease']);
      if (lease) onLease(lease);
    }
    return true;
  }

  /** The records whose upload has not been seen to land (see `unsettled`). */
  private async notLanded(
    records: readonly PackRecord[],
    options?: OperationOptions,
  ): Promise<PackRecord[]> {
    const landed = await this.landedBefore(
      records.map((r) => packRecordKey(r)),
      options,
    );
    return records.filter((r) => !landed.has(packRecordKey(r)));
  }

  /**
   * Packs of chunks go several at once, but packs that land at once land in any order, and the
   * server stores a manifest only once its chunks are there (in storage or in the same pack). So
   * the first pack that carries anything but chunks leaves only after every pack before it has
   * landed, and each pack after it waits for the one before: callers list chunks first.
   */
  private async sendPacksInOrder(batches: PackRecord[][], options?: PackOptions): Promise<void> {
    const firstStructured = batches.findIndex((batch) => batch.some((r) => r.kind !== 'chunk'));
    const parallel = firstStructured < 0 ? batches.length : firstStructured;
    await mapLimit(batches.slice(0, parallel), PACKS_IN_FLIGHT, (batch) =>
      this.sendPack(batch, options),
    );
    for (const batch of batches.slice(parallel)) await this.sendPack(batch, options);
  }

  private *packBatches(records: readonly PackRecord[]): Iterable<PackRecord[]> {
    let batch: PackRecord[] = [];
    let bytes = 0;
    for (const record of records) {
      const size = record.data.byteLength + 37;
      if (
        batch.length > 0 &&
        (batch.length >= this.packMaxObjects || bytes + size > this.packMaxBytes)
      ) {
        yield batch;
        batch = [];
        bytes = 0;
      }
      batch.push(record);
      bytes += size;
    }
    if (batch.length > 0) yield batch;
  }

  /**
   * One pack. With `headers` (a ref update riding on it): the answer's JSON, or null for a ref
   * conflict (409 `ref_conflict`: the pack is stored, the ref had moved).
   */
  private async sendPack(
    records: PackRecord[],
    options?: PackOptions,
    headers?: Record<string, string>,
  ): Promise<Record<string, unknown> | null> {
    const pack = encodePackPieces(records);
    const descriptor = options?.descriptor;
    const call: Call = {
      method: 'POST',
      path: 'objects/pack',
      binary: pack,
      action: `upload a pack of ${records.length} objects (${packSize(records)} bytes)`,
      signal: options?.signal,
      ...(headers || descriptor
        ? {
            headers: {
              ...headers,
              ...(descriptor
                ? { [DESCRIPTOR_HEADER]: Buffer.from(descriptor).toString('base64url') }
                : {}),
            },
          }
        : {}),
    };
    const reply = await this.exchange(call);
    if (reply.status === 200 || reply.status === 201)
      return headers ? this.parseJson(reply, call) : {};
    if (headers && reply.status === 409 && errorCodeOf(reply.body) === 'ref_conflict') return null;
    // A server with a smaller pack limit than ours: halve until it fits (a single object that
    // still does not fit is a real 413). The ref update, if any, rides on the last half.
    if (reply.status === 413 && records.length > 1) {
      const half = Math.ceil(records.length / 2);
      await this.sendPack(records.slice(0, half), options);
      return this.sendPack(records.slice(half), options, headers);
    }
    const err = await this.fail(call, reply);
    throw err;
  }

  /** Many objects by key in few requests (POST /objects/fetch); absent keys are left out of the map. */
  async getMany(keys: readonly string[], options?: OperationOptions): Promise<Map<string, Buffer>> {
    for (const key of keys) assertValidKey(key);
    const out = new Map<string, Buffer>();
    const wanted = [...new Set(keys)];
    const packable = wanted.filter((k) => k.startsWith('chunks/') || k.startsWith('objects/'));
    const others = wanted.filter((k) => !k.startsWith('chunks/') && !k.startsWith('objects/'));
    for (let start = 0; start < packable.length; start += FETCH_BATCH) {
      const batch = packable.slice(start, start + FETCH_BATCH);
      const asked = new Set(batch);
      const call: Call = {
        method: 'POST',
        path: 'objects/fetch',
        json: { want: batch },
        action: `fetch ${batch.length} objects`,
        signal: options?.signal,
        // A pack over the limit is read up to it: its complete records are kept, and whatever
        // did not fit is left out, for the caller to fetch one by one.
        limit: this.maxObjectBytes,
        truncate: true,
      };
      const reply = await this.exchange(call);
      if (reply.status === 404) continue;
      if (reply.status !== 200) throw await this.fail(call, reply);
      const records = this.packRecords(reply);
      for (const record of records) {
        // Keys are what we asked for; anything else in the pack is ignored rather than trusted.
        const key = packRecordKey(record);
        if (asked.has(key)) out.set(key, asBuffer(record.data));
        else if (record.kind !== 'chunk' && asked.has(`chunks/${record.oid}`))
          out.set(`chunks/${record.oid}`, asBuffer(record.data));
      }
    }
    for (const key of others) {
      try {
        out.set(key, await this.get(key, options));
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    return out;
  }

  // ---- refs --------------------------------------------------------------------------------

  private async refsUnder(
    prefix: string,
    options?: OperationOptions,
  ): Promise<Map<string, RefValue>> {
    const call: Call = {
      method: 'GET',
      path: 'refs',
      query: { prefix },
      action: `list refs ${prefix}`,
      signal: options?.signal,
    };
    const reply = await this.exchange(call);
    if (reply.status === 404) return new Map();
    if (reply.status !== 200) throw await this.fail(call, reply);
    return this.refMap(this.parseJson(reply, call)['refs'], prefix);
  }

  /** A `{"<name>":{"oid","version"}}` answer as a map, keeping only valid refs under `prefix`. */
  private refMap(refs: unknown, prefix: string): Map<string, RefValue> {
    if (typeof refs !== 'object' || refs === null || Array.isArray(refs))
      throw new ProtocolError(`${this.url} answered a ref listing without a 'refs' object`);
    const out = new Map<string, RefValue>();
    for (const [name, value] of Object.entries(refs as Record<string, unknown>)) {
      if (!name.startsWith(prefix) || !isValidRefName(name)) continue;
      const parsed = this.refValue(value);
      if (parsed) out.set(name, parsed);
    }
    return out;
  }

  /** `{"oid","version"}` from an answer; undefined when it is not one. */
  private refValue(value: unknown): RefValue | undefined {
    if (typeof value !== 'object' || value === null) return undefined;
    const { oid, version } = value as { oid?: unknown; version?: unknown };
    if (typeof oid !== 'string' || !/^[0-9a-f]{64}$/.test(oid)) return undefined;
    return {
      oid,
      version:
        typeof version === 'string' ? version : typeof version === 'number' ? String(version) : oid,
    };
  }

  async readRef(name: string, options?: OperationOptions): Promise<RefValue | null> {
    assertValidRefName(name);
    return (await this.refsUnder(name, options)).get(name) ?? null;
  }

  async listRefs(prefix: string, options?: OperationOptions): Promise<Map<string, RefValue>> {
    return this.refsUnder(prefix, options);
  }

  async compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options?: SwapOptions,
  ): Promise<boolean> {
    assertValidRefName(name);
    assertValidRefTarget(next);
    const onLease = options?.onLeaseAfter;
    const json = {
      name,
      expected: expected ? { oid: expected.oid, version: expected.version } : null,
      next,
      // A server from before it ignores the field and answers without the lease.
      ...(onLease ? { gc_lease: true } : {}),
    };
    const call: Call = {
      method: 'POST',
      path: 'refs',
      json,
      action: `update ${name}`,
      signal: options?.signal,
    };
    const reply = await this.exchange(call);
    if (reply.status === 200 || reply.status === 201 || reply.status === 204) {
      if (onLease && reply.status === 200) {
        const lease = this.leaseAnswer(this.parseJson(reply, call)['gc_lease']);
        if (lease) onLease(lease);
      }
      return true;
    }
    if (reply.status === 409) return false;
    throw await this.fail(call, reply);
  }

  // ---- negotiate ---------------------------------------------------------------------------

  /**
   * POST /negotiate: refs, descriptor, locks, key names, the gc lease and a first existence check
   * in one round trip. A server from before it answers 400 (no such endpoint), as every version-1
   * server answers an unknown URL: null then, and for the rest of this store's life, so the
   * caller asks with the separate calls and an old server costs one extra round trip per command.
   */
  async negotiate(
    request: NegotiateRequest,
    options?: OperationOptions,
  ): Promise<NegotiateAnswer | null> {
    if (!this.negotiates) return null;
    const check = request.check ?? [];
    if (check.length > MAX_IDS_PER_REQUEST)
      throw new RangeError(`negotiate checks at most ${MAX_IDS_PER_REQUEST} keys`);
    const chunks: string[] = [];
    const objects: string[] = [];
    for (const key of check) {
      assertValidKey(key);
      const [space, oid] = key.split('/') as [string, string];
      if (space === 'chunks') chunks.push(oid);
      else if (space === 'objects') objects.push(oid);
      else throw new TypeError(`negotiate checks only chunks/ and objects/ keys, not ${key}`);
    }
    const call: Call = {
      method: 'POST',
      path: 'negotiate',
      json: {
        ...(request.refs !== undefined ? { refs: request.refs } : {}),
        ...(request.check !== undefined ? { check: { chunks, objects } } : {}),
        ...(request.locks ? { locks: true } : {}),
        ...(request.keys ? { keys: true } : {}),
        ...(request.gcLease ? { gc_lease: true } : {}),
      },
      action: 'negotiate',
      signal: options?.signal,
    };
    const reply = await this.exchange(call);
    if (reply.status === 400) {
      this.negotiates = false;
      return null;
    }
    if (reply.status !== 200) throw await this.fail(call, reply);
    const body = this.parseJson(reply, call);
    const bad = (what: string): ProtocolError =>
      new ProtocolError(`${this.url} answered negotiate with ${what}`);
    const answer: {
      descriptor: unknown;
      refs?: Map<string, RefValue>;
      missing?: Set<string>;
      locks?: LockVerification;
      keys?: string[];
      gcLease?: GcLeaseAnswer;
      descriptorInPack?: boolean;
    } = { descriptor: body['descriptor'] ?? null };
    if (body['descriptor_in_pack'] === true) answer.descriptorInPack = true;
    if (request.refs !== undefined) answer.refs = this.refMap(body['refs'], request.refs);
    if (request.check !== undefined) {
      const missing = body['missing'];
      if (typeof missing !== 'object' || missing === null) throw bad("no 'missing' lists");
      const { chunks: absentChunks, objects: absentObjects } = missing as Record<string, unknown>;
      if (!Array.isArray(absentChunks) || !Array.isArray(absentObjects))
        throw bad("no 'missing' lists");
      answer.missing = new Set([
        ...absentChunks.map((o) => `chunks/${String(o)}`),
        ...absentObjects.map((o) => `objects/${String(o)}`),
      ]);
    }
    if (request.locks) {
      const locks = body['locks'];
      if (typeof locks !== 'object' || locks === null) throw bad("no 'locks'");
      const split = locks as Record<string, unknown>;
      answer.locks = {
        ours: lockList(split['ours'], 'ours'),
        theirs: lockList(split['theirs'], 'theirs'),
      };
    }
    if (request.keys) {
      const names = body['keys'];
      if (!Array.isArray(names)) throw bad("no 'keys' list");
      answer.keys = names.map(String);
    }
    this.acceptPresign(body['presign']);
    if (request.gcLease) {
      const lease = this.leaseAnswer(body['gc_lease']);
      if (!lease) throw bad("no 'gc_lease'");
      answer.gcLease = lease;
    }
    return answer;
  }

  /** A `gc_lease` answer (negotiate, ref update): undefined when there is none. */
  private leaseAnswer(lease: unknown): GcLeaseAnswer | undefined {
    if (typeof lease !== 'object' || lease === null) return undefined;
    const { ref, record } = lease as Record<string, unknown>;
    return {
      ref: ref === null ? null : (this.refValue(ref) ?? null),
      record: typeof record === 'string' ? Buffer.from(record, 'utf8') : null,
    };
  }

  // ---- presigned downloads -------------------------------------------------------------------

  /** The negotiate answer's `presign` offer: from now on chunks and objects come from the bucket. */
  private acceptPresign(offer: unknown): void {
    if (this.presignLoading !== null || this.closed) return;
    if (typeof offer !== 'object' || offer === null) return;
    const { get, expires_in: lifetime } = offer as Record<string, unknown>;
    if (get !== true) return;
    this.presignLoading = import('./presigned.js').then(
      ({ PresignedReads }) => {
        if (this.closed) return;
        this.presigned = new PresignedReads({
          // A URL asked ahead is trusted for half its life; an offer without one, for a minute.
          urlLifetimeMs:
            typeof lifetime === 'number' && Number.isFinite(lifetime) && lifetime > 0
              ? lifetime * 1000
              : 120_000,
          urls: (keys) => this.downloadUrls(keys),
          maxBytes: this.maxObjectBytes,
          readTimeoutMs: this.readTimeoutMs,
          connectTimeoutMs: this.connectTimeoutMs,
          connections: this.connections,
          ...(this.presignDispatcher ? { dispatcher: this.presignDispatcher } : {}),
        });
      },
      // Without it every read goes through the server, as with a server that offers none.
      () => undefined,
    );
  }

  /** POST objects/urls; a server that no longer offers them (400) gets every read relayed. */
  private async downloadUrls(keys: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (let start = 0; start < keys.length; start += MAX_URLS_PER_REQUEST) {
      const batch = keys.slice(start, start + MAX_URLS_PER_REQUEST);
      const call: Call = {
        method: 'POST',
        path: 'objects/urls',
        json: { get: batch },
        action: `ask URLs for ${batch.length} objects`,
      };
      const reply = await this.exchange(call);
      if (reply.status === 400) return out;
      if (reply.status !== 200) throw await this.fail(call, reply);
      const urls = this.parseJson(reply, call)['urls'];
      if (typeof urls !== 'object' || urls === null) continue;
      for (const key of batch) {
        const url = (urls as Record<string, unknown>)[key];
        if (typeof url === 'string' && /^https?:\/\//.test(url)) out.set(key, url);
      }
    }
    return out;
  }

  /** How reads went on the direct path (tests, diagnostics); null when the server offered none. */
  presignedStats(): Readonly<PresignedStats> | null {
    return this.presigned === null ? null : { ...this.presigned.stats };
  }

  /**
   * POST /history: the structured objects from `want` down to `have` in one pack. A server from
   * before it answers 400, one that cannot read the repository's history (encrypted) 409: null
   * then, and for the rest of this store's life. The pack is read up to maxObjectBytes; a longer
   * one is cut there and its complete records kept (the caller fetches whatever is not in them).
   */
  async history(
    request: HistoryRequest,
    options?: OperationOptions,
  ): Promise<Map<string, Buffer> | null> {
    if (!this.histories || !this.negotiates) return null;
    const call: Call = {
      method: 'POST',
      path: 'history',
      json: {
        want: request.want,
        have: request.have,
        ...(request.maxObjects !== undefined ? { max_objects: request.maxObjects } : {}),
        ...(request.maxBytes !== undefined ? { max_bytes: request.maxBytes } : {}),
      },
      action: `history of ${request.want.length} tips`,
      signal: options?.signal,
      limit: this.maxObjectBytes,
      truncate: true,
    };
    const reply = await this.exchange(call);
    if (reply.status === 400 || reply.status === 404 || reply.status === 409) {
      this.histories = false;
      return null;
    }
    if (reply.status !== 200) throw await this.fail(call, reply);
    const records = this.packRecords(reply);
    const out = new Map<string, Buffer>();
    for (const record of records)
      if (record.kind !== 'chunk') out.set(`objects/${record.oid}`, asBuffer(record.data));
    return out;
  }

  // ---- repository and locks ----------------------------------------------------------------

  /**
   * Checks that the server accepts our credentials for this repository: 'ready' when something
   * was pushed, 'empty' when not yet. 401/403 → AuthError; network trouble → StoreUnavailableError.
   */
  async checkAccess(options?: OperationOptions): Promise<'ready' | 'empty'> {
    const reply = await this.expect(
      { method: 'GET', path: 'info', action: 'GET info', signal: options?.signal },
      [200, 404],
    );
    return reply.status === 200 ? 'ready' : 'empty';
  }

  /**
   * POST /gc/sweep (admin): a retention sweep run by the server next to its storage. The answer
   * is NDJSON (progress lines, then the outcome); this returns the parsed lines, in order. A
   * sweep the connection lost before its last line is for the caller to report.
   */
  async sweepGarbage(
    request: Readonly<Record<string, unknown>>,
    options?: OperationOptions,
  ): Promise<Record<string, unknown>[]> {
    const call: Call = {
      method: 'POST',
      path: 'gc/sweep',
      json: request,
      action: 'gc sweep',
      signal: options?.signal,
      // A report that lists every deleted key may be long: about 100 bytes a key.
      ...(request['list_keys'] === true ? { limit: 1024 * 1024 * 1024 } : {}),
    };
    const reply = await this.expect(call, [200]);
    const lines: Record<string, unknown>[] = [];
    for (const text of reply.body.toString('utf8').split('\n')) {
      if (text.trim() === '') continue;
      try {
        const parsed: unknown = JSON.parse(text);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
          lines.push(parsed as Record<string, unknown>);
      } catch {
        // A line cut short by a lost connection: the caller sees no outcome line.
      }
    }
    return lines;
  }

  /** POST /locks. Someone else holding it → LockedError naming them. */
  async createLock(path: string, options?: OperationOptions): Promise<LockRecord> {
    const call: Call = {
      method: 'POST',
      path: 'locks',
      json: { path },
      action: `lock ${path}`,
      signal: options?.signal,
    };
    const reply = await this.exchange(call);
    if (reply.status === 200 || reply.status === 201) {
      const lock = this.parseJson(reply, call)['lock'];
      if (!isLockRecord(lock))
        throw new ProtocolError(`${this.url} answered a lock request without a lock record`);
      return lock;
    }
    if (reply.status === 409) {
      const body = parseErrorBody(reply.body, 'application/json');
      const holder = isLockRecord(body['lock']) ? body['lock'] : undefined;
      throw new LockedError(
        holder
          ? `'${path}' is already locked by ${holder.owner} (since ${holder.locked_at})`
          : `'${path}' is already locked by someone else`,
        {
          hint: holder
            ? `ask ${holder.owner} to run 'mediagit unlock ${path}' when done (an admin can use 'mediagit unlock --force')`
            : "see who holds it with 'mediagit locks'",
        },
      );
    }
    throw await this.fail(call, reply);
  }

  /** GET /locks, optionally only paths under `prefix`. */
  async listLocks(prefix?: string, options?: OperationOptions): Promise<LockRecord[]> {
    const call: Call = {
      method: 'GET',
      path: 'locks',
      ...(prefix ? { query: { path: prefix } } : {}),
      action: 'list locks',
      signal: options?.signal,
    };
    const reply = await this.exchange(call);
    if (reply.status === 404) return [];
    if (reply.status !== 200) throw await this.fail(call, reply);
    return lockList(this.parseJson(reply, call)['locks'], 'locks');
  }

  /** POST /locks/verify: the locks split by whether the caller's identity holds them. */
  async verifyLocks(options?: OperationOptions): Promise<LockVerification> {
    const call: Call = {
      method: 'POST',
      path: 'locks/verify',
      json: {},
      action: 'verify locks',
      signal: options?.signal,
    };
    const reply = await this.exchange(call);
    if (reply.status === 404) return { ours: [], theirs: [] };
    if (reply.status !== 200) throw await this.fail(call, reply);
    const body = this.parseJson(reply, call);
    return { ours: lockList(body['ours'], 'ours'), theirs: lockList(body['theirs'], 'theirs') };
  }

  /**
   * POST /locks/<id>/unlock. `holder` (when the caller knows it) makes a 403 without force a
   * LockedError naming who holds it; with force a 403 means the token is not an admin's.
   */
  async unlock(
    id: string,
    force: boolean,
    options?: OperationOptions & { holder?: LockRecord },
  ): Promise<LockRecord> {
    if (!/^[A-Za-z0-9._-]{1,200}$/.test(id))
      throw new TypeError(`invalid lock id: ${JSON.stringify(id).slice(0, 80)}`);
    const call: Call = {
      method: 'POST',
      path: `locks/${id}/unlock`,
      json: { force },
      action: `unlock ${options?.holder?.path ?? id}`,
      signal: options?.signal,
    };
    const reply = await this.exchange(call);
    if (reply.status === 200) {
      const lock = this.parseJson(reply, call)['lock'];
      if (!isLockRecord(lock))
        throw new ProtocolError(`${this.url} answered an unlock without the lock record`);
      return lock;
    }
    if (reply.status === 403 && !force) {
      const holder = options?.holder;
      throw new LockedError(
        holder
          ? `'${holder.path}' is locked by ${holder.owner}, not you`
          : 'that lock belongs to someone else',
        {
          hint: 'only its owner can release it; an admin can with --force',
        },
      );
    }
    if (reply.status === 404)
      throw new NotFoundError(`lock ${options?.holder?.path ?? id}`, {
        hint: 'it was released already',
      });
    throw await this.fail(call, reply);
  }

  /** Closes our connections (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.presignLoading;
    await this.presigned?.close();
    this.transport.close();
  }
}

/** Content-addressed keys: an upload of one stores the same bytes whoever sent them first. */
function isObjectKey(key: string): boolean {
  return key.startsWith('chunks/') || key.startsWith('objects/');
}
