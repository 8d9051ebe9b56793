/**
 * What every request carries from its first byte to its last: an AbortSignal that fires at
 * `request_timeout_s` or when the client goes away, and the resources it holds (bytes in flight)
 * released however it ends — answered, timed out, reset mid-header or abandoned mid-body.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EndpointResult } from './context.js';
import { HttpError, type ErrorCode } from './errors.js';

interface RequestState {
  readonly controller: AbortController;
  readonly timer: NodeJS.Timeout;
  readonly releases: (() => void)[];
  done: boolean;
}

export class RequestTracker {
  private readonly states = new WeakMap<FastifyRequest, RequestState>();

  constructor(private readonly timeoutMs: number) {}

  /** The onRequest phase: arms the timeout and watches the connection. */
  begin(request: FastifyRequest, reply: FastifyReply): void {
    const controller = new AbortController();
    const timer = setTimeout(
      () =>
        controller.abort(
          new HttpError(
            503,
            'timeout',
            `the request took longer than ${this.timeoutMs / 1000} s`,
            {},
            { 'retry-after': '1' },
          ),
        ),
      this.timeoutMs,
    );
    timer.unref();
    const state: RequestState = { controller, timer, releases: [], done: false };
    this.states.set(request, state);
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished)
        controller.abort(new HttpError(499, 'bad_request', 'the client went away'));
      this.finish(request);
    });
  }

  signal(request: FastifyRequest): AbortSignal {
    return this.states.get(request)?.controller.signal ?? AbortSignal.abort();
  }

  /** Runs `release` once the request is over, whichever way it ends (at once if it already has). */
  onFinish(request: FastifyRequest, release: () => void): void {
    const state = this.states.get(request);
    if (state === undefined || state.done) release();
    else state.releases.push(release);
  }

  /** The onResponse phase (and the connection's close): stops the timer, releases what was held. */
  finish(request: FastifyRequest): void {
    const state = this.states.get(request);
    if (state === undefined || state.done) return;
    state.done = true;
    clearTimeout(state.timer);
    for (const release of state.releases.splice(0)) release();
  }
}

/**
 * Resolves with `work`, or rejects with the signal's reason as soon as it fires. `work` keeps a
 * handler either way: an endpoint that fails after its request was abandoned must not leave a
 * rejection nobody handles (that ends the process).
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

export function send(reply: FastifyReply, result: EndpointResult): FastifyReply {
  reply.code(result.status);
  if (result.headers) reply.headers(result.headers);
  if ('json' in result)
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(result.json));
  if ('binary' in result) return reply.type('application/octet-stream').send(result.binary);
  if ('stream' in result) return reply.send(result.stream);
  return reply.send();
}

/** Statuses fastify itself may raise (malformed requests, closing) mapped to our error codes. */
export function fromFastifyError(err: unknown): HttpError | null {
  if (typeof err !== 'object' || err === null) return null;
  const { statusCode, code } = err as { statusCode?: unknown; code?: unknown };
  if (typeof code !== 'string' || !code.startsWith('FST_') || typeof statusCode !== 'number')
    return null;
  const codes: Record<number, ErrorCode> = {
    400: 'bad_request',
    408: 'timeout',
    413: 'too_large',
    415: 'unsupported_media_type',
    503: 'unavailable',
  };
  const mapped = codes[statusCode];
  if (mapped === undefined) return null;
  return new HttpError(
    statusCode,
    mapped,
    statusCode === 503 ? 'the server is shutting down' : 'malformed request',
    {},
    statusCode === 503 ? { 'retry-after': '1' } : {},
  );
}
