/**
 * One reading of a failed request to a remote service (S3, Azure Blob Storage, Google Cloud
 * Storage, a mediagit server). Each backend only extracts the facts — how its SDK exposes the
 * status, the service's error code, the socket's errno — and this module decides what they mean:
 * retriable (StoreUnavailableError, with the server's Retry-After), an auth problem, a missing
 * object, a configuration problem (an untrusted certificate), or a verdict on the request.
 * Retry decisions hang on the class, so "try again" is kept to throttling, 408/5xx and the
 * network.
 */
import {
  AuthError,
  ConfigError,
  MediagitError,
  NotFoundError,
  StoreFullError,
  StoreUnavailableError,
} from '../../errors/index.js';

/** What a failed request told us, however the SDK carried it. */
export interface FailureFacts {
  /** HTTP status of the answer; undefined when no answer arrived. */
  readonly status?: number | undefined;
  /** The service's own error code (NoSuchKey, BlobNotFound, SlowDown) or an SDK error name. */
  readonly serviceCode?: string | undefined;
  /** A system or HTTP-client code from the error or its causes (ECONNRESET, UND_ERR_SOCKET). */
  readonly networkCode?: string | undefined;
  /** The SDK's message, only to recognise failures that carry nothing else. */
  readonly message?: string | undefined;
  /** The SDK's credential machinery failed before any request (token exchange, no identity). */
  readonly credentialFailure?: boolean | undefined;
}

export type FailureClass =
  /** 404 or a not-found code: a verdict on the key. */
  | 'not-found'
  /** 401/403 or a credential code: no retry can help. */
  | 'auth'
  /** 429 or a throttling code: retriable, usually with Retry-After. */
  | 'throttled'
  /** 507: the remote has no space left; no retry can fix that. */
  | 'full'
  /** 408, 5xx or an unavailable code: retriable. */
  | 'unavailable'
  /** No connection was made (refused, unknown host): the endpoint is wrong or down. Retriable. */
  | 'unreachable'
  /** The connection broke or timed out mid-request. Retriable. */
  | 'connection-lost'
  /** The server's TLS certificate is not trusted: a configuration problem. */
  | 'certificate'
  /** Any other answer: a verdict on this request. */
  | 'rejected'
  /** Nothing recognisable (no status, no network code). */
  | 'unknown';

const NOT_FOUND_CODES = new Set(['NoSuchKey', 'NotFound', 'BlobNotFound']);

const AUTH_CODES = new Set([
  // S3
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
  // Azure (service codes, and @azure/identity's error names)
  'AuthenticationFailed',
  'AuthorizationFailure',
  'CredentialUnavailableError',
  'AuthenticationError',
  'AggregateAuthenticationError',
]);

const THROTTLE_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
]);

const UNAVAILABLE_CODES = new Set([
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'OperationAborted',
  'ServerBusy',
  'OperationTimedOut',
]);

/** Failures before a connection exists. */
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Failures of a connection that existed, or of one whose state is unknown. */
const BROKEN_CODES = new Set([
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'ERR_HTTP2_STREAM_ERROR',
  // @azure/core-rest-pipeline: the request could not be sent (the errno is in the message).
  'REQUEST_SEND_ERROR',
]);

/** undici codes that are our own doing (cancelled, misused) rather than the network's. */
const PERMANENT_UNDICI_CODES = new Set([
  'UND_ERR_ABORTED',
  'UND_ERR_INVALID_ARG',
  'UND_ERR_INVALID_RETURN_VALUE',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
]);

/** OpenSSL verdicts on the server's certificate: retrying cannot change them. */
const CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * errno names that are a local file system's verdict (a folder remote, a temp file), never the
 * network's: retrying cannot make a missing file appear or a full disk empty.
 */
const FILESYSTEM_CODES = new Set([
  'ENOENT',
  'EACCES',
  'EPERM',
  'EEXIST',
  'EISDIR',
  'ENOTDIR',
  'ENOTEMPTY',
  'ENOSPC',
  'EDQUOT',
  'EROFS',
  'EFBIG',
  'ENAMETOOLONG',
  'ELOOP',
  'EXDEV',
  'EBADF',
  'EINVAL',
  'EMFILE',
  'ENFILE',
  'EMLINK',
  'ETXTBSY',
  'EBUSY',
]);

function isNetworkCode(code: string): boolean {
  if (CONNECT_CODES.has(code) || BROKEN_CODES.has(code)) return true;
  if (FILESYSTEM_CODES.has(code)) return false;
  if (code.startsWith('UND_ERR_')) return !PERMANENT_UNDICI_CODES.has(code);
  // errno names (EPROTO, ENETRESET…), but not Node's ERR_INVALID_ARG_TYPE kind of mistakes.
  return /^E[A-Z]+$/.test(code);
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)
    : undefined;
}

/**
 * The most telling system or HTTP-client code on an error, its `cause` chain or (happy-eyeballs)
 * its AggregateError members: an errno or certificate verdict beats undici's wrapper codes.
 */
export function networkCodeOf(err: unknown): string | undefined {
  let fallback: string | undefined;
  let current: unknown = err;
  for (let depth = 0; depth < 6; depth++) {
    const e = record(current);
    if (e === undefined) break;
    const code = e['code'];
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]+$/.test(code)) {
      if (CERTIFICATE_CODES.has(code) || (isNetworkCode(code) && !code.startsWith('UND_ERR_')))
        return code;
      if (code !== 'REQUEST_SEND_ERROR') fallback ??= code;
    }
    current = e['cause'] ?? (Array.isArray(e['errors']) ? e['errors'][0] : undefined);
  }
  return fallback;
}

export function classifyFailure(f: FailureFacts): FailureClass {
  const code = f.serviceCode;
  if (f.credentialFailure === true) return 'auth';
  if (f.status === undefined) {
    if (code !== undefined && AUTH_CODES.has(code)) return 'auth';
    const net = f.networkCode;
    if (net !== undefined && CERTIFICATE_CODES.has(net)) return 'certificate';
    // Some clients name the errno only in the message of a generic wrapper.
    const named =
      net === undefined || net === 'REQUEST_SEND_ERROR'
        ? (/\b(E[A-Z]+(?:_[A-Z]+)?)\b/.exec(f.message ?? '')?.[1] ?? net)
        : net;
    if (named !== undefined && CONNECT_CODES.has(named)) return 'unreachable';
    if (named !== undefined && isNetworkCode(named)) return 'connection-lost';
    if (code === 'TimeoutError' || /socket hang up|timed? ?out|network/i.test(f.message ?? ''))
      return 'connection-lost';
    return 'unknown';
  }
  if (f.status === 404 || (code !== undefined && NOT_FOUND_CODES.has(code))) return 'not-found';
  if (f.status === 401 || f.status === 403 || (code !== undefined && AUTH_CODES.has(code)))
    return 'auth';
  if (f.status === 429 || (code !== undefined && THROTTLE_CODES.has(code))) return 'throttled';
  if (f.status === 507) return 'full';
  if (f.status === 408 || f.status >= 500 || (code !== undefined && UNAVAILABLE_CODES.has(code)))
    return 'unavailable';
  return 'rejected';
}

/** True for the classes a retry may fix. */
export function isRetriableClass(c: FailureClass): boolean {
  return c === 'throttled' || c === 'unavailable' || c === 'unreachable' || c === 'connection-lost';
}

/**
 * `Retry-After` as milliseconds: delay-seconds or an HTTP date (RFC 9110). Absent or unparseable →
 * undefined, and the caller uses its own backoff; a date in the past is 0.
 */
export function parseRetryAfter(
  value: string | readonly string[] | undefined | null,
  now: number = Date.now(),
): number | undefined {
  const text = (typeof value === 'string' ? value : value?.[0])?.trim();
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  // Only a date with a month or day name: Date.parse would also read "-5" as a year.
  if (!/[A-Za-z]{3}/.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** Secrets at least this long are replaced wherever they appear: no word holds one by chance. */
const REDACT_ANYWHERE = 12;
/** Shorter ones (down to this length) only where they stand whole; shorter still, never. */
const REDACT_WHOLE = 4;

/**
 * Every secret we hold replaced, without garbling the text around it: a long secret wherever it
 * appears, a short one only as a whole token (not inside a longer word, so a four-letter value
 * never turns "bucket" into "b***t"), and one of a character or two not at all — it would match
 * everywhere and hide nothing.
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= REDACT_ANYWHERE) out = out.split(secret).join('***');
    else if (secret.length >= REDACT_WHOLE) {
      const escaped = secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      out = out.replace(new RegExp(`(?<![A-Za-z0-9])${escaped}(?![A-Za-z0-9])`, 'g'), '***');
    }
  }
  return out;
}

/** Every secret we hold replaced, so a server or SDK that echoes one cannot get it into a log. */
export function scrub(text: string, secrets: readonly string[] = []): string {
  return redactSecrets(text, secrets).replace(/(sig=)[^&\s]+/gi, '$1***');
}

/** How one backend names things in messages. */
export interface FailureContext {
  /** "S3", "Azure Blob Storage", "Google Cloud Storage". */
  readonly service: string;
  /** Endpoint URL (or "AWS S3 (region)"), never with credentials. */
  readonly endpoint: string;
  /** The store's description: names the bucket or container. */
  readonly location: string;
  /** What was being done: "get chunks/ab12…". */
  readonly action: string;
  /** The store key concerned: a 404 becomes NotFoundError(key). */
  readonly key?: string | undefined;
  /** What to check when the service refuses the credentials. */
  readonly authHint: string;
  /** One line the service said, already free of secrets; shown for rejected requests. */
  readonly detail?: string | undefined;
  readonly retryAfterMs?: number | undefined;
  readonly secrets?: readonly string[];
}

/**
 * The project's error for a classified failure. `cause` should be free of request details (SDK
 * errors can carry the signed request): see `plainCause`.
 */
export function failureError(
  facts: FailureFacts,
  ctx: FailureContext,
  cause: Error,
  cls: FailureClass = classifyFailure(facts),
): Error {
  const label = [facts.status === undefined ? undefined : `HTTP ${facts.status}`, facts.serviceCode]
    .filter((x) => x !== undefined)
    .join(' ');
  const net = facts.networkCode ?? facts.serviceCode ?? 'network error';
  const s = (text: string): string => scrub(text, ctx.secrets);
  const retry = ctx.retryAfterMs === undefined ? {} : { retryAfterMs: ctx.retryAfterMs };
  switch (cls) {
    case 'not-found':
      return new NotFoundError(ctx.key ?? ctx.location, { cause });
    case 'auth':
      return new AuthError(
        s(
          facts.status === undefined
            ? `could not obtain credentials for ${ctx.service} (${facts.serviceCode ?? 'none found'}) during ${ctx.action} on ${ctx.location}`
            : `${ctx.service} refused access (${label}) during ${ctx.action} on ${ctx.location}`,
        ),
        { hint: ctx.authHint, cause },
      );
    case 'throttled':
      return new StoreUnavailableError(
        s(
          `${ctx.service} at ${ctx.endpoint} is throttling requests (${label}) during ${ctx.action}`,
        ),
        { cause, ...retry },
      );
    case 'unavailable':
      return new StoreUnavailableError(
        s(`${ctx.service} at ${ctx.endpoint} is unavailable (${label}) during ${ctx.action}`),
        { cause, ...retry },
      );
    case 'full':
      return new StoreFullError(
        s(`${ctx.service} at ${ctx.endpoint} is out of storage (${label}) during ${ctx.action}`),
        {
          cause,
          hint: 'free space on the remote (or raise its quota), then run the command again',
        },
      );
    case 'unreachable':
      return new StoreUnavailableError(
        s(`cannot reach ${ctx.service} at ${ctx.endpoint} (${net}) during ${ctx.action}`),
        { cause, hint: 'check the endpoint and that the service is running and reachable' },
      );
    case 'connection-lost':
      return new StoreUnavailableError(
        s(`lost the connection to ${ctx.service} at ${ctx.endpoint} (${net}) during ${ctx.action}`),
        { cause },
      );
    case 'certificate':
      return new ConfigError(s(`the TLS certificate of ${ctx.endpoint} is not trusted (${net})`), {
        cause,
        hint: 'if the service uses a private CA or a self-signed certificate, point NODE_EXTRA_CA_CERTS at its PEM file (or install the CA in the system store)',
      });
    case 'rejected':
    case 'unknown':
      return new MediagitError(
        s(
          `${ctx.service} request failed${label ? ` (${label})` : ''} during ${ctx.action} on ${ctx.location}${ctx.detail ? `: ${ctx.detail}` : ''}`,
        ),
        { cause },
      );
  }
}

/**
 * A plain Error holding only what helps diagnosis (the code and the first line of the message,
 * secrets scrubbed): SDK errors hold the whole request, whose Authorization header or SAS query
 * must never reach a log.
 */
export function plainCause(
  facts: FailureFacts,
  message: string,
  secrets: readonly string[] = [],
): Error {
  const code =
    facts.serviceCode ??
    facts.networkCode ??
    (facts.status === undefined ? 'error' : String(facts.status));
  const line = message.split('\n', 1)[0] ?? '';
  return new Error(scrub(`${code}${line ? `: ${line}` : ''}`, secrets));
}

export function isAbortError(err: unknown): boolean {
  return record(err)?.['name'] === 'AbortError';
}
