/**
 * Who is asking, for the web view, by exactly the API's rules: the same Authenticator, roles,
 * audit lines and rate limits. A browser carries its credential in a session cookie instead of an
 * Authorization header:
 *
 * - the cookie holds the token or API key that was pasted on the login page, so every request is
 *   authenticated afresh (an expired JWT or a deleted API key stops working at once, on every
 *   replica) and the server keeps no session state;
 * - it is HttpOnly (no script can read it), SameSite=Strict (no other site's page can make the
 *   browser send it), Path=/ui, Secure under TLS, and lives no longer than the JWT it holds;
 * - the only requests that change anything (log in, log out) must come from our own origin, and
 *   every other UI route is a read, so there is nothing for a cross-site request to forge;
 * - a token never travels in a URL: the `mediagit server token --ui` link carries it in the
 *   fragment, which browsers do not send, and the login page posts it in a form body.
 *
 * An Authorization header, when present, wins over the cookie (curl, scripts).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AuthFailure, type Identity, type Role, allows, roleOn } from '../server/auth.js';
import { HttpError } from '../server/errors.js';
import type { UiDeps } from './deps.js';

export const SESSION_COOKIE = 'mediagit_ui';
const MAX_FORM_BYTES = 16 * 1024;

export function cookieValue(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function secure(request: FastifyRequest): boolean {
  return request.protocol === 'https';
}

/** Set-Cookie for a credential; the cookie expires with a JWT's `exp`. */
export function sessionCookie(request: FastifyRequest, credential: string): string {
  const parts = [`${SESSION_COOKIE}=${credential}`, 'Path=/ui', 'HttpOnly', 'SameSite=Strict'];
  const exp = jwtExpiry(credential);
  if (exp !== null) parts.push(`Max-Age=${Math.max(0, exp - Math.floor(Date.now() / 1000))}`);
  if (secure(request)) parts.push('Secure');
  return parts.join('; ');
}

export function clearedCookie(request: FastifyRequest): string {
  return `${SESSION_COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0${secure(request) ? '; Secure' : ''}`;
}

/** `exp` of an already verified JWT; null for API keys. */
function jwtExpiry(credential: string): number | null {
  const payload = credential.split('.')[1];
  if (payload === undefined || credential.startsWith('mgk_')) return null;
  try {
    const exp = (
      JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }
    ).exp;
    return typeof exp === 'number' ? exp : null;
  } catch {
    return null;
  }
}

/** The outcome of authenticating a UI request. */
export type Visitor =
  | { readonly ok: true; readonly identity: Identity; readonly viaCookie: boolean }
  | { readonly ok: false; readonly reason: string; readonly hadCredential: boolean };

export async function authenticate(
  deps: UiDeps,
  request: FastifyRequest,
  signal: AbortSignal,
): Promise<Visitor> {
  const cookie = cookieValue(request, SESSION_COOKIE);
  const header =
    request.headers.authorization ??
    (cookie !== undefined && cookie !== '' ? `Bearer ${cookie}` : undefined);
  try {
    const identity = await deps.authenticator.authenticate(header, signal);
    return { ok: true, identity, viaCookie: request.headers.authorization === undefined };
  } catch (err) {
    if (!(err instanceof AuthFailure)) throw err;
    deps.services.audit.record({
      event: 'auth_failure',
      repo: null,
      identity: null,
      ip: request.ip,
      target: `${request.method} ${request.routeOptions.url ?? 'unmatched'}`,
      status: 401,
      reason: err.reason,
    });
    deps.limit(`ip:${request.ip}`);
    return { ok: false, reason: err.reason, hadCredential: header !== undefined };
  }
}

/** Checks the identity's role on a repository as the API does: 401 for anonymous, 403 otherwise. */
export function authorize(
  deps: UiDeps,
  request: FastifyRequest,
  identity: Identity,
  repo: string,
  needed: Role,
): void {
  if (allows(roleOn(identity, repo), needed)) {
    deps.limit(identity.via === 'anonymous' ? `ip:${request.ip}` : `id:${identity.sub}`);
    return;
  }
  const target = `${request.method} ${request.routeOptions.url ?? 'unmatched'}`;
  if (identity.via === 'anonymous') {
    deps.services.audit.record({
      event: 'auth_failure',
      repo,
      identity: null,
      ip: request.ip,
      target,
      status: 401,
      reason: 'missing',
    });
    deps.limit(`ip:${request.ip}`);
    throw new HttpError(401, 'unauthorized', 'sign in to see this repository');
  }
  deps.services.audit.record({
    event: 'forbidden',
    repo,
    identity: identity.sub,
    ip: request.ip,
    target,
    status: 403,
    reason: `needs ${needed}`,
  });
  throw new HttpError(403, 'forbidden', `${identity.sub} may not read ${repo}`);
}

/**
 * Refuses a state-changing request from another origin. Browsers send Origin (and Sec-Fetch-Site)
 * on every form POST; a request with neither is not from a browser, so it cannot be forged by a
 * page the user visits.
 */
export function checkSameOrigin(request: FastifyRequest): void {
  const origin = request.headers.origin;
  const site = request.headers['sec-fetch-site'];
  const own = `${request.protocol}://${request.host}`;
  if (
    (origin !== undefined && origin !== own) ||
    (site !== undefined && site !== 'same-origin' && site !== 'none')
  )
    throw new HttpError(403, 'forbidden', 'this form must be sent from this server’s own pages');
}

/** A small `application/x-www-form-urlencoded` body. */
export async function readForm(
  request: FastifyRequest,
  signal: AbortSignal,
): Promise<URLSearchParams> {
  const type = request.headers['content-type']?.split(';', 1)[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded')
    throw new HttpError(415, 'unsupported_media_type', 'expected a form');
  const parts: Buffer[] = [];
  let received = 0;
  for await (const piece of request.raw as AsyncIterable<Buffer>) {
    signal.throwIfAborted();
    received += piece.length;
    if (received > MAX_FORM_BYTES) throw new HttpError(413, 'too_large', 'form too large');
    parts.push(piece);
  }
  return new URLSearchParams(Buffer.concat(parts).toString('utf8'));
}

/** Where to go after logging in: only a page of this UI. */
export function safeNext(value: string | null | undefined): string {
  if (
    typeof value === 'string' &&
    value.startsWith('/ui/') &&
    !value.startsWith('//') &&
    !/[\\\s]/.test(value) &&
    value.length < 2048
  )
    return value;
  return '/ui/';
}

export function setCookie(reply: FastifyReply, value: string): void {
  reply.header('set-cookie', value);
}
