/**
 * The S3 requests a store makes on its data and ref paths (GET, PUT, HEAD, DELETE, ListObjectsV2),
 * sent over node:http(s) with a keep-alive agent and signed here (sigv4.ts). Measured on the bench
 * corpus, the SDK spent ~1.4 ms of CPU per request in its middleware and schema-driven
 * (de)serialisation and ~100 ms loading, about half of a push's CPU; these few requests need none
 * of that. Failures are thrown in the shape the SDK uses ($metadata.httpStatusCode, $response,
 * Code), so errors.ts reads both the same way. Multipart uploads stay with the SDK.
 */
import type { Agent as HttpAgent, IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import {
  EMPTY_SHA256,
  SigV4Signer,
  UNSIGNED_PAYLOAD,
  canonicalQuery,
  uriEncode,
  type S3Credentials,
} from './sigv4.js';
import { createHash } from 'node:crypto';

// From the runtime, not an ES import: the import's module facade reads every export of node:http,
// and its WebSocket getters load Node's bundled fetch client (~90-130 ms of CPU in a profiled push).
const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');

export interface S3WireOptions {
  /** Base URL: scheme, host and port (no path). */
  readonly endpoint: string;
  readonly bucket: string;
  /** http://host/bucket/key rather than http://bucket.host/key. */
  readonly pathStyle: boolean;
  readonly region: string;
  readonly credentials: () => Promise<S3Credentials>;
  /** Request bodies go with UNSIGNED-PAYLOAD (see unsignedPayloadSafe). */
  readonly unsignedPayload: boolean;
  readonly connectTimeoutMs: number;
  /** Idle timer of the socket while a request waits for, or reads, its answer. */
  readonly readTimeoutMs: number;
  /** Sockets kept per host; more requests than this queue in the agent. */
  readonly maxSockets: number;
}

export interface S3Request {
  readonly method: 'GET' | 'PUT' | 'HEAD' | 'DELETE';
  /** Full object key (with the store prefix); absent for bucket-level requests (LIST). */
  readonly key?: string | undefined;
  readonly query?: readonly (readonly [string, string])[];
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  readonly signal?: AbortSignal | undefined;
}

export interface S3Response {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  /** The body as it arrives; every caller reads it to the end or destroys it. */
  readonly body: IncomingMessage;
}

/** An S3 error answer or a transport failure, shaped like the SDK's service exceptions. */
export class S3WireError extends Error {
  readonly Code: string | undefined;
  readonly $metadata: { httpStatusCode?: number };
  readonly $response: { statusCode?: number; headers: Record<string, string> } | undefined;
  readonly code: string | undefined;

  constructor(
    message: string,
    details: {
      status?: number;
      code?: string;
      headers?: Record<string, string>;
      errno?: string;
      cause?: unknown;
    },
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    // Names as the SDK gives them: the service's code, or nothing telling (errors.ts ignores those).
    this.name =
      details.code ??
      (details.status === undefined && details.errno === 'ETIMEDOUT' ? 'TimeoutError' : 'Error');
    this.Code = details.code;
    this.code = details.errno;
    this.$metadata = details.status === undefined ? {} : { httpStatusCode: details.status };
    this.$response =
      details.status === undefined
        ? undefined
        : { statusCode: details.status, headers: details.headers ?? {} };
  }
}

/** Where a bucket's objects are addressed at `endpoint`, as requests and presigned URLs need it. */
export interface BucketAddress {
  /** `http:` or `https:`. */
  readonly protocol: string;
  /** The host to connect to (IPv6 without brackets). */
  readonly hostname: string;
  readonly port: number | undefined;
  /** The Host header, which is signed. */
  readonly host: string;
  /** Path prefix before the key: the endpoint's own path, then "/bucket" in path style. */
  readonly base: string;
}

export function bucketAddress(endpoint: string, bucket: string, pathStyle: boolean): BucketAddress {
  const url = new URL(endpoint);
  const hostname = pathStyle ? url.hostname : `${bucket}.${url.hostname}`;
  return {
    protocol: url.protocol,
    hostname: hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? undefined : Number(url.port),
    host: url.port === '' ? hostname : `${hostname}:${url.port}`,
    base: `${url.pathname.replace(/\/+$/, '')}${pathStyle ? `/${uriEncode(bucket)}` : ''}`,
  };
}

export class S3Wire {
  private readonly signer: SigV4Signer;
  private readonly agent: HttpAgent;
  private readonly secure: boolean;
  private readonly hostname: string;
  private readonly port: number | undefined;
  /** The Host header, which is signed. */
  private readonly host: string;
  /** Path prefix before the key: "/bucket" in path style, "" otherwise. */
  private readonly base: string;

  constructor(private readonly options: S3WireOptions) {
    const address = bucketAddress(options.endpoint, options.bucket, options.pathStyle);
    this.secure = address.protocol === 'https:';
    this.hostname = address.hostname;
    this.port = address.port;
    this.host = address.host;
    this.base = address.base;
    this.signer = new SigV4Signer(options.region);
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets, scheduling: 'lifo' };
    this.agent = this.secure
      ? new https.Agent(agentOptions as ConstructorParameters<typeof https.Agent>[0])
      : new http.Agent(agentOptions as ConstructorParameters<typeof http.Agent>[0]);
  }

  /**
   * Sends one request. A 2xx or 3xx answer resolves with its body unread; anything else is read
   * (S3's XML error document) and thrown as an S3WireError.
   */
  async send(req: S3Request): Promise<S3Response> {
    const credentials = await this.options.credentials();
    const path = `${this.base}/${req.key === undefined ? '' : uriEncode(req.key, true)}`;
    const query = req.query ?? [];
    const body = req.body;
    const payloadHash =
      body === undefined || body.byteLength === 0
        ? EMPTY_SHA256
        : this.options.unsignedPayload
          ? UNSIGNED_PAYLOAD
          : createHash('sha256').update(body).digest('hex');
    const signed = this.signer.sign(
      { method: req.method, host: this.host, path, query },
      credentials,
      payloadHash,
    );
    const qs = canonicalQuery(query);
    const headers: Record<string, string> = { ...req.headers, ...signed, host: this.host };
    if (body !== undefined) headers['content-length'] = String(body.byteLength);
    const response = await this.exchange(`${path}${qs === '' ? '' : `?${qs}`}`, req, headers);
    const status = response.statusCode ?? 0;
    if (status >= 200 && status < 400) return { status, headers: response.headers, body: response };
    // Read even when empty (HEAD): only a finished answer frees its socket for the next request.
    const text = (await readAll(response).catch(() => Buffer.alloc(0))).toString('utf8');
    const code = xmlText(text, 'Code');
    const message = xmlText(text, 'Message');
    throw new S3WireError(
      `${req.method} answered ${status}${code === undefined ? '' : ` ${code}`}${message ? `: ${message}` : ''}`,
      { status, ...(code !== undefined ? { code } : {}), headers: flatHeaders(response.headers) },
    );
  }

  private exchange(
    path: string,
    req: S3Request,
    headers: Record<string, string>,
  ): Promise<IncomingMessage> {
    const signal = req.signal;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const send = this.secure ? https.request : http.request;
      const request = send({
        agent: this.agent,
        hostname: this.hostname,
        ...(this.port !== undefined ? { port: this.port } : {}),
        method: req.method,
        path,
        headers,
        ...(signal !== undefined ? { signal } : {}),
      });
      let connectTimer: NodeJS.Timeout | undefined;
      const fail = (err: unknown): void => {
        if (connectTimer) clearTimeout(connectTimer);
        reject(transportError(err));
      };
      request.once('error', fail);
      request.once('socket', (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(() => {
          request.destroy(
            new S3WireError(`could not connect within ${this.options.connectTimeoutMs} ms`, {
              errno: 'ETIMEDOUT',
            }),
          );
        }, this.options.connectTimeoutMs);
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      // The socket's idle timer: no byte for this long, before or during the answer, fails it.
      request.setTimeout(this.options.readTimeoutMs, () => {
        request.destroy(
          new S3WireError(`no answer for ${this.options.readTimeoutMs} ms`, { errno: 'ETIMEDOUT' }),
        );
      });
      request.once('response', (response) => {
        if (connectTimer) clearTimeout(connectTimer);
        // From here on a failure belongs to whoever reads the body.
        request.off('error', fail);
        request.on('error', () => undefined);
        resolve(response);
      });
      request.end(req.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** A failure below HTTP keeps its errno (ECONNRESET…) where errors.ts looks for it. */
function transportError(err: unknown): unknown {
  if (err instanceof S3WireError) return err;
  const e = err as { name?: unknown; code?: unknown; message?: unknown } | null;
  if (e?.name === 'AbortError') return err;
  return new S3WireError(
    typeof e?.message === 'string' ? e.message : String(err),
    typeof e?.code === 'string' ? { errno: e.code, cause: err } : { cause: err },
  );
}

/**
 * The whole body; a body shorter than its Content-Length (a connection cut mid-reply) is a
 * transport failure, never a short object.
 */
export async function readAll(body: IncomingMessage): Promise<Buffer> {
  const declared = Number(body.headers['content-length']);
  const parts: Buffer[] = [];
  let length = 0;
  try {
    for await (const part of body as Readable) {
      parts.push(part as Buffer);
      length += (part as Buffer).length;
    }
  } catch (err) {
    throw transportError(err);
  }
  if (!body.complete || (Number.isFinite(declared) && length !== declared))
    throw new S3WireError(`the answer was cut after ${length} bytes`, { errno: 'ECONNRESET' });
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
}

function flatHeaders(headers: IncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers))
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
};

/** XML character data as text: the five named entities and numeric references. */
export function xmlDecode(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, ref: string) =>
    ref.startsWith('#x')
      ? String.fromCodePoint(parseInt(ref.slice(2), 16))
      : ref.startsWith('#')
        ? String.fromCodePoint(Number(ref.slice(1)))
        : ENTITIES[ref]!,
  );
}

/** The text of the first `<tag>` element in `xml`, decoded; undefined when there is none. */
export function xmlText(xml: string, tag: string): string | undefined {
  const open = xml.indexOf(`<${tag}>`);
  if (open < 0) return undefined;
  const start = open + tag.length + 2;
  const end = xml.indexOf(`</${tag}>`, start);
  return end < 0 ? undefined : xmlDecode(xml.slice(start, end));
}

export interface ListedObject {
  readonly key: string;
  readonly size: number;
  readonly lastModified: number | undefined;
}

export interface ListPage {
  readonly contents: ListedObject[];
  readonly truncated: boolean;
  readonly nextToken: string | undefined;
}

/**
 * A ListObjectsV2 answer. Only the elements a store reads; `<Contents>` never nests another
 * element of the same name, so finding each by its tags is exact.
 */
export function parseListPage(xml: string): ListPage {
  const contents: ListedObject[] = [];
  let at = 0;
  for (;;) {
    const open = xml.indexOf('<Contents>', at);
    if (open < 0) break;
    const close = xml.indexOf('</Contents>', open);
    if (close < 0) break;
    const item = xml.slice(open, close);
    at = close + 11;
    const key = xmlText(item, 'Key');
    if (key === undefined) continue;
    const modified = xmlText(item, 'LastModified');
    const time = modified === undefined ? Number.NaN : Date.parse(modified);
    contents.push({
      key,
      size: Number(xmlText(item, 'Size') ?? 0),
      lastModified: Number.isNaN(time) ? undefined : time,
    });
  }
  // Keys are escaped text, so these tags can only be the result's own, wherever they stand.
  return {
    contents,
    truncated: xmlText(xml, 'IsTruncated') === 'true',
    nextToken: xmlText(xml, 'NextContinuationToken'),
  };
}
