/**
 * Downloads straight from the server's bucket (docs/protocol.md "Presigned URLs"): when a server
 * over S3 offers it in its negotiate answer, a chunk or object is read from a presigned URL the
 * server hands out instead of through the server. The bytes are unverified here, as the server's
 * are: the caller verifies every object by its ID whichever way it came.
 *
 * Any trouble on the direct path — the URL expired or was refused, the object is not there, the
 * bucket is unreachable from here, the answer was cut short — sends the read back to the server
 * (`null`), which answers as it always did (404, 410 expired, the bytes). A URL refused is asked
 * for once more first, since one that waited in a queue past its expiry is the usual reason.
 */
import { Agent, type Dispatcher } from 'undici';

/** Asks the server for URLs; keys it leaves out are relayed. */
export type UrlSource = (keys: readonly string[]) => Promise<Map<string, string>>;

export interface PresignedReadsOptions {
  readonly urls: UrlSource;
  /** Largest body accepted. */
  readonly maxBytes: number;
  readonly readTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Connections to the bucket. */
  readonly connections: number;
  /** How long a URL lives (the offer's expires_in): one asked ahead is not used past half of it. */
  readonly urlLifetimeMs: number;
  /** For tests: send through this dispatcher instead of one of our own. */
  readonly dispatcher?: Dispatcher;
}

export interface PresignedStats {
  /** Objects read from the bucket directly. */
  direct: number;
  /** Reads handed back to the server (refused, absent, unreachable, cut short). */
  relayed: number;
  /** URLs the bucket refused (expired) that a second URL then read. */
  renewed: number;
}

/** Keys per request asked ahead (the server takes up to 1000). */
const AHEAD_BATCH = 1000;

interface Waiter {
  readonly key: string;
  readonly resolve: (url: string | undefined) => void;
  readonly reject: (err: unknown) => void;
}

/** A failure on the direct path that the server may still answer. */
class DirectMiss {
  constructor(readonly refused: boolean) {}
}

export class PresignedReads {
  readonly stats: PresignedStats = { direct: 0, relayed: 0, renewed: 0 };
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  /** Keys waiting for the next URL request; sent when the one in flight returns. */
  private waiting: Waiter[] = [];
  private asking = false;
  /** False once the bucket proved unreachable from here: the rest of the command relays. */
  private usable = true;
  /** URLs asked for ahead of their reads (expect), each used once. */
  private readonly ahead = new Map<string, { url: Promise<string | undefined>; askedAt: number }>();

  constructor(private readonly options: PresignedReadsOptions) {
    if (options.dispatcher) {
      this.dispatcher = options.dispatcher;
      this.ownsDispatcher = false;
    } else {
      this.dispatcher = new Agent({
        connections: options.connections,
        keepAliveTimeout: 30_000,
        headersTimeout: options.readTimeoutMs,
        bodyTimeout: options.readTimeoutMs,
        connect: { timeout: options.connectTimeoutMs },
      });
      this.ownsDispatcher = true;
    }
  }

  /** The stored bytes of `key` from the bucket, or null: ask the server. */
  async get(key: string, signal: AbortSignal | undefined): Promise<Buffer | null> {
    for (let attempt = 0; attempt < 2 && this.usable; attempt++) {
      const url =
        (attempt === 0 ? await this.takeAhead(key) : undefined) ?? (await this.urlFor(key));
      if (url === undefined) break;
      const outcome = await this.download(url, signal);
      if (!(outcome instanceof DirectMiss)) {
        this.stats.direct++;
        if (attempt > 0) this.stats.renewed++;
        return outcome;
      }
      if (!outcome.refused) break;
    }
    this.stats.relayed++;
    return null;
  }

  /**
   * URLs for reads that are coming (ReadAhead), asked now in as few requests as possible: a read
   * then waits for no round trip of its own. A failed request only means those reads ask again.
   */
  expect(keys: readonly string[]): void {
    if (!this.usable) return;
    const now = Date.now();
    const wanted = [...new Set(keys)].filter((k) => !this.ahead.has(k));
    for (let start = 0; start < wanted.length; start += AHEAD_BATCH) {
      const batch = wanted.slice(start, start + AHEAD_BATCH);
      const answer = this.options.urls(batch).catch(() => new Map<string, string>());
      for (const key of batch)
        this.ahead.set(key, { url: answer.then((m) => m.get(key)), askedAt: now });
    }
  }

  /** The URL asked ahead for `key`, unless none was or it is too old to trust. */
  private async takeAhead(key: string): Promise<string | undefined> {
    const entry = this.ahead.get(key);
    if (entry === undefined) return undefined;
    this.ahead.delete(key);
    if (Date.now() - entry.askedAt > this.options.urlLifetimeMs / 2) return undefined;
    return entry.url;
  }

  /**
   * One URL, asked with whatever other keys are waiting: a request leaves at once when none is in
   * flight, otherwise the keys gather until it returns. So parallel reads share requests without
   * any timer, and a lone read waits for no one.
   */
  private urlFor(key: string): Promise<string | undefined> {
    return new Promise<string | undefined>((resolve, reject) => {
      this.waiting.push({ key, resolve, reject });
      if (!this.asking) queueMicrotask(() => void this.ask());
    });
  }

  /** Not tied to one caller's signal: the request carries other callers' keys too. */
  private async ask(): Promise<void> {
    if (this.asking || this.waiting.length === 0) return;
    this.asking = true;
    const batch = this.waiting;
    this.waiting = [];
    try {
      const urls = await this.options.urls([...new Set(batch.map((w) => w.key))]);
      for (const w of batch) w.resolve(urls.get(w.key));
    } catch (err) {
      for (const w of batch) w.reject(err);
    } finally {
      this.asking = false;
      if (this.waiting.length > 0) void this.ask();
    }
  }

  private async download(
    url: string,
    signal: AbortSignal | undefined,
  ): Promise<Buffer | DirectMiss> {
    let response: Dispatcher.ResponseData;
    try {
      const { origin, pathname, search } = new URL(url);
      response = await this.dispatcher.request({
        origin,
        path: `${pathname}${search}`,
        method: 'GET',
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      // The bucket is not reachable from here (a private network behind the server): relay it all.
      this.usable = false;
      return new DirectMiss(false);
    }
    const { statusCode, headers, body } = response;
    if (statusCode !== 200) {
      body.resume();
      // 403: expired or refused. Anything else (404, 5xx): the server answers it as it should.
      return new DirectMiss(statusCode === 403);
    }
    const declared = Number(headers['content-length']);
    if (!Number.isSafeInteger(declared) || declared > this.options.maxBytes) {
      body.destroy();
      return new DirectMiss(false);
    }
    const parts: Buffer[] = [];
    let received = 0;
    try {
      for await (const piece of body as AsyncIterable<Buffer>) {
        received += piece.length;
        if (received > declared) break;
        parts.push(piece);
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      return new DirectMiss(false);
    }
    if (received !== declared) {
      body.destroy();
      return new DirectMiss(false);
    }
    return Buffer.concat(parts, received);
  }

  async close(): Promise<void> {
    this.ahead.clear();
    for (const w of this.waiting.splice(0)) w.resolve(undefined);
    if (this.ownsDispatcher) await this.dispatcher.close();
  }
}
