/**
 * A pass-through HTTP proxy on 127.0.0.1 that records what a store sends — every request's method
 * and URL, and how many were in flight at once — so a test can see an option take effect (page
 * sizes, block counts, concurrency). It can hold matching requests back for a moment, so that
 * requests a store sends in parallel really overlap, and it can flip one byte of a matching reply's
 * body (headers untouched) to stand in for a download corrupted on the way.
 */
import { once } from 'node:events';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
}

export interface RecordingProxyOptions {
  /** The server behind the proxy; loopback only. */
  readonly target: string;
  /** Requests that wait this long before being forwarded (to make parallel ones overlap). */
  readonly hold?: { match: (r: RecordedRequest) => boolean; ms: number };
  /** Replies whose body gets one byte flipped. */
  readonly corrupt?: (r: RecordedRequest) => boolean;
}

export interface RecordingProxy {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Most requests matching `match` that were in flight at once. */
  maxInFlight(match: (r: RecordedRequest) => boolean): number;
  /**
   * Most request-body bytes held at once by groups of requests (say, all the requests of one
   * object's multipart upload: `group` answers the object's key, null for requests outside any
   * group). A group holds the sum of its bodies from its first request's arrival to its last
   * answer, as a client holds an object from the first part it sends until the upload completes.
   */
  maxGroupBytesInFlight(group: (r: RecordedRequest) => string | null): number;
  /**
   * Sequential round trips since the last reset: the longest chain of requests in which each one
   * arrived after the one before it had been answered. Requests that overlap in time are one
   * round trip; a request that had to wait for an answer adds one. On a link with a round-trip
   * time T, an operation takes at least this many times T, whatever its bandwidth. `chain`, when
   * given, receives that longest chain ("METHOD url" each), for a failing test to show.
   * `endingWith`: count only chains that end with a request it matches (the round trip at which
   * that request went out), so work left running in the background after it does not count.
   * `handshakes`: a new connection's handshake is a round trip too, from the moment the proxy
   * accepted it, which the first request on it waited for: a connection opened while another
   * request was out overlaps it, one opened after an answer adds one, as over a real link.
   */
  sequentialRoundTrips(
    chain?: string[],
    endingWith?: (r: RecordedRequest) => boolean,
    options?: { handshakes?: boolean },
  ): number;
  reset(): void;
  close(): Promise<void>;
}

interface Handshake {
  readonly id: number;
  readonly start: number;
  end: number;
}

interface Span {
  readonly r: RecordedRequest;
  readonly start: number;
  end: number;
  bytes: number;
  /** The handshake of the connection this request was the first on. */
  readonly after?: Handshake;
}

export async function startRecordingProxy(options: RecordingProxyOptions): Promise<RecordingProxy> {
  const target = new URL(options.target);
  if (target.protocol !== 'http:' || !['127.0.0.1', 'localhost'].includes(target.hostname))
    throw new Error(`recording proxy: only http targets on loopback, not ${options.target}`);
  const requests: RecordedRequest[] = [];
  /** Start and end of each request, in arrival order, for the in-flight count. */
  let spans: Span[] = [];
  let clock = 0;
  const sockets = new Set<Socket>();
  /** Each connection's handshake: from its accept to the arrival of its first request. */
  const handshakeOf = new WeakMap<Socket, Handshake>();
  let handshakes: Handshake[] = [];

  const server: Server = createServer((req, res) => {
    const r: RecordedRequest = { method: req.method ?? 'GET', url: req.url ?? '/' };
    requests.push(r);
    const handshake = handshakeOf.get(req.socket);
    const first = handshake !== undefined && handshake.end === Number.POSITIVE_INFINITY;
    if (first) handshake.end = clock++;
    const span: Span = {
      r,
      start: clock++,
      end: Number.POSITIVE_INFINITY,
      bytes: 0,
      ...(first ? { after: handshake } : {}),
    };
    spans.push(span);
    const done = (): void => {
      if (span.end === Number.POSITIVE_INFINITY) span.end = clock++;
    };
    res.once('close', done);
    void (async () => {
      const body: Buffer[] = [];
      for await (const chunk of req) body.push(chunk as Buffer);
      for (const piece of body) span.bytes += piece.length;
      if (options.hold?.match(r)) await sleep(options.hold.ms);
      const upstream = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          method: r.method,
          path: r.url,
          headers: req.headers,
        },
        (reply) => {
          if (!options.corrupt?.(r)) {
            res.writeHead(reply.statusCode ?? 502, reply.rawHeaders);
            reply.pipe(res);
            return;
          }
          const parts: Buffer[] = [];
          reply.on('data', (c: Buffer) => parts.push(c));
          reply.on('end', () => {
            const data = Buffer.concat(parts);
            const middle = data.length >> 1;
            if (data.length > 0) data[middle] = (data[middle] ?? 0) ^ 0x01;
            res.writeHead(reply.statusCode ?? 502, reply.rawHeaders);
            res.end(data);
          });
        },
      );
      upstream.on('error', () => res.destroy());
      upstream.end(Buffer.concat(body));
    })().catch(() => res.destroy());
  });
  server.on('connection', (s: Socket) => {
    const handshake: Handshake = {
      id: handshakes.length + 1,
      start: clock++,
      end: Number.POSITIVE_INFINITY,
    };
    handshakes.push(handshake);
    handshakeOf.set(s, handshake);
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}${target.pathname === '/' ? '' : target.pathname.replace(/\/$/, '')}`,
    requests,
    maxInFlight(match) {
      let max = 0;
      const chosen = spans.filter((s) => match(s.r));
      for (const s of chosen) {
        const overlapping = chosen.filter((o) => o.start <= s.start && o.end > s.start).length;
        max = Math.max(max, overlapping);
      }
      return max;
    },
    maxGroupBytesInFlight(group) {
      const groups = new Map<string, { start: number; end: number; bytes: number }>();
      for (const s of spans) {
        const name = group(s.r);
        if (name === null) continue;
        const g = groups.get(name);
        if (!g) groups.set(name, { start: s.start, end: s.end, bytes: s.bytes });
        else {
          g.start = Math.min(g.start, s.start);
          g.end = Math.max(g.end, s.end);
          g.bytes += s.bytes;
        }
      }
      let max = 0;
      const all = [...groups.values()];
      for (const g of all) {
        let held = 0;
        for (const o of all) if (o.start <= g.start && o.end > g.start) held += o.bytes;
        max = Math.max(max, held);
      }
      return max;
    },
    sequentialRoundTrips(chain, endingWith, options) {
      // Spans in arrival order; depth[i] is the longest chain ending with request i. A handshake
      // is a link in the chain of the requests on its own connection only.
      const depth: number[] = [];
      const before: (number | Handshake)[] = [];
      const handshakeDepth = new Map<Handshake, { depth: number; from: number }>();
      const deepestBefore = (start: number, upTo: number): { depth: number; from: number } => {
        let best = 0;
        let from = -1;
        for (let j = 0; j < upTo; j++)
          if (spans[j]!.end < start && depth[j]! > best) {
            best = depth[j]!;
            from = j;
          }
        return { depth: best, from };
      };
      spans.forEach((s, i) => {
        let { depth: best, from } = deepestBefore(s.start, i) as {
          depth: number;
          from: number | Handshake;
        };
        if (options?.handshakes && s.after) {
          // Requests that had arrived before the accept (all earlier in spans) are its candidates.
          const h = deepestBefore(s.after.start, i);
          const own = h.depth + 1;
          handshakeDepth.set(s.after, h);
          if (own > best) {
            best = own;
            from = s.after;
          }
        }
        depth.push(best + 1);
        before.push(from);
      });
      let last = -1;
      depth.forEach((d, i) => {
        if (endingWith && !endingWith(spans[i]!.r)) return;
        if (last < 0 || d > depth[last]!) last = i;
      });
      if (chain) {
        const path: string[] = [];
        let at: number | Handshake = last;
        while (typeof at !== 'number' || at >= 0) {
          if (typeof at === 'number') {
            path.unshift(`${spans[at]!.r.method} ${spans[at]!.r.url}`);
            at = before[at]!;
          } else {
            path.unshift(`(handshake of connection ${at.id})`);
            at = handshakeDepth.get(at)!.from;
          }
        }
        chain.push(...path);
      }
      return last < 0 ? 0 : depth[last]!;
    },
    reset() {
      requests.length = 0;
      spans = [];
      handshakes = [];
    },
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
}
