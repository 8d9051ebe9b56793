/**
 * Server configuration: `mediagit.toml` (`[server]`, `[auth]`, `[metrics]`, `[storage]`) with the
 * environment variables of the architecture document taking precedence. docs/server.md is the
 * reference; every value is checked here, and anything unknown or malformed is a ConfigError that
 * names the key (never its value, which may be a secret).
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { ConfigError } from '../errors/index.js';
import {
  OPTION_TABLES,
  checkStoreOptions,
  multiSides,
  parseStoreUrl,
  type StoreOptionValue,
  type StoreOptions,
} from '../store/index.js';
import { isValidRepositoryName } from './names.js';

/** Where the server keeps repositories: one backend, or a primary mirrored to a secondary. */
export type StorageSpec =
  | { readonly kind: 'single'; readonly url: string; readonly options: StoreOptions }
  | { readonly kind: 'multi'; readonly primary: StorageSpec; readonly secondary: StorageSpec };

export interface ServerConfig {
  readonly host: string;
  readonly port: number;
  /** PEM files; both or neither. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | null;
  /** HS256 secret; null disables JWT authentication. */
  readonly jwtSecret: string | null;
  readonly apiKeysEnabled: boolean;
  readonly anonymousRead: boolean;
  readonly storage: StorageSpec;
  readonly maxObjectBytes: number;
  readonly maxPackBytes: number;
  readonly rateLimitRps: number;
  readonly rateLimitBurst: number;
  readonly requestTimeoutMs: number;
  /**
   * Proxies (addresses or CIDR ranges) whose X-Forwarded-For is believed: the client address is
   * the nearest hop not in this list. Empty: X-Forwarded-For is ignored.
   */
  readonly trustProxy: readonly string[];
  /** Repositories (or '*') where a write token may delete and rewind refs, not only admins. */
  readonly allowForce: readonly string[];
  /** Request-body bytes one identity, and the whole server, may have in flight. */
  readonly inflight: { readonly perIdentity: number; readonly total: number };
  /** A request body with no byte arriving for this long is cut off (408). */
  readonly bodyIdleTimeoutMs: number;
  /**
   * Upload verification: worker threads (0: on the event loop; default the cores available) and
   * the bytes queued for them at once before uploads wait (back-pressure on their sockets).
   */
  readonly verification: { readonly workers: number; readonly maxQueuedBytes: number };
  readonly metrics: { readonly enabled: boolean; readonly port: number };
  /** Audit log file (appended); null = standard error. */
  readonly auditLog: string | null;
  /** Resolves relative local storage paths. */
  readonly cwd: string;
  /**
   * `[server] negotiate` (default true): false leaves POST /<repo>/negotiate and /history out, so the server
   * answers as one from before it (tests of a new client against an old server).
   */
  readonly negotiate?: boolean;
  /**
   * `[server] presign` and friends: presigned URLs that move chunk bytes between client and
   * bucket directly when the storage is S3 (docs/server.md "Presigned URLs"). Absent: off.
   */
  readonly presign?: PresignConfig;
}

export interface PresignConfig {
  /** Downloads straight from the bucket (POST /<repo>/objects/urls). */
  readonly get: boolean;
  /** How long a URL handed out stays valid. */
  readonly expiryS: number;
  /** The S3 address clients reach the bucket at, when it is not the server's own. */
  readonly endpoint: string | null;
}

const MiB = 1024 * 1024;
export const DEFAULTS = {
  host: '0.0.0.0',
  port: 3000,
  metricsPort: 9090,
  maxObjectBytes: 16 * MiB,
  maxPackBytes: 64 * MiB,
  rateLimitRps: 200,
  rateLimitBurst: 400,
  requestTimeoutS: 300,
  bodyIdleTimeoutS: 15,
  inflightPerIdentity: 128 * MiB,
  inflightTotal: 512 * MiB,
  verifyQueueBytes: 64 * MiB,
  localPath: './mediagit-data',
  presign: 'get',
  presignExpiryS: 300,
} as const;
/** Largest body limit accepted: bodies are buffered whole. */
const MAX_LIMIT = 1024 * MiB;
export const MIN_JWT_SECRET_LENGTH = 32;

export type Env = Readonly<Record<string, string | undefined>>;

export interface LoadConfigOptions {
  /** TOML file; a missing file is an error only when `requireFile` is set. */
  readonly configPath?: string;
  readonly requireFile?: boolean;
  /** TOML text instead of a file (tests); relative paths resolve against `cwd`. */
  readonly configText?: string;
  readonly env?: Env;
  readonly cwd?: string;
}

type Table = Record<string, unknown>;

const isTable = (v: unknown): v is Table =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** Reads `mediagit.toml` (if present) and the environment into a validated ServerConfig. */
export async function loadServerConfig(options: LoadConfigOptions = {}): Promise<ServerConfig> {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  let text = options.configText;
  let base = cwd;
  let source = 'configuration';
  if (text === undefined && options.configPath !== undefined) {
    const path = resolve(cwd, options.configPath);
    try {
      text = await readFile(path, 'utf8');
      base = dirname(path);
      source = path;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code !== 'ENOENT' || options.requireFile)
        throw new ConfigError(
          `cannot read the server configuration ${path}${code === 'ENOENT' ? ': no such file' : ''}`,
          { cause: err },
        );
    }
  }
  let doc: Table = {};
  if (text !== undefined) {
    try {
      doc = parseToml(text) as Table;
    } catch (err) {
      throw new ConfigError(
        `${source} is not valid TOML: ${(err instanceof Error ? err.message : String(err)).split('\n')[0] ?? ''}`,
      );
    }
  }
  return buildConfig(doc, env, base, cwd, source);
}

function buildConfig(
  doc: Table,
  env: Env,
  base: string,
  cwd: string,
  source: string,
): ServerConfig {
  const reader = new TableReader(doc, '', source);
  reader.only(['server', 'auth', 'metrics', 'storage']);
  const server = reader.table('server');
  server.only([
    'host',
    'port',
    'tls_cert',
    'tls_key',
    'max_object_bytes',
    'max_pack_bytes',
    'rate_limit_rps',
    'rate_limit_burst',
    'request_timeout_s',
    'trust_proxy',
    'allow_force',
    'max_inflight_bytes',
    'max_inflight_bytes_per_identity',
    'body_idle_timeout_s',
    'verify_workers',
    'verify_queue_bytes',
    'audit_log',
    'negotiate',
    'presign',
    'presign_expiry_s',
    'presign_endpoint',
  ]);
  const auth = reader.table('auth');
  auth.only(['anonymous_read', 'api_keys']);
  const metrics = reader.table('metrics');
  metrics.only(['enabled', 'port']);

  const host = envString(env, 'MEDIAGIT_HOST') ?? server.string('host') ?? DEFAULTS.host;
  if (!/^[A-Za-z0-9.:-]{1,255}$/.test(host))
    throw new ConfigError('MEDIAGIT_HOST / [server] host is not a host name or address');
  const port = envPort(env, 'MEDIAGIT_PORT') ?? server.integer('port', 0, 65535) ?? DEFAULTS.port;

  const certFile = envString(env, 'MEDIAGIT_TLS_CERT') ?? server.string('tls_cert');
  const keyFile = envString(env, 'MEDIAGIT_TLS_KEY') ?? server.string('tls_key');
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new ConfigError(
      'TLS needs both a certificate and a key (MEDIAGIT_TLS_CERT and MEDIAGIT_TLS_KEY)',
    );
  const tls =
    certFile !== undefined && keyFile !== undefined
      ? { certFile: resolve(base, certFile), keyFile: resolve(base, keyFile) }
      : null;

  const jwtSecret = envString(env, 'MEDIAGIT_JWT_SECRET') ?? null;
  if (jwtSecret !== null && jwtSecret.length < MIN_JWT_SECRET_LENGTH) {
    throw new ConfigError(
      `MEDIAGIT_JWT_SECRET is too short: it must be at least ${MIN_JWT_SECRET_LENGTH} characters`,
      { hint: 'generate one with: openssl rand -hex 32' },
    );
  }
  const apiKeysEnabled =
    envBool(env, 'MEDIAGIT_API_KEY_ENABLED') ?? auth.boolean('api_keys') ?? false;
  const anonymousRead = auth.boolean('anonymous_read') ?? false;

  return {
    host,
    port,
    tls,
    jwtSecret,
    apiKeysEnabled,
    anonymousRead,
    storage: storageSpec(reader.table('storage'), base),
    ...serverLimits(server),
    trustProxy: trustedProxies(server),
    allowForce: allowForce(server),
    negotiate: server.boolean('negotiate') ?? true,
    presign: presignConfig(server),
    metrics: {
      enabled: envBool(env, 'MEDIAGIT_METRICS_ENABLED') ?? metrics.boolean('enabled') ?? false,
      port:
        envPort(env, 'MEDIAGIT_METRICS_PORT') ??
        metrics.integer('port', 0, 65535) ??
        DEFAULTS.metricsPort,
    },
    auditLog: (() => {
      const file = envString(env, 'MEDIAGIT_AUDIT_LOG') ?? server.string('audit_log');
      return file === undefined ? null : resolve(base, file);
    })(),
    cwd,
  };
}

type Limits = Pick<
  ServerConfig,
  | 'maxObjectBytes'
  | 'maxPackBytes'
  | 'rateLimitRps'
  | 'rateLimitBurst'
  | 'requestTimeoutMs'
  | 'inflight'
  | 'bodyIdleTimeoutMs'
  | 'verification'
>;

/** `[server]` sizes, rates and times: what one request, one client and the server may use. */
function serverLimits(server: TableReader): Limits {
  const rateLimitRps = server.number('rate_limit_rps', 0.001, 1e9) ?? DEFAULTS.rateLimitRps;
  return {
    maxObjectBytes: server.integer('max_object_bytes', 1024, MAX_LIMIT) ?? DEFAULTS.maxObjectBytes,
    maxPackBytes: server.integer('max_pack_bytes', 1024, MAX_LIMIT) ?? DEFAULTS.maxPackBytes,
    rateLimitRps,
    rateLimitBurst:
      server.integer('rate_limit_burst', 1, 1e9) ??
      Math.max(DEFAULTS.rateLimitBurst, Math.ceil(rateLimitRps)),
    requestTimeoutMs:
      (server.number('request_timeout_s', 1, 86_400) ?? DEFAULTS.requestTimeoutS) * 1000,
    inflight: {
      perIdentity:
        server.integer('max_inflight_bytes_per_identity', 1024, 64 * 1024 * MiB) ??
        DEFAULTS.inflightPerIdentity,
      total: server.integer('max_inflight_bytes', 1024, 64 * 1024 * MiB) ?? DEFAULTS.inflightTotal,
    },
    bodyIdleTimeoutMs:
      (server.number('body_idle_timeout_s', 0.1, 3600) ?? DEFAULTS.bodyIdleTimeoutS) * 1000,
    verification: {
      workers: server.integer('verify_workers', 0, 256) ?? availableParallelism(),
      maxQueuedBytes:
        server.integer('verify_queue_bytes', 1024, 64 * 1024 * MiB) ?? DEFAULTS.verifyQueueBytes,
    },
  };
}

/** `[server] presign = "get" | "off"`, `presign_expiry_s`, `presign_endpoint`. */
function presignConfig(server: TableReader): PresignConfig {
  const mode = server.string('presign') ?? DEFAULTS.presign;
  if (mode !== 'get' && mode !== 'off')
    throw new ConfigError(`[server] presign must be "get" or "off", not "${mode}"`);
  const endpoint = server.string('presign_endpoint') ?? null;
  if (endpoint !== null) {
    let url: URL | null = null;
    try {
      url = new URL(endpoint);
    } catch {
      // reported below
    }
    if (
      url === null ||
      (url.protocol !== 'http:' && url.protocol !== 'https:') ||
      url.username !== '' ||
      url.password !== '' ||
      url.search !== ''
    )
      throw new ConfigError(
        // The value is not echoed: a URL with credentials in it is exactly what this refuses.
        '[server] presign_endpoint must be an http(s)://host[:port] URL without credentials or a query',
      );
  }
  return {
    get: mode === 'get',
    // At most a day: a URL is a bearer credential for one object and cannot be revoked.
    expiryS: server.integer('presign_expiry_s', 1, 86_400) ?? DEFAULTS.presignExpiryS,
    endpoint,
  };
}

/** An IPv4 or IPv6 address, optionally with a /prefix length. */
const ADDRESS_OR_CIDR =
  /^(?:\d{1,3}(?:\.\d{1,3}){3}(?:\/\d{1,2})?|[0-9a-fA-F:.]{2,45}(?:\/\d{1,3})?)$/;

/**
 * `[server] trust_proxy`: a list of proxy addresses / CIDR ranges, or false. `true` (trust every
 * hop, so any client could name its own address) is refused with the way to fix it.
 */
function trustedProxies(server: TableReader): readonly string[] {
  const value = server.raw('trust_proxy');
  if (value === undefined || value === false) return [];
  if (value === true)
    throw new ConfigError(
      "[server] trust_proxy = true would let any client choose its own address through X-Forwarded-For; list the proxies instead, e.g. trust_proxy = ['10.0.0.0/8']",
    );
  const list = server.stringList('trust_proxy');
  for (const entry of list)
    if (!ADDRESS_OR_CIDR.test(entry) || isIP(entry.split('/')[0]!) === 0)
      throw new ConfigError(`[server] trust_proxy: '${entry}' is not an address or CIDR range`);
  return list;
}

/** `[server] allow_force`: repository names (or '*') where write tokens may delete and rewind refs. */
function allowForce(server: TableReader): readonly string[] {
  if (server.raw('allow_force') === undefined) return [];
  const list = server.stringList('allow_force');
  for (const name of list)
    if (name !== '*' && !isValidRepositoryName(name))
      throw new ConfigError(`[server] allow_force: '${name}' is not a repository name`);
  return list;
}

// ---- storage ----

const BACKENDS = ['local', 's3', 'azure', 'gcs', 'multi'] as const;
type Backend = (typeof BACKENDS)[number];

/** Keys of each backend's table: those that build the URL, then the backend's own options. */
const BACKEND_KEYS: Readonly<Record<Exclude<Backend, 'multi'>, readonly string[]>> = {
  local: ['path', ...Object.keys(OPTION_TABLES.local)],
  s3: ['bucket', 'prefix', ...Object.keys(OPTION_TABLES.s3)],
  azure: ['container', 'prefix', ...Object.keys(OPTION_TABLES.azure)],
  gcs: ['bucket', 'prefix', ...Object.keys(OPTION_TABLES.gcs)],
};

/**
 * `[storage]`: either `backend = "local"|"s3"|"azure"|"gcs"|"multi"` with the backend's table, or
 * `url = "<remote URL>"` with `[storage.options]` (the same URL + options a remote takes).
 * Default: a local folder `./mediagit-data`.
 */
function storageSpec(storage: TableReader, base: string): StorageSpec {
  const url = storage.string('url');
  if (url !== undefined) {
    storage.only(['url', 'options']);
    const options = storage.table('options');
    return specFromUrl(url, options.scalars(), base, `${storage.path}.url`);
  }
  storage.only(['backend', ...BACKENDS]);
  const backend = storage.string('backend') ?? 'local';
  if (!isBackend(backend))
    throw new ConfigError(
      `[storage] backend must be one of ${BACKENDS.join(', ')}, not '${backend}'`,
    );
  if (backend === 'multi') {
    const multi = storage.table('multi');
    const names = [multi.string('primary'), multi.string('secondary')];
    const [primary, secondary] = names;
    if (primary === undefined || secondary === undefined)
      throw new ConfigError(
        '[storage.multi] needs primary and secondary (names of [storage.multi.<name>] tables)',
      );
    if (primary === secondary)
      throw new ConfigError('[storage.multi] primary and secondary must be different');
    multi.only(['primary', 'secondary', primary, secondary]);
    return {
      kind: 'multi',
      primary: memberSpec(multi.table(primary, true), primary, base),
      secondary: memberSpec(multi.table(secondary, true), secondary, base),
    };
  }
  return backendSpec(backend, storage.table(backend, backend !== 'local'), base);
}

/** `[storage.multi.<name>]`: its `backend` key, or the name itself when it is a backend ("local", "s3"…). */
function memberSpec(table: TableReader, name: string, base: string): StorageSpec {
  const backend = table.string('backend') ?? name;
  if (!isBackend(backend) || backend === 'multi')
    throw new ConfigError(`[${table.path}] needs backend = "local", "s3", "azure" or "gcs"`);
  return backendSpec(backend, table, base, ['backend']);
}

function backendSpec(
  backend: Exclude<Backend, 'multi'>,
  table: TableReader,
  base: string,
  extra: readonly string[] = [],
): StorageSpec {
  table.only([...BACKEND_KEYS[backend], ...extra]);
  const options: Record<string, StoreOptionValue> = {};
  for (const [k, v] of Object.entries(table.scalars()))
    if (!['path', 'bucket', 'container', 'prefix', 'backend'].includes(k)) options[k] = v;
  const prefix = table.string('prefix')?.replace(/^\/+|\/+$/g, '') ?? '';
  const required = (key: string): string => {
    const v = table.string(key);
    if (v === undefined || v === '') throw new ConfigError(`[${table.path}] needs ${key}`);
    return v;
  };
  switch (backend) {
    case 'local': {
      const path = table.string('path') ?? DEFAULTS.localPath;
      return specFromUrl(isAbsolute(path) ? path : resolve(base, path), options, base, table.path);
    }
    case 's3':
      return specFromUrl(`s3://${required('bucket')}/${prefix}`, options, base, table.path);
    case 'azure':
      return specFromUrl(`azure://${required('container')}/${prefix}`, options, base, table.path);
    case 'gcs':
      return specFromUrl(`gs://${required('bucket')}/${prefix}`, options, base, table.path);
  }
}

/** A remote URL (+ options) as a storage spec; `multi:` takes `primary` and `secondary` URLs from the options. */
function specFromUrl(url: string, options: StoreOptions, base: string, where: string): StorageSpec {
  const location = parseStoreUrl(url, base);
  if (location.kind === 'http')
    throw new ConfigError(
      `${where}: a mediagit server cannot store its repositories on another mediagit server`,
    );
  if (location.kind === 'multi') {
    const { primary, secondary } = options;
    if (typeof primary !== 'string' || typeof secondary !== 'string')
      throw new ConfigError(`${where}: multi: storage needs options primary and secondary (URLs)`);
    const sides = multiSides(options, base);
    return {
      kind: 'multi',
      primary: specFromUrl(sides.primary.url, sides.primary.options, base, where),
      secondary: specFromUrl(sides.secondary.url, sides.secondary.options, base, where),
    };
  }
  // Unknown keys and bad values fail the start, not the first request.
  try {
    checkStoreOptions(location, options, base);
  } catch (err) {
    if (err instanceof ConfigError)
      throw new ConfigError(`${where}: ${err.message}`, err.hint ? { hint: err.hint } : {});
    throw err;
  }
  return { kind: 'single', url: location.kind === 'local' ? location.target : url, options };
}

function isBackend(value: string): value is Backend {
  return (BACKENDS as readonly string[]).includes(value);
}

// ---- typed access to TOML tables and the environment ----

class TableReader {
  constructor(
    private readonly data: Table,
    readonly path: string,
    private readonly source: string,
  ) {}

  private where(key: string): string {
    return this.path === '' ? `'${key}'` : `[${this.path}] ${key}`;
  }

  private error(key: string, what: string): ConfigError {
    return new ConfigError(`${this.source}: ${this.where(key)} ${what}`);
  }

  only(keys: readonly string[]): void {
    for (const key of Object.keys(this.data))
      if (!keys.includes(key)) throw this.error(key, 'is not a known setting');
  }

  table(key: string, required = false): TableReader {
    const v = this.data[key];
    if (v === undefined) {
      if (required)
        throw new ConfigError(
          `${this.source}: missing table [${this.path === '' ? key : `${this.path}.${key}`}]`,
        );
      return new TableReader({}, this.path === '' ? key : `${this.path}.${key}`, this.source);
    }
    if (!isTable(v)) throw this.error(key, 'must be a table');
    return new TableReader(v, this.path === '' ? key : `${this.path}.${key}`, this.source);
  }

  string(key: string): string | undefined {
    const v = this.data[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw this.error(key, 'must be a string');
    return v;
  }

  raw(key: string): unknown {
    return this.data[key];
  }

  stringList(key: string): string[] {
    const v = this.data[key];
    if (!Array.isArray(v) || !v.every((e): e is string => typeof e === 'string'))
      throw this.error(key, 'must be a list of strings');
    return v;
  }

  boolean(key: string): boolean | undefined {
    const v = this.data[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw this.error(key, 'must be true or false');
    return v;
  }

  number(key: string, min: number, max: number): number | undefined {
    const v = this.data[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
      throw this.error(key, `must be a number from ${min} to ${max}`);
    return v;
  }

  integer(key: string, min: number, max: number): number | undefined {
    const v = this.number(key, min, max);
    if (v !== undefined && !Number.isInteger(v)) throw this.error(key, 'must be an integer');
    return v;
  }

  /** Every string, number and boolean of the table (nested tables are not options). */
  scalars(): Record<string, StoreOptionValue> {
    const out: Record<string, StoreOptionValue> = {};
    for (const [k, v] of Object.entries(this.data)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
      else if (!isTable(v)) throw this.error(k, 'must be a string, number or boolean');
    }
    return out;
  }
}

function envString(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

function envBool(env: Env, name: string): boolean | undefined {
  const v = envString(env, name)?.toLowerCase();
  if (v === undefined) return undefined;
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`${name} must be true or false`);
}

function envPort(env: Env, name: string): number | undefined {
  const v = envString(env, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,5}$/.test(v) || Number(v) > 65535)
    throw new ConfigError(`${name} must be a port number (0-65535)`);
  return Number(v);
}
