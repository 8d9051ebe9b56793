/**
 * The fastify application: every endpoint of docs/protocol.md, registered for one-part
 * (`/<repo>/…`) and two-part (`/<owner>/<repo>/…`) repository names, behind one gate that runs in
 * this order for every repository request:
 *
 *   authenticate (401) → validate the repository name (400) → check the role (403)
 *   → rate limit (429) → the endpoint (which validates its own IDs before touching storage)
 *
 * Bodies are never parsed by fastify: endpoints read them (body.ts) after the gate, bounded.
 * Every request gets an AbortSignal that fires at `request_timeout_s` or when the client leaves.
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
import { AuditLog, fileSink, stderrSink, type AuditSink } from './audit.js';
import {
  AuthFailure,
  Authenticator,
  allows,
  roleOn,
  type AuthFailureReason,
  type Identity,
} from './auth.js';
import { closeIfUnread } from './body.js';
import type { ServerConfig } from './config.js';
import {
  EncryptionFacts,
  type Endpoint,
  type EndpointResult,
  type RequestContext,
  type Services,
} from './context.js';
import { HttpError, badRequest, describeError, toHttpError, type ErrorCode } from './errors.js';
import { MetricsListener, ServerMetrics, hostForUrl } from './metrics.js';
import { isValidRepositoryName, repositoryName } from './names.js';
import { TokenBucketLimiter } from './rate-limit.js';
import { lockRoutes } from './routes/locks.js';
import { objectRoutes } from './routes/objects.js';
import { refRoutes } from './routes/refs.js';
import { repositoryRoutes } from './routes/repository.js';
import { RepositoryStorage } from './storage.js';
import { packageVersion } from '../util/version.js';

export const SERVER_VERSION: string = packageVersion();

const ENDPOINTS: readonly Endpoint[] = [
  ...repositoryRoutes,
  ...objectRoutes,
  ...refRoutes,
  ...lockRoutes,
];
const HEALTH_PROBE_TIMEOUT_MS = 5000;

export interface ServerRuntime {
  /** Where audit lines go; default: MEDIAGIT_AUDIT_LOG's file, else standard error. */
  readonly audit?: AuditSink;
  /** The server's own diagnostics (storage failures, internal errors); default standard error. */
  readonly log?: (line: string) => void;
}

export interface MediagitServer {
  readonly app: FastifyInstance;
  /** Starts listening (and the metrics listener when enabled); resolves to the base URL. */
  listen(): Promise<string>;
  /** Stops accepting, lets requests in flight finish, then releases everything. */
  close(): Promise<void>;
  readonly url: string | null;
  readonly metricsUrl: string | null;
}

interface RequestState {
  readonly controller: AbortController;
  readonly timer: NodeJS.Timeout;
}

const UNAUTHORIZED_TEXT: Record<AuthFailureReason, string> = {
  missing: 'credentials required',
  malformed: 'malformed credentials',
  expired: 'the token has expired',
  bad_signature: 'invalid token',
  algorithm: 'invalid token',
  bad_claims: 'invalid token claims',
  unknown_key: 'invalid API key',
  jwt_disabled: 'this server does not accept JWTs',
  api_keys_disabled: 'this server does not accept API keys',
};

function unauthorized(reason: AuthFailureReason): HttpError {
  const challenge =
    reason === 'missing'
      ? 'Bearer realm="mediagit"'
      : 'Bearer realm="mediagit", error="invalid_token"';
  return new HttpError(
    401,
    'unauthorized',
    UNAUTHORIZED_TEXT[reason],
    {},
    { 'www-authenticate': challenge },
  );
}

/** Route template for metrics and audit lines: one label per endpoint, whatever the repository. */
function routeLabel(request: FastifyRequest): string {
  const url = request.routeOptions.url;
  return url === undefined ? 'unmatched' : url.replace(/^\/:owner\/:repo(?=\/)/, '/:repo');
}

/** Statuses fastify itself may raise (malformed requests, closing) mapped to our error codes. */
function fromFastifyError(err: unknown): HttpError | null {
  if (typeof err !== 'object' || err === null) return null;
  const { statusCode, code } = err as { statusCode?: unknown; code?: unknown };
  if (typeof code !== 'string' || !code.startsWith('FST_') || typeof statusCode !== 'number')
    return null;
  const codes: Record<number, ErrorCode> = {
    400: 'bad_request',
    408: 'timeout',
    413: 'too_large',
    415: 'unsupported_media_type',
    503: 'unavailable',
  };
  const mapped = codes[statusCode];
  if (mapped === undefined) return null;
  return new HttpError(
    statusCode,
    mapped,
    statusCode === 503 ? 'the server is shutting down' : 'malformed request',
    {},
    statusCode === 503 ? { 'retry-after': '1' } : {},
  );
}

/** Resolves with `work`, or rejects with the signal's reason as soon as it fires. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

function send(reply: FastifyReply, result: EndpointResult): FastifyReply {
  reply.code(result.status);
  if (result.headers) reply.headers(result.headers);
  if ('json' in result)
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(result.json));
  if ('binary' in result) return reply.type('application/octet-stream').send(result.binary);
  if ('stream' in result) return reply.send(result.stream);
  return reply.send();
}

export function createServer(config: ServerConfig, runtime: ServerRuntime = {}): MediagitServer {
  if (config.jwtSecret === null && !config.apiKeysEnabled && !config.anonymousRead) {
    throw new ConfigError(
      'no way to authenticate: set MEDIAGIT_JWT_SECRET, or MEDIAGIT_API_KEY_ENABLED=true, or [auth] anonymous_read = true',
    );
  }
  const log = runtime.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  // An evicted store is closed only after every request that may hold it has timed out.
  const storage = new RepositoryStorage(config.storage, config.cwd, {
    closeDelayMs: config.requestTimeoutMs + 60_000,
  });
  const metrics = new ServerMetrics({ processMetrics: config.metrics.enabled });
  const audit = new AuditLog(
    runtime.audit ?? (config.auditLog !== null ? fileSink(config.auditLog) : stderrSink()),
  );
  const services: Services = { config, storage, metrics, audit, modes: new EncryptionFacts() };
  const authenticator = new Authenticator({
    jwtSecret: config.jwtSecret,
    apiKeysEnabled: config.apiKeysEnabled,
    anonymousRead: config.anonymousRead,
    systemStore: () => storage.system(),
  });
  const limiter = new TokenBucketLimiter(config.rateLimitRps, config.rateLimitBurst);
  const startedAt = Date.now();
  const states = new WeakMap<FastifyRequest, RequestState>();
  let closing = false;

  const common = {
    logger: false,
    requestTimeout: config.requestTimeoutMs,
    exposeHeadRoutes: false,
    // Requests that arrive on a kept-alive connection while closing get our own 503 (onRequest).
    return503OnClosing: false,
    forceCloseConnections: 'idle' as const,
    trustProxy: config.trustProxy,
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

  app.addHook('onRequest', async (request, reply) => {
    if (closing)
      throw new HttpError(
        503,
        'unavailable',
        'the server is shutting down',
        {},
        { 'retry-after': '1' },
      );
    const controller = new AbortController();
    const timer = setTimeout(
      () =>
        controller.abort(
          new HttpError(
            503,
            'timeout',
            `the request took longer than ${config.requestTimeoutMs / 1000} s`,
            {},
            { 'retry-after': '1' },
          ),
        ),
      config.requestTimeoutMs,
    );
    timer.unref();
    states.set(request, { controller, timer });
    reply.raw.once('close', () => {
      clearTimeout(timer);
      if (!reply.raw.writableFinished)
        controller.abort(new HttpError(499, 'bad_request', 'the client went away'));
    });
  });

  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    // A body nobody read is not drained, and a closing server lets each connection go after its answer.
    if (closing || closeIfUnread(request)) reply.header('connection', 'close');
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    const state = states.get(request);
    if (state) clearTimeout(state.timer);
    metrics.requestDuration.observe(
      { route: routeLabel(request), method: request.method, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.setErrorHandler((err, request, reply) => {
    const http = fromFastifyError(err) ?? toHttpError(err);
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

  const signalOf = (request: FastifyRequest): AbortSignal =>
    states.get(request)?.controller.signal ?? new AbortController().signal;

  const limit = (key: string): void => {
    const decision = limiter.take(key);
    if (!decision.allowed)
      throw new HttpError(
        429,
        'rate_limited',
        'too many requests',
        {},
        { 'retry-after': String(decision.retryAfterS) },
      );
  };

  const gate = async (
    request: FastifyRequest,
    endpoint: Endpoint,
  ): Promise<{ identity: Identity; repo: string }> => {
    const params = request.params as Record<string, string | undefined>;
    const rawRepo =
      params['owner'] === undefined ? params['repo'] : `${params['owner']}/${params['repo'] ?? ''}`;
    const auditRepo = rawRepo !== undefined && isValidRepositoryName(rawRepo) ? rawRepo : null;
    const target = `${request.method} ${routeLabel(request)}`;
    let identity: Identity;
    try {
      identity = await authenticator.authenticate(request.headers.authorization, signalOf(request));
    } catch (err) {
      if (!(err instanceof AuthFailure)) throw err;
      audit.record({
        event: 'auth_failure',
        repo: auditRepo,
        identity: null,
        ip: request.ip,
        target,
        status: 401,
        reason: err.reason,
      });
      limit(`ip:${request.ip}`);
      throw unauthorized(err.reason);
    }
    const repo = repositoryName(params['owner'], params['repo'] ?? '');
    const role = roleOn(identity, repo);
    if (!allows(role, endpoint.role)) {
      if (identity.via === 'anonymous') {
        audit.record({
          event: 'auth_failure',
          repo,
          identity: null,
          ip: request.ip,
          target,
          status: 401,
          reason: 'missing',
        });
        limit(`ip:${request.ip}`);
        throw unauthorized('missing');
      }
      audit.record({
        event: 'forbidden',
        repo,
        identity: identity.sub,
        ip: request.ip,
        target,
        status: 403,
        reason: `needs ${endpoint.role}`,
      });
      throw new HttpError(
        403,
        'forbidden',
        `${endpoint.role} access to ${repo} is not granted to ${identity.sub}`,
      );
    }
    limit(identity.via === 'anonymous' ? `ip:${request.ip}` : `id:${identity.sub}`);
    return { identity, repo };
  };

  // The web view (src/ui/, docs/server.md "Web view"): loaded when the server starts listening.
  app.register(
    async (scope) =>
      (await import('../ui/index.js')).registerUi(scope, { services, authenticator, limit, log }),
    { prefix: '/ui' },
  );

  const handlerFor = (endpoint: Endpoint): RouteHandlerMethod =>
    async function (request, reply) {
      const { identity, repo } = await gate(request, endpoint);
      const params = request.params as Record<string, string>;
      const ctx: RequestContext = {
        request,
        services,
        repo,
        identity,
        role: roleOn(identity, repo) ?? 'read',
        ip: request.ip,
        params,
        signal: signalOf(request),
        store: () => storage.forRepository(repo),
        target: null,
      };
      let status = 500;
      try {
        const result = await untilAborted(endpoint.handle(ctx), ctx.signal);
        status = result.status;
        return send(reply, result);
      } catch (err) {
        status = (fromFastifyError(err) ?? toHttpError(err)).status;
        throw err;
      } finally {
        if (endpoint.audit !== undefined)
          audit.record({
            event: endpoint.audit,
            repo,
            identity: identity.sub,
            ip: request.ip,
            target: ctx.target,
            status,
          });
      }
    };

  for (const endpoint of ENDPOINTS) {
    const handler = handlerFor(endpoint);
    app.route({ method: endpoint.method, url: `/:repo${endpoint.path}`, handler });
    app.route({ method: endpoint.method, url: `/:owner/:repo${endpoint.path}`, handler });
  }

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
      log(`mediagit server: storage health probe failed: ${describeError(err)}`);
    }
    return send(reply, {
      status: 200,
      json: {
        status: reachable ? 'ok' : 'degraded',
        version: SERVER_VERSION,
        uptime_s: Math.floor((Date.now() - startedAt) / 1000),
        storage: { reachable, backend: storage.backend },
      },
    });
  });

  let url: string | null = null;
  let metricsListener: MetricsListener | null = null;
  let closed: Promise<void> | null = null;

  return {
    app,
    get url() {
      return url;
    },
    get metricsUrl() {
      return metricsListener?.url ?? null;
    },
    async listen() {
      await app.listen({ host: config.host, port: config.port });
      const address = app.server.address() as AddressInfo;
      url = `${config.tls !== null ? 'https' : 'http'}://${hostForUrl(config.host)}:${address.port}`;
      if (config.metrics.enabled) {
        try {
          metricsListener = await MetricsListener.start(metrics, config.host, config.metrics.port);
        } catch (err) {
          await app.close();
          throw err;
        }
      }
      return url;
    },
    close() {
      closed ??= (async () => {
        closing = true;
        await app.close();
        await metricsListener?.close();
        await audit.close();
        await storage.close();
      })();
      return closed;
    },
  };
}
