/**
 * The agent speaks one request and one reply per connection, each a single line of JSON. Both
 * sides validate everything they read: the agent holds secrets, and the client must never act on a
 * reply it does not fully understand (it falls back to the passphrase instead).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const PROTOCOL_VERSION = 1;
/** Far above any real message (a few hundred bytes); bounds what a peer can make us buffer. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
export const MIN_TTL_MS = 1000;
export const MAX_TTL_MS = 7 * 24 * 3600 * 1000;
/** A repository with more passphrases than this is not asked about all of them. */
export const MAX_DIGESTS = 64;
export const MASTER_KEY_BYTES = 32;

/** SHA-256 (hex) of a key file's bytes: how a repository is identified to the agent. */
export type KeyFileDigest = string;

export type AgentRequest =
  | { readonly v: 1; readonly op: 'ping' }
  | {
      readonly v: 1;
      readonly op: 'add';
      readonly digest: KeyFileDigest;
      readonly master: string;
      readonly verifier: string;
      readonly ttlMs: number;
    }
  | { readonly v: 1; readonly op: 'get'; readonly digests: readonly KeyFileDigest[] }
  | { readonly v: 1; readonly op: 'status'; readonly digests: readonly KeyFileDigest[] }
  | { readonly v: 1; readonly op: 'forget'; readonly digests: readonly KeyFileDigest[] }
  | { readonly v: 1; readonly op: 'forget-all' };

export type AgentOp = AgentRequest['op'];

export type AgentReply =
  | { readonly ok: true; readonly op: 'ping'; readonly pid: number; readonly entries: number }
  | { readonly ok: true; readonly op: 'add' }
  | { readonly ok: true; readonly op: 'get'; readonly found: false }
  | {
      readonly ok: true;
      readonly op: 'get';
      readonly found: true;
      readonly digest: KeyFileDigest;
      readonly master: string;
      readonly verifier: string;
      readonly expiresInMs: number;
    }
  | {
      readonly ok: true;
      readonly op: 'status';
      readonly pid: number;
      readonly entries: number;
      readonly found: boolean;
      readonly expiresInMs: number | null;
    }
  | { readonly ok: true; readonly op: 'forget'; readonly removed: number }
  | { readonly ok: true; readonly op: 'forget-all'; readonly removed: number }
  | { readonly ok: false; readonly error: string };

export type ReplyTo<Op extends AgentOp> = Extract<AgentReply, { ok: true; op: Op }>;

const DIGEST_RE = /^[0-9a-f]{64}$/;
const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseLine(line: string): Json | null {
  try {
    const value: unknown = JSON.parse(line);
    return isObject(value) ? value : null;
  } catch {
    return null;
  }
}

export function isDigest(value: unknown): value is KeyFileDigest {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

function isDigestList(value: unknown): value is KeyFileDigest[] {
  return Array.isArray(value) && value.length <= MAX_DIGESTS && value.every(isDigest);
}

/** A base64 master key decoding to exactly 32 bytes, or null. */
export function decodeMaster(value: unknown): Buffer | null {
  if (typeof value !== 'string' || !BASE64_RE.test(value)) return null;
  const bytes = Buffer.from(value, 'base64');
  return bytes.length === MASTER_KEY_BYTES ? bytes : null;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The request on a line, or a reason to refuse it. */
export function parseRequest(line: string): AgentRequest | { error: string } {
  const msg = parseLine(line);
  if (!msg) return { error: 'not a JSON object' };
  if (msg.v !== PROTOCOL_VERSION)
    return { error: `unsupported protocol version (this agent speaks ${PROTOCOL_VERSION})` };
  switch (msg.op) {
    case 'ping':
    case 'forget-all':
      return { v: 1, op: msg.op };
    case 'get':
    case 'status':
    case 'forget':
      return isDigestList(msg.digests)
        ? { v: 1, op: msg.op, digests: msg.digests }
        : { error: 'digests must be a list of SHA-256 hex digests' };
    case 'add': {
      const { digest, master, verifier, ttlMs } = msg;
      if (!isDigest(digest)) return { error: 'digest must be a SHA-256 hex digest' };
      if (typeof master !== 'string' || decodeMaster(master) === null)
        return { error: 'master must be 32 bytes in base64' };
      if (!isDigest(verifier)) return { error: 'verifier must be 32 bytes in hex' };
      if (!(
        typeof ttlMs === 'number' &&
        Number.isSafeInteger(ttlMs) &&
        ttlMs >= MIN_TTL_MS &&
        ttlMs <= MAX_TTL_MS
      ))
        return { error: 'ttlMs out of range' };
      return { v: 1, op: 'add', digest, master, verifier, ttlMs };
    }
    default:
      return { error: 'unknown op' };
  }
}

/** The reply to `op` on a line, or null when it is anything else (the caller treats that as no agent). */
export function parseReply<Op extends AgentOp>(
  line: string,
  op: Op,
): ReplyTo<Op> | { ok: false; error: string } | null {
  const msg = parseLine(line);
  if (!msg) return null;
  if (msg.ok === false)
    return typeof msg.error === 'string' ? { ok: false, error: msg.error } : null;
  if (msg.ok !== true || msg.op !== op) return null;
  const valid = ((): boolean => {
    switch (op) {
      case 'ping':
        return isCount(msg.pid) && isCount(msg.entries);
      case 'add':
        return true;
      case 'get':
        return (
          msg.found === false ||
          (msg.found === true &&
            isDigest(msg.digest) &&
            decodeMaster(msg.master) !== null &&
            isDigest(msg.verifier) &&
            isCount(msg.expiresInMs))
        );
      case 'status':
        return (
          isCount(msg.pid) &&
          isCount(msg.entries) &&
          typeof msg.found === 'boolean' &&
          (msg.expiresInMs === null || isCount(msg.expiresInMs))
        );
      case 'forget':
      case 'forget-all':
        return isCount(msg.removed);
      default:
        return false;
    }
  })();
  // Validated field by field just above, so the cast only narrows what the checks established.
  return valid ? (msg as unknown as ReplyTo<Op>) : null;
}

/**
 * Binds a cached master key to the key file it was registered under. The client recomputes it
 * from the master it gets back, so a reply that pairs a key with the wrong entry, or arrives
 * garbled, is rejected instead of being used to encrypt new data.
 */
export function agentVerifier(master: Uint8Array, digest: KeyFileDigest): string {
  return createHmac('sha256', master)
    .update(`mediagit agent verifier v1\0${digest}`, 'utf8')
    .digest('hex');
}

export function verifierMatches(
  master: Uint8Array,
  digest: KeyFileDigest,
  verifier: string,
): boolean {
  const expected = Buffer.from(agentVerifier(master, digest), 'hex');
  const given = Buffer.from(verifier, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
