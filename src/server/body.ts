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
import { releaseMemory } from '../util/memory.js';
import { HttpError, badRequest } from './errors.js';

export const MAX_JSON_BYTES = 1024 * 1024;

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
 * The whole body, at most `limit` bytes. Resolves once the body ended; rejects with 413 when it
 * grows past the limit, with 400 when the client goes away, and with the signal's reason.
 */
function collect(
  raw: IncomingMessage,
  limit: number,
  expected: number | undefined,
  signal: AbortSignal,
): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    // One allocation when the length is known; chunks kept as they come otherwise.
    const fixed = expected === undefined ? null : Buffer.allocUnsafe(expected);
    const parts: Buffer[] = [];
    let received = 0;
    const cleanup = (): void => {
      raw.off('data', onData);
      raw.off('end', onEnd);
      raw.off('error', onError);
      raw.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: unknown): void => {
      cleanup();
      // Stop the socket from feeding us; the response closes the connection.
      raw.pause();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      if (
        received + chunk.length > limit ||
        (fixed !== null && received + chunk.length > fixed.length)
      ) {
        fail(
          received + chunk.length > limit
            ? tooLarge(limit)
            : badRequest('body longer than its Content-Length'),
        );
        return;
      }
      const length = chunk.length;
      if (fixed !== null) {
        chunk.copy(fixed, received);
        // Node's HTTP parser hands each body segment over as a copy of its own: freed now, it does
        // not pile up as external memory that sets off full collections (see releaseMemory).
        releaseMemory(chunk);
      } else parts.push(chunk);
      received += length;
    };
    const onEnd = (): void => {
      cleanup();
      consumed.add(raw);
      if (fixed !== null && received !== fixed.length)
        reject(badRequest('body shorter than its Content-Length'));
      else resolve(fixed ?? Buffer.concat(parts, received));
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
    raw.resume();
  });
}

/** An `application/octet-stream` body of at most `limit` bytes. */
export async function readBinaryBody(
  request: FastifyRequest,
  limit: number,
  signal: AbortSignal,
): Promise<Buffer> {
  const expected = declaredLength(request, limit);
  const type = mediaType(request);
  if (type !== 'application/octet-stream')
    throw new HttpError(415, 'unsupported_media_type', 'the body must be application/octet-stream');
  if (expected === 0) {
    consumed.add(request.raw);
    return Buffer.alloc(0);
  }
  return collect(request.raw, limit, expected, signal);
}

/**
 * An `application/json` body (≤ 1 MiB), parsed; `undefined` when the request has no body at all
 * (endpoints whose body is optional, like `locks/verify`, treat that as `{}`).
 */
export async function readJsonBody(request: FastifyRequest, signal: AbortSignal): Promise<unknown> {
  if (!hasBody(request)) {
    consumed.add(request.raw);
    return undefined;
  }
  const expected = declaredLength(request, MAX_JSON_BYTES);
  const type = mediaType(request);
  if (type !== 'application/json')
    throw new HttpError(415, 'unsupported_media_type', 'the body must be application/json');
  const bytes = await collect(request.raw, MAX_JSON_BYTES, expected, signal);
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    throw badRequest('the body is not valid JSON');
  }
}

/** A JSON object body (or `{}` when there is none); anything else is a 400. */
export async function readJsonObject(
  request: FastifyRequest,
  signal: AbortSignal,
): Promise<Record<string, unknown>> {
  const body = (await readJsonBody(request, signal)) ?? {};
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('the body must be a JSON object');
  return body as Record<string, unknown>;
}
