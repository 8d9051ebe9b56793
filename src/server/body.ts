/**
 * Request bodies, read by the handlers themselves — after authentication, authorisation and name
 * validation — into a buffer that never grows past the endpoint's limit. Fastify's own body
 * parsing is switched off (app.ts), so an anonymous client cannot make the server read anything.
 *
 * - `Content-Length` over the limit → 413 at once, without reading a byte of the body;
 * - a chunked body is counted as it arrives and cut off (413) the moment it passes the limit;
 * - neither header on an endpoint that needs a binary body → 411.
 * Every early answer closes the connection (see `closeIfUnread`), so the unread rest of a body
 * is never drained either.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { joinReleasing, releaseMemory } from '../util/memory.js';
import { HttpError, badRequest } from './errors.js';

export const MAX_JSON_BYTES = 1024 * 1024;
/** Far deeper than any request of the protocol, far shallower than the stack. */
export const MAX_JSON_DEPTH = 32;

/** Requests whose body has been read to the end (the connection may be reused). */
const consumed = new WeakSet<IncomingMessage>();

export function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return (
    request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
  );
}

/** True when the request carries a body nobody read: the response must then close the connection. */
export function closeIfUnread(request: FastifyRequest): boolean {
  return hasBody(request) && !consumed.has(request.raw);
}

function mediaType(request: FastifyRequest): string | undefined {
  return request.headers['content-type']?.split(';', 1)[0]?.trim().toLowerCase();
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'too_large', `body over the limit of ${limit} bytes`);
}

/** Declared length, or undefined for a chunked body; throws 411/400 when neither makes sense. */
function declaredLength(request: FastifyRequest, limit: number): number | undefined {
  const header = request.headers['content-length'];
  if (header === undefined) {
    if (request.headers['transfer-encoding'] === undefined)
      throw new HttpError(
        411,
        'length_required',
        'a body with Content-Length (or chunked transfer encoding) is required',
      );
    return undefined;
  }
  if (!/^\d{1,15}$/.test(header)) throw badRequest('invalid Content-Length');
  const length = Number(header);
  if (length > limit) throw tooLarge(limit);
  return length;
}

/**
 * The whole body, at most `limit` bytes, kept as it arrives (never allocated up front from a
 * declared length). Resolves once the body ended; rejects as `pump` does.
 */
async function collect(
  raw: IncomingMessage,
  limit: number,
  expected: number | undefined,
  signal: AbortSignal,
  idleMs: number,
): Promise<Buffer> {
  // Node's HTTP parser hands each body segment over as a copy of its own: ours to keep.
  const parts: Buffer[] = [];
  try {
    await pump(raw, limit, expected, signal, idleMs, (chunk) => void parts.push(chunk));
  } catch (err) {
    for (const part of parts) releaseMemory(part);
    throw err;
  }
  return joinReleasing(parts.length === 0 ? [Buffer.alloc(0)] : parts);
}

/**
 * Hands the body to `consume` segment by segment, at most `limit` bytes in all. While a promise
 * `consume` returned is pending the socket is paused (back-pressure: TCP then slows the client),
 * and that wait does not count as the client stalling. Resolves once the body ended and every
 * segment was consumed; rejects with 413 when it grows past the limit, with 400 when the client
 * goes away, with 408 when no byte arrives for `idleMs`, with what `consume` threw, and with the
 * signal's reason.
 */
function pump(
  raw: IncomingMessage,
  limit: number,
  expected: number | undefined,
  signal: AbortSignal,
  idleMs: number,
  consume: (chunk: Buffer) => void | Promise<void>,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let received = 0;
    let idle: NodeJS.Timeout | undefined;
    let busy = false;
    let ended = false;
    let done = false;
    const armIdle = (): void => {
      clearTimeout(idle);
      idle = setTimeout(
        () =>
          fail(
            new HttpError(
              408,
              'timeout',
              `the request body stalled: nothing arrived for ${idleMs / 1000} s`,
            ),
          ),
        idleMs,
      );
      idle.unref();
    };
    const cleanup = (): void => {
      done = true;
      clearTimeout(idle);
      raw.off('data', onData);
      raw.off('end', onEnd);
      raw.off('error', onError);
      raw.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: unknown): void => {
      if (done) return;
      cleanup();
      // Stop the socket from feeding us; the response closes the connection.
      raw.pause();
      reject(err);
    };
    const finish = (): void => {
      cleanup();
      consumed.add(raw);
      if (expected !== undefined && received !== expected)
        reject(badRequest('body shorter than its Content-Length'));
      else resolve();
    };
    const onData = (chunk: Buffer): void => {
      if (
        received + chunk.length > limit ||
        (expected !== undefined && received + chunk.length > expected)
      ) {
        fail(
          received + chunk.length > limit
            ? tooLarge(limit)
            : badRequest('body longer than its Content-Length'),
        );
        return;
      }
      received += chunk.length;
      let pending: void | Promise<void>;
      try {
        pending = consume(chunk);
      } catch (err) {
        fail(err);
        return;
      }
      if (pending === undefined) {
        armIdle();
        return;
      }
      busy = true;
      clearTimeout(idle);
      raw.pause();
      pending.then(
        () => {
          busy = false;
          if (done) return;
          if (ended) finish();
          else {
            armIdle();
            raw.resume();
          }
        },
        (err: unknown) => fail(err),
      );
    };
    const onEnd = (): void => {
      ended = true;
      if (!busy) finish();
    };
    const onError = (): void => fail(badRequest('the request body could not be read'));
    const onClose = (): void => {
      if (!raw.complete) fail(badRequest('the client closed the connection before the body ended'));
    };
    const onAbort = (): void => fail(signal.reason);
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    raw.on('data', onData);
    raw.on('end', onEnd);
    raw.on('error', onError);
    raw.on('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
    armIdle();
    raw.resume();
  });
}

/** What reading a body needs from its request: the abort signal and the in-flight budget. */
export interface BodySource {
  readonly request: FastifyRequest;
  readonly signal: AbortSignal;
  /** Reserves bytes in flight for the rest of the request (throws 429/503 when over budget). */
  reserveBody(bytes: number): void;
  /** A body with no byte arriving for this long is cut off (408). */
  readonly bodyIdleTimeoutMs: number;
}

/** An `application/octet-stream` body of at most `limit` bytes. */
export async function readBinaryBody(source: BodySource, limit: number): Promise<Buffer> {
  const { request, signal } = source;
  const expected = declaredLength(request, limit);
  const type = mediaType(request);
  if (type !== 'application/octet-stream')
    throw new HttpError(415, 'unsupported_media_type', 'the body must be application/octet-stream');
  if (expected === 0) {
    consumed.add(request.raw);
    return Buffer.alloc(0);
  }
  source.reserveBody(expected ?? limit);
  return collect(request.raw, limit, expected, signal, source.bodyIdleTimeoutMs);
}

/**
 * An `application/octet-stream` body of at most `limit` bytes, handed to `consume` as it arrives
 * (see `pump`). `declared` hears the Content-Length (undefined: a chunked body) before any byte.
 */
export async function streamBinaryBody(
  source: BodySource,
  limit: number,
  consume: (chunk: Buffer) => void | Promise<void>,
  declared?: (length: number | undefined) => void,
): Promise<void> {
  const { request, signal } = source;
  const expected = declaredLength(request, limit);
  const type = mediaType(request);
  if (type !== 'application/octet-stream')
    throw new HttpError(415, 'unsupported_media_type', 'the body must be application/octet-stream');
  declared?.(expected);
  if (expected === 0) {
    consumed.add(request.raw);
    return;
  }
  source.reserveBody(expected ?? limit);
  await pump(request.raw, limit, expected, signal, source.bodyIdleTimeoutMs, consume);
}

/**
 * An `application/json` body (≤ 1 MiB), parsed; `undefined` when the request has no body at all
 * (endpoints whose body is optional, like `locks/verify`, treat that as `{}`).
 */
export async function readJsonBody(source: BodySource): Promise<unknown> {
  const { request, signal } = source;
  if (!hasBody(request)) {
    consumed.add(request.raw);
    return undefined;
  }
  const expected = declaredLength(request, MAX_JSON_BYTES);
  const type = mediaType(request);
  if (type !== 'application/json')
    throw new HttpError(415, 'unsupported_media_type', 'the body must be application/json');
  source.reserveBody(expected ?? MAX_JSON_BYTES);
  const bytes = await collect(
    request.raw,
    MAX_JSON_BYTES,
    expected,
    signal,
    source.bodyIdleTimeoutMs,
  );
  const text = bytes.toString('utf8');
  // Parsing is iterative, but every later walk of the value (validation, error messages) is not.
  if (nestingDepth(text) > MAX_JSON_DEPTH)
    throw badRequest(`the body nests deeper than ${MAX_JSON_DEPTH} levels`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw badRequest('the body is not valid JSON');
  }
}

/** A JSON object body (or `{}` when there is none); anything else is a 400. */
export async function readJsonObject(source: BodySource): Promise<Record<string, unknown>> {
  const body = (await readJsonBody(source)) ?? {};
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('the body must be a JSON object');
  return body as Record<string, unknown>;
}

/** Deepest nesting of arrays and objects in JSON text (strings skipped), without parsing it. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}
