/**
 * The HTTP client under HttpStore: Node's own http/https with a keep-alive agent. Node's client
 * is part of the runtime that is already loaded, where a client library is ~90 modules and a
 * WebAssembly parser to load and compile on every command that talks to a server (~60 ms of CPU
 * before the first request, against a no-op push of ~200 ms).
 *
 * What it adds to Node's client is what a remote needs: a connect timeout, a read timeout (the
 * longest silence while waiting for headers or between body bytes), cancellation by signal, and a
 * close that drops the idle connections.
 */
import type { Agent as HttpAgent, IncomingMessage, request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

// Taken from the runtime rather than imported: an ES import of node:http builds a module facade
// that reads every export, and reading its WebSocket exports loads the fetch client bundled in
// Node (~20 ms of CPU on every command that talks to a server). node:https is taken only for an
// https origin: it loads the TLS stack (~4 ms of CPU before the first request), which an http://
// remote never uses.
const http = process.getBuiltinModule('node:http');
const { isIP } = process.getBuiltinModule('node:net');

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

export interface TransportOptions {
  /** `http(s)://host[:port]`. */
  readonly origin: string;
  /** Keep-alive connections at most. */
  readonly connections: number;
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
  /** Certificates to trust for https (default: Node's). */
  readonly ca?: readonly string[] | undefined;
}

export interface TransportRequest {
  readonly method: HttpMethod;
  /** Path and query, from the leading slash. */
  readonly path: string;
  readonly headers: Record<string, string>;
  /** Pieces are written one after another (one writev), without joining them first. */
  readonly body?: Buffer | string | readonly Buffer[] | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface TransportResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** The body, as it arrives; destroy it to stop reading. */
  readonly body: IncomingMessage;
}

function piecesLength(pieces: readonly Buffer[]): number {
  let n = 0;
  for (const piece of pieces) n += piece.length;
  return n;
}

/** A network failure with the errno-style code the failure classification reads. */
function timeout(what: string, ms: number): Error {
  return Object.assign(new Error(`${what} timed out after ${ms} ms`), { code: 'ETIMEDOUT' });
}

/** How long a warm connection waits for a request before it is closed. */
const SPARE_IDLE_MS = 2_000;

export class HttpTransport {
  private readonly agent: HttpAgent;
  private readonly send: typeof httpRequest;
  private readonly host: string;
  private readonly port: number | undefined;
  /** The event that ends connecting: the TLS handshake's for https. */
  private readonly connected: 'connect' | 'secureConnect';
  /** Connections opened ahead of the requests that will use them (warm), not yet the agent's. */
  private readonly spare: Socket[] = [];
  private readonly dropOf = new WeakMap<Socket, () => void>();
  private closed = false;
  /** What the agent was made with, which it hands to each connection it opens: warm() does too. */
  private readonly agentOptions: Record<string, unknown>;
  /** The agent's own way to open a connection, which warm() uses too. */
  private readonly open: (options: Record<string, unknown>) => Duplex | null | undefined;

  constructor(private readonly options: TransportOptions) {
    const url = new URL(options.origin);
    const secure = url.protocol === 'https:';
    const agentOptions = {
      keepAlive: true,
      maxSockets: options.connections,
      ...(secure && options.ca ? { ca: [...options.ca] } : {}),
    };
    this.agentOptions = agentOptions;
    const web = secure ? process.getBuiltinModule('node:https') : http;
    this.agent = new web.Agent(agentOptions);
    this.send = web.request;
    this.connected = secure ? 'secureConnect' : 'connect';
    // An IPv6 literal comes bracketed in a URL and bare in a connect call.
    this.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = url.port === '' ? undefined : Number(url.port);
    const agent = this.agent;
    const create = agent.createConnection.bind(agent);
    this.open = create;
    // A connection the agent needs is a warm one when there is one: its handshake is behind it.
    agent.createConnection = (options, callback) => this.takeSpare() ?? create(options, callback);
  }

  /**
   * Opens connections now, up to `count` with those the agent already has (never more than the
   * connection limit), for requests about to go out at once: their handshakes (TCP, and TLS for
   * https) then overlap whatever the caller does before sending, instead of each request's first
   * round trip. Idle warm connections do not keep the process alive; close() drops them. They
   * open once this turn's requests have gone out (a request just made still leaves first).
   */
  warm(count: number): void {
    setImmediate(() => {
      if (!this.closed) this.openSpares(count);
    });
  }

  private openSpares(count: number): void {
    let have = this.spare.length;
    for (const list of Object.values(this.agent.sockets)) have += list?.length ?? 0;
    for (const list of Object.values(this.agent.freeSockets)) have += list?.length ?? 0;
    const wanted = Math.min(count, this.options.connections) - have;
    for (let i = 0; i < wanted; i++) {
      const socket = this.open({
        ...this.agentOptions,
        host: this.host,
        ...(this.port !== undefined ? { port: this.port } : {}),
        // As the agent names the server for TLS (never an address literal).
        ...(this.connected === 'secureConnect' && isIP(this.host) === 0
          ? { servername: this.host }
          : {}),
      }) as Socket | null | undefined;
      if (!socket) return;
      // A warm connection that fails before any request takes it is dropped; a request that
      // would have used it opens its own and hears the failure there.
      const drop = (): void => this.dropSpare(socket);
      socket.unref();
      // Nor linger unused: a server counts a connection that never sent a request as busy and
      // waits for it when it shuts down, where it drops idle keep-alive ones at once.
      socket.setTimeout(SPARE_IDLE_MS, drop);
      socket.on('error', drop);
      socket.on('close', drop);
      this.spare.push(socket);
      this.dropOf.set(socket, drop);
    }
  }

  private takeSpare(): Socket | undefined {
    for (let socket = this.spare.shift(); socket; socket = this.spare.shift()) {
      if (socket.destroyed || !socket.writable) continue;
      const drop = this.dropOf.get(socket);
      if (drop) {
        socket.off('error', drop);
        socket.off('close', drop);
        socket.off('timeout', drop);
      }
      socket.setTimeout(0);
      socket.ref();
      return socket;
    }
    return undefined;
  }

  private dropSpare(socket: Socket): void {
    const at = this.spare.indexOf(socket);
    if (at >= 0) this.spare.splice(at, 1);
    socket.destroy();
  }

  /** Sends one request; resolves with the answer's head once it arrives (the body still to read). */
  request(call: TransportRequest): Promise<TransportResponse> {
    return new Promise<TransportResponse>((resolve, reject) => {
      const headers: Record<string, string | number> = { ...call.headers };
      const body = call.body;
      if (typeof body === 'string' || Buffer.isBuffer(body))
        headers['content-length'] = Buffer.byteLength(body);
      else if (body !== undefined) headers['content-length'] = piecesLength(body);
      const req = this.send({
        agent: this.agent,
        host: this.host,
        ...(this.port !== undefined ? { port: this.port } : {}),
        method: call.method,
        path: call.path,
        headers,
        ...(call.signal ? { signal: call.signal } : {}),
      });
      let connectTimer: NodeJS.Timeout | undefined;
      const clearConnect = (): void => {
        if (connectTimer !== undefined) clearTimeout(connectTimer);
        connectTimer = undefined;
      };
      req.once('socket', (socket: Socket) => {
        // A reused keep-alive connection is already up; a new one gets the connect timeout.
        if (!socket.connecting) return;
        connectTimer = setTimeout(
          () => req.destroy(timeout('connecting', this.options.connectTimeoutMs)),
          this.options.connectTimeoutMs,
        );
        socket.once(this.connected, clearConnect);
        socket.once('close', clearConnect);
      });
      // Socket inactivity, while sending, waiting for the head and reading the body alike.
      req.setTimeout(this.options.readTimeoutMs, () =>
        req.destroy(timeout('waiting for the server', this.options.readTimeoutMs)),
      );
      req.on('error', (err) => {
        clearConnect();
        reject(err);
      });
      req.once('response', (res) => {
        clearConnect();
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: res });
      });
      if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
      else {
        // Corked, the pieces leave in one writev once the socket is there.
        req.cork();
        for (const piece of body) req.write(piece);
        req.end();
      }
    });
  }

  /** Drops every connection, idle or not. */
  close(): void {
    this.closed = true;
    for (const socket of this.spare.splice(0)) socket.destroy();
    this.agent.destroy();
  }
}
