/**
 * The web view's routes under `/ui/`, registered in their own fastify scope so that their error
 * and not-found answers are HTML pages, while the server's hooks (timeouts, security headers,
 * request metrics) apply to them exactly as to the API.
 *
 *   /ui/                      repositories the visitor may read
 *   /ui/login, /ui/logout     the session cookie (session.ts)
 *   /ui/static/ui.{css,js}
 *   /ui/<repo>/-/…            a repository's pages (pages.ts) and its streams: raw, thumb, archive
 *
 * Everything after `/-/` is chosen by query parameters (rev, path, id, skip), so a file path or a
 * branch name can never be mistaken for part of the repository's name.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { NotFoundError } from '../errors/index.js';
import { allows, roleOn, type Identity } from '../server/auth.js';
import { modeOf, type RequestContext } from '../server/context.js';
import { HttpError, badRequest, describeError, notFound, toHttpError } from '../server/errors.js';
import { isValidRepositoryName, repositoryName } from '../server/names.js';
import { SYSTEM_AREA } from '../server/storage.js';
import { parseStoreUrl } from '../store/index.js';
import { archivePieces, type ArchiveFormat } from './archive.js';
import { CSS, JS } from './assets.js';
import { contentStream, parseRange } from './content.js';
import type { PageResult, RepoRequest } from './context.js';
import type { UiDeps } from './deps.js';
import { Html, html, page, query } from './html.js';
import { contentDisposition, mediaTypeOf } from './media.js';
import * as pages from './pages.js';
import { RepositoryReader, pathSegments } from './reader.js';
import {
  authenticate,
  authorize,
  checkSameOrigin,
  clearedCookie,
  readForm,
  safeNext,
  sessionCookie,
} from './session.js';
import {
  THUMBNAIL_MAX_INPUT,
  THUMBNAIL_WIDTHS,
  Thumbnailer,
  type ThumbnailWidth,
} from './thumbs.js';

const OID = /^[0-9a-f]{64}$/;
const REPO_LIST_PAGE = 100;

/** Headers of every HTML page: nothing framed, no outside resources, no caching of private data. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; media-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
};

function thumbnailCounter(registry: Registry): Counter<'result'> {
  const existing = registry.getSingleMetric('mediagit_ui_thumbnails_total');
  if (existing !== undefined) return existing as Counter<'result'>;
  return new Counter({
    name: 'mediagit_ui_thumbnails_total',
    help: 'Thumbnail requests of the web view by result: made (decoded and stored), cache (read from storage), failed.',
    labelNames: ['result'],
    registers: [registry],
  });
}

function sendPage(reply: FastifyReply, status: number, body: Html): FastifyReply {
  return reply.code(status).headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(body.text);
}

function errorPage(status: number, message: string, user: string | null): Html {
  const title =
    status === 404
      ? 'Not found'
      : status === 403
        ? 'Not allowed'
        : status >= 500
          ? 'Something went wrong'
          : 'Cannot show this';
  return page({
    title,
    user,
    body: html`<h1>${title}</h1>
      <div class="notice error" role="alert">${message}</div>
      <p><a href="/ui/">Back to the repositories</a></p>`,
  });
}

function loginPage(next: string, message: string | null): Html {
  return page({
    title: 'Sign in',
    user: null,
    body: html`<form class="login panel pad" method="post" action="/ui/login">
      <h1>Sign in</h1>
      <p class="sub">
        Paste a token from <span class="mono">mediagit server token</span> or an API key. It is kept
        in a cookie only this site can read, and it is checked on every page exactly as the API
        checks it.
      </p>
      ${message !== null ? html`<div class="notice error" role="alert">${message}</div>` : ''}
      <label for="token">Token</label>
      <textarea id="token" name="token" required autocomplete="off" spellcheck="false"></textarea>
      <input type="hidden" name="next" value="${next}" />
      <p><button class="primary" type="submit">Sign in</button></p>
    </form>`,
  });
}

/** One query parameter, given at most once. */
function paramOf(request: FastifyRequest, name: string): string | undefined {
  const value = (request.query as Record<string, unknown> | undefined)?.[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badRequest(`query parameter ${name} must be given once`);
  return value;
}

/** Aborted when the client leaves; pages (not streams) also at the request timeout. */
function requestSignal(reply: FastifyReply, timeoutMs: number | null): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished)
      controller.abort(new HttpError(499, 'bad_request', 'the client went away'));
  });
  return timeoutMs === null
    ? controller.signal
    : AbortSignal.any([controller.signal, AbortSignal.timeout(timeoutMs)]);
}

export function registerUiRoutes(app: FastifyInstance, deps: UiDeps): void {
  const { services } = deps;
  const thumbnails = new Thumbnailer(
    () => services.storage.forRepository(SYSTEM_AREA),
    thumbnailCounter(services.metrics.registry),
  );
  const users = new WeakMap<FastifyRequest, string | null>();
  // Storage closes after the app: thumbnails still being written finish first.
  app.addHook('onClose', () => thumbnails.drain());

  app.setErrorHandler((err, request, reply) => {
    const http = toHttpError(err);
    if (http.status >= 500 && http.code !== 'timeout')
      deps.log(
        `mediagit server: ${request.method} ${request.routeOptions.url ?? 'ui'} failed: ${describeError(err)}`,
      );
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    reply.headers(http.headers);
    if (http.status === 401) {
      reply.header('set-cookie', clearedCookie(request));
      return sendPage(reply, 401, loginPage(safeNext(request.url), http.message));
    }
    return sendPage(
      reply,
      http.status,
      errorPage(http.status, http.message, users.get(request) ?? null),
    );
  });
  app.setNotFoundHandler((request, reply) =>
    sendPage(reply, 404, errorPage(404, 'There is no such page.', users.get(request) ?? null)),
  );

  app.get('/static/ui.css', async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(CSS),
  );
  app.get('/static/ui.js', async (_request, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(JS),
  );

  /** The visitor, or an answer already sent (the login page with 401). */
  const visitor = async (
    request: FastifyRequest,
    reply: FastifyReply,
    signal: AbortSignal,
  ): Promise<Identity | null> => {
    const result = await authenticate(deps, request, signal);
    if (result.ok) {
      users.set(request, result.identity.via === 'anonymous' ? null : result.identity.sub);
      return result.identity;
    }
    const message = result.hadCredential
      ? 'Your sign-in is no longer valid (expired or revoked). Sign in again.'
      : null;
    if (result.hadCredential) reply.header('set-cookie', clearedCookie(request));
    sendPage(reply, 401, loginPage(safeNext(request.url), message)).header(
      'www-authenticate',
      'Bearer realm="mediagit"',
    );
    return null;
  };

  app.get('/login', async (request, reply) => {
    const next = safeNext(paramOf(request, 'next'));
    return sendPage(reply, 200, loginPage(next, null));
  });

  app.post('/login', (request, reply) => signIn(deps, request, reply));

  app.post('/logout', async (request, reply) => {
    checkSameOrigin(request);
    return reply.header('set-cookie', clearedCookie(request)).redirect('/ui/login', 303);
  });

  app.get('/', async (request, reply) => {
    const signal = requestSignal(reply, services.config.requestTimeoutMs);
    const identity = await visitor(request, reply, signal);
    if (identity === null) return reply;
    deps.limit(identity.via === 'anonymous' ? `ip:${request.ip}` : `id:${identity.sub}`);
    const after = paramOf(request, 'after');
    const names = await readableRepositories(deps, identity, after, REPO_LIST_PAGE + 1);
    const more = names.length > REPO_LIST_PAGE;
    const shown = names.slice(0, REPO_LIST_PAGE);
    return sendPage(reply, 200, repositoryList(identity, shown, more));
  });

  app.get('/open', async (request, reply) => {
    const name = (paramOf(request, 'repo') ?? '').trim();
    if (!isValidRepositoryName(name)) throw badRequest('not a repository name');
    return reply.redirect(`/ui/${name}/-/`, 303);
  });

  const kit: Kit = { deps, thumbnails, visitor };
  const repoRoute = (suffix: string, handler: Handler, streams = false): void => {
    const run = repoHandler(kit, suffix, handler, streams);
    app.get(`/:repo/-/${suffix}`, run);
    app.get(`/:owner/:repo/-/${suffix}`, run);
  };

  repoRoute('', pages.overview);
  repoRoute('tree', pages.tree);
  repoRoute('commits', pages.commits);
  repoRoute('commit', pages.commitPage);
  repoRoute('file', pages.file);
  repoRoute('history', pages.history);
  repoRoute('compare', pages.compare);
  repoRoute('locks', pages.locks);
  repoRoute('raw', raw, true);
  repoRoute('thumb', thumb);
  repoRoute('archive', archive, true);
}

type Handler = (ctx: RepoRequest) => Promise<PageResult>;

/** What every repository route shares. */
interface Kit {
  readonly deps: UiDeps;
  readonly thumbnails: Thumbnailer;
  /** The visitor, or null once the sign-in page has been sent. */
  readonly visitor: (
    request: FastifyRequest,
    reply: FastifyReply,
    signal: AbortSignal,
  ) => Promise<Identity | null>;
}

/**
 * A repository page or stream behind the API's gate: authenticate, validate the name, check the
 * read role and the rate limit, then 404 for a repository nothing was pushed to, and only the
 * notice for an encrypted one.
 */
function repoHandler(kit: Kit, suffix: string, handler: Handler, streams: boolean) {
  const { deps, thumbnails } = kit;
  const services = deps.services;
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const params = request.params as Record<string, string | undefined>;
    // Streams run as long as the client reads; pages have the server's request timeout.
    const signal = requestSignal(reply, streams ? null : services.config.requestTimeoutMs);
    const identity = await kit.visitor(request, reply, signal);
    if (identity === null) return reply;
    const repo = repositoryName(params['owner'], params['repo'] ?? '');
    authorize(deps, request, identity, repo, 'read');
    const store = await services.storage.forRepository(repo);
    const ctx: RepoRequest = {
      deps,
      request,
      reply,
      identity,
      repo,
      base: `/ui/${repo}/-/`,
      store,
      reader: new RepositoryReader(store, signal),
      thumbnails,
      signal,
      user: identity.via === 'anonymous' ? null : identity.sub,
      param: (name) => paramOf(request, name),
    };
    const descriptor = await services.repos.descriptor(apiContext(ctx));
    const mode = descriptor === null ? 'undecided' : modeOf(descriptor);
    if (mode === 'undecided' && !(await exists(ctx)))
      throw notFound(`there is no repository named ${repo}`);
    if (mode === 'encrypted') {
      if (suffix !== '')
        throw new HttpError(409, 'conflict', `${repo} is encrypted: this server cannot read it`);
      const notice = pages.encryptedNotice(ctx);
      return notice === 'sent' ? reply : sendPage(reply, notice.status, notice.body);
    }
    const result = await handler(ctx);
    return result === 'sent' ? reply : sendPage(reply, result.status, result.body);
  };
}

/** POST /ui/login: checks the pasted credential as the API would, then sets the session cookie. */
async function signIn(
  deps: UiDeps,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  checkSameOrigin(request);
  const signal = requestSignal(reply, deps.services.config.requestTimeoutMs);
  const form = await readForm(request, signal);
  const token = (form.get('token') ?? '').trim();
  const next = safeNext(form.get('next'));
  if (!/^[\x21-\x7e]{1,8192}$/.test(token) || /[;,]/.test(token))
    return sendPage(reply, 401, loginPage(next, 'That is not a token or an API key.'));
  const check = await deps.authenticator
    .authenticate(`Bearer ${token}`, signal)
    .then((identity) => ({ identity }))
    .catch((err: unknown) => ({ err }));
  if ('err' in check) {
    const reason = (check.err as { reason?: string }).reason;
    if (reason === undefined) throw check.err;
    deps.services.audit.record({
      event: 'auth_failure',
      repo: null,
      identity: null,
      ip: request.ip,
      target: 'POST /ui/login',
      status: 401,
      reason,
    });
    deps.limit(`ip:${request.ip}`);
    return sendPage(reply, 401, loginPage(next, `Sign-in refused: ${reason.replace(/_/g, ' ')}.`));
  }
  deps.limit(`id:${check.identity.sub}`);
  return reply
    .code(303)
    .header('set-cookie', sessionCookie(request, token))
    .header('cache-control', 'no-store')
    .redirect(next, 303);
}

function repositoryList(identity: Identity, shown: readonly string[], more: boolean): Html {
  const user = identity.via === 'anonymous' ? null : identity.sub;
  return page({
    title: 'Repositories',
    user,
    body: html`<h1>Repositories</h1>
      <p class="sub">
        ${user === null ? 'Repositories open for anonymous reading.' : html`Repositories <strong>${user}</strong> may read.`}
      </p>
      <form class="inline" method="get" action="/ui/open" style="margin-bottom:18px">
        <label class="muted" for="open-repo" style="align-self:center">Open by name</label
        ><input
          id="open-repo"
          name="repo"
          placeholder="studio/hero-game"
          required
          pattern="[a-z0-9][a-z0-9._\\-]*(/[a-z0-9][a-z0-9._\\-]*)?"
        /><button class="button" type="submit">Open</button>
      </form>
      ${
        shown.length === 0
          ? html`<p class="muted">No repositories to list. Open one by name above.</p>`
          : html`<table>
              <thead>
                <tr>
                  <th scope="col">Repository</th>
                  <th scope="col">Access</th>
                </tr>
              </thead>
              <tbody>
                ${shown.map(
                  (name) =>
                    html`<tr>
                      <td class="name"><a href="/ui/${name}/-/">${name}</a></td>
                      <td>${roleOn(identity, name) ?? ''}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }
      ${more ? html`<div class="pager"><a class="button" href="/ui/${query({ after: shown[shown.length - 1] })}">Next</a></div>` : ''}`,
  });
}

/** The API's RequestContext, for the services that take one (the encryption facts). */
function apiContext(ctx: RepoRequest): RequestContext {
  return {
    request: ctx.request,
    services: ctx.deps.services,
    repo: ctx.repo,
    identity: ctx.identity,
    role: roleOn(ctx.identity, ctx.repo) ?? 'read',
    ip: ctx.request.ip,
    params: {},
    signal: ctx.signal,
    store: async () => ctx.store,
    target: null,
    refUpdated: null,
    // Pages read no request bodies.
    reserveBody: () => undefined,
    bodyIdleTimeoutMs: ctx.deps.services.config.bodyIdleTimeoutMs,
  };
}

/** A repository exists once something was pushed: a descriptor or a ref. */
async function exists(ctx: RepoRequest): Promise<boolean> {
  const refs = await ctx.store.listRefs('refs/', { signal: ctx.signal });
  return refs.size > 0;
}

/** The file a request names: `id` (a content ID, with `name` for its type) or `rev` and `path`. */
async function target(
  ctx: RepoRequest,
): Promise<{ oid: string; name: string; immutable: boolean }> {
  const id = ctx.param('id');
  if (id !== undefined) {
    if (!OID.test(id)) throw badRequest('id must be a content ID (64 hex digits)');
    const name = ctx.param('name') ?? id;
    pathSegments(name);
    return { oid: id, name, immutable: true };
  }
  const { rev, commit } = await ctx.reader.resolve(ctx.param('rev'));
  const path = ctx.param('path') ?? '';
  const segments = pathSegments(path);
  if (segments.length === 0) throw badRequest('which file? (path=…)');
  const entry = await ctx.reader.entryAt(commit, segments);
  if (entry === null || entry.type === 'dir') throw notFound(`no file ${path} at ${rev}`);
  return { oid: entry.oid, name: segments[segments.length - 1]!, immutable: false };
}

async function manifestOf(ctx: RepoRequest, oid: string) {
  try {
    return await ctx.reader.readManifest(oid);
  } catch (err) {
    if (err instanceof NotFoundError || (err as { code?: string }).code === 'E_OBJECT_MISSING')
      throw notFound('no such file content in this repository');
    throw err;
  }
}

/** A file's bytes: 200, or 206 for one byte range, 416 past the end, 400 for a malformed Range. */
async function raw(ctx: RepoRequest): Promise<PageResult> {
  const { oid, name, immutable } = await target(ctx);
  const manifest = await manifestOf(ctx, oid);
  const etag = `"${oid}"`;
  const { reply, request } = ctx;
  const download = ctx.param('download') === '1';
  const type = mediaTypeOf(name).contentType;
  reply.header('accept-ranges', 'bytes');
  reply.header('etag', etag);
  reply.header(
    'cache-control',
    immutable ? 'private, max-age=31536000, immutable' : 'private, no-cache',
  );
  reply.header('content-disposition', contentDisposition(download ? 'attachment' : 'inline', name));
  // A preview must never run as a page of this site, whatever it contains.
  reply.header('content-security-policy', "default-src 'none'; sandbox");
  if (request.headers['if-none-match'] === etag) {
    reply.code(304).send();
    return 'sent';
  }
  const ifRange = request.headers['if-range'];
  const answer =
    ifRange !== undefined && ifRange !== etag
      ? { kind: 'whole' as const }
      : parseRange(request.headers.range, manifest.size);
  if (answer.kind === 'malformed') throw badRequest('malformed Range header');
  if (answer.kind === 'unsatisfiable') {
    throw new HttpError(
      416,
      'bad_request',
      `the range is outside the file (${manifest.size} bytes)`,
      {},
      { 'content-range': `bytes */${manifest.size}` },
    );
  }
  const range = answer.kind === 'partial' ? answer.range : null;
  const metrics = ctx.deps.services.metrics;
  const body =
    manifest.size === 0
      ? Readable.from([])
      : contentStream(ctx.reader.odb, manifest, range, {
          signal: ctx.signal,
          onBytes: (n) => metrics.bytesDownloaded.inc(n),
        });
  reply.type(type);
  if (range !== null) {
    reply.code(206);
    reply.header('content-range', `bytes ${range.start}-${range.end}/${manifest.size}`);
    reply.header('content-length', String(range.end - range.start + 1));
  } else {
    reply.code(200);
    reply.header('content-length', String(manifest.size));
  }
  reply.send(body);
  return 'sent';
}

async function thumb(ctx: RepoRequest): Promise<PageResult> {
  const id = ctx.param('id');
  if (id === undefined || !OID.test(id))
    throw badRequest('id must be a content ID (64 hex digits)');
  const w = Number(ctx.param('w') ?? '160');
  if (!(THUMBNAIL_WIDTHS as readonly number[]).includes(w))
    throw badRequest(`w must be one of ${THUMBNAIL_WIDTHS.join(', ')}`);
  const manifest = await manifestOf(ctx, id);
  if (manifest.size > THUMBNAIL_MAX_INPUT)
    throw new HttpError(413, 'too_large', 'the image is too large for a thumbnail');
  let made;
  try {
    made = await ctx.thumbnails.thumbnail(
      ctx.reader.odb,
      id,
      manifest,
      w as ThumbnailWidth,
      ctx.signal,
    );
  } catch (err) {
    if (err instanceof HttpError || (err as { name?: string }).name === 'AbortError') throw err;
    if (err instanceof Error && /unsupported image format|Input|corrupt|bad/i.test(err.message))
      throw new HttpError(
        415,
        'unsupported_media_type',
        'this file is not an image the server can read',
      );
    throw err;
  }
  ctx.reply
    .code(200)
    .type('image/webp')
    .header('cache-control', 'private, max-age=31536000, immutable')
    .header('x-thumbnail', made.source)
    .send(made.image);
  return 'sent';
}

async function archive(ctx: RepoRequest): Promise<PageResult> {
  const format = (ctx.param('format') ?? 'zip') as ArchiveFormat;
  if (format !== 'zip' && format !== 'tar') throw badRequest('format must be zip or tar');
  const { rev, commit } = await ctx.reader.resolve(ctx.param('rev'));
  const path = ctx.param('path') ?? '';
  const segments = pathSegments(path);
  const entry = await ctx.reader.entryAt(commit, segments);
  if (entry === null || entry.type !== 'dir') throw notFound(`no folder ${path || '/'} at ${rev}`);
  const info = await ctx.reader.readCommit(commit);
  const base = `${ctx.repo.replace('/', '-')}-${(rev === commit ? commit.slice(0, 10) : rev).replace(/[^A-Za-z0-9._-]/g, '-')}${segments.length > 0 ? `-${segments[segments.length - 1]}` : ''}`;
  const metrics = ctx.deps.services.metrics;
  const pieces = archivePieces(ctx.reader, entry.oid, '', format, info.committer.time, ctx.signal);
  const counted = (async function* () {
    for await (const piece of pieces) {
      metrics.bytesDownloaded.inc(piece.length);
      yield piece;
    }
  })();
  ctx.reply
    .code(200)
    .type(format === 'zip' ? 'application/zip' : 'application/x-tar')
    .header('content-disposition', contentDisposition('attachment', `${base}.${format}`))
    .header('cache-control', 'private, no-cache')
    .send(Readable.from(counted, { objectMode: false, highWaterMark: 1 }));
  return 'sent';
}

/**
 * Repositories to list: those the identity names, and — when it may read every repository and
 * storage is a local folder — the folder's repositories too. (Cloud buckets are not listed: that
 * would walk every key; those repositories are opened by name.)
 */
async function readableRepositories(
  deps: UiDeps,
  identity: Identity,
  after: string | undefined,
  limit: number,
): Promise<string[]> {
  const names = new Set<string>();
  for (const name of identity.repos.keys()) if (name !== '*') names.add(name);
  const spec = deps.services.config.storage;
  if (allows(identity.repos.get('*') ?? null, 'read') && spec.kind === 'single') {
    const location = parseStoreUrl(spec.url, deps.services.config.cwd);
    if (location.kind === 'local')
      for (const name of await localRepositories(location.target)) names.add(name);
  }
  return [...names]
    .filter((n) => isValidRepositoryName(n) && allows(roleOn(identity, n), 'read'))
    .sort()
    .filter((n) => after === undefined || n > after)
    .slice(0, limit);
}

const STORAGE_FOLDERS = new Set(['chunks', 'objects', 'refs', 'meta', 'keys']);

async function localRepositories(root: string): Promise<string[]> {
  const out: string[] = [];
  const dirs = async (path: string): Promise<string[]> => {
    try {
      return (await readdir(path, { withFileTypes: true }))
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch {
      return [];
    }
  };
  for (const first of await dirs(root)) {
    if (first === SYSTEM_AREA || !isValidRepositoryName(first)) continue;
    const inside = await dirs(join(root, first));
    if (inside.some((n) => STORAGE_FOLDERS.has(n))) out.push(first);
    for (const second of inside) {
      if (STORAGE_FOLDERS.has(second) || !isValidRepositoryName(`${first}/${second}`)) continue;
      if ((await dirs(join(root, first, second))).some((n) => STORAGE_FOLDERS.has(n)))
        out.push(`${first}/${second}`);
    }
    if (out.length > 10_000) break;
  }
  return out;
}
