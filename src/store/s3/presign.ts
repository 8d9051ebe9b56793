/**
 * Presigned S3 URLs (SigV4 in the query string): a URL that lets whoever holds it GET one object,
 * or PUT one object of one exact length, until it expires, without credentials of their own. A
 * mediagit server over S3 hands them to its clients so that chunk bytes go between client and
 * bucket directly (docs/protocol.md "Presigned URLs"). The payload is unsigned, as for every
 * presigned S3 URL: a download is verified by its ID, an upload by the server before it counts.
 */
import { SigV4Signer, uriEncode, type S3Credentials } from './sigv4.js';
import { bucketAddress } from './wire.js';

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
  readonly credentials: () => Promise<S3Credentials>;
  /** A signer for `region` kept across URLs (it derives the day's key once); else a new one. */
  readonly signer?: SigV4Signer;
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

/** A presigned URL for one request on one object. */
export async function presignUrl(target: PresignTarget, request: PresignRequest): Promise<string> {
  if (
    !Number.isInteger(request.expiresInS) ||
    request.expiresInS < 1 ||
    request.expiresInS > MAX_PRESIGN_EXPIRY_S
  )
    throw new RangeError(`a presigned URL lives 1 s to 7 days, not ${request.expiresInS} s`);
  const where = bucketAddress(
    target.endpoint ?? `https://s3.${target.region}.amazonaws.com`,
    target.bucket,
    target.pathStyle,
  );
  const path = `${where.base}/${uriEncode(request.key, true)}`;
  const query = (target.signer ?? new SigV4Signer(target.region)).presignQuery(
    { method: request.method, host: where.host, path, query: [] },
    await target.credentials(),
    request.expiresInS,
    request.contentLength !== undefined ? { 'content-length': String(request.contentLength) } : {},
    request.signedAt,
  );
  return `${where.protocol}//${where.host}${path}?${query}`;
}
