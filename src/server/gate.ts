/**
 * The gate every repository request passes before its endpoint runs, in this order:
 *
 *   authenticate (401) → validate the repository name (400) → check the role (403)
 *   → rate limit (429)
 *
 * Every failure counts against the caller's rate limit (by IP when it has no identity, by
 * identity otherwise), so a client cannot probe tokens or roles faster than it may make requests;
 * and failures reach the audit log through its own per-client throttle (audit.ts), so a flood of
 * bad requests cannot flood the log.
 */
import type { FastifyRequest } from 'fastify';
import type { AuditLog } from './audit.js';
import {
  AuthFailure,
  allows,
  roleOn,
  type AuthFailureReason,
  type Authenticator,
  type Identity,
  type Role,
} from './auth.js';
import { HttpError } from './errors.js';
import { isValidRepositoryName, repositoryName } from './names.js';
import type { TokenBucketLimiter } from './rate-limit.js';

const UNAUTHORIZED_TEXT: Record<AuthFailureReason, string> = {
  missing: 'credentials required',
  malformed: 'malformed credentials',
  expired: 'the token has expired',
  bad_signature: 'invalid token',
  algorithm: 'invalid token',
  bad_claims: 'invalid token claims',
  unknown_key: 'invalid API key',
  jwt_disabled: 'this server does not accept JWTs',
  api_keys_disabled: 'this server does not accept API keys',
};

function unauthorized(reason: AuthFailureReason): HttpError {
  const challenge =
    reason === 'missing'
      ? 'Bearer realm="mediagit"'
      : 'Bearer realm="mediagit", error="invalid_token"';
  return new HttpError(
    401,
    'unauthorized',
    UNAUTHORIZED_TEXT[reason],
    {},
    { 'www-authenticate': challenge },
  );
}

/** Route template for metrics and audit lines: one label per endpoint, whatever the repository. */
export function routeLabel(request: FastifyRequest): string {
  const url = request.routeOptions.url;
  return url === undefined ? 'unmatched' : url.replace(/^\/:owner\/:repo(?=\/)/, '/:repo');
}

export interface Admitted {
  readonly identity: Identity;
  readonly repo: string;
  /** The strongest role the identity holds on the repository (at least the endpoint's). */
  readonly role: Role;
}

export interface GateServices {
  readonly authenticator: Authenticator;
  readonly limiter: TokenBucketLimiter;
  readonly audit: AuditLog;
}

export class Gate {
  constructor(private readonly services: GateServices) {}

  /** Admits a request to an endpoint that needs `needed`, or throws the HttpError to answer with. */
  async admit(
    request: FastifyRequest,
    needed: Role,
    signal: AbortSignal,
    rateLimit: 'request' | 'failure' = 'request',
  ): Promise<Admitted> {
    const { authenticator, audit } = this.services;
    const params = request.params as Record<string, string | undefined>;
    const rawRepo =
      params['owner'] === undefined ? params['repo'] : `${params['owner']}/${params['repo'] ?? ''}`;
    const auditRepo = rawRepo !== undefined && isValidRepositoryName(rawRepo) ? rawRepo : null;
    const target = `${request.method} ${routeLabel(request)}`;
    let identity: Identity;
    try {
      identity = await authenticator.authenticate(request.headers.authorization, signal);
    } catch (err) {
      if (!(err instanceof AuthFailure)) throw err;
      this.limit(`ip:${request.ip}`);
      audit.record({
        event: 'auth_failure',
        repo: auditRepo,
        identity: null,
        ip: request.ip,
        target,
        status: 401,
        reason: err.reason,
      });
      throw unauthorized(err.reason);
    }
    const repo = repositoryName(params['owner'], params['repo'] ?? '');
    const role = roleOn(identity, repo);
    if (!allows(role, needed)) {
      if (identity.via === 'anonymous') {
        this.limit(`ip:${request.ip}`);
        audit.record({
          event: 'auth_failure',
          repo,
          identity: null,
          ip: request.ip,
          target,
          status: 401,
          reason: 'missing',
        });
        throw unauthorized('missing');
      }
      this.limit(`id:${identity.sub}`);
      audit.record({
        event: 'forbidden',
        repo,
        identity: identity.sub,
        ip: request.ip,
        target,
        status: 403,
        reason: `needs ${needed}`,
      });
      throw new HttpError(
        403,
        'forbidden',
        `${needed} access to ${repo} is not granted to ${identity.sub}`,
      );
    }
    const key = identity.via === 'anonymous' ? `ip:${request.ip}` : `id:${identity.sub}`;
    if (rateLimit === 'request') this.limit(key);
    else this.refuseIfEmpty(key);
    return { identity, repo, role: role ?? 'read' };
  }

  /** For endpoints limited on failure: a failed request takes its token afterwards. */
  charge(identity: Identity, ip: string): void {
    this.services.limiter.take(identity.via === 'anonymous' ? `ip:${ip}` : `id:${identity.sub}`);
  }

  private refuseIfEmpty(key: string): void {
    const decision = this.services.limiter.peek(key);
    if (!decision.allowed) throw rateLimited(decision.retryAfterS);
  }

  /** Takes one token from the bucket of `key` (`id:<sub>` or `ip:<address>`); throws 429. */
  limit(key: string): void {
    const decision = this.services.limiter.take(key);
    if (!decision.allowed) throw rateLimited(decision.retryAfterS);
  }
}

function rateLimited(retryAfterS: number): HttpError {
  return new HttpError(
    429,
    'rate_limited',
    'too many requests',
    {},
    { 'retry-after': String(retryAfterS) },
  );
}
