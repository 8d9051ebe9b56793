import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { ensurePrivateDir } from './paths.js';
import {
  MAX_MESSAGE_BYTES,
  decodeMaster,
  parseRequest,
  type AgentReply,
  type AgentRequest,
  type KeyFileDigest,
} from './protocol.js';

export interface AgentOptions {
  readonly socketPath: string;
  /** With no keys and no connections for this long, the agent exits. */
  readonly idleExitMs?: number;
}

/** A client that connects and then says nothing is cut off after this long. */
const CONNECTION_TIMEOUT_MS = 2000;
/** Bounds the memory a misbehaving client can make the agent hold. */
const MAX_ENTRIES = 1024;
const DEFAULT_IDLE_EXIT_MS = 10_000;

interface Entry {
  readonly master: Buffer;
  readonly verifier: string;
  readonly expiresAt: number;
  readonly timer: NodeJS.Timeout;
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((done, fail) => {
    const onError = (err: Error): void => {
      server.removeListener('listening', onListening);
      fail(err);
    };
    const onListening = (): void => {
      server.removeListener('error', onError);
      done();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(path);
  });
}

/** True when something accepts connections on the socket, i.e. another agent is already serving. */
function answers(path: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ path });
    const timer = setTimeout(() => finish(false), 500);
    const finish = (alive: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      done(alive);
    };
    socket.on('connect', () => finish(true));
    socket.on('error', () => finish(false));
  });
}

/**
 * Holds unlocked master keys in memory for a limited time and hands them back to clients that
 * present the digest of a key file the key was cached under. Nothing it holds is ever written
 * anywhere; access control is the private folder around the socket (like ssh-agent).
 */
export class KeyAgent {
  private readonly entries = new Map<KeyFileDigest, Entry>();
  private readonly server: Server;
  private idleTimer: NodeJS.Timeout | null = null;
  private openConnections = 0;
  private socketIno: number | null = null;
  private stopping = false;

  /** Resolves when the agent has stopped (idle, `forget-all`, a signal, or stop()). */
  readonly closed: Promise<void>;

  constructor(private readonly options: AgentOptions) {
    this.server = createServer({ allowHalfOpen: false }, (socket) => this.serve(socket));
    this.closed = new Promise((done) => this.server.once('close', () => done()));
  }

  /** Resolves once listening; false when another agent already serves the socket (this one should exit). */
  async start(): Promise<boolean> {
    const path = this.options.socketPath;
    await ensurePrivateDir(dirname(path));
    try {
      await listen(this.server, path);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EADDRINUSE') throw err;
      if (await answers(path)) return false;
      // A socket left behind by an agent that was killed: nobody answers, so it is safe to replace.
      await unlink(path).catch(() => {});
      await listen(this.server, path);
    }
    await chmod(path, 0o600);
    this.socketIno = (await lstat(path)).ino;
    this.armIdleExit();
    return true;
  }

  /** Wipes every key, stops listening and removes the socket if it is still ours. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const digest of [...this.entries.keys()]) this.remove(digest);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    await new Promise<void>((done) => this.server.close(() => done()));
    // Another agent may have replaced a socket we thought stale; only remove the one we created.
    const path = this.options.socketPath;
    const current = await lstat(path).catch(() => null);
    if (current && current.ino === this.socketIno) await unlink(path).catch(() => {});
  }

  private armIdleExit(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.entries.size > 0 || this.openConnections > 0 || this.stopping) return;
    this.idleTimer = setTimeout(
      () => void this.stop(),
      this.options.idleExitMs ?? DEFAULT_IDLE_EXIT_MS,
    );
  }

  private remove(digest: KeyFileDigest): boolean {
    const entry = this.entries.get(digest);
    if (!entry) return false;
    clearTimeout(entry.timer);
    // Best effort: the Buffer is ours to zero, though copies made while encoding replies are not.
    entry.master.fill(0);
    this.entries.delete(digest);
    return true;
  }

  private find(digests: readonly KeyFileDigest[]): [KeyFileDigest, Entry] | null {
    const now = Date.now();
    for (const digest of digests) {
      const entry = this.entries.get(digest);
      // The timer removes expired entries, but timers can fire late; the deadline is what counts.
      if (entry && entry.expiresAt > now) return [digest, entry];
    }
    return null;
  }

  private handle(req: AgentRequest): AgentReply {
    switch (req.op) {
      case 'ping':
        return { ok: true, op: 'ping', pid: process.pid, entries: this.entries.size };
      case 'add': {
        const master = decodeMaster(req.master);
        if (master === null) return { ok: false, error: 'bad master key' };
        this.remove(req.digest);
        if (this.entries.size >= MAX_ENTRIES)
          return { ok: false, error: 'the agent holds too many keys' };
        const timer = setTimeout(() => {
          this.remove(req.digest);
          this.armIdleExit();
        }, req.ttlMs);
        this.entries.set(req.digest, {
          master,
          verifier: req.verifier,
          expiresAt: Date.now() + req.ttlMs,
          timer,
        });
        return { ok: true, op: 'add' };
      }
      case 'get': {
        const found = this.find(req.digests);
        if (!found) return { ok: true, op: 'get', found: false };
        const [digest, entry] = found;
        return {
          ok: true,
          op: 'get',
          found: true,
          digest,
          master: entry.master.toString('base64'),
          verifier: entry.verifier,
          expiresInMs: entry.expiresAt - Date.now(),
        };
      }
      case 'status': {
        const found = this.find(req.digests);
        return {
          ok: true,
          op: 'status',
          pid: process.pid,
          entries: this.entries.size,
          found: found !== null,
          expiresInMs: found ? found[1].expiresAt - Date.now() : null,
        };
      }
      case 'forget': {
        let removed = 0;
        for (const digest of req.digests) if (this.remove(digest)) removed++;
        return { ok: true, op: 'forget', removed };
      }
      case 'forget-all': {
        const removed = this.entries.size;
        for (const digest of [...this.entries.keys()]) this.remove(digest);
        return { ok: true, op: 'forget-all', removed };
      }
    }
  }

  private serve(socket: Socket): void {
    this.openConnections++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const chunks: Buffer[] = [];
    let size = 0;
    let answered = false;
    const reply = (message: AgentReply, then?: () => void): void => {
      answered = true;
      socket.end(`${JSON.stringify(message)}\n`, then);
    };
    socket.setTimeout(CONNECTION_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => {});
    socket.on('close', () => {
      this.openConnections--;
      this.armIdleExit();
    });
    socket.on('data', (chunk: Buffer) => {
      if (answered) return;
      const newline = chunk.indexOf(0x0a);
      chunks.push(newline >= 0 ? chunk.subarray(0, newline) : chunk);
      size += newline >= 0 ? newline : chunk.length;
      if (size > MAX_MESSAGE_BYTES)
        return reply({ ok: false, error: `request larger than ${MAX_MESSAGE_BYTES} bytes` });
      if (newline < 0) return;
      const req = parseRequest(Buffer.concat(chunks).toString('utf8'));
      chunks.length = 0;
      if ('error' in req) return reply({ ok: false, error: req.error });
      const answer = this.handle(req);
      reply(answer, req.op === 'forget-all' ? () => void this.stop() : undefined);
    });
  }
}

/** Runs an agent until it goes idle or is told to stop; the process entry point calls this. */
export async function runAgent(options: AgentOptions): Promise<void> {
  // Everything the agent process creates is private, whatever umask it inherited; start() also
  // chmods the socket, for agents embedded in a process whose umask is not ours to change.
  process.umask(0o077);
  const agent = new KeyAgent(options);
  const stop = (): void => void agent.stop();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Started detached, it has no terminal to lose; a stray hangup must not drop the keys early.
  process.on('SIGHUP', () => {});
  if (!(await agent.start())) return;
  await agent.closed;
}
