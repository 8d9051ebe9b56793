/**
 * HTTP errors of docs/protocol.md. Handlers throw an HttpError; the app's error handler turns it
 * (and every other failure) into `{"error": "<code>", "message": "<one line>", …extra}` with the
 * status the protocol names. Messages go to clients, so they never contain secrets or storage
 * internals (paths, bucket names, SDK messages).
 */
import {
  AuthError,
  ConfigError,
  LockedError,
  MediagitError,
  NotFoundError,
  RefConflictError,
  StoreUnavailableError,
} from '../errors/index.js';
import { isTransientError } from '../store/index.js';

export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'expired'
  | 'ref_conflict'
  | 'lock_exists'
  | 'conflict'
  | 'length_required'
  | 'too_large'
  | 'unsupported_media_type'
  | 'invalid_object'
  | 'rate_limited'
  | 'timeout'
  | 'internal'
  | 'unavailable'
  | 'insufficient_storage';

export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    /** Extra fields of the error body (`current`, `lock`, `oid`). */
    readonly extra: Readonly<Record<string, unknown>> = {},
    /** Response headers (`Retry-After`, `WWW-Authenticate`). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }

  body(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.extra };
  }
}

export const badRequest = (message: string): HttpError =>
  new HttpError(400, 'bad_request', message);
export const notFound = (message: string): HttpError => new HttpError(404, 'not_found', message);
export const forbidden = (message: string): HttpError => new HttpError(403, 'forbidden', message);
export const invalidObject = (oid: string, message: string): HttpError =>
  new HttpError(422, 'invalid_object', message, { oid });

/** Seconds a client should wait after a 503 from a storage hiccup. */
const STORAGE_RETRY_AFTER_S = 1;

/**
 * Maps any failure to the HttpError a client sees. Storage-side failures become 404 (absent) or
 * 503 (anything transient, contended or misconfigured — the client's retry is the right answer,
 * and the operator finds the details in the server's own log).
 */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  // Before the transient cases: a full disk does not clear by retrying in a second.
  if (isStorageFull(err))
    return new HttpError(
      507,
      'insufficient_storage',
      "the server's storage is full: nothing more can be stored until its operator makes room",
    );
  if (err instanceof NotFoundError) return notFound('not found');
  if (err instanceof RefConflictError)
    return new HttpError(409, 'ref_conflict', 'the ref moved while it was being updated');
  if (err instanceof StoreUnavailableError || err instanceof LockedError || isTransientError(err)) {
    const seconds =
      err instanceof StoreUnavailableError && err.retryAfterMs !== undefined
        ? Math.max(1, Math.ceil(err.retryAfterMs / 1000))
        : STORAGE_RETRY_AFTER_S;
    return new HttpError(
      503,
      'unavailable',
      'storage is unavailable, try again',
      {},
      { 'retry-after': String(seconds) },
    );
  }
  if (err instanceof AuthError || err instanceof ConfigError) {
    return new HttpError(
      503,
      'unavailable',
      'storage is unavailable (server configuration)',
      {},
      { 'retry-after': '30' },
    );
  }
  if (isAbort(err))
    return new HttpError(
      503,
      'timeout',
      'the request timed out',
      {},
      { 'retry-after': String(STORAGE_RETRY_AFTER_S) },
    );
  return new HttpError(500, 'internal', 'internal server error');
}

/** ENOSPC / EDQUOT anywhere in an error's cause chain (a backend may wrap the system error). */
export function isStorageFull(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 6 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

export function isAbort(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    ((err as { name?: unknown }).name === 'AbortError' ||
      (err as { code?: unknown }).code === 'ABORT_ERR')
  );
}

/** One line for the server's own log: the error's class and message, never a stack or request data. */
export function describeError(err: unknown): string {
  if (err instanceof MediagitError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message.split('\n')[0] ?? ''}`;
  return String(err);
}
