/**
 * The attacks of the server-hardening review, each replayed by a malicious client in Node against
 * a real `mediagit server` process on 127.0.0.1 (in-process only where a fault must be injected
 * into storage). Each test fails on a server without the defence it names.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { zstdCompressSync } from 'node:zlib';
import { encodeEnvelope, sha256Hex } from '../../src/objects/index.js';
import type { Store } from '../../src/store/index.js';
import { runCli, tempDir } from '../support/cli.js';
import {
  describeRepository,
  encodeTestPack,
  http,
  startTestServer,
  storedObject,
  uploadCommit,
  type TestServer,
} from '../support/server-harness.js';

/** Headers of a request with a body that never comes, then a reset within `delayMs`. */
function resetDuringAuth(
  url: string,
  token: string,
  rawPath: string,
  delayMs: number,
): Promise<void> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write(
        `POST ${rawPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 50\r\n\r\n',
      );
      setTimeout(() => {
        socket.resetAndDestroy();
        resolve();
      }, delayMs);
    });
    socket.on('error', () => resolve());
  });
}

/** A stalled upload: headers declaring `length` bytes, a few bytes, then nothing. Resolves with the answer, if any comes. */
function stalledUpload(
  url: string,
  rawPath: string,
  token: string,
  length: number,
): { answer: Promise<number | null>; abort(): void } {
  const req = httpRequest(`${url}${rawPath}`, {
    method: 'PUT',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/octet-stream',
      'content-length': String(length),
    },
  });
  const answer = new Promise<number | null>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? null);
    });
    req.on('error', () => resolve(null));
    req.on('close', () => resolve(null));
  });
  req.write(Buffer.alloc(1024, 7));
  return { answer, abort: () => req.destroy() };
}

/** A chunk envelope of `size` zero bytes compressed to a few KB, under its true ID. */
function zeroBomb(size: number): { oid: string; stored: Buffer } {
  const zeros = Buffer.alloc(size);
  const payload = zstdCompressSync(zeros);
  return { oid: sha256Hex(zeros), stored: encodeEnvelope('chunk', 1, size, payload) };
}

/** Makes a one-file repository in a temporary folder and pushes it to `remote`. */
async function pushWithCli(remote: string, token: string, label: string): Promise<void> {
  const dir = await tempDir(`sec-push-${label}`);
  const env = { XDG_CONFIG_HOME: await tempDir('xdg'), MEDIAGIT_TOKEN: token };
  const run = (args: string[]) => runCli(args, { cwd: dir, env, timeoutMs: 120_000 });
  await writeFile(path.join(dir, `${label}.bin`), randomBytes(300_000));
  await run(['init', '-q']);
  await run(['add', '.']);
  await run(['commit', '-q', '-m', label]);
  await run(['remote', 'add', 'origin', remote]);
  await run(['push', '-q']);
}

describe('security: one request cannot take the server down', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ child: true });
  });
  after(() => server.close());

  test('500 connections reset during authentication, then an honest push succeeds', async () => {
    const token = await server.token('abort', 'write', 'flaky-laptop');
    for (let i = 0; i < 250; i++) {
      await Promise.all([
        resetDuringAuth(server.url, token, '/abort/chunks/check', i % 4),
        resetDuringAuth(server.url, token, '/abort/refs', (i + 2) % 4),
      ]);
      assert.equal(server.process!.exitCode, null, `the server exited after ${2 * i + 2} aborts`);
    }
    await pushWithCli(`${server.url}/abort`, token, 'after-aborts');
    const refs = await http(`${server.url}/abort/refs`, { token });
    assert.equal(Object.keys(refs.json?.['refs'] as object).length, 1);
  });
});

describe('security: uploads', () => {
  let server: TestServer;
  let writer: string;
  before(async () => {
    server = await startTestServer({
      child: true,
      config:
        '[server]\nbody_idle_timeout_s = 1\nmax_inflight_bytes_per_identity = 67108864\nmax_inflight_bytes = 134217728\n',
    });
    writer = await server.token('*', 'write', 'mallory');
  });
  after(() => server.close());

  test('nothing is stored before the descriptor; the descriptor is create-only', async () => {
    const base = `${server.url}/poison`;
    const garbage = Buffer.concat([
      Buffer.from('MGOB'),
      Buffer.from([1, 1, 0, 1]),
      Buffer.alloc(8),
      randomBytes(64),
    ]);
    const victim = await storedObject('chunk', Buffer.from('the victim will push this'));
    const put = await http(`${base}/chunks/${victim.oid}`, {
      method: 'PUT',
      token: writer,
      body: garbage,
    });
    assert.equal(put.status, 409);
    const key = await http(`${base}/keys/decoy`, {
      method: 'PUT',
      token: writer,
      body: randomBytes(100),
    });
    assert.equal(key.status, 409);
    const lock = await http(`${base}/locks`, { token: writer, json: { path: 'scene.blend' } });
    assert.equal(lock.status, 409);
    const pack = encodeTestPack([{ kind: 'chunk', ...victim }]);
    assert.equal((await http(`${base}/objects/pack`, { token: writer, body: pack })).status, 409);
    assert.equal(
      (
        await http(`${base}/chunks/check`, { token: writer, json: { chunks: [victim.oid] } })
      ).json?.['chunks']?.toString(),
      victim.oid,
    );
    await describeRepository(base, writer);
    const other = await http(`${base}/meta/repository`, {
      method: 'PUT',
      token: writer,
      body: Buffer.from(
        JSON.stringify({
          format: 'mediagit',
          version: 1,
          chunking: { min_size: 4096, avg_size: 16384, max_size: 65536 },
          encryption: 'aes-256-gcm',
        }),
      ),
    });
    assert.equal(other.status, 409);
    // Now the descriptor says plain: the sealed garbage is refused, the real chunk taken.
    assert.equal(
      (await http(`${base}/chunks/${victim.oid}`, { method: 'PUT', token: writer, body: garbage }))
        .status,
      422,
    );
    assert.equal(
      (
        await http(`${base}/chunks/${victim.oid}`, {
          method: 'PUT',
          token: writer,
          body: victim.stored,
        })
      ).status,
      201,
    );
  });

  test('decompression bombs: a chunk may not decode past the repository maximum; a pack of bombs is refused before decoding', async () => {
    const base = `${server.url}/bombs`;
    await describeRepository(base, writer);
    const bomb = zeroBomb(64 * 1024 * 1024);
    assert.ok(bomb.stored.length < 8 * 1024);
    const one = await http(`${base}/chunks/${bomb.oid}`, {
      method: 'PUT',
      token: writer,
      body: bomb.stored,
    });
    assert.equal(one.status, 422);
    assert.match(String(one.json?.['message']), /over the limit/);
    // 100 distinct bombs at the repository's own maximum (4 MiB each, 400 MiB in all).
    const records = Array.from({ length: 100 }, (_, i) => {
      const size = 4 * 1024 * 1024 - i - 1;
      return { kind: 'chunk' as const, ...zeroBomb(size) };
    });
    const started = performance.now();
    const answer = await http(`${base}/objects/pack`, {
      token: writer,
      body: encodeTestPack(records),
    });
    const elapsed = performance.now() - started;
    assert.equal(answer.status, 413);
    assert.match(String(answer.json?.['message']), /would decode to/);
    // Refused from the headers alone: compare with decoding a single one of them here.
    const t0 = performance.now();
    zeroBomb(4 * 1024 * 1024);
    const oneBomb = performance.now() - t0;
    assert.ok(
      elapsed < 200 * Math.max(oneBomb, 1),
      `${elapsed} ms for the pack, ${oneBomb} ms per bomb`,
    );
  });

  test('stalled uploads: bytes in flight are capped per client (429 + Retry-After) and idle bodies cut off', async () => {
    const base = `/stall/chunks/`;
    await describeRepository(`${server.url}/stall`, writer);
    const uploads = Array.from({ length: 40 }, () =>
      stalledUpload(server.url, `${base}${sha256Hex(randomBytes(8))}`, writer, 16 * 1024 * 1024),
    );
    const answers = await Promise.all(uploads.map((u) => u.answer));
    // 64 MiB per identity: four 16 MiB bodies fit, the rest are refused at once; the four are cut off when idle.
    assert.ok(answers.filter((s) => s === 429).length >= 36, answers.join(','));
    assert.ok(answers.filter((s) => s === 408).length >= 1, answers.join(','));
    const other = await server.token('*', 'write', 'honest');
    await describeRepository(`${server.url}/after-stall`, other);
    const chunk = await storedObject('chunk', randomBytes(1000));
    assert.equal(
      (
        await http(`${server.url}/after-stall/chunks/${chunk.oid}`, {
          method: 'PUT',
          token: other,
          body: chunk.stored,
        })
      ).status,
      201,
    );
  });

  test('deeply nested JSON → 400, not a stack overflow', async () => {
    await describeRepository(`${server.url}/deep`, writer);
    const depth = 100_000;
    const text = `{"chunks":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const res = await http(`${server.url}/deep/chunks/check`, {
      token: writer,
      body: Buffer.from(text),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(res.status, 400);
  });
});

describe('security: refs', () => {
  let server: TestServer;
  let writer: string;
  let admin: string;
  before(async () => {
    server = await startTestServer({
      child: true,
      config: '[server]\nallow_force = ["forgiving"]\n',
    });
    writer = await server.token('*', 'write', 'mallory');
    admin = await server.token('*', 'admin', 'boss');
  });
  after(() => server.close());

  const cas = (base: string, token: string, name: string, expected: unknown, next: unknown) =>
    http(`${base}/refs`, { token, json: { name, expected, next } });
  const current = async (base: string, name: string) =>
    (
      (await http(`${base}/refs`, { token: admin })).json?.['refs'] as Record<
        string,
        { oid: string; version: string }
      >
    )[name] ?? null;

  test('a ref must point at a commit that is on the server with everything it leads to', async () => {
    const base = `${server.url}/dangling`;
    await describeRepository(base, writer);
    const absent = sha256Hex(randomBytes(8));
    assert.equal((await cas(base, writer, 'refs/heads/main', null, absent)).status, 422);
    const chunk = await storedObject('chunk', randomBytes(100));
    await http(`${base}/chunks/${chunk.oid}`, { method: 'PUT', token: writer, body: chunk.stored });
    assert.equal((await cas(base, writer, 'refs/heads/main', null, chunk.oid)).status, 422);
    // A commit whose tree is missing.
    const { encodeCommit } = await import('../../src/objects/index.js');
    const sig = { name: 'M', email: 'm@x', time: 1, tzOffset: 0 };
    const orphan = await storedObject(
      'commit',
      encodeCommit({ tree: absent, parents: [], author: sig, committer: sig, message: 'x\n' }),
    );
    assert.equal(
      (
        await http(`${base}/objects/${orphan.oid}`, {
          method: 'PUT',
          token: writer,
          body: orphan.stored,
        })
      ).status,
      201,
    );
    const res = await cas(base, writer, 'refs/heads/main', null, orphan.oid);
    assert.equal(res.status, 422);
    assert.equal(res.json?.['oid'], absent);
    assert.equal(await current(base, 'refs/heads/main'), null);
    assert.equal(
      (await cas(base, writer, 'refs/heads/main', null, await uploadCommit(base, writer))).status,
      200,
    );
  });

  test('deletes and rewinds need admin or allow_force; fast-forwards do not', async () => {
    for (const repo of ['guarded', 'forgiving']) {
      const base = `${server.url}/${repo}`;
      await describeRepository(base, writer);
      const a = await uploadCommit(base, writer);
      assert.equal((await cas(base, writer, 'refs/heads/main', null, a)).status, 200);
      const b = await uploadCommit(base, writer, [a]);
      assert.equal(
        (await cas(base, writer, 'refs/heads/main', await current(base, 'refs/heads/main'), b))
          .status,
        200,
      );
      const rewind = await cas(
        base,
        writer,
        'refs/heads/main',
        await current(base, 'refs/heads/main'),
        a,
      );
      const del = await cas(
        base,
        writer,
        'refs/heads/main',
        await current(base, 'refs/heads/main'),
        null,
      );
      if (repo === 'guarded') {
        assert.equal(rewind.status, 403);
        assert.equal(del.status, 403);
        assert.equal((await current(base, 'refs/heads/main'))?.oid, b);
        assert.equal(
          (await cas(base, admin, 'refs/heads/main', await current(base, 'refs/heads/main'), a))
            .status,
          200,
        );
        assert.equal(
          (await cas(base, admin, 'refs/heads/main', await current(base, 'refs/heads/main'), null))
            .status,
          200,
        );
      } else {
        assert.equal(rewind.status, 200);
        assert.equal(del.status, 200);
      }
    }
  });

  test('refs/heads/a/b beside refs/heads/a → 409 with a message, not 500', async () => {
    const base = `${server.url}/nested`;
    await describeRepository(base, writer);
    const a = await uploadCommit(base, writer);
    assert.equal((await cas(base, writer, 'refs/heads/a', null, a)).status, 200);
    const inner = await cas(base, writer, 'refs/heads/a/b', null, a);
    assert.equal(inner.status, 409);
    assert.match(String(inner.json?.['message']), /refs\/heads\/a exists/);
    assert.equal((await cas(base, writer, 'refs/heads/c/d', null, a)).status, 200);
    assert.equal((await cas(base, writer, 'refs/heads/c', null, a)).status, 409);
  });
});

describe('security: addresses and the audit log', () => {
  test('trust_proxy takes a list: only listed proxies may name the client; true is refused', async () => {
    const refused = await startTestServer({
      child: true,
      config: '[server]\ntrust_proxy = true\n',
    }).then(
      async (s) => {
        await s.close();
        return false;
      },
      () => true,
    );
    assert.ok(refused, 'trust_proxy = true must not start');
    for (const [list, expected] of [
      ['["10.1.2.3"]', '127.0.0.1'],
      ['["127.0.0.1/32"]', '203.0.113.9'],
    ] as const) {
      const server = await startTestServer({
        child: true,
        config: `[server]\ntrust_proxy = ${list}\n`,
      });
      try {
        await http(`${server.url}/repo/refs`, {
          headers: { 'x-forwarded-for': '198.51.100.1, 203.0.113.9', authorization: 'Bearer nope' },
        });
        await sleep(100);
        const line = server.auditLines.find((l) => l['event'] === 'auth_failure');
        assert.equal(line?.['ip'], expected, `trust_proxy = ${list}`);
      } finally {
        await server.close();
      }
    }
  });

  test('failures count toward the rate limit (403s included) and the audit log is throttled', async () => {
    const server = await startTestServer({
      child: true,
      config: '[server]\nrate_limit_rps = 1\nrate_limit_burst = 20\n',
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 300; i++)
        statuses.push(
          (await http(`${server.url}/repo/refs`, { headers: { authorization: 'Bearer forged' } }))
            .status,
        );
      assert.ok(statuses.filter((s) => s === 429).length >= 250, 'bad tokens are rate limited');
      const reader = await server.token('other', 'read', 'nosy');
      const forbidden: number[] = [];
      for (let i = 0; i < 60; i++)
        forbidden.push((await http(`${server.url}/repo/refs`, { token: reader })).status);
      assert.ok(forbidden.includes(429), '403s count toward the limit');
      await sleep(200);
      const failures = server.auditLines.filter(
        (l) => l['event'] === 'auth_failure' || l['event'] === 'forbidden',
      );
      assert.ok(failures.length <= 12, `${failures.length} failure lines for 360 failures`);
    } finally {
      await server.close();
    }
    const summaries = server.auditLines.filter((l) => l['event'] === 'failures_suppressed');
    assert.ok(summaries.length >= 1);
    assert.ok(summaries.every((l) => typeof l['count'] === 'number'));
  });
});

describe('security: storage', () => {
  test('disk full → 507 with a clear message, no Retry-After, and /health/detailed degraded', async () => {
    let full = false;
    const { startServer, loadServerConfig } = await import('../../src/server/index.js');
    const scratch = await tempDir('sec-full');
    const config = await loadServerConfig({
      configText: `[server]\nhost = "127.0.0.1"\nport = 0\n[storage]\nbackend = "local"\n[storage.local]\npath = "${scratch}/data"\nfsync = false\n`,
      env: { MEDIAGIT_JWT_SECRET: randomBytes(32).toString('hex') },
      cwd: scratch,
    });
    const server = await startServer(config, {
      log: () => {},
      audit: { write: () => {}, close: async () => {} },
      wrapStore: (store: Store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            const value = Reflect.get(target, prop, receiver) as unknown;
            if (prop === 'put' && typeof value === 'function')
              return (...args: unknown[]) => {
                if (!full) return (value as (...a: unknown[]) => unknown).apply(target, args);
                const err = new Error(
                  'ENOSPC: no space left on device, write',
                ) as NodeJS.ErrnoException;
                err.code = 'ENOSPC';
                return Promise.reject(err);
              };
            return typeof value === 'function'
              ? (value as (...a: unknown[]) => unknown).bind(target)
              : value;
          },
        }),
    });
    try {
      const { mintToken } = await import('../../src/server/index.js');
      const token = await mintToken(config.jwtSecret!, { repo: '*', role: 'write', sub: 'w' }, 600);
      await describeRepository(`${server.url}/full`, token);
      full = true;
      const chunk = await storedObject('chunk', randomBytes(1000));
      const res = await http(`${server.url}/full/chunks/${chunk.oid}`, {
        method: 'PUT',
        token,
        body: chunk.stored,
      });
      assert.equal(res.status, 507);
      assert.equal(res.json?.['error'], 'insufficient_storage');
      assert.match(String(res.json?.['message']), /full/);
      assert.equal(res.headers.get('retry-after'), null);
      const health = (await http(`${server.url}/health/detailed`)).json;
      assert.equal(health?.['status'], 'degraded');
      assert.equal((health?.['storage'] as Record<string, unknown>)['full'], true);
    } finally {
      await server.close();
    }
  });

  test('temporary files a crash left in local storage are swept at start', async () => {
    const first = await startTestServer({ child: true });
    const data = first.dataDir!;
    const token = await first.token('crashed', 'write');
    await describeRepository(`${first.url}/crashed`, token);
    const a = await uploadCommit(`${first.url}/crashed`, token);
    await http(`${first.url}/crashed/refs`, {
      token,
      json: { name: 'refs/heads/main', expected: null, next: a },
    });
    first.process!.kill('SIGKILL');
    await first.exited;
    const old = new Date(Date.now() - 3600_000);
    const stale = [
      path.join(data, 'crashed', 'tmp', `.tmp-chunk-999-${randomBytes(6).toString('hex')}`),
      path.join(data, 'crashed', 'refs', 'heads', `.tmp-ref-999-${randomBytes(6).toString('hex')}`),
    ];
    const fresh = path.join(
      data,
      'crashed',
      'tmp',
      `.tmp-chunk-998-${randomBytes(6).toString('hex')}`,
    );
    await mkdir(path.join(data, 'crashed', 'tmp'), { recursive: true });
    for (const file of [...stale, fresh]) await writeFile(file, randomBytes(1000));
    for (const file of stale) await utimes(file, old, old);
    const second = await startTestServer({
      child: true,
      storage: { url: data, options: { fsync: false } },
      env: { MEDIAGIT_JWT_SECRET: first.secret },
    });
    try {
      const left = [
        ...(await readdir(path.join(data, 'crashed', 'tmp'))),
        ...(await readdir(path.join(data, 'crashed', 'refs', 'heads'))),
      ];
      for (const file of stale)
        assert.ok(!left.includes(path.basename(file)), `${file} is still there`);
      assert.ok(
        left.includes(path.basename(fresh)),
        'a young temporary file may be a write in flight',
      );
      assert.equal((await http(`${second.url}/crashed/refs`, { token })).status, 200);
    } finally {
      await second.close();
      await first.close().catch(() => undefined);
    }
  });
});

describe('security: answers count against the bytes in flight', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      child: true,
      config: '[server]\nmax_inflight_bytes_per_identity = 41943040\n',
    });
  });
  after(() => server.close());

  test('a history answer reserves its bound: a client already holding most of its budget gets 429', async () => {
    const writer = await server.token('*', 'write', 'hoarder');
    const base = `${server.url}/hoard`;
    await describeRepository(base, writer);
    const upload = (): ReturnType<typeof stalledUpload> =>
      stalledUpload(
        server.url,
        `/hoard/chunks/${sha256Hex(randomBytes(8))}`,
        writer,
        16 * 1024 * 1024,
      );
    // Three stalled uploads of 16 MiB against a 40 MiB budget: one is refused, and that proves the
    // other two hold 32 MiB.
    const uploads = [upload(), upload(), upload()];
    try {
      assert.equal(await Promise.race(uploads.map((u) => u.answer)), 429);
      // The answer may hold up to 48 MiB: 32 + 48 is over 40.
      const history = await http(`${base}/history`, {
        token: writer,
        json: { want: [sha256Hex(randomBytes(8))], have: [] },
      });
      assert.equal(history.status, 429, history.body.toString('utf8'));
    } finally {
      for (const u of uploads) u.abort();
    }
  });
});
