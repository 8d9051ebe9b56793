import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  ConfigError,
  NotFoundError,
  RefConflictError,
  StoreUnavailableError,
} from '../../errors/index.js';
import { parseOptions, pickOptions, type OptionValues } from '../options/schema.js';
import {
  BASIC_CAPABILITIES,
  assertCreatableKey,
  assertValidKey,
  assertValidRefName,
  isValidKey,
  type ListedKey,
  type OperationOptions,
  type SwapOptions,
  type RefValue,
  type Store,
  type StoreCapabilities,
  type StreamedObject,
} from '../store.js';
import {
  compareAndSwapRef,
  type ConditionalRefWrites,
  type RefState,
} from '../remote-service/conditional-ref.js';
import { isAbortError } from '../remote-service/failure.js';
import { ConditionalWritesUnsupportedError, describeS3Failure, mapS3Error } from './errors.js';
import { S3_OPTIONS, S3_TEST_OPTIONS } from './options.js';
import { presignUrl, type PresignRequest } from './presign.js';
import { probePassed, rememberProbePassed } from './probe-memory.js';
import { SigV4Signer, type S3Credentials } from './sigv4.js';
import { S3Wire, parseListPage, readAll, type ListPage, type S3Request } from './wire.js';
import {
  CorruptRefEntryError,
  decodeEntry,
  encodeEntry,
  entryKey,
  formatSequence,
  parseEntryKey,
  parseSequence,
  type RefLogEntry,
} from './ref-log.js';

type S3Module = typeof import('@aws-sdk/client-s3');
type StorageModule = typeof import('@aws-sdk/lib-storage');

const HAS_CONCURRENCY = 16;
/** Create-only writers raced on one key per probe round, and rounds per probe (see runProbe). */
const PROBE_WRITERS = 8;
const PROBE_ROUNDS = 3;
/** Newest ref-log entries searched for an earlier attempt's write when its version is unknown. */
const LANDED_SEARCH = 8;

type ProbeAnswer = 'created' | 'refused' | 'unsupported' | 'unknown';
/** Up to this many keys, has() sends HEADs: a LIST would not take fewer requests. */
const LIST_WORTH_KEYS = 2;
/** Fewest keys of one has() listing run, and the most pages it lists before HEADs (see has). */
const MIN_RUN_KEYS = 32;
const MAX_RUN_PAGES = 2;
/** Slack for LastModified's one-second resolution and clock differences between server nodes. */
const CONFIRM_MARGIN_MS = 60_000;

/**
 * The remote's option keys (./options.ts says what each means) plus what only code passes: the
 * bucket and prefix from the URL, and the testing knobs.
 */
export type S3StoreOptions = OptionValues<typeof S3_OPTIONS> & {
  bucket: string;
  /** Key prefix inside the bucket, e.g. "team-a/project-x"; a trailing slash is added. */
  prefix?: string;
  /**
   * 'probe' (default) checks once per store that of several create-only PUTs racing on one key
   * the server lets exactly one in (see runProbe).
   * 'unsupported' skips the probe and behaves as if the server had failed it (for tests).
   */
  conditional_writes?: 'probe' | 'unsupported';
  /** Ref-log pruning knobs; the defaults suit production, tests lower them. */
  ref_log_keep?: number;
  ref_log_grace_ms?: number;
  /** Seams around ref-entry creation so tests can stage races deterministically. */
  test_hooks?: S3StoreTestHooks;
};

export interface S3StoreTestHooks {
  beforeRefCreate?: (name: string, seq: number) => Promise<void>;
  afterRefCreate?: (name: string, seq: number) => Promise<void>;
}

interface Loaded {
  s3: S3Module;
  client: S3Client;
}

interface LogEntryInfo {
  seq: number;
  lastModified: number | undefined;
}

interface RefHead {
  seq: number;
  entry: RefLogEntry;
}

const clocks = (): { mono: number; wall: number } => ({
  mono: performance.now(),
  wall: Date.now(),
});

/** A ref's log as this store last read or wrote it: its entries, the newest one, and when. */
interface KnownLog {
  readonly log: readonly LogEntryInfo[];
  readonly head: RefHead;
  readonly readAt: { readonly mono: number; readonly wall: number };
}

/** A ref's log as compare-and-swap read it: the newest entry (seq 0: none yet) and when it was read. */
interface S3RefState extends RefState {
  readonly seq: number;
  readonly writer: string | null;
  /** The writer token of the entry this one was built on. */
  readonly prev: string | null;
  readonly readAt: { readonly mono: number; readonly wall: number };
}

/** A ref with no log yet, as read at `readAt`. */
const emptyLog = (readAt: { readonly mono: number; readonly wall: number }): S3RefState => ({
  oid: null,
  version: '',
  seq: 0,
  writer: null,
  prev: null,
  readAt,
});

/**
 * Store on Amazon S3 or an S3-compatible server. Objects map 1:1 to keys under `prefix`; refs are
 * logs of create-once entries (see ref-log.ts and docs/backends/s3.md), because create-only PUTs
 * (`If-None-Match: *`) are the one condition S3-compatible servers honour widely and uniformly.
 * The store never retries: errors are mapped precisely and the retry wrapper decides.
 */
export class S3Store implements Store {
  readonly description: string;
  /**
   * Streaming reads; ref-log entries carry the writer token of the update that made them (see
   * landed); its own pace for transfers.
   */
  readonly capabilities: StoreCapabilities;
  readonly bucket: string;
  readonly prefix: string;
  /** Endpoint for messages, without any userinfo. */
  readonly endpoint: string;
  readonly partSize: number;
  readonly maxConcurrentParts: number;
  readonly maxConcurrentRequests: number;
  readonly maxRetries: number;
  private readonly connectTimeoutMs: number;
  private readonly readTimeoutMs: number;

  private readonly options: S3StoreOptions;
  private readonly region: string | undefined;
  private readonly refLogKeep: number;
  private readonly refLogGraceMs: number;
  private loaded: Promise<Loaded> | undefined;
  private wired: Promise<S3Wire> | undefined;
  private storage: Promise<StorageModule> | undefined;
  private probe: Promise<boolean> | undefined;
  /**
   * Each ref's log as this store last saw it (read, listed or written), so that an update of the
   * value just read (a push after its negotiation) writes against it without reading it again.
   */
  private readonly knownLogs = new Map<string, KnownLog>();
  /**
   * The latest listRefs of each prefix: the refs it found a log for, and when (see pinnedAbsent).
   * By prefix, since a push lists refs/ and its lock check refs/locks/ at the same time.
   */
  private readonly listings = new Map<
    string,
    {
      readonly names: ReadonlySet<string>;
      readonly readAt: { readonly mono: number; readonly wall: number };
    }
  >();
  /** Writer tokens this store has written with: a repeat of such an update reads before writing. */
  private readonly triedTokens = new Set<string>();
  private readonly background = new Set<Promise<void>>();

  constructor(options: S3StoreOptions) {
    if (typeof options.bucket !== 'string' || options.bucket.trim() === '')
      throw new ConfigError('S3 remote: bucket is required');
    if ((options.access_key === undefined) !== (options.secret_key === undefined)) {
      throw new ConfigError(
        'S3 remote: access_key and secret_key must be given together (or neither, to use the AWS credential chain)',
      );
    }
    this.options = options;
    this.bucket = options.bucket.trim();
    this.prefix = normalizePrefix(options.prefix);
    this.region = options.region ?? (options.endpoint !== undefined ? 'us-east-1' : undefined);
    this.endpoint =
      options.endpoint !== undefined
        ? redactUrl(options.endpoint)
        : `AWS S3${this.region ? ` (${this.region})` : ''}`;
    const parsed = parseOptions(S3_OPTIONS, pickOptions(S3_OPTIONS, options), 'an S3 remote');
    this.partSize = parsed.part_size;
    this.maxConcurrentParts = parsed.max_concurrent_parts;
    this.maxConcurrentRequests = parsed.max_concurrent_requests;
    this.maxRetries = parsed.max_retries;
    this.connectTimeoutMs = parsed.connect_timeout_ms;
    this.readTimeoutMs = parsed.read_timeout_ms;
    const knobs = parseOptions(
      S3_TEST_OPTIONS,
      pickOptions(S3_TEST_OPTIONS, options),
      'an S3 store',
    );
    this.refLogKeep = knobs.ref_log_keep;
    this.refLogGraceMs = knobs.ref_log_grace_ms;
    this.description = `s3://${this.bucket}/${this.prefix}${options.endpoint !== undefined ? ` at ${this.endpoint}` : ''}`;
    this.capabilities = {
      ...BASIC_CAPABILITIES,
      streaming: { getStream: (key, options) => this.getStream(key, options) },
      refWriterTokens: true,
      prepareRefUpdates: () => void this.startProbe(),
      // Measured on radosgw (docs/backends/s3.md): 16 requests in flight beat 8 and 32. The byte
      // budget keeps the memory bound the part settings always stated, however many objects are large.
      pacing: {
        requests: this.maxConcurrentRequests,
        bytes: this.partSize * this.maxConcurrentParts,
      },
    };
  }

  // ---------------------------------------------------------------------------------------------
  // plumbing

  /** Loading the SDK takes ~180 ms here; commands that never touch this remote should not pay for it. */
  private load(): Promise<Loaded> {
    this.loaded ??= (async () => {
      let s3: S3Module;
      try {
        s3 = await import('@aws-sdk/client-s3');
      } catch (err) {
        throw new ConfigError(
          'the S3 backend needs the @aws-sdk/client-s3 package, which could not be loaded',
          { cause: err },
        );
      }
      const o = this.options;
      const client = new s3.S3Client({
        ...(this.region !== undefined ? { region: this.region } : {}),
        ...(o.endpoint !== undefined ? { endpoint: o.endpoint } : {}),
        forcePathStyle: o.force_path_style ?? o.endpoint !== undefined,
        ...(o.access_key !== undefined && o.secret_key !== undefined
          ? {
              credentials: {
                accessKeyId: o.access_key,
                secretAccessKey: o.secret_key,
                ...(o.session_token !== undefined ? { sessionToken: o.session_token } : {}),
              },
            }
          : {}),
        // Retrying is the retry wrapper's job; two layers of retries multiply.
        maxAttempts: 1,
        // The default checksum mode breaks streamed bodies on many S3-compatible servers (radosgw: 411).
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        // socketTimeout is the idle timer: a reply that stops mid-body fails the attempt.
        requestHandler: {
          connectionTimeout: this.connectTimeoutMs,
          socketTimeout: this.readTimeoutMs,
        },
      });
      if (unsignedPayloadSafe(o.endpoint)) signPayloadsUnsigned(client);
      return { s3, client };
    })().catch((err: unknown) => {
      this.loaded = undefined;
      throw err;
    });
    return this.loaded;
  }

  private loadStorage(): Promise<StorageModule> {
    this.storage ??= import('@aws-sdk/lib-storage').catch((err: unknown) => {
      this.storage = undefined;
      throw new ConfigError(
        'the S3 backend needs the @aws-sdk/lib-storage package, which could not be loaded',
        { cause: err },
      );
    });
    return this.storage;
  }

  private mapError(err: unknown, operation: string, key?: string): Error {
    return mapS3Error(err, {
      bucket: this.bucket,
      endpoint: this.endpoint,
      operation,
      ...(key !== undefined ? { key } : {}),
      ...(this.options.secret_key !== undefined ? { secret: this.options.secret_key } : {}),
    });
  }

  /**
   * The client the store's own requests go through (wire.ts). Static keys are used as given; without
   * them, and without a region where one is needed, the SDK's chains answer (environment, config
   * files, SSO, instance roles), so those work as they did, at the price of loading the SDK.
   */
  private wire(): Promise<S3Wire> {
    this.wired ??= (async () => {
      const o = this.options;
      const { region, credentials } = await this.signing();
      const endpoint = o.endpoint ?? `https://s3.${region}.amazonaws.com`;
      return new S3Wire({
        endpoint,
        bucket: this.bucket,
        // Virtual-hosted names need a DNS label; a bucket with dots would not match AWS's certificate.
        pathStyle:
          o.force_path_style ?? (o.endpoint !== undefined || !/^[a-z0-9-]+$/.test(this.bucket)),
        region,
        credentials,
        unsignedPayload: unsignedPayloadSafe(o.endpoint),
        connectTimeoutMs: this.connectTimeoutMs,
        readTimeoutMs: this.readTimeoutMs,
        // has() walks HAS_CONCURRENCY runs inside one slot of the concurrency limit, beside transfers
        // and ref calls: enough sockets that none of them waits for another's.
        maxSockets: HAS_CONCURRENCY + this.maxConcurrentRequests + 8,
      });
    })().catch((err: unknown) => {
      this.wired = undefined;
      throw err;
    });
    return this.wired;
  }

  /** The region and credentials requests and presigned URLs are signed with (see wire). */
  private async signing(): Promise<{
    region: string;
    credentials: () => Promise<S3Credentials>;
  }> {
    const o = this.options;
    let credentials: () => Promise<S3Credentials>;
    if (o.access_key !== undefined && o.secret_key !== undefined) {
      const fixed: S3Credentials = {
        accessKeyId: o.access_key,
        secretAccessKey: o.secret_key,
        sessionToken: o.session_token,
      };
      credentials = () => Promise.resolve(fixed);
    } else {
      // The SDK's provider caches the identity and refreshes it before it expires.
      const { client } = await this.load();
      credentials = () => client.config.credentials();
    }
    const region = this.region ?? (await (await this.load()).client.config.region());
    return { region, credentials };
  }

  /** Runs one request, mapping whatever it (or setting up the client) throws. */
  private async call<T>(
    operation: string,
    key: string | undefined,
    fn: (wire: S3Wire) => Promise<T>,
  ): Promise<T> {
    try {
      return await fn(await this.wire());
    } catch (err) {
      throw this.mapError(err, operation, key);
    }
  }

  /** One request with its failure unmapped, for callers that read the S3 answer themselves. */
  private async raw(request: S3Request): Promise<void> {
    let wire: S3Wire;
    try {
      wire = await this.wire();
    } catch (err) {
      throw this.mapError(err, `${request.method} setup`, request.key);
    }
    const answer = await wire.send(request);
    answer.body.resume();
  }

  private async listPage(
    operation: string,
    prefix: string | undefined,
    query: [string, string][],
    signal: AbortSignal | undefined,
  ): Promise<ListPage> {
    return this.call(operation, prefix, async (wire) => {
      const answer = await wire.send({
        method: 'GET',
        query: [['list-type', '2'], ...query],
        signal,
      });
      return parseListPage((await readAll(answer.body)).toString('utf8'));
    });
  }

  private full(key: string): string {
    return this.prefix + key;
  }

  private async getRaw(key: string, signal: AbortSignal | undefined): Promise<Buffer> {
    return this.call('GetObject', key, async (wire) => {
      const answer = await wire.send({ method: 'GET', key: this.full(key), signal });
      return readAll(answer.body);
    });
  }

  private async deleteRaw(key: string, signal: AbortSignal | undefined): Promise<void> {
    try {
      await this.call('DeleteObject', key, async (wire) => {
        (await wire.send({ method: 'DELETE', key: this.full(key), signal })).body.resume();
      });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }

  /** Every key under `prefix` (store-relative), page by page. */
  private async *listRaw(
    prefix: string,
    signal: AbortSignal | undefined,
    delimiter?: string,
  ): AsyncGenerator<{ key: string; size: number; lastModified: number | undefined }> {
    let token: string | undefined;
    do {
      const query: [string, string][] = [['prefix', this.full(prefix)]];
      if (delimiter !== undefined) query.push(['delimiter', delimiter]);
      if (token !== undefined) query.push(['continuation-token', token]);
      const page = await this.listPage('ListObjectsV2', prefix || undefined, query, signal);
      for (const obj of page.contents) {
        if (!obj.key.startsWith(this.prefix)) continue;
        yield {
          key: obj.key.slice(this.prefix.length),
          size: obj.size,
          lastModified: obj.lastModified,
        };
      }
      token = page.truncated ? page.nextToken : undefined;
    } while (token !== undefined);
  }

  // ---------------------------------------------------------------------------------------------
  // objects

  async get(key: string, options?: OperationOptions): Promise<Buffer> {
    assertValidKey(key);
    return this.getRaw(key, options?.signal);
  }

  /** Kept across URLs: a clone asks for hundreds, and a signer derives its day's key once. */
  private presigner: SigV4Signer | undefined;

  /**
   * A presigned URL for one request on `request.key` (a store key; presign.ts). `endpoint`: the
   * address clients reach the bucket at, when it is not the one this store talks to.
   */
  async presign(request: PresignRequest, endpoint?: string): Promise<string> {
    assertValidKey(request.key);
    // Static keys sign without the SDK (~180 ms to load): a fresh server's first clone waited for it.
    const { region, credentials } = await this.signing();
    const o = this.options;
    this.presigner ??= new SigV4Signer(region);
    return presignUrl(
      {
        endpoint: endpoint ?? o.endpoint,
        bucket: this.bucket,
        region,
        pathStyle: o.force_path_style ?? o.endpoint !== undefined,
        credentials,
        signer: this.presigner,
      },
      { ...request, key: this.full(request.key) },
    );
  }

  /** GetObject's body as it arrives (StreamingRead): destroying it closes the connection. */
  private async getStream(key: string, options?: OperationOptions): Promise<StreamedObject> {
    assertValidKey(key);
    return this.call('GetObject', key, async (wire) => {
      const answer = await wire.send({
        method: 'GET',
        key: this.full(key),
        signal: options?.signal,
      });
      const size = Number(answer.headers['content-length']);
      if (Number.isSafeInteger(size)) return { size, body: answer.body } satisfies StreamedObject;
      // No length (a chunked answer): read it whole.
      const bytes = await readAll(answer.body);
      return { size: bytes.byteLength, body: Readable.from([bytes]) };
    });
  }

  async put(key: string, data: Uint8Array, options?: OperationOptions): Promise<void> {
    assertValidKey(key);
    const signal = options?.signal;
    if (data.byteLength <= this.partSize) {
      // A single PUT is atomic on S3, and rewriting the same bytes is harmless: idempotent as required.
      await this.call('PutObject', key, async (wire) => {
        (await wire.send({ method: 'PUT', key: this.full(key), body: data, signal })).body.resume();
      });
      return;
    }
    const [{ Upload }, { client }] = await Promise.all([this.loadStorage(), this.load()]);
    // The object only appears at CompleteMultipartUpload, so readers never see a prefix of it.
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const upload = new Upload({
        client,
        params: { Bucket: this.bucket, Key: this.full(key), Body: data },
        partSize: this.partSize,
        queueSize: this.maxConcurrentParts,
        // Abort the multipart upload on failure: orphaned parts are billed and invisible.
        leavePartsOnError: false,
        abortController: controller,
      });
      await upload.done();
    } catch (err) {
      throw this.mapError(err, 'multipart upload', key);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * One PUT with `If-None-Match: *`, so only on a server that passed the conditional-write probe
   * (a server that ignores the header would let every creator win). An ambiguous answer (409 —
   * S3's "conflicting operation in progress" —, 5xx, no reply) is settled by looking: the key
   * there means false (perhaps our own landed write, as the contract allows), absent means the
   * failure stands and the call may be repeated.
   */
  async create(key: string, data: Uint8Array, options?: OperationOptions): Promise<boolean> {
    assertCreatableKey(key);
    const signal = options?.signal;
    await this.ensureConditionalWrites();
    try {
      await this.raw(createOnly(this.full(key), data, signal));
      return true;
    } catch (err) {
      if (isAbortError(err)) throw err;
      const f = describeS3Failure(err);
      if (f.status === 412) return false;
      const ambiguous = f.status === 409 || f.status === undefined || f.status >= 500;
      if (ambiguous && (await this.headExists(key, signal))) return false;
      throw this.mapError(err, 'PutObject (create-only)', key);
    }
  }

  /**
   * Existence by LIST where that takes fewer requests than a HEAD per key. The keys are sorted and
   * cut into HAS_CONCURRENCY runs walked in parallel; each walk lists one page starting at its next
   * unanswered key, and that page answers every key of the run it covers (S3 lists in key order).
   * A page always answers at least the key it starts at, so this never sends more requests than
   * HEADs would: a fresh remote answers a whole push in one request per run, a full bucket about
   * one per run and page. Where a page answers only one key (a sparse query in a big bucket), the
   * run goes on with HEADs, so listing never costs many pages of unrelated keys.
   */
  async has(keys: readonly string[], options?: OperationOptions): Promise<boolean[]> {
    for (const key of keys) assertValidKey(key);
    const signal = options?.signal;
    const sorted = [...new Set(keys)].sort();
    const found = new Set<string>();
    if (sorted.length <= LIST_WORTH_KEYS) {
      await this.headEach(sorted, found, signal);
    } else {
      // Runs of at least MIN_RUN_KEYS: a fresh remote's check of a push's ~150 keys is then a
      // handful of empty listings, not one per ~10 keys; a sparse run HEADs its rest at once.
      const runs: string[][] = [];
      const per = Math.max(MIN_RUN_KEYS, Math.ceil(sorted.length / HAS_CONCURRENCY));
      for (const folder of byFolder(sorted)) {
        const size = Math.ceil(folder.length / Math.ceil(folder.length / per));
        for (let i = 0; i < folder.length; i += size) runs.push(folder.slice(i, i + size));
      }
      await Promise.all(runs.map((run) => this.probeRun(run, found, signal)));
    }
    return keys.map((key) => found.has(key));
  }

  private async headExists(key: string, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      await this.call('HeadObject', key, async (wire) => {
        (await wire.send({ method: 'HEAD', key: this.full(key), signal })).body.resume();
      });
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  /** HEADs `keys`, HAS_CONCURRENCY at once, adding those present to `found`. */
  private async headEach(
    keys: readonly string[],
    found: Set<string>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    await mapLimit(keys, HAS_CONCURRENCY, async (key) => {
      if (await this.headExists(key, signal)) found.add(key);
    });
  }

  /**
   * One sorted run of has(), within one folder: up to MAX_RUN_PAGES pages while each answers at
   * least half of the keys left (and two); where the bucket is too full around them for that, the
   * rest are HEADed at once. Never more requests than one HEAD per key, at most three round trips.
   */
  private async probeRun(
    run: readonly string[],
    found: Set<string>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    let i = 0;
    let pages = 0;
    while (i < run.length) {
      const first = run[i]!;
      const slash = first.indexOf('/');
      if (i === run.length - 1 || slash < 0) {
        await this.headEach(run.slice(i), found, signal);
        return;
      }
      const dir = first.slice(0, slash + 1);
      const remaining = run.length - i;
      const page = await this.listPage(
        'ListObjectsV2',
        dir,
        [
          ['prefix', this.full(dir)],
          // Just before `first`: a proper prefix of a key sorts before it.
          ['start-after', this.full(first).slice(0, -1)],
          ['max-keys', String(Math.min(1000, Math.max(32, remaining * 8)))],
        ],
        signal,
      );
      const listed = new Set<string>();
      for (const obj of page.contents)
        if (obj.key.startsWith(this.prefix)) listed.add(obj.key.slice(this.prefix.length));
      const last = page.truncated ? (page.contents.at(-1)?.key ?? '') : null;
      const start = i;
      while (i < run.length) {
        const key = run[i]!;
        if (!key.startsWith(dir) || (last !== null && this.full(key) > last)) break;
        if (listed.has(key)) found.add(key);
        i++;
      }
      if (i === start) {
        // Nothing answered (cannot happen with object names; kept so a stranger bucket still ends).
        if (await this.headExists(first, signal)) found.add(first);
        i++;
      }
      const answered = i - start;
      pages++;
      if (i < run.length && (answered < 2 || answered * 2 < remaining || pages === MAX_RUN_PAGES)) {
        await this.headEach(run.slice(i), found, signal);
        return;
      }
    }
  }

  async *list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey> {
    for await (const item of this.listRaw(prefix, options?.signal)) {
      // Ref logs and anything foreign in the bucket are not store objects.
      if (isValidKey(item.key)) yield { key: item.key, size: item.size };
    }
  }

  async delete(key: string, options?: OperationOptions): Promise<void> {
    assertValidKey(key);
    await this.deleteRaw(key, options?.signal);
  }

  // ---------------------------------------------------------------------------------------------
  // refs

  /** The entries of one ref's log, ascending. Entries of nested refs (refs/heads/a/b under a) are skipped by the delimiter. */
  private async readLog(name: string, signal: AbortSignal | undefined): Promise<LogEntryInfo[]> {
    const entries: LogEntryInfo[] = [];
    for await (const item of this.listRaw(`${name}/`, signal, '/')) {
      const parsed = parseEntryKey(item.key);
      if (parsed !== undefined && parsed.ref === name)
        entries.push({ seq: parsed.seq, lastModified: item.lastModified });
    }
    return entries.sort((a, b) => a.seq - b.seq);
  }

  private async readEntry(
    name: string,
    seq: number,
    signal: AbortSignal | undefined,
  ): Promise<RefLogEntry> {
    const key = entryKey(name, seq);
    const body = await this.getRaw(key, signal);
    try {
      return decodeEntry(body, key);
    } catch (err) {
      if (err instanceof CorruptRefEntryError)
        throw new RefConflictError(`ref ${name}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  private async readHead(name: string, signal: AbortSignal | undefined): Promise<RefHead | null> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const readAt = clocks();
      const log = await this.readLog(name, signal);
      const last = log.at(-1);
      if (last === undefined) {
        this.knownLogs.delete(name);
        return null;
      }
      try {
        const head = { seq: last.seq, entry: await this.readEntry(name, last.seq, signal) };
        this.knownLogs.set(name, { log, head, readAt });
        return head;
      } catch (err) {
        // Pruned between LIST and GET: the log has moved on, so look again.
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    throw new StoreUnavailableError(
      `ref ${name} kept changing while being read from ${this.description}`,
    );
  }

  async readRef(name: string, options?: OperationOptions): Promise<RefValue | null> {
    assertValidRefName(name);
    const head = await this.readHead(name, options?.signal);
    if (head === null || head.entry.oid === null) return null;
    return { oid: head.entry.oid, version: formatSequence(head.seq) };
  }

  /**
   * The ref log's primitive: create entry n + 1 with If-None-Match: *, where n is the newest entry
   * read. Every writer that started from the same state targets the same key, and the server lets
   * exactly one create it.
   */
  private readonly refWrites: ConditionalRefWrites<S3RefState> = {
    read: async (name, signal) => {
      await this.ensureConditionalWrites();
      const readAt = clocks();
      const head = await this.readHead(name, signal);
      return {
        oid: head?.entry.oid ?? null,
        version: head === null ? '' : formatSequence(head.seq),
        seq: head?.seq ?? 0,
        writer: head?.entry.writer ?? null,
        prev: head?.entry.prev ?? null,
        readAt,
      };
    },
    // The next entry needs the newest one's sequence and writer token: known from a read a
    // moment ago (the push's negotiation) for an update's first attempt, else read now.
    pin: (expected, name, token) => this.pinned(expected, name, token),
    matches: (current, expected) => {
      if ((expected?.oid ?? null) !== (current?.oid ?? null)) return false;
      // A version from readRef pins the exact log entry (no ABA); callers that only know the OID
      // (version = oid) get value semantics, like the local store.
      const seq = expected === null ? undefined : parseSequence(expected.version);
      return seq === undefined || seq === current?.seq;
    },
    // read never answers null here (an empty log is seq 0), so base is always a state.
    write: (name, base, next, signal, token, written) =>
      this.appendEntry(name, base ?? emptyLog(clocks()), next, signal, token, written),
    landed: (name, current, expected, token, signal) =>
      this.landed(name, current, expected, token, signal),
  };

  /**
   * Whether an entry written with `token` (an earlier attempt of this update, whose answer was
   * lost) became the ref's value: it is the newest entry, or the entry above it names it as
   * `prev`. With a version from readRef the entry can only be the one after it; otherwise the
   * newest LANDED_SEARCH entries are looked at. An entry of ours that nothing was built on and
   * that is not the newest never was the value (confirm removes those).
   */
  private async landed(
    name: string,
    current: S3RefState | null,
    expected: RefValue | null,
    token: string,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    if (current === null || current.seq === 0) return false;
    if (current.writer === token || current.prev === token) return true;
    const read = async (seq: number): Promise<RefLogEntry | null> => {
      try {
        return await this.readEntry(name, seq, signal);
      } catch (err) {
        if (err instanceof NotFoundError) return null;
        throw err;
      }
    };
    const pinned = expected === null ? undefined : parseSequence(expected.version);
    if (pinned !== undefined) {
      const ours = pinned + 1;
      if (ours >= current.seq) return false;
      if ((await read(ours))?.writer !== token) return false;
      return (await read(ours + 1))?.prev === token;
    }
    for (let seq = current.seq - 1; seq >= 1 && seq > current.seq - LANDED_SEARCH; seq--) {
      const entry = await read(seq);
      if (entry === null || entry.writer === token) return false;
      if (entry.prev === token) return true;
    }
    return false;
  }

  async compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options?: SwapOptions,
  ): Promise<boolean> {
    if (expected !== null) return compareAndSwapRef(this.refWrites, name, expected, next, options);
    let fromListing = false;
    const writes: ConditionalRefWrites<S3RefState> = {
      ...this.refWrites,
      pin: (e, n, token) => {
        const pinned = this.refWrites.pin(e, n, token);
        fromListing = pinned !== undefined;
        return pinned;
      },
    };
    if (await compareAndSwapRef(writes, name, expected, next, options)) return true;
    if (!fromListing) return false;
    // The log grew since the listing, yet "absent" may hold again (created, then deleted): a
    // fresh read settles it, as it would have without the pin.
    const unpinned = { ...this.refWrites, pin: () => undefined };
    return compareAndSwapRef(unpinned, name, expected, next, options);
  }

  /**
   * The log head `expected` names, as this store read it a moment ago (within pinMaxAgeMs), for
   * an update's first attempt. Writing against it is as safe as against a fresh read: the create
   * of the next sequence number fails if anyone wrote since, and an entry re-created after its
   * pruning is caught by the confirmation every write gets (appendEntry).
   */
  private pinned(
    expected: RefValue | null,
    name: string,
    token: string | undefined,
  ): S3RefState | undefined {
    if (token !== undefined && this.triedTokens.has(token)) return undefined;
    if (expected === null) return this.pinnedAbsent(name);
    const known = this.knownLogs.get(name);
    const seq = parseSequence(expected.version);
    if (known === undefined || seq !== known.head.seq || known.head.entry.oid !== expected.oid)
      return undefined;
    if (Date.now() - known.readAt.wall > this.pinMaxAgeMs()) return undefined;
    return {
      oid: known.head.entry.oid,
      version: expected.version,
      seq,
      writer: known.head.entry.writer,
      prev: known.head.entry.prev,
      readAt: known.readAt,
    };
  }

  /**
   * For creating a ref: its log as the last listing saw it, when that listing covered the name and
   * is recent (pinMaxAgeMs). No log at all pins sequence 0, so the write creates entry 1; a log
   * whose newest entry is a tombstone pins that entry. Safe for the same reasons as `pinned`: a
   * log that grew since makes the create lose, and the confirmation catches a re-created entry.
   */
  private pinnedAbsent(name: string): S3RefState | undefined {
    const known = this.knownLogs.get(name);
    if (known !== undefined) {
      if (known.head.entry.oid !== null || !this.fresh(known.readAt)) return undefined;
      return {
        oid: null,
        version: formatSequence(known.head.seq),
        seq: known.head.seq,
        writer: known.head.entry.writer,
        prev: known.head.entry.prev,
        readAt: known.readAt,
      };
    }
    for (const [prefix, listing] of this.listings)
      if (name.startsWith(prefix) && !listing.names.has(name) && this.fresh(listing.readAt))
        return emptyLog(listing.readAt);
    return undefined;
  }

  private fresh(readAt: { readonly wall: number }): boolean {
    return Date.now() - readAt.wall <= this.pinMaxAgeMs();
  }

  /** How old a read may be to write against it: well inside the prune grace period. */
  private pinMaxAgeMs(): number {
    return Math.max(0, this.refLogGraceMs - 2 * CONFIRM_MARGIN_MS);
  }

  private async appendEntry(
    name: string,
    base: S3RefState,
    next: string | null,
    signal: AbortSignal | undefined,
    token: string | undefined,
    written: (() => void) | undefined,
  ): Promise<boolean> {
    // A pinned base skipped the read that waits for the probe: a create-only write is only as good
    // as the server's conditional writes.
    await this.ensureConditionalWrites();
    const seq = base.seq + 1;
    // The caller's token when it repeats an update (see landed), else one for this attempt.
    const writer = token ?? randomBytes(16).toString('hex');
    if (token !== undefined) this.triedTokens.add(token);
    const key = entryKey(name, seq);
    await this.options.test_hooks?.beforeRefCreate?.(name, seq);
    const created = await this.createEntry(key, { oid: next, writer, prev: base.writer }, signal);
    // Whatever happened, the log has moved on from what this store knew of it.
    this.knownLogs.delete(name);
    this.listings.clear();
    if (!created) return false;
    await this.options.test_hooks?.afterRefCreate?.(name, seq);
    // Our entry is the newest readers see from now on; the confirmation only settles whether it
    // was built on a live head, so what the caller reads "after the update" can go beside it.
    written?.();
    try {
      return await this.confirm(name, seq, writer, signal);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      // Our entry exists; a retried CAS would now see it and answer false. Only a writer that
      // stalled between its read and its write for longer than the prune grace period can have
      // re-created a pruned entry, so a quick update is known good without the confirmation.
      // Both clocks: the monotonic one stops during suspend, the wall clock can be stepped.
      const elapsed = Math.max(performance.now() - base.readAt.mono, Date.now() - base.readAt.wall);
      if (elapsed + CONFIRM_MARGIN_MS < this.refLogGraceMs) return true;
      throw new RefConflictError(
        `ref ${name} was written but the update could not be confirmed: ${err.message}`,
        {
          hint: 'read the ref again to see its current value',
          cause: err,
        },
      );
    }
  }

  /**
   * Creates one log entry with `If-None-Match: *`. True when this call's entry is the one stored.
   * Any ambiguous answer (409, 412, 5xx — radosgw answers 500 to some race losers — or a dropped
   * connection) is settled by reading the entry back: our writer token in it means it is ours.
   */
  private async createEntry(
    key: string,
    entry: RefLogEntry,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    try {
      await this.raw(
        createOnly(this.full(key), encodeEntry(entry), signal, {
          'content-type': 'application/json',
        }),
      );
      return true;
    } catch (err) {
      if (isAbortError(err)) throw err;
      const f = describeS3Failure(err);
      const lost = f.status === 409 || f.status === 412;
      // No HTTP answer at all (reset, timeout) says nothing about whether the PUT was applied.
      const unknown = (f.status !== undefined && f.status >= 500) || f.status === undefined;
      if (!lost && !unknown) throw this.mapError(err, 'PutObject (create-only)', key);
      let stored: RefLogEntry;
      try {
        const body = await this.getRaw(key, signal);
        stored = decodeEntry(body, key);
      } catch (readErr) {
        if (readErr instanceof CorruptRefEntryError) return false;
        if (!(readErr instanceof NotFoundError)) throw readErr;
        if (lost) return false;
        // Nothing stored and no clear refusal: the write failed; retrying the whole CAS is safe.
        throw this.mapError(err, 'PutObject (create-only)', key);
      }
      return stored.writer === entry.writer;
    }
  }

  /**
   * After our entry at `seq` was created: was it really the ref's next value? It was, unless the
   * caller's base had been pruned away and we re-created an old sequence number below newer
   * entries. Our entry counts when it is the newest, or when the entry above it names our token
   * as its predecessor (someone built on it).
   */
  private async confirm(
    name: string,
    seq: number,
    writer: string,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const log = await this.readLog(name, signal);
      const last = log.at(-1);
      if (last === undefined || !log.some((e) => e.seq === seq)) {
        // Only possible after a stall longer than the prune grace period (our entry was created and
        // then pruned, or created late and pruned as stale): both "it landed" and "it did not" fit.
        throw new RefConflictError(
          `could not confirm whether the update of ref ${name} took effect (the ref moved on meanwhile)`,
          {
            hint: 'read the ref again to see its current value',
          },
        );
      }
      if (last.seq === seq) {
        await this.prune(name, log, signal);
        return true;
      }
      if (log.some((e) => e.seq === seq + 1)) {
        let above: RefLogEntry;
        try {
          above = await this.readEntry(name, seq + 1, signal);
        } catch (err) {
          if (err instanceof NotFoundError) continue;
          throw err;
        }
        if (above.prev === writer) return true;
      }
      // Newer entries that were not built on ours: our entry never was the ref's value. Remove it so
      // the log stays one chain; readers already ignore it (it is not the newest).
      await this.deleteRaw(entryKey(name, seq), signal).catch(() => undefined);
      return false;
    }
    throw new StoreUnavailableError(
      `ref ${name} kept changing while its update was being confirmed on ${this.description}`,
    );
  }

  /**
   * Best effort. Deleting an entry would let a writer holding that old version re-create the next
   * sequence number; the grace period makes that need a stall of minutes, and `confirm` catches it
   * anyway. Oldest first, so the surviving entries always form an unbroken run up to the newest.
   */
  private async prune(
    name: string,
    log: readonly LogEntryInfo[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const last = log.at(-1);
    if (last?.lastModified === undefined) return;
    const newest = last.lastModified;
    for (const e of log) {
      if (e.seq > last.seq - this.refLogKeep) break;
      if (e.lastModified === undefined || newest - e.lastModified < this.refLogGraceMs) break;
      try {
        await this.deleteRaw(entryKey(name, e.seq), signal);
      } catch {
        return;
      }
    }
  }

  async listRefs(prefix: string, options?: OperationOptions): Promise<Map<string, RefValue>> {
    const signal = options?.signal;
    const refs = new Map<string, RefValue>();
    if (!prefix.startsWith('refs/') && !'refs/'.startsWith(prefix)) return refs;
    const listPrefix = prefix.startsWith('refs/') ? prefix : 'refs/';
    const readAt = clocks();
    const newest = new Map<string, number>();
    const logs = new Map<string, LogEntryInfo[]>();
    for await (const item of this.listRaw(listPrefix, signal)) {
      const parsed = parseEntryKey(item.key);
      if (parsed === undefined || !parsed.ref.startsWith(prefix)) continue;
      if ((newest.get(parsed.ref) ?? 0) < parsed.seq) newest.set(parsed.ref, parsed.seq);
      const log = logs.get(parsed.ref) ?? [];
      log.push({ seq: parsed.seq, lastModified: item.lastModified });
      logs.set(parsed.ref, log);
    }
    // Every ref under the prefix with a log: any other name had none when this listing was taken.
    this.listings.set(prefix, { names: new Set(newest.keys()), readAt });
    const heads = [...newest];
    const values = await mapLimit(
      heads,
      HAS_CONCURRENCY,
      async ([name, seq]): Promise<RefValue | null> => {
        let head: RefHead | null;
        try {
          head = { seq, entry: await this.readEntry(name, seq, signal) };
          const log = logs.get(name)!.sort((a, b) => a.seq - b.seq);
          this.knownLogs.set(name, { log, head, readAt });
        } catch (err) {
          if (!(err instanceof NotFoundError)) throw err;
          head = await this.readHead(name, signal);
        }
        return head === null || head.entry.oid === null
          ? null
          : { oid: head.entry.oid, version: formatSequence(head.seq) };
      },
    );
    heads.forEach(([name], i) => {
      const value = values[i];
      if (value) refs.set(name, value);
    });
    return refs;
  }

  // ---------------------------------------------------------------------------------------------
  // conditional-write probe

  private async ensureConditionalWrites(): Promise<void> {
    if (this.options.conditional_writes === 'unsupported')
      throw new ConditionalWritesUnsupportedError(this.endpoint);
    if (!(await this.startProbe())) throw new ConditionalWritesUnsupportedError(this.endpoint);
  }

  /** The probe's answer, started once and shared; a probe that failed is run again next time. */
  private startProbe(): Promise<boolean> {
    if (this.options.conditional_writes === 'unsupported') return Promise.resolve(false);
    if (this.probe === undefined) {
      // Shared by concurrent callers, so no caller's abort signal may cancel it.
      const probe = this.probeOrRemembered().catch((err: unknown) => {
        if (this.probe === probe) this.probe = undefined;
        throw err;
      });
      // Started ahead of need (prepareRefUpdates), nobody may be waiting yet: the failure reaches
      // whoever asks next.
      probe.catch(() => undefined);
      this.probe = probe;
    }
    return this.probe;
  }

  /**
   * A pass remembered from another process (`probe_cache`), else the probe, remembered if passed.
   * Atomic conditional writes are a property of the software answering at the endpoint, not of a
   * bucket, so a pass covers the endpoint's other buckets too (`probe_scope`, docs/backends/s3.md).
   */
  private async probeOrRemembered(): Promise<boolean> {
    const file = this.options.probe_cache;
    if (!file) return this.runProbe();
    const scope = this.options.probe_scope === 'bucket' ? ` ${this.bucket}` : '';
    const key = `${this.endpoint} ${this.region ?? ''}${scope}`;
    if (await probePassed(file, key)) return true;
    const passed = await this.runProbe();
    if (passed) await rememberProbePassed(file, key);
    return passed;
  }

  /**
   * PROBE_ROUNDS rounds, each racing PROBE_WRITERS create-only PUTs (`If-None-Match: *`, each
   * with its own body) on a fresh key, then one more after them. A server that honours the
   * condition atomically lets exactly one writer in: no second writer is told it won, the stored
   * body is the winner's (or, when the winner's answer was lost or a 5xx — radosgw answers 500
   * to some race losers — that of a writer that was not refused), and the late PUT is refused. A
   * server that checks and then writes without a lock passes a lone second PUT but lets several
   * racers through, which is what a ref update would meet; one that ignores the header lets
   * everyone through. A round with no clear answer at all (nothing stored, nobody created) is an
   * error, so the probe is run again later rather than cached either way. Two round trips: the
   * race, then the read-back beside the late PUT; the key's deletion is not waited for.
   */
  private async runProbe(): Promise<boolean> {
    // Each round races on its own key, so the rounds can run at once: two round trips in all.
    const rounds = await Promise.all(Array.from({ length: PROBE_ROUNDS }, () => this.probeRound()));
    return rounds.every(Boolean);
  }

  private async probeRound(): Promise<boolean> {
    const token = randomBytes(8).toString('hex');
    const key = `meta/conditional-write-probe-${token}`;
    const body = (writer: string): Buffer =>
      Buffer.from(`mediagit conditional-write probe ${token}, writer ${writer}; safe to delete\n`);
    const attempt = async (data: Buffer): Promise<ProbeAnswer> => {
      try {
        await this.raw(createOnly(this.full(key), data, undefined));
        return 'created';
      } catch (err) {
        const f = describeS3Failure(err);
        if (f.status === 412) return 'refused';
        if (f.status === 501 || f.code === 'NotImplemented') return 'unsupported';
        // 409 (a conflicting request in flight), 5xx or no answer: says nothing about who won.
        if (f.status === 409 || f.status === undefined || f.status >= 500) return 'unknown';
        throw this.mapError(err, 'PutObject (conditional-write probe)', key);
      }
    };
    try {
      const bodies = Array.from({ length: PROBE_WRITERS }, (_, i) => body(String(i)));
      const answers = await Promise.all(bodies.map(attempt));
      if (answers.includes('unsupported')) return false;
      const created = answers.filter((a) => a === 'created').length;
      if (created > 1) return false;
      // The read-back and the late writer at once (one round trip, not two): whichever lands
      // first, a late PUT that got in means the probe fails, and a read of anything but a
      // racer's body too.
      const late = body('late');
      const [stored, lateAnswer] = await Promise.all([
        this.getRaw(key, undefined).catch((err: unknown) => {
          if (err instanceof NotFoundError) return null;
          throw err;
        }),
        attempt(late),
      ]);
      const winner = stored === null ? -1 : bodies.findIndex((b) => b.equals(stored));
      if (winner < 0) {
        if (created > 0 || (stored !== null && !stored.equals(late))) return false;
        // No racer stored anything, and none was told it did.
        throw new StoreUnavailableError(
          `the conditional-write probe on ${this.description} got no clear answer (${answers.join(', ')})`,
        );
      }
      if (answers[winner] === 'refused') return false;
      if (created === 1 && answers[winner] !== 'created') return false;
      return lateAnswer === 'refused';
    } finally {
      // Not waited for: the answer is known, and close() waits for it instead.
      this.inBackground(this.deleteRaw(key, undefined));
    }
  }

  /** Work whose outcome nobody waits for (the probe's clean-up); close() lets it finish. */
  private inBackground(work: Promise<void>): void {
    const settled: Promise<void> = work
      .catch(() => undefined)
      .finally(() => this.background.delete(settled));
    this.background.add(settled);
  }

  async close(): Promise<void> {
    // A probe started ahead of need (prepareRefUpdates) by a command that then needed no update
    // finishes, and cleans up its keys, rather than being cut off.
    await this.probe?.catch(() => undefined);
    await Promise.all(this.background);
    const loaded = this.loaded;
    const wired = this.wired;
    this.loaded = undefined;
    this.wired = undefined;
    this.probe = undefined;
    if (wired) (await wired.catch(() => undefined))?.close();
    if (loaded) (await loaded.catch(() => undefined))?.client.destroy();
  }
}

/**
 * `sorted` cut where the folder (chunks/, objects/) changes: a listing covers one folder, so a run
 * across two would page the second only after the first had answered, one round trip more than
 * its neighbours (every push asks about both).
 */
function byFolder(sorted: readonly string[]): string[][] {
  const out: string[][] = [];
  let folder: string | undefined;
  for (const key of sorted) {
    const here = key.slice(0, key.indexOf('/') + 1);
    if (here !== folder) out.push([]);
    folder = here;
    out.at(-1)!.push(key);
  }
  return out;
}

/** A PUT with `If-None-Match: *`: created only if the key is absent. */
function createOnly(
  key: string,
  body: Uint8Array,
  signal: AbortSignal | undefined,
  headers: Record<string, string> = {},
): S3Request {
  return { method: 'PUT', key, body, signal, headers: { ...headers, 'if-none-match': '*' } };
}

function normalizePrefix(prefix: string | undefined): string {
  const trimmed = (prefix ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
  return trimmed === '' ? '' : `${trimmed}/`;
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; the first failure stops new work and rejects. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Whether request bodies may go unsigned (SigV4's `UNSIGNED-PAYLOAD`): when the transport already
 * guards them, that is over TLS (AWS itself, any https endpoint) or on the loopback interface.
 * Signing a body means hashing all of it before the request starts, a second SHA-256 of every
 * chunk that mediagit already names by its hash and that every reader verifies anyway; refs and
 * other small bodies are protected in transit by TLS. A plain-http endpoint elsewhere on the
 * network keeps signed bodies, so nobody on the path can alter one unnoticed.
 */
export function unsignedPayloadSafe(endpoint: string | undefined): boolean {
  if (endpoint === undefined) return true;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  if (url.protocol === 'https:') return true;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Sets the payload hash every request is signed with to UNSIGNED-PAYLOAD (see unsignedPayloadSafe). */
function signPayloadsUnsigned(client: S3Client): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'mediagitUnsignedPayload' },
  );
}
