/**
 * Presigned S3 URLs (SigV4 in the query string): a URL that lets whoever holds it GET one object,
 * or PUT one object of one exact length, until it expires, without credentials of their own. A
 * mediagit server over S3 hands them to its clients so that chunk bytes go between client and
 * bucket directly (docs/protocol.md "Presigned URLs"). The payload is unsigned, as for every
 * presigned S3 URL: a download is verified by its ID, an upload by the server before it counts.
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';

/** SigV4's longest validity (one week); S3 refuses longer. */
export const MAX_PRESIGN_EXPIRY_S = 7 * 24 * 3600;

export interface PresignTarget {
  /** `http(s)://host[:port]` clients reach the bucket at; undefined: AWS S3 in `region`. */
  readonly endpoint: string | undefined;
  readonly bucket: string;
  readonly region: string;
  /** http://host/bucket/key rather than http://bucket.host/key. */
  readonly pathStyle: boolean;
  /** Resolves the signing credentials (static keys or the SDK's chain). */
  readonly credentials: () => Promise<{
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string | undefined;
  }>;
}

export interface PresignRequest {
  readonly method: 'GET' | 'PUT';
  /** The object's full key in the bucket (the store's prefix included). */
  readonly key: string;
  readonly expiresInS: number;
  /** PUT: the exact body length the URL accepts; it is signed, so another length is refused. */
  readonly contentLength?: number;
  /** Signing time; now unless given (tests sign URLs that are already expired). */
  readonly signedAt?: Date;
}

type SourceData = string | ArrayBuffer | ArrayBufferView;

function bytesOf(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** The hash the signer asks for, from node:crypto: SHA-256, or HMAC-SHA-256 when given a key. */
class NodeSha256 {
  private readonly secret: Buffer | undefined;
  private hash: Hash | Hmac;

  constructor(secret?: SourceData) {
    this.secret = secret === undefined ? undefined : bytesOf(secret);
    this.hash = this.fresh();
  }

  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }

  update(data: Uint8Array): void {
    this.hash.update(data);
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }

  reset(): void {
    this.hash = this.fresh();
  }
}

type SignerModule = typeof import('@smithy/signature-v4');
let signerModule: Promise<SignerModule> | undefined;

/** Loaded on first use: only a server that hands out URLs needs it. */
function loadSigner(): Promise<SignerModule> {
  signerModule ??= import('@smithy/signature-v4').catch((err: unknown) => {
    signerModule = undefined;
    throw err;
  });
  return signerModule;
}

/** Where an object lives: host, port-qualified Host header and the path, S3-escaped once. */
function locate(
  target: PresignTarget,
  key: string,
): { protocol: string; hostname: string; port: number | undefined; path: string } {
  const escapedKey = key.split('/').map(encodeURIComponent).join('/');
  const base = new URL(target.endpoint ?? `https://s3.${target.region}.amazonaws.com`);
  const prefix = base.pathname.replace(/\/+$/, '');
  const port = base.port === '' ? undefined : Number(base.port);
  if (target.pathStyle)
    return {
      protocol: base.protocol,
      hostname: base.hostname,
      port,
      path: `${prefix}/${encodeURIComponent(target.bucket)}/${escapedKey}`,
    };
  return {
    protocol: base.protocol,
    hostname: `${target.bucket}.${base.hostname}`,
    port,
    path: `${prefix}/${escapedKey}`,
  };
}

/** A presigned URL for one request on one object. */
export async function presignUrl(target: PresignTarget, request: PresignRequest): Promise<string> {
  if (
    !Number.isInteger(request.expiresInS) ||
    request.expiresInS < 1 ||
    request.expiresInS > MAX_PRESIGN_EXPIRY_S
  )
    throw new RangeError(`a presigned URL lives 1 s to 7 days, not ${request.expiresInS} s`);
  const { SignatureV4 } = await loadSigner();
  const signer = new SignatureV4({
    service: 's3',
    region: target.region,
    credentials: target.credentials,
    sha256: NodeSha256,
    // S3 takes the path escaped once (the SDK's S3 client signs it so too).
    uriEscapePath: false,
  });
  const where = locate(target, request.key);
  const host = where.port === undefined ? where.hostname : `${where.hostname}:${where.port}`;
  const headers: Record<string, string> = {
    host,
    // S3's marker for a body the signature does not cover.
    'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
  };
  if (request.contentLength !== undefined)
    headers['content-length'] = String(request.contentLength);
  const signed = await signer.presign(
    {
      method: request.method,
      protocol: where.protocol,
      hostname: where.hostname,
      ...(where.port !== undefined ? { port: where.port } : {}),
      path: where.path,
      query: {},
      headers,
    },
    {
      expiresIn: request.expiresInS,
      ...(request.signedAt ? { signingDate: request.signedAt } : {}),
      // Content-Length stays a signed header: a client must send exactly that many bytes.
      unhoistableHeaders: new Set(['content-length']),
    },
  );
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(signed.query ?? {}))
    if (typeof value === 'string') query.set(name, value);
  return `${where.protocol}//${host}${where.path}?${query.toString()}`;
}
