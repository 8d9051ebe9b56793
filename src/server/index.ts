/**
 * `mediagit server`: the HTTP protocol of docs/protocol.md over any Store backend. Operators read
 * docs/server.md; `createServer` builds the app, `startServer` builds and starts it.
 */
import { createServer, type ServerRuntime } from './app.js';
import type { ServerConfig } from './config.js';
import { describeError } from './errors.js';

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
  /** Request-body bytes reserved right now. */
  readonly bytesInFlight: number;
}

/**
 * Builds and starts a server, with a process-level guard for as long as it runs: a promise
 * rejected with nobody to handle it (the default for which is to end the process) is logged and
 * the server keeps serving. Every request's failures are handled where they happen; the guard is
 * there so that one missed path costs one request, not every client's connection.
 */
export async function startServer(
  config: ServerConfig,
  runtime: ServerRuntime = {},
): Promise<RunningServer> {
  const server = createServer(config, runtime);
  const log = runtime.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const guard = (reason: unknown): void =>
    log(
      `mediagit server: a failure nobody handled (the server keeps running): ${describeError(reason)}`,
    );
  process.on('unhandledRejection', guard);
  let url: string;
  try {
    url = await server.listen();
  } catch (err) {
    process.off('unhandledRejection', guard);
    throw err;
  }
  return {
    url,
    metricsUrl: server.metricsUrl,
    get bytesInFlight() {
      return server.bytesInFlight;
    },
    async close() {
      try {
        await server.close();
      } finally {
        process.off('unhandledRejection', guard);
      }
    },
  };
}
