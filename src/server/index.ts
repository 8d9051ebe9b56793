/**
 * `mediagit server`: the HTTP protocol of docs/protocol.md over any Store backend. Operators read
 * docs/server.md; `createServer` builds the app, `startServer` builds and starts it.
 */
import { createServer, type ServerRuntime } from './app.js';
import type { ServerConfig } from './config.js';

export { createServer, SERVER_VERSION, type MediagitServer, type ServerRuntime } from './app.js';
export {
  loadServerConfig,
  DEFAULTS,
  type ServerConfig,
  type StorageSpec,
  type LoadConfigOptions,
  type Env,
} from './config.js';
export {
  mintToken,
  createApiKey,
  parseTtl,
  isRole,
  ROLES,
  type Role,
  type Grant,
  type Identity,
} from './auth.js';
export { RepositoryStorage, SYSTEM_AREA } from './storage.js';
export { isValidRepositoryName } from './names.js';
export type { AuditSink, AuditEvent } from './audit.js';

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:3000 (a repository is `<url>/<repo>`). */
  readonly url: string;
  /** `…/metrics` when metrics are enabled. */
  readonly metricsUrl: string | null;
  /** Graceful: stops accepting, lets requests in flight finish. */
  close(): Promise<void>;
}

export async function startServer(
  config: ServerConfig,
  runtime: ServerRuntime = {},
): Promise<RunningServer> {
  const server = createServer(config, runtime);
  const url = await server.listen();
  return { url, metricsUrl: server.metricsUrl, close: () => server.close() };
}
