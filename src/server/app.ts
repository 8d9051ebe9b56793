/**
 * The fastify application: every endpoint of docs/protocol.md, registered for one-part
 * (`/<repo>/…`) and two-part (`/<owner>/<repo>/…`) repository names. `createServer` builds it in
 * phases, one function each:
 *
 *   services (storage, metrics, audit, the gate)  →  the fastify instance (TLS, framework errors)
 *   →  request hooks (abort signal, timeout, release of what a request holds)  →  endpoints behind
 *   the gate (gate.ts)  →  health  →  listen / close
 *
 * Bodies are never parsed by fastify: endpoints read them (body.ts) after the gate, bounded.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type RouteHandlerMethod,
} from 'fastify';
import { ConfigError } from '../errors/index.js';
import type { Store } from '../store/index.js';
import { AuditLog, fileSink, stderrSink, type AuditSink } from './audit.js';
import { Authenticator } from './auth.js';
import { closeIfUnread } from './body.js';
import type { ServerConfig } from './config.js';
import { ConnectedObjects } from './connected.js';
import { RecentlyAbsent } from './recently-absent.js';
import { UploadVerifier, type VerifierStats } from './verifier.js';
import { RepositoryFacts, type Endpoint, type RequestContext, type Services } from './context.js';
import { HttpError, badRequest, describeError, toHttpError } from './errors.js';
import { Gate, routeLabel } from './gate.js';
import { InFlightBudget } from './inflight.js';
import { RequestTracker, fromFastifyError, send, untilAborted } from './lifecycle.js';
import { MetricsListener, ServerMetrics, hostForUrl } from './metrics.js';
import { TokenBucketLimiter } from './rate-limit.js';
import { gcRoutes } from './routes/gc.js';
import { lockRoutes } from './routes/locks.js';
import { historyRoutes } from './routes/history.js';
import { negotiateRoutes } from './routes/negotiate.js';
import { objectRoutes } from './routes/objects.js';
import { presignRoutes } from './routes/presign.js';
import { refRoutes } from './routes/refs.js';
import { repositoryRoutes } from './routes/repository.js';
import { RepositoryStorage } from './storage.js';
import { sweepTemporaryFiles } from './sweep.js';
import { packageVersion } from '../util/version.js';

export const SERVER_VERSION: string = packageVersion();

const ENDPOINTS: readonly Endpoint[] = [
  ...repositoryRoutes,
  ...objectRoutes,
  ...presignRoutes,
  ...refRoutes,
  ...lockRoutes,
  ...gcRoutes,
];
const HEALTH_PROBE_TIMEOUT_MS = 5000;
/** How long after the last "storage full" answer /health/detailed still says so. */
const STORAGE_FULL_MEMORY_MS = 60_000;

export interface ServerRuntime {
  /** Where audit lines go; default: MEDIAGIT_AUDIT_LOG's file, else standard error. */
  readonly audit?: AuditSink;
  /** The server's own diagnostics (storage failures, internal errors); default standard error. */
  readonly log?: (line: string) => void;
  /** Wraps each repository's store (embedding; tests that inject storage failures). */
  readonly wrapStore?: (store: Store, area: string) => Store;
  /**
   * Start the verification threads as soon as the server listens (`mediagit server` does), not
   * with the first writer's request: loading them costs each ~60 ms of CPU, which on a busy
   * machine the first push would otherwise pay while its packs arrive; and ready JWT checks
   * (Authenticator.warm) then too. Off by default, so an embedded or read-only server starts no
   * thread it does not use.
   */
  readonly verifiersAtListen?: boolean;
}

export interface MediagitServer {
  readonly app: FastifyInstance;
  /** Starts listening (and the metrics listener when enabled); resolves to the base URL. */
  listen(): Promise<string>;
  /** Stops accepting, lets requests in flight finish, then releases everything. */
  close(): Promise<void>;
  readonly url: string | null;
  readonly metricsUrl: string | null;
  /** Request-body bytes reserved right now (bytes in flight). */
  readonly bytesInFlight: number;
}

/** Everything the phases share. */
interface Parts {
  readonly config: ServerConfig;
  readonly log: (line: string) => void;
  readonly services: Services;
  readonly gate: Gate;
  readonly authenticator: Authenticator;
  readonly tracker: RequestTracker;
  readonly inflight: InFlightBudget;
  readonly health: { storageFullAt: number | null; readonly startedAt: number };
  readonly verifiersAtListen: boolean;
  closing: boolean;
}

export function createServer(config: ServerConfig, runtime: ServerRuntime = {}): MediagitServer {
  const parts = buildServices(config, runtime);
  const app = buildFastify(config);
  installHooks(app, parts);
  registerEndpoints(app, parts);
  registerHealth(app, parts);
  registerUi(app, parts);
  return lifecycle(app, parts);
}

function buildServices(config: ServerConfig, runtime: ServerRuntime): Parts {
  if (config.jwtSecret === null && !config.apiKeysEnabled && !config.anonymousRead) {
    throw new ConfigError(
      'no way to authenticate: set MEDIAGIT_JWT_SECRET, or MEDIAGIT_API_KEY_ENABLED=true, or [auth] anonymous_read = true',
    );
  }
  const log = runtime.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  // An evicted store is closed only after every request that may hold it has timed out.
  const storage = new RepositoryStorage(config.storage, config.cwd, {
    closeDelayMs: config.requestTimeoutMs + 60_000,
    ...(runtime.wrapStore ? { wrap: runtime.wrapStore } : {}),
  });
  const metrics = new ServerMetrics({ processMetrics: config.metrics.enabled });
  const audit = new AuditLog(
    runtime.audit ?? (config.auditLog !== null ? fileSink(config.auditLog) : stderrSink()),
  );
  const services: Services = {
    config,
    storage,
    metrics,
    audit,
    repos: new RepositoryFacts(),
    connected: new ConnectedObjects(),
    absent: new RecentlyAbsent(),
    verifier: new UploadVerifier({
      workers: config.verification.workers,
      maxQueuedBytes: config.verification.maxQueuedBytes,
    }),
  };
  const authenticator = new Authenticator({
    jwtSecret: config.jwtSecret,
    apiKeysEnabled: config.apiKeysEnabled,
    anonymousRead: config.anonymousRead,
    systemStore: () => storage.system(),
  });
  const limiter = new TokenBucketLimiter(config.rateLimitRps, config.rateLimitBurst);
  return {
    config,
    log,
    services,
    gate: new Gate({ authenticator, limiter, audit }),
    authenticator,
    tracker: new RequestTracker(config.requestTimeoutMs),
    inflight: new InFlightBudget(config.inflight),
    health: { storageFullAt: null, startedAt: Date.now() },
    verifiersAtListen: runtime.verifiersAtListen === true,
    closing: false,
  };
}

function buildFastify(config: ServerConfig): FastifyInstance {
  const common = {
    logger: false,
    requestTimeout: config.requestTimeoutMs,
    exposeHeadRoutes: false,
    // Requests that arrive on a kept-alive connection while closing get our own 503 (onRequest).
    return503OnClosing: false,
    forceCloseConnections: 'idle' as const,
    // Only the listed proxies' X-Forwarded-For counts; the client is the nearest hop not listed.
    trustProxy: config.trustProxy.length === 0 ? false : [...config.trustProxy],
    routerOptions: { maxParamLength: 256 },
    // Undecodable URLs and over-long parameters: the protocol's 400, in the protocol's shape.
    frameworkErrors: (_error: Error, _request: FastifyRequest, reply: FastifyReply) => {
      reply
        .code(400)
        .type('application/json; charset=utf-8')
        .send(JSON.stringify(badRequest('malformed URL').body()));
    },
  };
  let app: FastifyInstance;
  if (config.tls !== null) {
    let cert: Buffer, key: Buffer;
    try {
      cert = readFileSync(config.tls.certFile);
      key = readFileSync(config.tls.keyFile);
    } catch (err) {
      throw new ConfigError(
        `cannot read the TLS certificate or key: ${(err as { code?: string }).code ?? 'error'}`,
        { cause: err },
      );
    }
    app = Fastify({
      ...common,
      https: { cert, key, minVersion: 'TLSv1.2' },
    }) as unknown as FastifyInstance;
  } else {
    app = Fastify(common);
  }
  // Bodies are read by the endpoints, after authentication: fastify hands them over untouched.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
  return app;
}

function installHooks(app: FastifyInstance, parts: Parts): void {
  const { tracker, services, log } = parts;
  app.addHook('onRequest', async (request, reply) => {
    if (parts.closing)
      throw new HttpError(
        503,
        'unavailable',
        'the server is shutting down',
        {},
        { 'retry-after': '1' },
      );
    tracker.begin(request, reply);
  });

  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    // A body nobody read is not drained, and a closing server lets each connection go after its answer.
    if (parts.closing || closeIfUnread(request)) reply.header('connection', 'close');
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    tracker.finish(request);
    services.metrics.requestDuration.observe(
      { route: routeLabel(request), method: request.method, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.setErrorHandler((err, request, reply) => {
    const http = fromFastifyError(err) ?? toHttpError(err);
    if (http.code === 'insufficient_storage') parts.health.storageFullAt = Date.now();
    if (http.status >= 500 && http.code !== 'timeout')
      log(
        `mediagit server: ${request.method} ${routeLabel(request)} failed: ${describeError(err)}`,
      );
    reply
      .code(http.status)
      .headers(http.headers)
      .type('application/json; charset=utf-8')
      .send(JSON.stringify(http.body()));
  });

  app.setNotFoundHandler((_request, reply) => {
    const http = new HttpError(
      400,
      'bad_request',
      'no such endpoint, or an invalid repository name, ID or path in the URL',
    );
    reply.code(400).type('application/json; charset=utf-8').send(JSON.stringify(http.body()));
  });
}

function registerEndpoints(app: FastifyInstance, parts: Parts): void {
  const { gate, tracker, services, inflight, config } = parts;
  const handlerFor = (endpoint: Endpoint): RouteHandlerMethod =>
    async function (request, reply) {
      const signal = tracker.signal(request);
      const { identity, repo, role } = await gate.admit(
        request,
        endpoint.role,
        signal,
        endpoint.rateLimit,
      );
      // A writer's first calls (negotiate, descriptor, checks) come before its uploads: threads
      // started now are ready when the first chunk arrives instead of delaying it.
      if (role === 'write' || role === 'admin') services.verifier.warm();
      const budgetKey = identity.via === 'anonymous' ? `ip:${request.ip}` : `id:${identity.sub}`;
      const ctx: RequestContext = {
        request,
        services,
        repo,
        identity,
        role,
        ip: request.ip,
        params: request.params as Record<string, string>,
        signal,
        store: () => services.storage.forRepository(repo),
        target: null,
        refUpdated: null,
        reserveBody: (bytes) => tracker.onFinish(request, inflight.reserve(budgetKey, bytes)),
        bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
      };
      let status = 500;
      try {
        const result = await untilAborted(endpoint.handle(ctx), signal);
        status = result.status;
        return send(reply, result);
      } catch (err) {
        status = (fromFastifyError(err) ?? toHttpError(err)).status;
        if (endpoint.rateLimit === 'failure') gate.charge(identity, request.ip);
        throw err;
      } finally {
        if (endpoint.audit !== undefined)
          services.audit.record({
            event: endpoint.audit,
            repo,
            identity: identity.sub,
            ip: request.ip,
            target: ctx.target,
            status,
          });
        if (ctx.refUpdated !== null)
          services.audit.record({
            event: 'ref_update',
            repo,
            identity: identity.sub,
            ip: request.ip,
            target: ctx.refUpdated,
            status,
          });
      }
    };

  // `[server] negotiate = false` serves only the version-1 calls, as a server before it did.
  const endpoints =
    config.negotiate === false ? ENDPOINTS : [...ENDPOINTS, ...negotiateRoutes, ...historyRoutes];
  for (const endpoint of endpoints) {
    const handler = handlerFor(endpoint);
    app.route({ method: endpoint.method, url: `/:repo${endpoint.path}`, handler });
    app.route({ method: endpoint.method, url: `/:owner/:repo${endpoint.path}`, handler });
  }
}

/** The verification pool as /health/detailed reports it. */
function verificationHealth(stats: VerifierStats): Record<string, number> {
  return {
    workers: stats.workers,
    jobs_in_flight: stats.jobsInFlight,
    queued_bytes: stats.queuedBytes,
    max_queued_bytes: stats.maxQueuedBytes,
    verified_on_workers: stats.verifiedOnWorkers,
  };
}

function registerHealth(app: FastifyInstance, parts: Parts): void {
  const { storage } = parts.services;
  app.get('/health', async (_request, reply) =>
    send(reply, { status: 200, json: { status: 'ok' } }),
  );
  app.get('/health/detailed', async (_request, reply) => {
    let reachable = false;
    try {
      const store = await storage.system();
      await store.has(['meta/health'], { signal: AbortSignal.timeout(HEALTH_PROBE_TIMEOUT_MS) });
      reachable = true;
    } catch (err) {
      parts.log(`mediagit server: storage health probe failed: ${describeError(err)}`);
    }
    const fullAt = parts.health.storageFullAt;
    const full = fullAt !== null && Date.now() - fullAt < STORAGE_FULL_MEMORY_MS;
    return send(reply, {
      status: 200,
      json: {
        status: reachable && !full ? 'ok' : 'degraded',
        version: SERVER_VERSION,
        uptime_s: Math.floor((Date.now() - parts.health.startedAt) / 1000),
        storage: { reachable, backend: storage.backend, full },
        verification: verificationHealth(parts.services.verifier.stats),
      },
    });
  });
}

/** The web view (src/ui/, docs/server.md "Web view"): loaded when the server starts listening. */
function registerUi(app: FastifyInstance, parts: Parts): void {
  const { services, authenticator, gate, log } = parts;
  app.register(
    async (scope) =>
      (await import('../ui/index.js')).registerUi(scope, {
        services,
        authenticator,
        limit: (key) => gate.limit(key),
        log,
      }),
    { prefix: '/ui' },
  );
}

function lifecycle(app: FastifyInstance, parts: Parts): MediagitServer {
  const { config, services } = parts;
  let url: string | null = null;
  let metricsListener: MetricsListener | null = null;
  let closed: Promise<void> | null = null;
  let sweepTimer: NodeJS.Timeout | null = null;
  // Younger temporary files may belong to a write in flight on another replica of the same folder.
  const staleAfterMs = config.requestTimeoutMs + 60_000;
  const sweep = async (): Promise<void> => {
    try {
      const removed = await sweepTemporaryFiles(config.storage, config.cwd, staleAfterMs);
      if (removed > 0)
        parts.log(`mediagit server: removed ${removed} temporary files left by an earlier run`);
    } catch (err) {
      parts.log(`mediagit server: sweeping temporary files failed: ${describeError(err)}`);
    }
  };

  return {
    app,
    get url() {
      return url;
    },
    get metricsUrl() {
      return metricsListener?.url ?? null;
    },
    get bytesInFlight() {
      return parts.inflight.reserved;
    },
    async listen() {
      await sweep();
      // Files a crash left just before this start are not stale yet: look again once they are.
      sweepTimer = setTimeout(() => void sweep(), staleAfterMs);
      sweepTimer.unref();
      await app.listen({ host: config.host, port: config.port });
      const address = app.server.address() as AddressInfo;
      url = `${config.tls !== null ? 'https' : 'http'}://${hostForUrl(config.host)}:${address.port}`;
      if (parts.verifiersAtListen) {
        parts.services.verifier.warm();
        // Beside the threads' start-up, off any request's path; a failure shows at the first check.
        parts.authenticator.warm().catch(() => undefined);
      }
      if (config.metrics.enabled) {
        try {
          metricsListener = await MetricsListener.start(
            services.metrics,
            config.host,
            config.metrics.port,
          );
        } catch (err) {
          await app.close();
          throw err;
        }
      }
      return url;
    },
    close() {
      closed ??= (async () => {
        parts.closing = true;
        if (sweepTimer !== null) clearTimeout(sweepTimer);
        await app.close();
        await metricsListener?.close();
        await services.audit.close();
        await services.storage.close();
        await services.verifier.close();
      })();
      return closed;
    },
  };
}
