/**
 * Validation of everything a URL, query or body names (docs/protocol.md "Names"). Every check
 * runs before the name reaches a Store, and every check is a whitelist: a value either matches
 * the pattern or the request is a 400.
 */
import { isValidKey, isValidRefName } from '../store/index.js';
import { treeNameProblem } from '../objects/index.js';
import { badRequest } from './errors.js';

const REPO_SEGMENT = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const OID = /^[0-9a-f]{64}$/;
const FILE_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;

/** First segments that name server endpoints, never repositories. */
export const RESERVED_REPOSITORY_NAMES: ReadonlySet<string> = new Set([
  'health',
  'metrics',
  'api',
  'ui',
]);

/**
 * Second segments a two-part name (`studio/hero-game`) may not use: the endpoint words that follow
 * a one-part name in a URL (`/studio/keys` is repository `studio`'s key list), and the folders a
 * repository's storage uses (`studio/chunks` would live inside `studio`'s own chunk folder).
 */
export const RESERVED_SECOND_SEGMENTS: ReadonlySet<string> = new Set([
  'info',
  'chunks',
  'manifests',
  'objects',
  'keys',
  'meta',
  'list',
  'refs',
  'locks',
  'tmp',
]);

export function isValidRepositoryName(name: string): boolean {
  const parts = name.split('/');
  if (parts.length > 2 || !parts.every((p) => REPO_SEGMENT.test(p))) return false;
  if (RESERVED_REPOSITORY_NAMES.has(parts[0]!)) return false;
  // Segments start with a letter or digit, so "." and ".." (and anything hidden) cannot be one.
  return !(parts.length === 2 && RESERVED_SECOND_SEGMENTS.has(parts[1]!));
}

/** The repository named by one or two URL segments (an encoded `/` inside a segment is refused). */
export function repositoryName(owner: string | undefined, repo: string): string {
  if (repo.includes('/') || owner?.includes('/'))
    throw badRequest(
      `invalid repository name ${quote(owner === undefined ? repo : `${owner}/${repo}`)}`,
    );
  const name = owner === undefined ? repo : `${owner}/${repo}`;
  if (!isValidRepositoryName(name)) throw badRequest(`invalid repository name ${quote(name)}`);
  return name;
}

export function isOid(value: unknown): value is string {
  return typeof value === 'string' && OID.test(value);
}

export function oidParam(value: string): string {
  if (!OID.test(value))
    throw badRequest(`invalid object ID ${quote(value)}: expected 64 lowercase hex digits`);
  return value;
}

/** Names of key files (`keys/<name>`) and metadata (`meta/<name>`). */
export function fileNameParam(value: string, what: 'key' | 'meta'): string {
  if (!FILE_NAME.test(value)) throw badRequest(`invalid ${what} name ${quote(value)}`);
  return value;
}

export function refName(value: unknown): string {
  if (typeof value !== 'string' || !isValidRefName(value))
    throw badRequest(`invalid ref name ${quote(value)}`);
  return value;
}

/** A prefix for `GET /refs`: `refs/` followed by ref-name characters. */
export function refPrefix(value: string | undefined): string {
  const prefix = value ?? 'refs/';
  if (
    !/^refs\/[A-Za-z0-9._+@/-]{0,1000}$/.test(prefix) ||
    prefix.includes('..') ||
    prefix.includes('//')
  )
    throw badRequest(`invalid ref prefix ${quote(prefix)}`);
  return prefix;
}

/** A prefix for `GET /list`: part of a namespace, or a namespace and the start of a name. */
export function keyPrefix(value: string | undefined): string {
  const prefix = value ?? '';
  if (
    !/^[a-z]{0,7}$|^(chunks|objects)\/[0-9a-f]{0,64}$|^(keys|meta)\/[a-z0-9._-]{0,128}$/.test(
      prefix,
    )
  )
    throw badRequest(`invalid list prefix ${quote(prefix)}`);
  return prefix;
}

export function storeKeyParam(value: unknown): string {
  if (typeof value !== 'string' || !isValidKey(value))
    throw badRequest(`invalid key ${quote(value)}`);
  return value;
}

/** A repository-relative file path to lock: `/`-separated safe tree names (format.md), ≤ 4096 bytes. */
export function lockPath(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value, 'utf8') > 4096)
    throw badRequest('lock path must be a non-empty string of at most 4096 bytes');
  for (const segment of value.split('/')) {
    const problem = treeNameProblem(segment);
    if (problem !== null) throw badRequest(`invalid lock path ${quote(value)}: ${problem}`);
  }
  return value;
}

/** A path prefix to filter locks by: like a lock path, but may be empty or end with `/`. */
export function lockPathPrefix(value: string | undefined): string {
  if (value === undefined || value === '') return '';
  lockPath(value.endsWith('/') ? value.slice(0, -1) : value);
  return value;
}

/** Who tokens and keys name: printable, no control characters, ≤ 256 characters. */
export function isValidIdentity(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length >= 1 &&
    value.length <= 256 &&
    // eslint-disable-next-line no-control-regex
    !/[\x00-\x1f\x7f]/.test(value) &&
    value.isWellFormed()
  );
}

/** A value quoted for an error message: JSON-escaped and cut short, so nothing odd reaches a terminal. */
export function quote(value: unknown): string {
  const text = JSON.stringify(typeof value === 'string' ? value : String(value));
  return text.length > 90 ? `${text.slice(0, 87)}..."` : text;
}
