/**
 * `mediagit server`, `mediagit server token`, `mediagit server apikey create` (docs/server.md).
 */
import { ConfigError, UsageError } from '../errors/index.js';
import { MIN_JWT_SECRET_LENGTH } from '../server/config.js';
import {
  RepositoryStorage,
  createApiKey,
  createServer,
  isRole,
  loadServerConfig,
  mintToken,
  parseTtl,
  type Role,
  type ServerConfig,
} from '../server/index.js';
import type { CommandIo } from './context.js';

/** What commander passes when the user gave no --config. */
const DEFAULT_CONFIG = 'mediagit.toml';
/** After a graceful close, a process still held open by some library's idle socket exits anyway. */
const EXIT_GRACE_MS = 5000;

export interface ServerOptions {
  config?: string;
}

export interface TokenOptions {
  repo: string;
  role?: string;
  ttl?: string;
  sub?: string;
  /** The server's base URL: print a web view sign-in link instead of the bare token. */
  ui?: string;
}

export interface ApiKeyOptions {
  repo: string;
  role?: string;
  sub?: string;
  config?: string;
}

function loadConfig(io: CommandIo, path: string | undefined): Promise<ServerConfig> {
  // The default file is optional (a bare `mediagit server` runs on ./mediagit-data); a named one must exist.
  return loadServerConfig({
    configPath: path ?? DEFAULT_CONFIG,
    requireFile: path !== undefined && path !== DEFAULT_CONFIG,
    cwd: io.cwd,
  });
}

/** Runs until SIGTERM or SIGINT, then stops accepting, lets requests in flight finish, and returns. */
export async function runServer(io: CommandIo, options: ServerOptions): Promise<void> {
  const config = await loadConfig(io, options.config);
  const server = createServer(config, { verifiersAtListen: true });
  const url = await server.listen();
  io.out(`mediagit server listening on ${url}`);
  if (server.metricsUrl !== null) io.out(`metrics on ${server.metricsUrl}`);
  if (config.jwtSecret === null)
    io.err('note: MEDIAGIT_JWT_SECRET is not set, so JWTs are not accepted');

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      resolve(sig);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  io.err(`mediagit server: ${signal}, finishing requests in flight`);
  // A second signal stops waiting for slow clients.
  const force = (): void => server.app.server.closeAllConnections();
  process.once('SIGTERM', force);
  process.once('SIGINT', force);
  try {
    await server.close();
  } finally {
    process.off('SIGTERM', force);
    process.off('SIGINT', force);
  }
  io.err('mediagit server: stopped');
  setTimeout(() => io.exit(Number(process.exitCode ?? 0)), EXIT_GRACE_MS).unref();
}

function role(value: string | undefined): Role {
  const r = value ?? 'read';
  if (!isRole(r)) throw new UsageError(`invalid role '${r}'`, { hint: 'use read, write or admin' });
  return r;
}

/** Prints a JWT signed with MEDIAGIT_JWT_SECRET, and nothing else, on standard output. */
export async function runServerToken(io: CommandIo, options: TokenOptions): Promise<void> {
  const secret = process.env['MEDIAGIT_JWT_SECRET'];
  if (secret === undefined || secret === '')
    throw new ConfigError('MEDIAGIT_JWT_SECRET is not set', {
      hint: "set it to the server's secret (the same value the server runs with)",
    });
  if (secret.length < MIN_JWT_SECRET_LENGTH)
    throw new ConfigError(
      `MEDIAGIT_JWT_SECRET is too short: it must be at least ${MIN_JWT_SECRET_LENGTH} characters`,
      { hint: 'generate one with: openssl rand -hex 32' },
    );
  const ttl = parseTtl(options.ttl ?? '1h');
  const token = await mintToken(
    secret,
    { repo: options.repo, role: role(options.role), sub: options.sub ?? 'cli' },
    ttl,
  );
  io.out(options.ui === undefined ? token : uiSignInLink(options.ui, token));
}

/**
 * `<server>/ui/login#token=…`: browsers never send a URL's fragment, so the token reaches no
 * server log or proxy; the login page hands it to its form and removes it from the address bar.
 */
function uiSignInLink(server: string, token: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new UsageError(`invalid server URL '${server}'`, {
      hint: 'give the address browsers reach the server at, e.g. https://assets.studio.example',
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`the server URL must start with http:// or https://`);
  return `${url.origin}/ui/login#token=${token}`;
}

/** Creates an API key in the configured storage and prints it once; only its SHA-256 is stored. */
export async function runApiKeyCreate(io: CommandIo, options: ApiKeyOptions): Promise<void> {
  const config = await loadConfig(io, options.config);
  const storage = new RepositoryStorage(config.storage, config.cwd);
  try {
    const { id, key } = await createApiKey(await storage.system(), {
      repo: options.repo,
      role: role(options.role),
      sub: options.sub ?? 'apikey',
    });
    io.out(key);
    io.err(
      `API key ${id} created for '${options.sub ?? 'apikey'}' (${role(options.role)} on ${options.repo}); it is shown only this once`,
    );
    if (!config.apiKeysEnabled)
      io.err(
        'note: the server accepts API keys only with MEDIAGIT_API_KEY_ENABLED=true (or [auth] api_keys = true)',
      );
  } finally {
    await storage.close();
  }
}
