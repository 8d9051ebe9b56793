import { ConfigError, MediagitError } from '../../errors/index.js';
import {
  classifyFailure,
  failureError,
  isAbortError,
  networkCodeOf,
  parseRetryAfter,
  plainCause,
  type FailureFacts,
} from '../remote-service/failure.js';

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

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)
    : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
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
  const code = str(e['Code']) ?? str(e['name']);
  return {
    status,
    // The SDK names body-less errors (HEAD) after nothing useful; those carry only the status.
    code:
      code === undefined || code === 'Error' || code === 'Unknown' || code === 'UnknownError'
        ? undefined
        : code,
    retryAfterMs: parseRetryAfter(retryAfter),
    errno: networkCodeOf(err),
    message: err instanceof Error ? err.message : String(err),
  };
}

/**
 * Turns an SDK failure into the project's error classes (remote-service/failure.ts decides what
 * each failure means); only what S3 alone has is decided here. The backend never retries.
 */
export function mapS3Error(err: unknown, ctx: S3ErrorContext): Error {
  if (err instanceof MediagitError || isAbortError(err)) return err as Error;
  const f = describeS3Failure(err);
  const facts: FailureFacts = {
    status: f.status,
    serviceCode: f.code,
    networkCode: f.errno,
    message: f.message,
  };
  const secrets = ctx.secret === undefined ? [] : [ctx.secret];
  const cause = plainCause(facts, f.message, secrets);
  if (f.code === 'NoSuchBucket')
    return new S3BucketNotFoundError(ctx.bucket, ctx.endpoint, { cause });
  if (f.code === 'Region is missing' || /region is missing/i.test(f.message)) {
    return new ConfigError(`no region configured for S3 bucket "${ctx.bucket}"`, {
      hint: 'set region in the remote configuration or AWS_REGION in the environment',
      cause,
    });
  }
  const cls = classifyFailure(facts);
  return failureError(
    facts,
    {
      service: 'S3',
      endpoint: ctx.endpoint,
      location: `bucket "${ctx.bucket}" at ${ctx.endpoint}`,
      action: `${ctx.operation}${ctx.key ? ` ${ctx.key}` : ''}`,
      key: ctx.key,
      authHint:
        f.code === 'RequestTimeTooSkewed'
          ? "this machine's clock is too far off; fix the time and retry"
          : 'check access_key / secret_key (or the AWS credential chain) and the bucket policy',
      // The SDK's own words are left out of auth errors: no credentials material in ours.
      detail: cls === 'auth' ? undefined : f.message.split('\n', 1)[0],
      retryAfterMs: f.retryAfterMs,
      secrets,
    },
    cause,
    cls,
  );
}
