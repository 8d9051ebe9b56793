/**
 * HTTP statuses of docs/protocol.md → the typed errors the rest of mediagit understands. Retry
 * decisions hang on the class (StoreUnavailableError is retried, everything else is a verdict),
 * so the mapping is deliberately narrow: only 429, 5xx and network failures are "try again".
 */
import {
  AuthError,
  ConfigError,
  ExpiredError,
  MediagitError,
  NotFoundError,
  ObjectCorruptError,
  StoreFullError,
  StoreUnavailableError,
} from '../../errors/index.js';
import {
  classifyFailure,
  networkCodeOf,
  parseRetryAfter,
  redactSecrets,
} from '../remote-service/failure.js';

/** A body over the server's limit (413). Not retried: the same body will be refused again. */
export class PayloadTooLargeError extends MediagitError {
  override readonly code = 'E_TOO_LARGE';
  override readonly exitCode = 12;
}

/** The server answered something the protocol does not allow here (or refused our request as malformed). */
export class ProtocolError extends MediagitError {
  override readonly code = 'E_PROTOCOL';
  override readonly exitCode = 12;
  readonly status: number | undefined;
  constructor(message: string, details: { hint?: string; cause?: unknown; status?: number } = {}) {
    super(message, details);
    this.status = details.status;
  }
}

/** `{"error","message",…}` when the body is JSON of that shape; otherwise nothing. */
export interface ErrorBody {
  readonly error?: string;
  readonly message?: string;
  readonly oid?: string;
  readonly [field: string]: unknown;
}

export function parseErrorBody(body: Buffer, contentType: string | undefined): ErrorBody {
  if (body.length === 0 || body.length > 64 * 1024) return {};
  if (contentType !== undefined && !/json/i.test(contentType) && body[0] !== 0x7b) return {};
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as ErrorBody)
      : {};
  } catch {
    return {};
  }
}

export { parseRetryAfter };

/**
 * One line of server-supplied text, safe to show: control characters removed, length capped, and
 * every secret we hold replaced — a server that echoes the Authorization header must not get
 * the token into a terminal or a CI log through us.
 */
export function sanitize(text: string, secrets: readonly string[]): string {
  let out = redactSecrets(text, secrets);
  // eslint-disable-next-line no-control-regex
  out = out.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return out.length > 300 ? `${out.slice(0, 297)}...` : out;
}

export interface ErrorContext {
  /** "GET chunks/ab12…", for messages. */
  readonly action: string;
  /** The store key the request was about, if any (404 → NotFoundError(key)). */
  readonly key?: string;
  /** Human-readable location of the repository (origin/repo, never credentials). */
  readonly where: string;
  /** The URL a user would give `mediagit login`. */
  readonly loginUrl: string;
  /** Whether a token was sent (changes what a 401 means). */
  readonly authenticated: boolean;
  readonly secrets: readonly string[];
}

export function statusError(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
  ctx: ErrorContext,
): Error {
  const contentType = headers['content-type'];
  const parsed = parseErrorBody(body, Array.isArray(contentType) ? contentType[0] : contentType);
  const serverText =
    typeof parsed.message === 'string' ? sanitize(parsed.message, ctx.secrets) : '';
  const said = serverText ? `: ${serverText}` : '';
  const retryAfterMs = parseRetryAfter(headers['retry-after']);
  switch (status) {
    case 401:
      return new AuthError(
        ctx.authenticated
          ? `${ctx.where} refused the token (401)${said}`
          : `${ctx.where} needs a token (401)`,
        {
          hint: `run 'mediagit login ${ctx.loginUrl}' or set MEDIAGIT_TOKEN; tokens expire, so an old one may need renewing`,
        },
      );
    case 403:
      return new AuthError(`${ctx.where}: permission denied for ${ctx.action} (403)${said}`, {
        hint: `your token's role does not allow this (read < write < admin); ask the server's administrator, then 'mediagit login ${ctx.loginUrl}' again`,
      });
    case 404:
      return new NotFoundError(ctx.key ?? ctx.where, serverText ? { hint: serverText } : {});
    case 410:
      // Deleted on purpose by a retention policy (gc --remote), not lost: a verdict, never retried.
      return new ExpiredError(
        ctx.key ?? ctx.where,
        typeof parsed['expired_at'] === 'string' ? parsed['expired_at'] : 'an unknown date',
        serverText ? { hint: serverText } : {},
      );
    case 413:
      return new PayloadTooLargeError(
        `${ctx.where} refused ${ctx.action}: the body is over the server's size limit (413)${said}`,
        {
          hint: 'the server limits objects (max_object_bytes) and packs (max_pack_bytes); raise the limit on the server, or report this if it is a normal repository object',
        },
      );
    case 422: {
      const oid =
        typeof parsed.oid === 'string' && /^[0-9a-f]{64}$/.test(parsed.oid)
          ? parsed.oid
          : (/\/([0-9a-f]{64})$/.exec(ctx.key ?? '')?.[1] ?? ctx.key ?? 'unknown');
      return new ObjectCorruptError(
        oid,
        `the server rejected it: its content does not match its ID or is not a valid envelope${said}`,
        {
          hint: "run 'mediagit fsck --full' on this repository; do not push until it is clean",
        },
      );
    }
    case 409:
      return new ProtocolError(
        `${ctx.where} refused ${ctx.action}: it conflicts with what the server already holds (409)${said}`,
        {
          status,
          hint: 'key files and metadata are never replaced with different content on a server; check that this remote belongs to this repository',
        },
      );
    case 429:
      return new StoreUnavailableError(
        `${ctx.where} is rate limiting requests (429)`,
        retryAfterMs === undefined ? {} : { retryAfterMs },
      );
    case 507:
      return new StoreFullError(
        `${ctx.where} is out of storage (507) during ${ctx.action}${said}`,
        {
          hint: 'the server has no space left; ask its administrator, then run the command again',
        },
      );
    case 400:
    case 411:
    case 415:
      return new ProtocolError(
        `${ctx.where} rejected ${ctx.action} as malformed (${status})${said}`,
        {
          status,
          hint:
            status === 400
              ? 'check the repository name in the remote URL (lowercase letters, digits, ".", "_", "-")'
              : 'the server and this client disagree about the protocol; upgrade one of them',
        },
      );
    default:
      if (classifyFailure({ status }) === 'unavailable') {
        return new StoreUnavailableError(
          `${ctx.where} failed ${ctx.action} (${status})${said}`,
          retryAfterMs === undefined ? {} : { retryAfterMs },
        );
      }
      return new ProtocolError(
        `${ctx.where} answered ${ctx.action} with an unexpected status ${status}${said}`,
        { status },
      );
  }
}

/**
 * Socket-level failure (refused, reset, timed out) → retriable StoreUnavailableError, with the
 * cause kept for --debug. An untrusted or invalid server certificate is a ConfigError instead:
 * no retry can fix it.
 */
export function networkError(
  err: unknown,
  where: string,
  action: string,
): StoreUnavailableError | ConfigError {
  const code = networkCodeOf(err);
  if (classifyFailure({ networkCode: code }) === 'certificate') {
    return new ConfigError(`the TLS certificate of ${where} is not trusted (${code})`, {
      cause: err,
      hint: 'if the server uses a private CA or a self-signed certificate, point NODE_EXTRA_CA_CERTS at its PEM file (or install the CA in the system store)',
    });
  }
  const reason = code ?? (err instanceof Error ? err.name : 'network error');
  return new StoreUnavailableError(`cannot reach ${where} for ${action} (${reason})`, {
    cause: err,
    hint: 'check the URL and that the server is running; for https, that its certificate is trusted (NODE_EXTRA_CA_CERTS)',
  });
}

/** A ConfigError for remote URLs and options the HTTP client cannot use. */
export function configError(message: string, hint?: string): ConfigError {
  return new ConfigError(message, hint === undefined ? {} : { hint });
}
