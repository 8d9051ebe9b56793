import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors/index.js';
import { LocalStore } from './local/local-store.js';
import { AZURE_OPTIONS } from './azure/options.js';
import { GCS_OPTIONS } from './gcs/options.js';
import { HTTP_OPTIONS } from './http/options.js';
import {
  LOCAL_OPTIONS,
  MULTI_OPTIONS,
  OPTION_TABLES,
  refuseToken,
  remoteWhat,
} from './options/registry.js';
import {
  parseOptions,
  parseValue,
  REQUEST_TIMEOUT_OPTIONS,
  unknownOptionError,
  validKeys,
  type OptionTable,
} from './options/schema.js';
import { S3_OPTIONS } from './s3/options.js';
import type { StoreKind, StoreLocation, StoreOptionValue, StoreOptions } from './location.js';
import type { Store, TokenProvider } from './store.js';
import { ConcurrencyLimitedStore, DEFAULT_MAX_CONCURRENT } from './wrappers/limit.js';
import { MeteredStore } from './wrappers/metrics.js';
import { TimeoutStore } from './wrappers/timeout.js';
import { RetryingStore, DEFAULT_MAX_RETRIES, type RetryInfo } from './wrappers/retry.js';

export type { StoreKind, StoreLocation, StoreOptions, StoreOptionValue } from './location.js';

export { SECRET_OPTIONS, isSecretOption, OPTION_TABLES } from './options/registry.js';

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
  const target = isAbsolute(url) ? url : resolve(cwd, url);
  // Someone's working repository (a folder holding .mediagit/, as git allows): its store is that
  // folder, laid out as a folder remote's.
  const working = join(target, '.mediagit');
  return {
    kind: 'local',
    target: existsSync(join(working, 'HEAD')) ? working : target,
    prefix: '',
  };
}

/** One side of a multi remote: its URL, where it points, and the options meant for it. */
export interface MultiSide {
  readonly url: string;
  readonly location: StoreLocation;
  readonly options: StoreOptions;
}

const SIDES = ['primary', 'secondary'] as const;

/**
 * Splits a multi remote's options between its sides. `primary.<key>` / `secondary.<key>` go to that
 * side only (an AWS primary can mirror to an R2 or MinIO secondary); an unprefixed key goes to
 * every side whose backend takes it, and must be taken by at least one. A side's own key wins
 * over an unprefixed one. Unknown keys are a ConfigError listing the valid ones.
 */
export function multiSides(
  options: StoreOptions,
  cwd: string,
): { primary: MultiSide; secondary: MultiSide } {
  const [primary, secondary] = SIDES.map((side) => {
    const url = options[side];
    if (typeof url !== 'string' || url === '')
      throw new ConfigError('a multi remote needs options primary=<url> and secondary=<url>');
    const location = parseStoreUrl(url, cwd);
    if (location.kind === 'multi')
      throw new ConfigError(`the ${side} of a multi remote cannot itself be a multi remote`);
    return { side, url, location, options: {} as Record<string, StoreOptionValue> };
  }) as [SideDraft, SideDraft];
  const sides = [primary, secondary];
  const valid = (): string[] => {
    const shared = new Set(sides.flatMap((s) => validKeys(OPTION_TABLES[s.location.kind])));
    return [
      ...Object.keys(MULTI_OPTIONS),
      ...[...shared].sort(),
      ...sides.flatMap((s) =>
        validKeys(OPTION_TABLES[s.location.kind]).map((k) => `${s.side}.${k}`),
      ),
    ];
  };
  const prefixed: [SideDraft, string, StoreOptionValue][] = [];
  for (const [key, value] of Object.entries(options)) {
    if (key in MULTI_OPTIONS) continue;
    refuseToken(key);
    const dot = key.indexOf('.');
    if (dot < 0) {
      const takers = sides.filter((s) => key in OPTION_TABLES[s.location.kind]);
      if (takers.length === 0) throw unknownOptionError(key, remoteWhat('multi'), valid());
      for (const s of takers) s.options[key] = value;
      continue;
    }
    const side = sides.find((s) => s.side === key.slice(0, dot));
    const bare = key.slice(dot + 1);
    if (side === undefined || !(bare in OPTION_TABLES[side.location.kind]))
      throw unknownOptionError(key, remoteWhat('multi'), valid());
    prefixed.push([side, bare, value]);
  }
  for (const [side, key, value] of prefixed) side.options[key] = value;
  const done = (s: SideDraft): MultiSide => ({
    url: s.url,
    location: s.location,
    options: s.options,
  });
  return { primary: done(primary), secondary: done(secondary) };
}

/** The multi remote's own keys (not its sides'), parsed. */
function multiOwnOptions(options: StoreOptions): { read_first?: string | undefined } {
  const own = Object.fromEntries(Object.entries(options).filter(([k]) => k in MULTI_OPTIONS));
  return parseOptions(MULTI_OPTIONS, own, remoteWhat('multi'));
}

interface SideDraft {
  side: (typeof SIDES)[number];
  url: string;
  location: StoreLocation;
  options: Record<string, StoreOptionValue>;
}

/**
 * Checks options against the remote kind's table (each side's, for multi): an unknown key, a token,
 * or a value of the wrong type or out of range is a ConfigError naming the key — and for unknown
 * keys listing the valid ones — before anything is saved or opened.
 */
export function checkStoreOptions(
  location: StoreLocation,
  options: StoreOptions,
  cwd: string,
): void {
  for (const key of Object.keys(options)) refuseToken(key);
  if (location.kind === 'multi') {
    const { primary, secondary } = multiSides(options, cwd);
    for (const side of [primary, secondary]) checkStoreOptions(side.location, side.options, cwd);
    multiOwnOptions(options);
    return;
  }
  parseOptions(OPTION_TABLES[location.kind], options, remoteWhat(location.kind));
}

const SCHEME_KINDS: ReadonlyMap<string, StoreKind> = new Map([
  ['s3', 's3'],
  ['gs', 'gcs'],
  ['azure', 'azure'],
  ['http', 'http'],
  ['https', 'http'],
] as const);

/**
 * `checkStoreOptions` for a remote URL as given (`remote add`, `remote set-url`, the server). The
 * options are judged first whenever the scheme names the kind, so a mistyped key is reported (with
 * the valid ones) even when the URL has a problem of its own.
 */
export function validateStoreOptions(url: string, options: StoreOptions, cwd: string): void {
  let location: StoreLocation;
  try {
    location = parseStoreUrl(url, cwd);
  } catch (err) {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase() ?? '';
    const kind = SCHEME_KINDS.get(scheme);
    if (kind !== undefined) checkStoreOptions({ kind, target: '', prefix: '' }, options, cwd);
    throw err;
  }
  checkStoreOptions(location, options, cwd);
}

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
  for (const key of Object.keys(options)) refuseToken(key);
  const what = remoteWhat(location.kind);
  switch (location.kind) {
    case 'local':
      return new LocalStore(location.target, {
        fsync: parseOptions(LOCAL_OPTIONS, options, what).fsync,
      });
    case 's3': {
      const parsed = parseOptions(S3_OPTIONS, options, what);
      const { S3Store } = await import('./s3/s3-store.js');
      return new S3Store({ bucket: location.target, prefix: location.prefix, ...defined(parsed) });
    }
    case 'azure': {
      const parsed = parseOptions(AZURE_OPTIONS, options, what);
      const { AzureBlobStore } = await import('./azure/azure-store.js');
      return new AzureBlobStore({
        container: location.target,
        prefix: location.prefix,
        ...defined(parsed),
      });
    }
    case 'gcs': {
      const parsed = parseOptions(GCS_OPTIONS, options, what);
      const { GcsStore } = await import('./gcs/gcs-store.js');
      return new GcsStore({ bucket: location.target, prefix: location.prefix, ...defined(parsed) });
    }
    case 'multi': {
      const { primary, secondary } = multiSides(options, cwd);
      const { MultiStore } = await import('./multi/multi-store.js');
      const [p, s] = await Promise.all(
        [primary, secondary].map((side) => openBackend(side.location, side.options, cwd, tokens)),
      );
      const readFirst =
        multiOwnOptions(options).read_first === 'secondary' ? 'secondary' : 'primary';
      return new MultiStore(p!, s!, { readFirst });
    }
    case 'http': {
      const parsed = parseOptions(HTTP_OPTIONS, options, what);
      const { openHttpStore } = await import('./http/index.js');
      return openHttpStore(
        location,
        {
          connections: parsed.connections,
          connect_timeout_ms: parsed.connect_timeout_ms,
          read_timeout_ms: parsed.read_timeout_ms,
          max_object_bytes: parsed.max_object_bytes,
        },
        tokens,
      );
    }
  }
}

/** A wrapper setting (max_retries, max_concurrent_parts) as the remote's own table states it. */
function wrapperSetting(
  location: StoreLocation,
  options: StoreOptions,
  key: 'max_retries' | 'max_concurrent_parts' | 'request_timeout_ms',
): number | undefined {
  const table: OptionTable = OPTION_TABLES[location.kind];
  const spec = table[key];
  const raw = options[key];
  if (spec === undefined || raw === undefined) return undefined;
  return parseValue(key, spec, raw, remoteWhat(location.kind)) as number;
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
 * attempt is counted), then a deadline per attempt for cloud remotes (`request_timeout_ms`), then
 * a concurrency limit (the store's own pace, else `max_concurrent_parts`), then retries with backoff
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
  // Cloud remotes only: a local folder cannot stall, and a multi remote's sides are cloud stores
  // whose own SDK timers still apply.
  const requestTimeoutMs =
    'request_timeout_ms' in OPTION_TABLES[location.kind]
      ? (wrapperSetting(location, options, 'request_timeout_ms') ??
        REQUEST_TIMEOUT_OPTIONS.request_timeout_ms.default)
      : undefined;
  const timed =
    requestTimeoutMs === undefined ? meter : new TimeoutStore(meter, { requestTimeoutMs });
  // A store that paces its own transfers is limited to that pace, so that a push or fetch gets
  // the requests in flight it asks for (S3: max_concurrent_requests).
  const limited = new ConcurrencyLimitedStore(timed, {
    maxConcurrent:
      backend.capabilities.pacing?.requests ??
      wrapperSetting(location, options, 'max_concurrent_parts') ??
      DEFAULT_MAX_CONCURRENT,
  });
  const store = new RetryingStore(limited, {
    maxRetries: wrapperSetting(location, options, 'max_retries') ?? DEFAULT_MAX_RETRIES,
    ...(onRetry ? { onRetry } : {}),
  });
  return { store, meter, location };
}
