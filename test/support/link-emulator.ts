/**
 * A network link in userspace, for benches and tests on a kernel without netem: a TCP proxy on
 * 127.0.0.1 in front of one loopback server that makes every byte cross a link of a given rate
 * and round-trip time.
 *
 * The model: each direction is one shared wire (all connections compete for it, as on a real
 * access link, so 16 parallel uploads share the rate instead of getting 16 times it). A segment
 * leaves when the wire is free — a token bucket that refills at the rate and holds at most
 * `burstBytes` — and arrives rtt/2 after its last bit left. Deliveries per direction are one FIFO,
 * so the order of bytes within a connection, and of a FIN after its data, is kept. A new
 * connection reads nothing from its client for one RTT, the TCP handshake a real link costs before
 * the first request can leave.
 *
 * Buffers are bounded: when the bytes accepted but not yet delivered in a direction exceed the
 * bandwidth-delay product plus a queue (`queueBytes`), the sockets feeding it are paused until the
 * wire drains, and a receiver that does not read pauses its sender, so a fast peer never fills
 * memory.
 */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface LinkSpec {
  /** Bits per second, each direction. */
  readonly rateBitsPerSecond: number;
  /** Round-trip time in milliseconds (half of it each way). */
  readonly rttMs: number;
}

export interface LinkEmulatorOptions extends LinkSpec {
  /** The server behind the link, e.g. http://127.0.0.1:7480. Only loopback targets are accepted. */
  readonly target: string;
  /** Bytes the token bucket may send at once after an idle spell (default 16 KiB). */
  readonly burstBytes?: number;
  /** Bytes that may wait for the wire beyond what is in flight (default 1 MiB). */
  readonly queueBytes?: number;
  /** Charge each new connection one RTT before its first byte leaves (default true). */
  readonly handshake?: boolean;
}

export interface LinkCounters {
  /** Bytes delivered client → server. */
  readonly up: number;
  /** Bytes delivered server → client. */
  readonly down: number;
  /** Connections accepted. */
  readonly connections: number;
}

export interface LinkEmulator {
  /** The target's URL with the emulator's port: what a client uses instead of the target. */
  readonly url: string;
  readonly port: number;
  readonly spec: LinkSpec;
  /** Totals since the emulator started; a caller takes differences around a transfer. */
  counters(): LinkCounters;
  /** The most bytes that ever waited inside the emulator in one direction (for tests of the bound). */
  readonly peakPendingBytes: number;
  /** The bound past which senders are paused, per direction. */
  readonly pendingLimit: number;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
/** Large socket reads are cut into segments so that parallel connections interleave on the wire. */
const SEGMENT = 16 * 1024;

const RATE_UNITS: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 };
const TIME_UNITS: Record<string, number> = { us: 1e-3, ms: 1, s: 1e3 };

/**
 * Parses `<rate>,<rtt>` as tc writes them: `200mbit,40ms`, `1.5gbit,0.2ms`, `512kbit,1s`.
 * Rates are in bits (decimal prefixes); a bare byte unit is refused, since tc's `kbps` means
 * kilobytes and a silent factor of eight would be worse than an error.
 */
export function parseLinkSpec(text: string): LinkSpec {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*,\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i.exec(text);
  const rateUnit = RATE_UNITS[m?.[2]?.toLowerCase() ?? ''];
  const timeUnit = TIME_UNITS[m?.[4]?.toLowerCase() ?? ''];
  if (!m || rateUnit === undefined || timeUnit === undefined)
    throw new Error(
      `link: expected <rate>,<rtt> such as 200mbit,40ms (rate in bit|kbit|mbit|gbit, rtt in us|ms|s), not '${text}'`,
    );
  const rateBitsPerSecond = Number(m[1]) * rateUnit;
  const rttMs = Number(m[3]) * timeUnit;
  if (!(rateBitsPerSecond > 0)) throw new Error(`link: the rate must be above zero, not '${text}'`);
  return { rateBitsPerSecond, rttMs };
}

/**
 * The least time a transfer can take on the link: its bytes in the busier direction at the rate,
 * plus `roundTrips` RTTs (one request and its answer at the least).
 */
export function linkSeconds(spec: LinkSpec, bytes: number, roundTrips = 1): number {
  return (bytes * 8) / spec.rateBitsPerSecond + (roundTrips * spec.rttMs) / 1000;
}

interface Delivery {
  readonly at: number;
  readonly bytes: number;
  readonly run: () => void;
}

/** One direction of the link: the shared wire, its FIFO of deliveries, and the bound on both. */
class Wire {
  private freeAt = 0;
  private readonly queue: Delivery[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;
  private pending = 0;
  peak = 0;
  delivered = 0;
  /** Sources paused because this direction was full, resumed together once it drains. */
  private readonly waiting = new Set<() => void>();

  constructor(
    private readonly bytesPerMs: number,
    private readonly oneWayMs: number,
    private readonly burstBytes: number,
    readonly limit: number,
    private readonly resumeAt: number,
  ) {}

  get full(): boolean {
    return this.pending > this.limit;
  }

  /** Puts bytes on the wire; `run` is called when they arrive at the far end. */
  send(bytes: number, run: () => void): void {
    const now = performance.now();
    // The bucket holds at most burstBytes of credit: an idle wire does not bank unlimited time.
    this.freeAt = Math.max(this.freeAt, now - this.burstBytes / this.bytesPerMs);
    this.freeAt += bytes / this.bytesPerMs;
    const at = Math.max(now, this.freeAt) + this.oneWayMs;
    this.pending += bytes;
    this.peak = Math.max(this.peak, this.pending);
    this.queue.push({ at, bytes, run });
    this.arm();
  }

  /** Calls `resume` once the direction has drained below its bound. */
  whenRoom(resume: () => void): void {
    this.waiting.add(resume);
  }

  forget(resume: () => void): void {
    this.waiting.delete(resume);
  }

  private arm(): void {
    if (this.timer !== null || this.head >= this.queue.length) return;
    const wait = Math.max(0, this.queue[this.head]!.at - performance.now());
    this.timer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    this.timer = null;
    // Timers fire late by a millisecond or more: everything due by now goes in one pass.
    const now = performance.now() + 0.5;
    while (this.head < this.queue.length && this.queue[this.head]!.at <= now) {
      const d = this.queue[this.head++]!;
      this.pending -= d.bytes;
      this.delivered += d.bytes;
      d.run();
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    // Resume with half the queue still ahead of the wire: on a loaded machine the paused senders
    // take milliseconds to answer, and a wire that runs dry in the meantime loses its rate.
    if (this.pending <= this.resumeAt && this.waiting.size > 0) {
      const resumes = [...this.waiting];
      this.waiting.clear();
      for (const resume of resumes) resume();
    }
    this.arm();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.waiting.clear();
  }
}

/**
 * Carries one connection's bytes in one direction over the wire: reads `from`, delivers to `to`
 * in order, passes the FIN after the data, and pauses `from` while the wire is full or `to` does
 * not drain.
 */
function carry(from: Socket, to: Socket, wire: Wire): void {
  let wireFull = false;
  let peerFull = false;
  const update = (): void => {
    if (wireFull || peerFull) from.pause();
    else if (!from.destroyed) from.resume();
  };
  const onRoom = (): void => {
    wireFull = false;
    update();
  };
  to.on('drain', () => {
    peerFull = false;
    update();
  });
  from.on('data', (chunk: Buffer) => {
    for (let off = 0; off < chunk.length; off += SEGMENT) {
      const part = chunk.subarray(off, Math.min(chunk.length, off + SEGMENT));
      wire.send(part.length, () => {
        if (to.destroyed) return;
        if (!to.write(part)) {
          peerFull = true;
          update();
        }
      });
    }
    if (wire.full && !wireFull) {
      wireFull = true;
      wire.whenRoom(onRoom);
      update();
    }
  });
  from.on('end', () => {
    wire.send(0, () => {
      if (!to.destroyed) to.end();
    });
  });
  from.on('close', () => wire.forget(onRoom));
}

export async function startLinkEmulator(options: LinkEmulatorOptions): Promise<LinkEmulator> {
  const target = new URL(options.target);
  if (!LOOPBACK.has(target.hostname))
    throw new Error(`link emulator: only loopback targets are allowed, not ${options.target}`);
  const targetPort = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  const targetHost = target.hostname === '[::1]' ? '::1' : target.hostname;
  const spec: LinkSpec = { rateBitsPerSecond: options.rateBitsPerSecond, rttMs: options.rttMs };
  const bytesPerMs = options.rateBitsPerSecond / 8 / 1000;
  const oneWayMs = options.rttMs / 2;
  const burst = options.burstBytes ?? 16 * 1024;
  // What is in flight at full rate (the bandwidth-delay product) plus a queue in front of the wire.
  const queue = options.queueBytes ?? 1024 * 1024;
  const limit = Math.ceil(bytesPerMs * options.rttMs) + queue;
  const upWire = new Wire(bytesPerMs, oneWayMs, burst, limit, limit - queue / 2);
  const downWire = new Wire(bytesPerMs, oneWayMs, burst, limit, limit - queue / 2);
  const handshakeMs = options.handshake === false ? 0 : options.rttMs;
  const sockets = new Set<Socket>();
  let connections = 0;

  const server: Server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    connections++;
    const upstream = connect({ host: targetHost, port: targetPort, allowHalfOpen: true });
    upstream.pause();
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.once('close', () => sockets.delete(s));
    }
    // A reset on either side resets the other, as a broken path would.
    const destroyBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', destroyBoth);
    upstream.on('error', destroyBoth);
    client.on('close', (hadError) => {
      if (hadError || !client.readableEnded) upstream.destroy();
    });
    upstream.on('close', (hadError) => {
      if (hadError || !upstream.readableEnded) client.destroy();
    });
    carry(client, upstream, upWire);
    carry(upstream, client, downWire);
    // carry() attached 'data' listeners, which resume a paused socket: hold the client back for
    // the handshake, and read the server from the start (it has nothing to say before a request).
    client.pause();
    upstream.resume();
    const start = (): void => {
      if (!client.destroyed) client.resume();
    };
    if (handshakeMs > 0) setTimeout(start, handshakeMs);
    else start();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const url = new URL(options.target);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString().replace(/\/$/, ''),
    port,
    spec,
    counters: () => ({ up: upWire.delivered, down: downWire.delivered, connections }),
    get peakPendingBytes() {
      return Math.max(upWire.peak, downWire.peak);
    },
    pendingLimit: limit,
    async close() {
      upWire.stop();
      downWire.stop();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
