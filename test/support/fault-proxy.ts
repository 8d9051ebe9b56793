/**
 * An HTTP proxy for tests that breaks the network the way real ones break: it sits on 127.0.0.1 in
 * front of a test server (radosgw, Azurite, the GCS test server, `mediagit server`) and, for the
 * requests a plan picks, resets the connection, stalls, cuts a reply short, answers 503/429 with
 * `Retry-After` without forwarding, or forwards the request (so the write lands) and then loses or
 * replaces the reply. Everything else passes through byte for byte, headers included (the Host header
 * too: S3 signatures cover it, and the client signed the proxy's address).
 */
import { once } from 'node:events';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { seededRandom } from './faulty-store.js';

/** What the proxy does to one request. */
export type Fault =
  /** Destroy the client's connection before anything reaches the server. */
  | { kind: 'reset' }
  /** Read the request, then answer this status without forwarding: the server never sees it. */
  | { kind: 'refuse'; status: number; retryAfter?: string }
  /** Forward; once the server has answered (the write landed), destroy the client's connection. */
  | { kind: 'lose-reply' }
  /** Forward; once the server has answered, send the client this status instead. */
  | { kind: 'replace-reply'; status: number; retryAfter?: string }
  /** Accept the request and never answer (the server never sees it); only the client's timeout ends it. */
  | { kind: 'stall' }
  /** Forward; send the reply's headers and its first `bytes` bytes, then nothing more. */
  | { kind: 'stall-body'; bytes: number }
  /** Forward; send the reply's headers and its first `bytes` bytes, then destroy the connection. */
  | { kind: 'cut-body'; bytes: number };

export type FaultKind = Fault['kind'];

export interface ProxiedRequest {
  /** 0-based, in arrival order. */
  readonly index: number;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/** Picks the fault for a request, or undefined to pass it through. */
export type FaultPlan = (request: ProxiedRequest) => Fault | undefined;

export interface FaultProxyOptions {
  /** The server behind the proxy, e.g. http://127.0.0.1:7480. Only loopback targets are accepted. */
  target: string;
  plan?: FaultPlan;
  /**
   * Destroy a connection once this many request-body bytes have passed through it, whatever the
   * plan says: a link that drops every long upload.
   */
  resetAfterRequestBytes?: number;
}

/** One request the proxy saw through to a whole reply (whatever its status). */
export interface AnsweredRequest {
  readonly method: string;
  /** The URL path, query left out. */
  readonly path: string;
  readonly status: number;
  /** Request-body bytes the proxy received for it. */
  readonly bodyBytes: number;
}

/** What went through the proxy, for tests that count what a client sends (and re-sends). */
export interface ProxyTraffic {
  /** Request-body bytes received from clients, every request. */
  bodyBytes: number;
  /**
   * Of those, the bytes of requests the client never got a whole reply to: cut by a fault, by
   * `resetAfterRequestBytes`, or because the server went away. Whether the server kept any of
   * them, the client could not know.
   */
  cutBodyBytes: number;
  /** Requests answered in full, in the order their replies ended. */
  readonly answered: AnsweredRequest[];
}

export interface FaultProxy {
  readonly url: string;
  readonly port: number;
  /** Faults injected so far, per kind. */
  readonly injected: Map<FaultKind | 'reset-after-bytes', number>;
  /** Bytes and replies so far. */
  readonly traffic: ProxyTraffic;
  /** Requests seen so far. */
  readonly requests: number;
  setPlan(plan: FaultPlan | undefined): void;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  if (target.protocol !== 'http:' || !LOOPBACK.has(target.hostname))
    throw new Error(
      `fault proxy: only http targets on loopback are allowed, not ${options.target}`,
    );
  let plan = options.plan;
  let requests = 0;
  const injected = new Map<FaultKind | 'reset-after-bytes', number>();
  const sockets = new Set<Socket>();
  const traffic: ProxyTraffic = { bodyBytes: 0, cutBodyBytes: 0, answered: [] };
  const count = (kind: FaultKind | 'reset-after-bytes'): void => {
    injected.set(kind, (injected.get(kind) ?? 0) + 1);
  };

  const server: Server = createServer((req, res) => {
    const info: ProxiedRequest = {
      index: requests++,
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
    };
    const fault = plan?.(info);
    if (fault) count(fault.kind);
    handle(req, res, fault);
    // Counted after handle() has piped or resumed the body, so counting never changes its flow.
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => {
      bodyBytes += chunk.length;
      traffic.bodyBytes += chunk.length;
    });
    res.once('close', () => {
      if (res.writableFinished)
        traffic.answered.push({
          method: info.method,
          path: info.url.split('?')[0] ?? info.url,
          status: res.statusCode,
          bodyBytes,
        });
      else traffic.cutBodyBytes += bodyBytes;
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    if (options.resetAfterRequestBytes !== undefined) {
      const limit = options.resetAfterRequestBytes;
      let seen = 0;
      socket.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen > limit && !socket.destroyed) {
          count('reset-after-bytes');
          socket.destroy();
        }
      });
    }
  });

  function handle(req: IncomingMessage, res: ServerResponse, fault: Fault | undefined): void {
    switch (fault?.kind) {
      case 'reset':
        req.socket.destroy();
        return;
      case 'stall':
        req.resume();
        return;
      case 'refuse':
        req.resume();
        req.once('end', () => answer(res, fault.status, fault.retryAfter));
        return;
      default:
        forward(req, res, fault);
    }
  }

  function forward(req: IncomingMessage, res: ServerResponse, fault: Fault | undefined): void {
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (reply) => {
        if (fault?.kind === 'lose-reply' || fault?.kind === 'replace-reply') {
          reply.resume();
          reply.once('end', () => {
            if (fault.kind === 'lose-reply') req.socket.destroy();
            else answer(res, fault.status, fault.retryAfter);
          });
          return;
        }
        res.writeHead(reply.statusCode ?? 502, reply.statusMessage, reply.rawHeaders);
        if (fault?.kind === 'cut-body' || fault?.kind === 'stall-body') {
          passPrefix(reply, res, fault.bytes, fault.kind === 'cut-body');
          return;
        }
        reply.pipe(res);
      },
    );
    upstream.on('error', () => req.socket.destroy());
    req.on('error', () => upstream.destroy());
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  function passPrefix(
    reply: IncomingMessage,
    res: ServerResponse,
    bytes: number,
    thenReset: boolean,
  ): void {
    let left = bytes;
    reply.on('data', (chunk: Buffer) => {
      if (left <= 0) return;
      const part = chunk.subarray(0, left);
      left -= part.length;
      res.write(part);
      if (left <= 0) {
        if (thenReset) res.socket?.destroy();
        // A stall keeps the connection open with nothing more to come: drop the rest unread.
        else reply.destroy();
      }
    });
    reply.once('end', () => {
      // The reply was shorter than the prefix: it went through whole, so the fault did not fire.
      if (left > 0) res.end();
    });
  }

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    injected,
    traffic,
    get requests() {
      return requests;
    },
    setPlan(next) {
      plan = next;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function answer(res: ServerResponse, status: number, retryAfter: string | undefined): void {
  if (res.headersSent || res.destroyed) return;
  const body = `fault proxy: injected ${status}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain',
    'content-length': Buffer.byteLength(body),
    ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
  });
  res.end(body);
}

/** A plan that picks a fault for a seeded fraction of the requests matching `filter`. */
export function seededFaults(options: {
  seed?: number;
  rate: number;
  faults: readonly Fault[];
  filter?: (request: ProxiedRequest) => boolean;
}): FaultPlan {
  const random = seededRandom(options.seed ?? 1);
  return (request) => {
    if (options.filter && !options.filter(request)) return undefined;
    if (random() >= options.rate) return undefined;
    return options.faults[Math.floor(random() * options.faults.length)];
  };
}

/** A plan that injects `fault` into the next `times` requests matching `filter`, then passes all. */
export function nextRequests(
  fault: Fault,
  times = 1,
  filter: (request: ProxiedRequest) => boolean = () => true,
): FaultPlan {
  let left = times;
  return (request) => {
    if (left <= 0 || !filter(request)) return undefined;
    left--;
    return fault;
  };
}
