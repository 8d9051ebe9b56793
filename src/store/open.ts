import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors/index.js';
import { LocalStore } from './local/local-store.js';
import type { StoreLocation, StoreOptions } from './location.js';
import type { Store, TokenProvider } from './store.js';
import { ConcurrencyLimitedStore, DEFAULT_MAX_CONCURRENT } from './wrappers/limit.js';
import { MeteredStore } from './wrappers/metrics.js';
import { RetryingStore, DEFAULT_MAX_RETRIES, type RetryInfo } from './wrappers/retry.js';

export type { StoreKind, StoreLocation, StoreOptions, StoreOptionValue } from './location.js';

/** Option names whose values are secrets: never printed, never put in messages. */
export const SECRET_OPTIONS = new Set([
  'secret_key',
  'account_key',
  'connection_string',
  'session_token',
  'token',
  'password',
]);

/**
 * Parses a remote URL: `/path`, `./path`, `file:///path`, `s3://bucket/prefix`,
 * `azure://container/prefix`, `gs://bucket/prefix`, `multi:` (primary and secondary come from
 * options), `http(s)://host:port/repo`. Anything else is a ConfigError naming the URL.
 */
export function parseStoreUrl(url: string, cwd: string = process.cwd()): StoreLocation {
  // Credentials in the URL (user:password@) must not reach a message: only the scheme and host are kept.
  const shown = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1***@');
  const bad = (why: string): ConfigError =>
    new ConfigError(`bad remote URL '${shown}': ${why}`, {
      hint: 'use a path, file:///path, s3://bucket/prefix, azure://container/prefix, gs://bucket/prefix, or http(s)://host/repo',
    });
  if (url.trim() === '') throw bad('empty');
  if (/^[a-z][a-z0-9+.-]*:/i.test(url) && !/^[a-z]:[\\/]/i.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw bad('not a valid URL');
    }
    const scheme = parsed.protocol.slice(0, -1).toLowerCase();
    const prefix = decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, '');
    if (parsed.username || parsed.password)
      throw bad('credentials do not belong in the URL; use options or the credentials file');
    switch (scheme) {
      case 'file':
        if (parsed.host && parsed.host !== 'localhost')
          throw bad('file URLs must be local (file:///path)');
        return { kind: 'local', target: fileURLToPath(parsed), prefix: '' };
      case 's3':
      case 'gs':
      case 'azure': {
        const bucket = parsed.host;
        if (!/^[a-z0-9][a-z0-9._-]{1,253}[a-z0-9]$/.test(bucket))
          throw bad(`'${bucket}' is not a valid bucket or container name`);
        // The URL parser has already collapsed dot segments in `parsed.pathname` (s3://b/../x → /x), so check the text as given.
        const rawPath =
          url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split(/[?#]/, 1)[0] ?? '';
        if (rawPath.split('/').some((p) => /^(\.|%2e){1,2}$/i.test(p)))
          throw bad('the prefix may not contain . or ..');
        return {
          kind: scheme === 's3' ? 's3' : scheme === 'gs' ? 'gcs' : 'azure',
          target: bucket,
          prefix,
        };
      }
      case 'multi':
        return { kind: 'multi', target: '', prefix: '' };
      case 'http':
      case 'https':
        if (!parsed.host) throw bad('missing host');
        return { kind: 'http', target: `${parsed.protocol}//${parsed.host}`, prefix };
      default:
        throw bad(`unknown scheme '${scheme}'`);
    }
  }
  return { kind: 'local', target: isAbsolute(url) ? url : resolve(cwd, url), prefix: '' };
}

const str = (options: StoreOptions, key: string): string | undefined => {
  const v = options[key];
  return v === undefined ? undefined : String(v);
};
const num = (options: StoreOptions, key: string): number | undefined => {
  const v = options[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new ConfigError(`option ${key} must be a non-negative number`);
  return n;
};
const bool = (options: StoreOptions, key: string): boolean | undefined => {
  const v = options[key];
  if (v === undefined) return undefined;
  return v === true || v === 'true' || v === 1 || v === '1';
};

function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** The raw backend for a location (no wrappers); cloud SDK modules load only when chosen. */
export async function openBackend(
  location: StoreLocation,
  options: StoreOptions,
  cwd: string,
  tokens?: TokenProvider,
): Promise<Store> {
  switch (location.kind) {
    case 'local':
      return new LocalStore(location.target, { fsync: bool(options, 'fsync') ?? true });
    case 's3': {
      const { S3Store } = await import('./s3/s3-store.js');
      return new S3Store(
        defined({
          bucket: location.target,
          prefix: location.prefix,
          region: str(options, 'region'),
          endpoint: str(options, 'endpoint'),
          force_path_style: bool(options, 'force_path_style'),
          access_key: str(options, 'access_key'),
          secret_key: str(options, 'secret_key'),
          session_token: str(options, 'session_token'),
          part_size: num(options, 'part_size'),
          max_concurrent_parts: num(options, 'max_concurrent_parts'),
          max_retries: num(options, 'max_retries'),
        }),
      );
    }
    case 'azure': {
      const { AzureBlobStore } = await import('./azure/azure-store.js');
      return new AzureBlobStore(
        defined({
          container: location.target,
          prefix: location.prefix,
          account_name: str(options, 'account_name'),
          account_key: str(options, 'account_key'),
          connection_string: str(options, 'connection_string'),
          use_managed_identity: bool(options, 'use_managed_identity'),
          endpoint: str(options, 'endpoint'),
        }),
      );
    }
    case 'gcs': {
      const { GcsStore } = await import('./gcs/gcs-store.js');
      return new GcsStore(
        defined({
          bucket: location.target,
          prefix: location.prefix,
          project: str(options, 'project'),
          credentials_path: str(options, 'credentials_path'),
          endpoint: str(options, 'endpoint'),
        }),
      );
    }
    case 'multi': {
      const primary = str(options, 'primary');
      const secondary = str(options, 'secondary');
      if (!primary || !secondary)
        throw new ConfigError('a multi remote needs options primary=<url> and secondary=<url>');
      const { MultiStore } = await import('./multi/multi-store.js');
      const [p, s] = await Promise.all(
        [primary, secondary].map((u) => openBackend(parseStoreUrl(u, cwd), options, cwd, tokens)),
      );
      return new MultiStore(p!, s!);
    }
    case 'http': {
      const { openHttpStore } = await import('./http/index.js');
      return openHttpStore(location, options, tokens);
    }
  }
}

export interface OpenedStore {
  /** What callers use: retries around a concurrency limit around the metered backend. */
  readonly store: Store;
  /** Counts what actually crossed the wire (every attempt), for "bytes sent" reports. */
  readonly meter: MeteredStore;
  readonly location: StoreLocation;
}

/**
 * Opens a remote with the cross-cutting wrappers every backend gets: metrics innermost (so every
 * attempt is counted), then a concurrency limit (`max_concurrent_parts`), then retries with backoff
 * (`max_retries`), which honour Retry-After. `tokens` answers a server remote's token lookup
 * (sync/ passes MEDIAGIT_TOKEN and the credentials file); without it requests carry no token.
 */
export async function openStore(
  url: string,
  options: StoreOptions = {},
  cwd: string = process.cwd(),
  onRetry?: (info: RetryInfo) => void,
  tokens?: TokenProvider,
): Promise<OpenedStore> {
  const location = parseStoreUrl(url, cwd);
  const backend = await openBackend(location, options, cwd, tokens);
  const meter = new MeteredStore(backend);
  const limited = new ConcurrencyLimitedStore(meter, {
    maxConcurrent: num(options, 'max_concurrent_parts') ?? DEFAULT_MAX_CONCURRENT,
  });
  const store = new RetryingStore(limited, {
    maxRetries: num(options, 'max_retries') ?? DEFAULT_MAX_RETRIES,
    ...(onRetry ? { onRetry } : {}),
  });
  return { store, meter, location };
}
