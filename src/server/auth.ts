/**
 * Authentication and roles (docs/protocol.md "Authentication and roles").
 *
 * `Authorization: Bearer <token>` where the token is
 * - a JWT, HS256 only (jose's `algorithms` allow-list refuses `none` and every other algorithm),
 *   `exp` required, claims `sub` and `repos` ({"<repo>" | "*": "read" | "write" | "admin"}); or
 * - an API key `mgk_<16 hex id>_<64 hex secret>`, looked up by id in the storage backend under
 *   the `_system` area (`meta/apikey-<id>`) and compared by SHA-256 in constant time. Keys are
 *   read from storage on every request, so a key removed on one replica is gone on all of them.
 *
 * Tokens and secrets never appear in errors, logs or audit lines; failures carry a short reason.
 */
import { createHash, randomBytes, timingSafeEqual, webcrypto } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { NotFoundError, UsageError } from '../errors/index.js';
import type { Store } from '../store/index.js';
import { isValidIdentity, isValidRepositoryName } from './names.js';

export type Role = 'read' | 'write' | 'admin';
export const ROLES: readonly Role[] = ['read', 'write', 'admin'];
const RANK: Readonly<Record<Role, number>> = { read: 1, write: 2, admin: 3 };

export interface Identity {
  /** Who: the JWT's `sub`, the API key's subject, or "anonymous". */
  readonly sub: string;
  readonly via: 'jwt' | 'apikey' | 'anonymous';
  /** Role per repository name, `*` for every repository. */
  readonly repos: ReadonlyMap<string, Role>;
}

export type AuthFailureReason =
  | 'missing'
  | 'malformed'
  | 'expired'
  | 'bad_signature'
  | 'algorithm'
  | 'bad_claims'
  | 'unknown_key'
  | 'jwt_disabled'
  | 'api_keys_disabled';

/** Why a request could not be authenticated (→ 401). */
export class AuthFailure extends Error {
  override readonly name = 'AuthFailure';
  constructor(readonly reason: AuthFailureReason) {
    super(`authentication failed: ${reason.replace(/_/g, ' ')}`);
  }
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** The strongest role an identity holds on a repository, or null. */
export function roleOn(identity: Identity, repo: string): Role | null {
  const exact = identity.repos.get(repo);
  const any = identity.repos.get('*');
  if (exact === undefined) return any ?? null;
  if (any === undefined) return exact;
  return RANK[exact] >= RANK[any] ? exact : any;
}

export function allows(held: Role | null, needed: Role): boolean {
  return held !== null && RANK[held] >= RANK[needed];
}

/** `{"<repo>"|"*": role}` from untrusted JSON; null when anything in it is off. */
function parseRepos(value: unknown): Map<string, Role> | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const out = new Map<string, Role>();
  for (const [name, role] of Object.entries(value)) {
    if ((name !== '*' && !isValidRepositoryName(name)) || !isRole(role)) return null;
    out.set(name, role);
  }
  return out;
}

const API_KEY = /^mgk_([0-9a-f]{16})_([0-9a-f]{64})$/;
const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
const apiKeyRecordKey = (id: string): string => `meta/apikey-${id}`;

interface ApiKeyRecord {
  readonly version: 1;
  readonly id: string;
  /** SHA-256 (hex) of the whole key text `mgk_<id>_<secret>`. */
  readonly sha256: string;
  readonly sub: string;
  readonly repos: Record<string, Role>;
  readonly created: string;
}

export interface AuthenticatorOptions {
  readonly jwtSecret: string | null;
  readonly apiKeysEnabled: boolean;
  readonly anonymousRead: boolean;
  /** Where API key records live (the `_system` area). */
  readonly systemStore: () => Promise<Store>;
  /** The clock verified tokens are held against (ms since the epoch); tests set it. */
  readonly now?: () => number;
}

/** Verified JWTs remembered at most; past it the cache starts over (a flood of tokens cannot grow it). */
const VERIFIED_CACHE_SIZE = 4096;

export const ANONYMOUS: Identity = {
  sub: 'anonymous',
  via: 'anonymous',
  repos: new Map([['*', 'read']]),
};

export class Authenticator {
  private readonly key: Uint8Array | null;
  /**
   * Tokens whose signature and claims were checked, with the identity they carry and when they
   * expire. A client sends the same token with every request (hundreds per push): verifying the
   * HMAC and parsing the claims once is enough, as a token cannot change; its expiry is still
   * honoured on every request.
   */
  private readonly verified = new Map<string, { identity: Identity; expiresMs: number }>();
  private readonly now: () => number;
  /**
   * The secret as an HMAC key, imported once: given the raw bytes, jose imports them again for
   * every token it checks.
   */
  private hmacKey: Promise<webcrypto.CryptoKey> | null = null;

  constructor(private readonly options: AuthenticatorOptions) {
    this.key = options.jwtSecret === null ? null : new TextEncoder().encode(options.jwtSecret);
    this.now = options.now ?? Date.now;
  }

  /**
   * Readies JWT checks ahead of the first request: the first check loads the runtime's Web Crypto
   * and imports the key (~10 ms of CPU here), which a fresh server's first push otherwise paid in
   * its first request. `mediagit server` calls it as it starts listening.
   */
  async warm(): Promise<void> {
    const key = await this.verificationKey();
    if (key !== null)
      await webcrypto.subtle.verify('HMAC', key, new Uint8Array(32), new Uint8Array(0));
  }

  private verificationKey(): Promise<webcrypto.CryptoKey | null> {
    const raw = this.key;
    if (raw === null) return Promise.resolve(null);
    this.hmacKey ??= webcrypto.subtle
      .importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
      .catch((err: unknown) => {
        this.hmacKey = null; // asked again by the next check, not failing every one after it
        throw err;
      });
    return this.hmacKey;
  }

  /**
   * The identity behind an Authorization header. No header: anonymous when anonymous read is on,
   * else AuthFailure('missing'). A header that is present but wrong is always a failure, even with
   * anonymous read on — a client that sent credentials wants to know they are bad.
   */
  async authenticate(header: string | undefined, signal?: AbortSignal): Promise<Identity> {
    if (header === undefined || header === '') {
      if (this.options.anonymousRead) return ANONYMOUS;
      throw new AuthFailure('missing');
    }
    const match = /^Bearer +([\x21-\x7e]{1,8192})$/i.exec(header);
    if (!match) throw new AuthFailure('malformed');
    const token = match[1]!;
    if (token.startsWith('mgk_')) return this.apiKey(token, signal);
    return this.jwt(token);
  }

  private async jwt(token: string): Promise<Identity> {
    if (this.key === null) throw new AuthFailure('jwt_disabled');
    const known = this.verified.get(token);
    if (known !== undefined) {
      if (this.now() < known.expiresMs) return known.identity;
      this.verified.delete(token);
      throw new AuthFailure('expired');
    }
    const key = (await this.verificationKey())!;
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: ['HS256'],
        requiredClaims: ['exp', 'sub'],
        currentDate: new Date(this.now()),
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new AuthFailure('expired');
      if (err instanceof joseErrors.JWSSignatureVerificationFailed)
        throw new AuthFailure('bad_signature');
      if (err instanceof joseErrors.JOSEAlgNotAllowed || err instanceof joseErrors.JOSENotSupported)
        throw new AuthFailure('algorithm');
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw new AuthFailure('bad_claims');
      throw new AuthFailure('malformed');
    }
    const repos = parseRepos(payload['repos']);
    if (!isValidIdentity(payload['sub']) || repos === null) throw new AuthFailure('bad_claims');
    const identity: Identity = { sub: payload['sub'], via: 'jwt', repos };
    if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.clear();
    this.verified.set(token, { identity, expiresMs: Number(payload['exp']) * 1000 });
    return identity;
  }

  private async apiKey(token: string, signal: AbortSignal | undefined): Promise<Identity> {
    if (!this.options.apiKeysEnabled) throw new AuthFailure('api_keys_disabled');
    const match = API_KEY.exec(token);
    if (!match) throw new AuthFailure('malformed');
    const id = match[1]!;
    const store = await this.options.systemStore();
    let bytes: Buffer;
    try {
      bytes = await store.get(apiKeyRecordKey(id), signal === undefined ? {} : { signal });
    } catch (err) {
      if (err instanceof NotFoundError) throw new AuthFailure('unknown_key');
      throw err;
    }
    let record: Partial<ApiKeyRecord>;
    try {
      record = JSON.parse(bytes.toString('utf8')) as Partial<ApiKeyRecord>;
    } catch {
      throw new AuthFailure('unknown_key');
    }
    const expected =
      typeof record.sha256 === 'string' && /^[0-9a-f]{64}$/.test(record.sha256)
        ? Buffer.from(record.sha256, 'hex')
        : null;
    if (expected === null || !timingSafeEqual(expected, sha256(token)))
      throw new AuthFailure('unknown_key');
    const repos = parseRepos(record.repos);
    if (!isValidIdentity(record.sub) || repos === null) throw new AuthFailure('unknown_key');
    return { sub: record.sub, via: 'apikey', repos };
  }
}

// ---- issuing credentials (CLI) ----

export interface Grant {
  readonly sub: string;
  /** Repository name or '*'. */
  readonly repo: string;
  readonly role: Role;
}

function checkGrant(grant: Grant): void {
  if (grant.repo !== '*' && !isValidRepositoryName(grant.repo))
    throw new UsageError(`invalid repository name '${grant.repo}'`, {
      hint: "lowercase letters, digits, '.', '_', '-'; optionally one '/'; or '*' for every repository",
    });
  if (!isRole(grant.role))
    throw new UsageError(`invalid role '${String(grant.role)}'`, {
      hint: 'use read, write or admin',
    });
  if (!isValidIdentity(grant.sub))
    throw new UsageError('invalid subject: 1 to 256 printable characters');
}

/** Lifetimes like `90s`, `30m`, `1h`, `7d` → seconds (at most 366 days). */
export function parseTtl(text: string): number {
  const match = /^(\d{1,6})([smhd])$/.exec(text.trim());
  const seconds = match
    ? Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as 's' | 'm' | 'h' | 'd']
    : NaN;
  if (!(seconds > 0 && seconds <= 366 * 86_400))
    throw new UsageError(`invalid lifetime '${text}'`, {
      hint: 'use a number and a unit: 30m, 1h, 7d (at most 366d)',
    });
  return seconds;
}

/** An HS256 JWT granting `role` on `repo` to `sub` for `ttlSeconds`. */
export async function mintToken(secret: string, grant: Grant, ttlSeconds: number): Promise<string> {
  checkGrant(grant);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ repos: { [grant.repo]: grant.role } })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(grant.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}

/** Creates an API key in the `_system` store; returns the key text, which is not stored anywhere. */
export async function createApiKey(
  systemStore: Store,
  grant: Grant,
): Promise<{ id: string; key: string }> {
  checkGrant(grant);
  const id = randomBytes(8).toString('hex');
  const key = `mgk_${id}_${randomBytes(32).toString('hex')}`;
  const record: ApiKeyRecord = {
    version: 1,
    id,
    sha256: sha256(key).toString('hex'),
    sub: grant.sub,
    repos: { [grant.repo]: grant.role },
    created: new Date().toISOString(),
  };
  await systemStore.put(apiKeyRecordKey(id), Buffer.from(`${JSON.stringify(record)}\n`));
  return { id, key };
}
