import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentUnavailableError, AgentUnsafeError } from '../errors/index.js';
import {
  agentSocketPath,
  agentSupported,
  checkPrivateDir,
  checkSocket,
  ensurePrivateDir,
} from './paths.js';
import {
  MAX_DIGESTS,
  MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  agentVerifier,
  decodeMaster,
  parseReply,
  verifierMatches,
  type AgentOp,
  type AgentRequest,
  type KeyFileDigest,
  type ReplyTo,
} from './protocol.js';

/** Connecting, and then the reply, each get this long: a hung agent must never hang a command. */
export const CLIENT_TIMEOUT_MS = 500;
/** How long `key cache` waits for an agent it has just started (a cold Node start under load). */
const START_TIMEOUT_MS = 5000;

/** False when MEDIAGIT_AGENT=0 or on a platform without Unix sockets and uids. */
export function agentLookupEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return agentSupported() && env.MEDIAGIT_AGENT !== '0';
}

/** No agent answers on the socket (none, a stale socket, or a hung one): the only failure a caller may start a new agent for. */
class AgentNotRunningError extends AgentUnavailableError {}

function notRunning(message: string, cause: unknown): AgentNotRunningError {
  return new AgentNotRunningError(message, {
    hint: "nothing is cached; 'mediagit key cache' starts the agent",
    cause,
  });
}

/** Sends one line and reads one line back; rejects on anything but a complete reply in time. */
function exchange(socketPath: string, line: string, timeoutMs: number): Promise<string> {
  return new Promise((done, fail) => {
    const socket = connect({ path: socketPath });
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err: Error | null, reply?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) fail(err);
      else done(reply ?? '');
    };
    let timer = setTimeout(
      () => finish(new Error('timed out connecting to the key agent')),
      timeoutMs,
    );
    socket.on('connect', () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => finish(new Error('the key agent did not answer in time')),
        timeoutMs,
      );
      socket.write(`${line}\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      const newline = chunk.indexOf(0x0a);
      chunks.push(newline >= 0 ? chunk.subarray(0, newline) : chunk);
      size += chunk.length;
      if (newline >= 0) finish(null, Buffer.concat(chunks).toString('utf8'));
      else if (size > MAX_MESSAGE_BYTES) finish(new Error('the key agent sent an oversized reply'));
    });
    socket.on('end', () =>
      finish(new Error('the key agent closed the connection without replying')),
    );
    socket.on('error', (err) => finish(err));
  });
}

/**
 * One request to the agent. The folder and socket are checked first, every time: a socket
 * another user could have planted must neither receive a master key nor supply one.
 */
async function request<Op extends AgentOp>(
  req: AgentRequest & { op: Op },
  timeoutMs = CLIENT_TIMEOUT_MS,
): Promise<ReplyTo<Op>> {
  const socketPath = agentSocketPath();
  try {
    await checkPrivateDir(dirname(socketPath));
    await checkSocket(socketPath);
  } catch (err) {
    if (err instanceof AgentUnsafeError) throw err;
    throw notRunning('no key agent is running', err);
  }
  let line: string;
  try {
    line = await exchange(socketPath, JSON.stringify(req), timeoutMs);
  } catch (err) {
    throw notRunning(
      `cannot reach the key agent at ${socketPath}: ${err instanceof Error ? err.message : String(err)}`,
      err,
    );
  }
  const reply = parseReply(line, req.op);
  if (reply === null)
    throw new AgentUnavailableError(
      'the key agent sent a reply this version of mediagit does not understand',
      { hint: "stop it with 'mediagit key forget --all'" },
    );
  if (!reply.ok)
    throw new AgentUnavailableError(`the key agent refused the request: ${reply.error}`);
  return reply;
}

export interface CachedKey {
  readonly master: Buffer;
  /** Which of the offered key files the agent knew. */
  readonly digest: KeyFileDigest;
  readonly expiresInMs: number;
}

/**
 * The fast path of opening an encrypted repository: the master key cached for any of these key
 * files, or null. Never throws and never waits long — every failure (no agent, unsafe folder,
 * timeout, unknown key, odd reply) means "ask for the passphrase as usual".
 */
export async function lookupCachedKey(
  digests: readonly KeyFileDigest[],
): Promise<CachedKey | null> {
  if (!agentLookupEnabled() || digests.length === 0) return null;
  try {
    const reply = await request({
      v: PROTOCOL_VERSION,
      op: 'get',
      digests: digests.slice(0, MAX_DIGESTS),
    });
    if (!reply.found || !digests.includes(reply.digest)) return null;
    const master = decodeMaster(reply.master);
    if (master === null || !verifierMatches(master, reply.digest, reply.verifier)) return null;
    return { master, digest: reply.digest, expiresInMs: reply.expiresInMs };
  } catch {
    return null;
  }
}

export interface AgentStatus {
  readonly pid: number;
  readonly entries: number;
  /** Time left for the first of the given key files the agent holds, or null if it holds none. */
  readonly expiresInMs: number | null;
}

/** The running agent's state, or null when none is running. */
export async function agentStatus(digests: readonly KeyFileDigest[]): Promise<AgentStatus | null> {
  try {
    const reply = await request({
      v: PROTOCOL_VERSION,
      op: 'status',
      digests: digests.slice(0, MAX_DIGESTS),
    });
    return {
      pid: reply.pid,
      entries: reply.entries,
      expiresInMs: reply.found ? reply.expiresInMs : null,
    };
  } catch (err) {
    if (err instanceof AgentNotRunningError) return null;
    throw err;
  }
}

async function ping(): Promise<boolean> {
  try {
    await request({ v: PROTOCOL_VERSION, op: 'ping' });
    return true;
  } catch (err) {
    if (err instanceof AgentNotRunningError) return false;
    throw err;
  }
}

function startAgentProcess(socketPath: string): void {
  const entry = fileURLToPath(new URL('./agent-process.js', import.meta.url));
  // The agent needs nothing from the environment, and must not sit on the passphrases, tokens and
  // cloud credentials it may hold for hours; nor should it pin the repository folder as its cwd.
  const child = spawn(process.execPath, [entry, socketPath], {
    detached: true,
    stdio: 'ignore',
    cwd: '/',
    env: {},
  });
  // A failed spawn surfaces as the readiness poll timing out; the event must still be handled.
  child.on('error', () => {});
  child.unref();
}

/** Creates the agent's private folder if needed and throws AgentUnsafeError if it is not private. */
export async function ensureAgentFolder(): Promise<void> {
  await ensurePrivateDir(dirname(agentSocketPath()));
}

/** Makes sure an agent answers on the socket, starting a detached one if needed. */
export async function ensureAgent(): Promise<void> {
  const socketPath = agentSocketPath();
  // Checked (and created) before anything is started, so an unsafe folder is reported to the user
  // rather than found silently by a detached process that nobody watches.
  await ensureAgentFolder();
  if (await ping()) return;
  startAgentProcess(socketPath);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    if (await ping()) return;
  }
  throw new AgentUnavailableError(`the key agent did not start (socket ${socketPath})`, {
    hint: 'run the command again with MEDIAGIT_AGENT=0 to work without it',
  });
}

/** Hands an unlocked master key to the agent (starting it if needed) for `ttlMs`. */
export async function cacheKey(
  digest: KeyFileDigest,
  master: Buffer,
  ttlMs: number,
): Promise<void> {
  const add = {
    v: PROTOCOL_VERSION,
    op: 'add',
    digest,
    master: master.toString('base64'),
    verifier: agentVerifier(master, digest),
    ttlMs,
  } as const;
  await ensureAgent();
  try {
    await request(add);
  } catch (err) {
    // An empty agent exits after a while idle; if it did so just after answering our ping, start another.
    if (!(err instanceof AgentNotRunningError)) throw err;
    await ensureAgent();
    await request(add);
  }
}

/** Drops the keys cached for these key files; throws AgentUnavailableError when no agent runs. */
export async function forgetKeys(digests: readonly KeyFileDigest[]): Promise<number> {
  let removed = 0;
  for (let i = 0; i < digests.length; i += MAX_DIGESTS)
    removed += (
      await request({
        v: PROTOCOL_VERSION,
        op: 'forget',
        digests: digests.slice(i, i + MAX_DIGESTS),
      })
    ).removed;
  return removed;
}

/** Drops every cached key; the agent then exits. */
export async function forgetAllKeys(): Promise<number> {
  return (await request({ v: PROTOCOL_VERSION, op: 'forget-all' })).removed;
}
