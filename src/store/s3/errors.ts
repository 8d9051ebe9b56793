import {
  AuthError,
  ConfigError,
  MediagitError,
  NotFoundError,
  StoreUnavailableError,
} from '../../errors/index.js';

/**
 * The server accepted a create-only PUT (`If-None-Match: *`) for a key that already existed, or
 * refused the header outright. Ref updates on such a server could silently overwrite each other,
 * so they are refused; plain objects (chunks, manifests) do not need the condition and still work.
 */
export class ConditionalWritesUnsupportedError extends MediagitError {
  override readonly code = 'E_NO_CONDITIONAL_WRITES';
  override readonly exitCode = 12;
  readonly endpoint: string;

  constructor(endpoint: string, details: { cause?: unknown } = {}) {
    super(
      `the S3 server at ${endpoint} does not honour conditional writes (If-None-Match: *); ` +
        'updating refs there would be unsafe: two writers could both "win" and one update would be lost',
      {
        hint: 'use a store that supports conditional PUTs (AWS S3, Ceph radosgw, recent MinIO), or keep refs in another remote',
        cause: details.cause,
      },
    );
    this.endpoint = endpoint;
  }
}

/** A ConfigError (E_CONFIG) so callers that treat bad configuration uniformly keep working. */
export class S3BucketNotFoundError extends ConfigError {
  readonly bucket: string;
  constructor(bucket: string, endpoint: string, details: { cause?: unknown } = {}) {
    super(`S3 bucket "${bucket}" does not exist at ${endpoint}`, {
      hint: 'create the bucket first, or fix the bucket name / endpoint / region in the remote configuration',
      cause: details.cause,
    });
    this.bucket = bucket;
  }
}

/** Where an error happened, for messages. */
export interface S3ErrorContext {
  bucket: string;
  /** Endpoint URL, or a description such as "AWS S3 (us-east-1)". */
  endpoint: string;
  operation: string;
  /** Store key (without the store prefix) the operation concerned, if any. */
  key?: string;
  /** Scrubbed from every message we build, however unlikely it is to appear in one. */
  secret?: string;
}

/** The facts about an SDK (or network) failure that decide how it is reported. */
export interface S3Failure {
  status: number | undefined;
  code: string | undefined;
  retryAfterMs: number | undefined;
  /** Node/system error code (ECONNREFUSED…) for failures below HTTP. */
  errno: string | undefined;
  message: string;
}

const NETWORK_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

const AUTH_CODES = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'RequestTimeTooSkewed',
  'AllAccessDisabled',
  'AccountProblem',
  'CredentialsProviderError',
]);

const UNAVAILABLE_CODES = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'OperationAborted',
]);

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)
    : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Retry-After is either delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Reads an SDK error structurally, so nothing here needs the (lazily loaded) SDK classes. */
export function describeS3Failure(err: unknown): S3Failure {
  const e = record(err) ?? {};
  const metadata = record(e['$metadata']);
  const response = record(e['$response']);
  const headers = record(response?.['headers']);
  let status =
    typeof metadata?.['httpStatusCode'] === 'number' ? metadata['httpStatusCode'] : undefined;
  if (status === undefined && typeof response?.['statusCode'] === 'number')
    status = response['statusCode'];
  let retryAfter: string | undefined;
  if (headers) {
    for (const [name, value] of Object.entries(headers)) {
      if (name.toLowerCase() === 'retry-after') retryAfter = str(value);
    }
  }
  // Network failures may arrive wrapped (fetch-style `cause`, AggregateError from happy-eyeballs).
  let errno = str(e['code']);
  const cause = record(e['cause']);
  if (errno === undefined && cause) errno = str(cause['code']);
  const inner = Array.isArray(e['errors']) ? record(e['errors'][0]) : undefined;
  if (errno === undefined && inner) errno = str(inner['code']);
  const code = str(e['Code']) ?? str(e['name']);
  return {
    status,
    // The SDK names body-less errors (HEAD) after nothing useful; those carry only the status.
    code:
      code === undefined || code === 'Error' || code === 'Unknown' || code === 'UnknownError'
        ? undefined
        : code,
    retryAfterMs: parseRetryAfter(retryAfter),
    errno,
    message: err instanceof Error ? err.message : String(err),
  };
}

export function isAbort(err: unknown): boolean {
  const name = record(err)?.['name'];
  return name === 'AbortError';
}

function scrub(text: string, secret: string | undefined): string {
  return secret ? text.split(secret).join('***') : text;
}

/**
 * Turns an SDK failure into the project's error classes. The backend never retries; this mapping is
 * what lets the retry wrapper decide (only StoreUnavailableError is retriable).
 */
export function mapS3Error(err: unknown, ctx: S3ErrorContext): Error {
  if (err instanceof MediagitError || isAbort(err)) return err as Error;
  const f = describeS3Failure(err);
  const where = `${ctx.operation}${ctx.key ? ` ${ctx.key}` : ''} on bucket "${ctx.bucket}" at ${ctx.endpoint}`;
  const what = [f.code, f.status === undefined ? undefined : `HTTP ${f.status}`]
    .filter((x) => x !== undefined)
    .join(', ');
  const cause = { cause: err };

  if (f.code === 'NoSuchBucket') return new S3BucketNotFoundError(ctx.bucket, ctx.endpoint, cause);
  if (f.code === 'NoSuchKey' || f.code === 'NotFound' || f.status === 404) {
    return new NotFoundError(ctx.key ?? `bucket "${ctx.bucket}"`, cause);
  }
  if (f.status === 401 || f.status === 403 || (f.code !== undefined && AUTH_CODES.has(f.code))) {
    // The SDK's own message is left out on purpose: we never want credentials material in ours.
    return new AuthError(`S3 refused access: ${what || 'unauthorised'} — ${where}`, {
      hint:
        f.code === 'RequestTimeTooSkewed'
          ? "this machine's clock is too far off; fix the time and retry"
          : 'check access_key / secret_key (or the AWS credential chain) and the bucket policy',
      ...cause,
    });
  }
  if (f.code === 'Region is missing' || /region is missing/i.test(f.message)) {
    return new ConfigError(`no region configured for S3 bucket "${ctx.bucket}"`, {
      hint: 'set region in the remote configuration or AWS_REGION in the environment',
      ...cause,
    });
  }
  if (
    f.status === 429 ||
    (f.status !== undefined && f.status >= 500) ||
    (f.code !== undefined && UNAVAILABLE_CODES.has(f.code))
  ) {
    return new StoreUnavailableError(scrub(`S3 is unavailable (${what}) — ${where}`, ctx.secret), {
      ...cause,
      ...(f.retryAfterMs === undefined ? {} : { retryAfterMs: f.retryAfterMs }),
    });
  }
  if (
    f.status === undefined &&
    f.errno !== undefined &&
    (NETWORK_ERRNOS.has(f.errno) || f.errno.startsWith('E'))
  ) {
    return new StoreUnavailableError(
      scrub(`cannot reach the S3 endpoint ${ctx.endpoint} (${f.errno}) — ${where}`, ctx.secret),
      cause,
    );
  }
  if (
    f.status === undefined &&
    (f.code === 'TimeoutError' || /socket hang up|timed? ?out|network/i.test(f.message))
  ) {
    return new StoreUnavailableError(
      scrub(`cannot reach the S3 endpoint ${ctx.endpoint} (${f.message}) — ${where}`, ctx.secret),
      cause,
    );
  }
  return new MediagitError(scrub(`S3 ${where} failed: ${what || f.message}`, ctx.secret), cause);
}
