/**
 * mediagit server security over real HTTP: authentication (JWT attacks, API keys, anonymous
 * read), roles (401 vs 403), validation of every name before storage, body limits (413 before
 * the body is read, chunked bodies cut off, 411, 415), upload verification (422), rate limiting
 * (429 + Retry-After), request timeouts, and audit lines that never carry a credential.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { sha256Hex } from '../../src/objects/index.js';
import { RepositoryStorage, createApiKey } from '../../src/server/index.js';
import { runCli, tempDir } from '../support/cli.js';
import {
  describeRepository,
  http,
  startTestServer,
  storedObject,
  type TestServer,
} from '../support/server-harness.js';

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
const inAnHour = (): number => Math.floor(Date.now() / 1000) + 3600;

interface RawAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A request with node:http: the path is sent exactly as given (fetch would resolve `..`). */
function rawRequest(
  url: string,
  rawPath: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: options.method ?? 'GET', path: rawPath, headers: options.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (t: string) => (body += t));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Sends headers, then the body slowly in `chunk`-byte pieces, and stops at the first response.
 * Resolves with the status and how many body bytes had been written when it arrived.
 */
function slowUpload(
  url: string,
  rawPath: string,
  headers: Record<string, string>,
  chunk: number,
  total: number,
  intervalMs: number,
): Promise<{ status: number; written: number; body: string; finished: boolean }> {
  return new Promise((resolve, reject) => {
    let written = 0;
    const req = httpRequest(url, { method: 'PUT', path: rawPath, headers }, (res) => {
      clearInterval(timer);
      const at = written;
      let body = '';
      res.setEncoding('utf8').on('data', (t: string) => (body += t));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, written: at, body, finished: at >= total });
      });
    });
    // The server closes the connection after an early answer; a write racing that is expected.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    req.flushHeaders();
    // Declared after the request; the response callback that clears it can only run later.
    const timer = setInterval(() => {
      if (written >= total) {
        clearInterval(timer);
        req.end();
        return;
      }
      const n = Math.min(chunk, total - written);
      req.write(Buffer.alloc(n, 1));
      written += n;
    }, intervalMs);
  });
}

describe('mediagit server: authentication and roles', () => {
  let server: TestServer;
  const chunkOf = storedObject('chunk', Buffer.from('content of a chunk'));

  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  test('no credentials → 401 with WWW-Authenticate: Bearer; a non-Bearer header → 401', async () => {
    const res = await http(`${server.url}/repo/refs`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer\b/);
    assert.deepEqual(Object.keys(res.json ?? {}).sort(), ['error', 'message']);
    assert.equal(
      (await http(`${server.url}/repo/refs`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } }))
        .status,
      401,
    );
  });

  test('JWT alg "none", another secret, HS512, no exp, expired, bad claims → 401', async () => {
    const claims = { sub: 'mallory', repos: { '*': 'admin' }, exp: inAnHour() };
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    const key = new TextEncoder().encode(server.secret);
    const otherSecret = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(randomBytes(32).toString('hex')));
    const hs512 = await new SignJWT(claims).setProtectedHeader({ alg: 'HS512' }).sign(key);
    const noExp = await new SignJWT({ sub: 'mallory', repos: { '*': 'admin' } })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(key);
    const expired = await new SignJWT({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(key);
    const badRole = await new SignJWT({ ...claims, repos: { '*': 'root' } })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(key);
    const noSub = await new SignJWT({ repos: { '*': 'read' }, exp: inAnHour() })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(key);
    for (const [what, token] of Object.entries({
      none,
      otherSecret,
      hs512,
      noExp,
      expired,
      badRole,
      noSub,
    })) {
      const res = await http(`${server.url}/repo/refs`, { token });
      assert.equal(res.status, 401, what);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer\b/, what);
    }
    // The audit log names the failure, never the token.
    const failures = server.auditLines.filter((l) => l['event'] === 'auth_failure');
    assert.ok(failures.some((l) => l['reason'] === 'expired'));
    assert.ok(failures.some((l) => l['reason'] === 'algorithm'));
    const audit = JSON.stringify(server.auditLines);
    for (const token of [none, otherSecret, hs512, expired])
      assert.ok(!audit.includes(token.split('.')[2] || token.split('.')[1]!));
  });

  test('valid identity without the role → 403: wrong repository, read role writing, write role deleting', async () => {
    const { oid, stored } = await chunkOf;
    await describeRepository(`${server.url}/mine`, await server.token('mine', 'write', 'owner'));
    const other = await server.token('other-repo', 'admin', 'alice');
    assert.equal((await http(`${server.url}/mine/refs`, { token: other })).status, 403);
    const reader = await server.token('mine', 'read', 'bob');
    assert.equal((await http(`${server.url}/mine/refs`, { token: reader })).status, 200);
    assert.equal(
      (
        await http(`${server.url}/mine/chunks/${oid}`, {
          method: 'PUT',
          token: reader,
          body: stored,
        })
      ).status,
      403,
    );
    assert.equal(
      (
        await http(`${server.url}/mine/refs`, {
          token: reader,
          json: { name: 'refs/heads/main', expected: null, next: oid },
        })
      ).status,
      403,
    );
    assert.equal(
      (await http(`${server.url}/mine/locks`, { token: reader, json: { path: 'a.psd' } })).status,
      403,
    );
    const writer = await server.token('mine', 'write', 'carol');
    assert.equal(
      (
        await http(`${server.url}/mine/chunks/${oid}`, {
          method: 'PUT',
          token: writer,
          body: stored,
        })
      ).status,
      201,
    );
    assert.equal(
      (await http(`${server.url}/mine/chunks/${oid}`, { method: 'DELETE', token: writer })).status,
      403,
    );
    // A per-repository grant beats a weaker '*' grant, and vice versa.
    const key = new TextEncoder().encode(server.secret);
    const mixed = await new SignJWT({
      sub: 'dan',
      repos: { '*': 'read', mine: 'write' },
      exp: inAnHour(),
    })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(key);
    assert.equal(
      (
        await http(`${server.url}/mine/chunks/${oid}`, {
          method: 'PUT',
          token: mixed,
          body: stored,
        })
      ).status,
      200,
    );
    assert.equal(
      (
        await http(`${server.url}/elsewhere/chunks/${oid}`, {
          method: 'PUT',
          token: mixed,
          body: stored,
        })
      ).status,
      403,
    );
    assert.ok(server.auditLines.some((l) => l['event'] === 'forbidden' && l['identity'] === 'bob'));
  });

  test('`mediagit server token` mints a token this server accepts', async () => {
    const cwd = await tempDir('server-token');
    const res = await runCli(
      ['server', 'token', '--repo', 'cli-repo', '--role', 'write', '--ttl', '10m', '--sub', 'eve'],
      { cwd, env: { MEDIAGIT_JWT_SECRET: server.secret } },
    );
    const token = res.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal((await http(`${server.url}/cli-repo/refs`, { token })).status, 200);
    assert.equal(
      (
        await http(`${server.url}/cli-repo/chunks/${sha256Hex(Buffer.alloc(1))}`, {
          method: 'DELETE',
          token,
        })
      ).status,
      403,
    );
    const bad = await runCli(['server', 'token', '--repo', 'x', '--ttl', 'forever'], {
      cwd,
      env: { MEDIAGIT_JWT_SECRET: server.secret },
      allowFail: true,
    });
    assert.notEqual(bad.code, 0);
    const noSecret = await runCli(['server', 'token', '--repo', 'x'], { cwd, allowFail: true });
    assert.equal(noSecret.code, 11);
  });
});

describe('mediagit server: API keys and anonymous read', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      env: { MEDIAGIT_API_KEY_ENABLED: 'true' },
      config: '[auth]\nanonymous_read = true\n',
    });
  });
  after(() => server.close());

  test('API keys: stored hashed in _system; right key works with its role, tampered or unknown → 401', async () => {
    const storage = new RepositoryStorage(
      { kind: 'single', url: server.dataDir!, options: {} },
      process.cwd(),
    );
    const { id, key } = await createApiKey(await storage.system(), {
      repo: 'keyed',
      role: 'read',
      sub: 'ci-bot',
    });
    await storage.close();
    const recordFile = path.join(server.dataDir!, '_system', 'meta', `apikey-${id}`);
    const record = (await import('node:fs/promises')).readFile(recordFile, 'utf8');
    assert.ok(!(await record).includes(key.split('_')[2]!), 'the secret is not stored');
    assert.equal((await http(`${server.url}/keyed/refs`, { token: key })).status, 200);
    assert.equal(
      (
        await http(`${server.url}/keyed/refs`, {
          token: key,
          json: { name: 'refs/heads/x', expected: null, next: sha256Hex(Buffer.alloc(1)) },
        })
      ).status,
      403,
    );
    const tampered = key.slice(0, -1) + (key.endsWith('0') ? '1' : '0');
    assert.equal((await http(`${server.url}/keyed/refs`, { token: tampered })).status, 401);
    assert.equal(
      (await http(`${server.url}/keyed/refs`, { token: `mgk_${'0'.repeat(16)}_${'0'.repeat(64)}` }))
        .status,
      401,
    );
    assert.equal((await http(`${server.url}/keyed/refs`, { token: 'mgk_../../x_y' })).status, 401);
  });

  test('`mediagit server apikey create` writes a key into the configured storage', async () => {
    const cwd = await tempDir('apikey');
    const config = path.join(cwd, 'server.toml');
    await (
      await import('node:fs/promises')
    ).writeFile(
      config,
      `[storage]\nbackend = "local"\n[storage.local]\npath = ${JSON.stringify(server.dataDir)}\n`,
    );
    const res = await runCli(
      [
        'server',
        'apikey',
        'create',
        '--repo',
        'keyed',
        '--role',
        'write',
        '--sub',
        'builder',
        '--config',
        config,
      ],
      { cwd },
    );
    const key = res.stdout.trim();
    assert.match(key, /^mgk_[0-9a-f]{16}_[0-9a-f]{64}$/);
    assert.ok(!res.stderr.includes(key));
    await describeRepository(`${server.url}/keyed`, key);
    assert.equal(
      (await http(`${server.url}/keyed/locks`, { token: key, json: { path: 'by-key.psd' } }))
        .status,
      201,
    );
  });

  test('anonymous read: reads without credentials, writes → 401; a bad token is still 401', async () => {
    assert.equal((await http(`${server.url}/open/refs`)).status, 200);
    const { oid, stored } = await storedObject('chunk', Buffer.from('x'));
    assert.equal(
      (await http(`${server.url}/open/chunks/${oid}`, { method: 'PUT', body: stored })).status,
      401,
    );
    assert.equal((await http(`${server.url}/open/refs`, { token: 'not-a-jwt' })).status, 401);
  });

  test('a server without API keys enabled refuses them', async () => {
    const plain = await startTestServer();
    try {
      assert.equal(
        (await http(`${plain.url}/r/refs`, { token: `mgk_${'a'.repeat(16)}_${'b'.repeat(64)}` }))
          .status,
        401,
      );
    } finally {
      await plain.close();
    }
  });
});

describe('mediagit server: validation before storage', () => {
  let server: TestServer;
  let admin: string;
  before(async () => {
    server = await startTestServer();
    admin = await server.token('*', 'admin', 'root');
  });
  after(() => server.close());

  test('object IDs: traversal (raw and encoded), uppercase, short, long → 400', async () => {
    const auth = { authorization: `Bearer ${admin}` };
    const good = sha256Hex(Buffer.from('x'));
    const bad = [
      '/r/chunks/../../etc/passwd',
      '/r/chunks/..%2F..%2Fetc%2Fpasswd',
      '/r/chunks/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/r/chunks/%2e%2e/%2e%2e/etc/passwd',
      `/r/chunks/${good.toUpperCase()}`,
      `/r/chunks/${good.slice(0, 63)}`,
      `/r/chunks/${good}0`,
      `/r/objects/${good.slice(0, 62)}%00%00`,
      '/r/keys/..%2F..%2Fsecret',
      '/r/keys/Upper',
      '/r/meta/.hidden',
      '/r/locks/not-an-id/unlock',
      '/r/chunks/%zz',
      `/r/keys/${'a'.repeat(300)}`,
    ];
    for (const p of bad) {
      const res = await rawRequest(server.url, p, {
        headers: auth,
        method: p.endsWith('/unlock') ? 'POST' : 'GET',
      });
      assert.equal(res.status, 400, p);
      assert.equal(JSON.parse(res.body).error, 'bad_request', p);
    }
  });

  test('repository names: uppercase, leading dot or dash, too long, reserved, three parts, encoded slash → 400', async () => {
    const auth = { authorization: `Bearer ${admin}` };
    const bad = [
      '/Repo/refs',
      '/.git/refs',
      '/-x/refs',
      `/${'a'.repeat(65)}/refs`,
      '/health/refs',
      '/metrics/refs',
      '/api/refs',
      '/a/b/c/refs',
      '/a%2Fb/refs',
      '/a/chunks/info',
      '/studio/refs/refs',
      '/%2e%2e/refs',
      '/a..%2F/refs',
    ];
    for (const p of bad)
      assert.equal((await rawRequest(server.url, p, { headers: auth })).status, 400, p);
    assert.equal(
      (await rawRequest(server.url, '/studio/hero-game/refs', { headers: auth })).status,
      200,
    );
    assert.equal((await rawRequest(server.url, '/a.b_c-d/refs', { headers: auth })).status, 200);
  });

  test('ref names, ref bodies and lock paths → 400', async () => {
    const oid = sha256Hex(Buffer.from('x'));
    const refs = `${server.url}/r/refs`;
    for (const name of [
      'HEAD',
      'refs/heads/../../x',
      'refs/heads/a.lock',
      'refs/heads/',
      'refs/other/x',
      'refs/heads/a b',
      'refs/heads/a\u0000b',
      42,
    ]) {
      assert.equal(
        (await http(refs, { token: admin, json: { name, expected: null, next: oid } })).status,
        400,
        String(name),
      );
    }
    assert.equal(
      (
        await http(refs, {
          token: admin,
          json: { name: 'refs/locks/abc', expected: null, next: oid },
        })
      ).status,
      400,
    );
    assert.equal(
      (
        await http(refs, {
          token: admin,
          json: { name: 'refs/heads/x', expected: { oid: 'zz', version: 'v' }, next: oid },
        })
      ).status,
      400,
    );
    assert.equal(
      (await http(refs, { token: admin, json: { name: 'refs/heads/x', next: oid } })).status,
      400,
    );
    assert.equal(
      (
        await http(refs, {
          token: admin,
          json: { name: 'refs/heads/x', expected: null, next: oid.toUpperCase() },
        })
      ).status,
      400,
    );
    assert.equal((await http(refs, { token: admin, json: ['not', 'an', 'object'] })).status, 400);
    assert.equal((await http(`${refs}?prefix=refs/../..`, { token: admin })).status, 400);
    for (const p of [
      '../etc/passwd',
      '/abs',
      'a//b',
      'a/./b',
      'x\\y',
      'c:/windows',
      '.mediagit/config',
      '',
    ]) {
      assert.equal(
        (await http(`${server.url}/r/locks`, { token: admin, json: { path: p } })).status,
        400,
        p,
      );
    }
    assert.equal(
      (await http(`${server.url}/r/chunks/check`, { token: admin, json: { chunks: ['../x'] } }))
        .status,
      400,
    );
    assert.equal(
      (await http(`${server.url}/r/objects/fetch`, { token: admin, json: { want: ['keys/../x'] } }))
        .status,
      400,
    );
    assert.equal(
      (
        await http(`${server.url}/r/objects/fetch`, {
          token: admin,
          json: { want: ['meta/repository'] },
        })
      ).status,
      400,
    );
    assert.equal(
      (
        await http(`${server.url}/r/chunks/check`, {
          token: admin,
          json: { chunks: Array.from({ length: 10_001 }, () => oid) },
        })
      ).status,
      400,
    );
  });

  test('nothing was written outside the repositories that were named correctly', async () => {
    const list = (dir: string): Promise<string[]> =>
      readdir(dir).catch((err: NodeJS.ErrnoException) =>
        err.code === 'ENOENT' ? [] : Promise.reject(err),
      );
    for (const e of await list(server.dataDir!)) assert.match(e, /^(r|studio|a\.b_c-d|_system)$/);
    for (const e of await list(path.dirname(server.dataDir!))) assert.equal(e, 'data');
  });
});

describe('mediagit server: bodies', () => {
  const LIMIT = 64 * 1024;
  let server: TestServer;
  let writer: string;
  before(async () => {
    server = await startTestServer({
      config: `[server]\nmax_object_bytes = ${LIMIT}\nmax_pack_bytes = ${2 * LIMIT}\nrequest_timeout_s = 2\n`,
    });
    writer = await server.token('*', 'write', 'uploader');
    for (const repo of ['big', 'r']) await describeRepository(`${server.url}/${repo}`, writer);
  });
  after(() => server.close());

  test('Content-Length over the limit → 413 before the body is sent', async () => {
    const oid = sha256Hex(Buffer.from('big'));
    const headers = {
      authorization: `Bearer ${writer}`,
      'content-type': 'application/octet-stream',
      'content-length': String(100 * 1024 * 1024),
    };
    const started = Date.now();
    const res = await slowUpload(
      server.url,
      `/big/chunks/${oid}`,
      headers,
      1024,
      100 * 1024 * 1024,
      50,
    );
    assert.equal(res.status, 413);
    assert.equal(JSON.parse(res.body).error, 'too_large');
    assert.ok(!res.finished);
    assert.ok(res.written < 64 * 1024, `answered after ${res.written} bytes`);
    assert.ok(Date.now() - started < 5000);
  });

  test('a chunked body is cut off at the limit (413), not read to its end', async () => {
    const oid = sha256Hex(Buffer.from('big'));
    const headers = {
      authorization: `Bearer ${writer}`,
      'content-type': 'application/octet-stream',
      'transfer-encoding': 'chunked',
    };
    const res = await slowUpload(
      server.url,
      `/big/chunks/${oid}`,
      headers,
      16 * 1024,
      8 * 1024 * 1024,
      5,
    );
    assert.equal(res.status, 413);
    assert.ok(!res.finished);
    assert.ok(res.written < 4 * 1024 * 1024, `answered after ${res.written} bytes`);
  });

  test('unauthenticated uploads are refused before their body is read', async () => {
    const oid = sha256Hex(Buffer.from('x'));
    const res = await slowUpload(
      server.url,
      `/big/chunks/${oid}`,
      { 'content-type': 'application/octet-stream', 'content-length': String(LIMIT) },
      1024,
      LIMIT,
      50,
    );
    assert.equal(res.status, 401);
    assert.ok(!res.finished);
  });

  test('no length → 411; wrong content type → 415', async () => {
    const oid = sha256Hex(Buffer.from('x'));
    const { port } = new URL(server.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => {
        socket.write(
          `PUT /r/chunks/${oid} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${writer}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n`,
        );
      });
      let text = '';
      socket.setEncoding('utf8').on('data', (t: string) => (text += t));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 411 /);
    const { stored } = await storedObject('chunk', Buffer.from('x'));
    assert.equal(
      (
        await http(`${server.url}/r/chunks/${oid}`, {
          method: 'PUT',
          token: writer,
          body: stored,
          headers: { 'content-type': 'text/plain' },
        })
      ).status,
      415,
    );
    assert.equal(
      (
        await http(`${server.url}/r/refs`, {
          method: 'POST',
          token: writer,
          body: Buffer.from('{}'),
        })
      ).status,
      415,
    );
    assert.equal(
      (
        await http(`${server.url}/r/refs`, {
          method: 'POST',
          token: writer,
          body: Buffer.from('{not json'),
          headers: { 'content-type': 'application/json' },
        })
      ).status,
      400,
    );
  });

  test('a chunk whose bytes do not match its ID → 422, and it is not stored', async () => {
    const real = await storedObject('chunk', Buffer.from('the real content'));
    const claimed = sha256Hex(Buffer.from('some other content'));
    const res = await http(`${server.url}/r/chunks/${claimed}`, {
      method: 'PUT',
      token: writer,
      body: real.stored,
    });
    assert.equal(res.status, 422);
    assert.equal(res.json?.['error'], 'invalid_object');
    assert.equal(res.json?.['oid'], claimed);
    const reader = await server.token('r', 'read');
    assert.equal((await http(`${server.url}/r/chunks/${claimed}`, { token: reader })).status, 404);
    assert.equal(
      (
        await http(`${server.url}/r/chunks/${claimed}`, {
          method: 'PUT',
          token: writer,
          body: Buffer.from('not an envelope'),
        })
      ).status,
      422,
    );
    assert.ok(
      server.auditLines.some(
        (l) => l['event'] === 'put' && l['status'] === 422 && l['target'] === `chunks/${claimed}`,
      ),
    );
  });

  test('a body that stalls past request_timeout_s → 503 timeout', async () => {
    const oid = sha256Hex(Buffer.from('slow'));
    const headers = {
      authorization: `Bearer ${writer}`,
      'content-type': 'application/octet-stream',
      'content-length': '2000',
    };
    const started = Date.now();
    const res = await slowUpload(server.url, `/r/chunks/${oid}`, headers, 10, 2000, 10_000);
    assert.equal(res.status, 503);
    assert.equal(JSON.parse(res.body).error, 'timeout');
    assert.ok(Date.now() - started < 8000);
  });
});

describe('mediagit server: rate limiting', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      config: '[server]\nrate_limit_rps = 5\nrate_limit_burst = 20\n',
    });
  });
  after(() => server.close());

  test('200 requests in a burst → some 429 with Retry-After; another identity is not affected', async () => {
    const token = await server.token('*', 'read', 'greedy');
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => http(`${server.url}/r/refs`, { token })),
    );
    const elapsedS = (performance.now() - started) / 1000;
    const ok = answers.filter((a) => a.status === 200).length;
    const limited = answers.filter((a) => a.status === 429);
    assert.equal(ok + limited.length, 200);
    // The burst, plus what 5 requests per second refilled while the burst was being served.
    assert.ok(
      ok >= 20 && ok <= 20 + Math.ceil(5 * elapsedS) + 1,
      `${ok} allowed in ${elapsedS.toFixed(2)} s`,
    );
    assert.ok(limited.length > 0);
    for (const a of limited) {
      assert.match(a.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
      assert.equal(a.json?.['error'], 'rate_limited');
    }
    const polite = await server.token('*', 'read', 'polite');
    assert.equal((await http(`${server.url}/r/refs`, { token: polite })).status, 200);
  });
});

describe('mediagit server: content transfers and the rate limit', () => {
  let server: TestServer;
  before(async () => {
    // One token every 1000 s: whatever the bucket holds during the test is what the burst left.
    server = await startTestServer({
      config: '[server]\nrate_limit_rps = 0.001\nrate_limit_burst = 20\n',
    });
  });
  after(() => server.close());

  test('chunk transfers count only when they fail: many good ones pass, garbage empties the bucket', async () => {
    const token = await server.token('*', 'write', 'mover');
    const base = `${server.url}/transfers`;
    await describeRepository(base, token);
    // Twice the burst of chunk uploads, and as many reads: none refused.
    const chunks = await Promise.all(
      Array.from({ length: 40 }, (_, i) => storedObject('chunk', randomBytes(100 + i))),
    );
    const puts = await Promise.all(
      chunks.map((c) => http(`${base}/chunks/${c.oid}`, { method: 'PUT', token, body: c.stored })),
    );
    assert.deepEqual(new Set(puts.map((a) => a.status)), new Set([201]));
    const gets = await Promise.all(chunks.map((c) => http(`${base}/chunks/${c.oid}`, { token })));
    assert.deepEqual(new Set(gets.map((a) => a.status)), new Set([200]));
    // Uploads that fail verification each take a token, until the bucket is empty…
    const garbage = Array.from({ length: 30 }, () => ({
      oid: randomBytes(32).toString('hex'),
      body: randomBytes(64),
    }));
    const bad = await Promise.all(
      garbage.map((g) => http(`${base}/chunks/${g.oid}`, { method: 'PUT', token, body: g.body })),
    );
    assert.ok(bad.every((a) => a.status === 422 || a.status === 400 || a.status === 429));
    // …and then even a good transfer waits its turn.
    const fresh = await storedObject('chunk', randomBytes(300));
    const after = await http(`${base}/chunks/${fresh.oid}`, {
      method: 'PUT',
      token,
      body: fresh.stored,
    });
    assert.equal(after.status, 429);
    assert.match(after.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
  });
});
