import type { StoreLocation, StoreOptions } from '../location.js';
import type { TokenProvider } from '../store.js';
import { configError } from './errors.js';
import { HttpStore } from './http-store.js';

export * from './http-store.js';
export * from './errors.js';
export * from './pack.js';

/**
 * The backend for an `http(s)://host/repo` remote. The token comes from `tokens` (the caller's
 * lookup: MEDIAGIT_TOKEN, the credentials file), asked on the first request — never from the
 * remote's options, which live in the repository's config. Without `tokens`, requests carry none.
 */
export function openHttpStore(
  location: StoreLocation,
  options: StoreOptions,
  tokens?: TokenProvider,
): HttpStore {
  if (options['token'] !== undefined || options['password'] !== undefined) {
    throw configError(
      'a token does not belong in the repository config (it would be shared with everyone who copies the repository)',
      "remove it with 'mediagit config --unset', then use 'mediagit login <url>' or MEDIAGIT_TOKEN",
    );
  }
  const connections = options['connections'];
  const n = connections === undefined ? undefined : Number(connections);
  if (n !== undefined && (!Number.isInteger(n) || n < 1))
    throw configError('option connections must be a positive integer');
  const numeric = (key: string): number | undefined => {
    const value = options[key];
    return value === undefined ? undefined : Number(value);
  };
  const connectTimeoutMs = numeric('connect_timeout_ms');
  const readTimeoutMs = numeric('read_timeout_ms');
  const maxObjectBytes = numeric('max_object_bytes');
  const origin = location.target;
  const repo = location.prefix;
  return new HttpStore({
    origin,
    repo,
    ...(tokens ? { token: () => tokens(origin, repo) } : {}),
    ...(n !== undefined ? { connections: n } : {}),
    ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
    ...(readTimeoutMs !== undefined ? { readTimeoutMs } : {}),
    ...(maxObjectBytes !== undefined ? { maxObjectBytes } : {}),
  });
}
