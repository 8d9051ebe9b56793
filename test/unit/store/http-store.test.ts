/**
 * HttpStore against a small in-test server that speaks docs/protocol.md over a MemoryStore: the
 * Store contract end to end, the status → error mapping, Retry-After (absorbed by HttpStore and
 * honoured by RetryingStore), batching through packs, locks, and tokens kept out of every message.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  AuthError,
  ConfigError,
  LockedError,
  MediagitError,
  NotFoundError,
  ObjectCorruptError,
  StoreUnavailableError,
} from '../../../src/errors/index.js';
import { encodeEnvelope } from '../../../src/objects/envelope.js';
import {
  HttpStore,
  PayloadTooLargeError,
  ProtocolError,
  decodePack,
  encodePack,
  openHttpStore,
  packRecordKey,
  type HttpStoreOptions,
  type LockRecord,
} from '../../../src/store/http/index.js';
import {
  RetryingStore,
  isTransientError,
  openStore,
  parseStoreUrl,
} from '../../../src/store/index.js';
import { lockClientFor } from '../../../src/sync/locks.js';
import { oidFor, storeContract } from '../../support/store-contract.js';
import { MemoryStore } from './memory-store.js';

const TOKEN = 'mgk_test_s3cr3t-token-value-0123456789';
const REPO = 'studio/hero';

interface Canned {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

interface Seen {
  method: string;
  path: string;
  auth: string | undefined;
  bytes: number;
}

/** Reads a request body whole. */
async function readBody(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of req as AsyncIterable<Buffer>) parts.push(part);
  return Buffer.concat(parts);
}

function send(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  if (body === undefined) {
    res.writeHead(status, headers).end();
    return;
  }
  if (Buffer.isBuffer(body)) {
    res.writeHead(status, { 'content-type': 'application/octet-stream', ...headers }).end(body);
    return;
  }
  res
    .writeHead(status, { 'content-type': 'application/json', ...headers })
    .end(JSON.stringify(body));
}

const KEY_SPACES: Record<string, string> = {
  chunks: 'chunks',
  manifests: 'objects',
  objects: 'objects',
  keys: 'keys',
  meta: 'meta',
};

/**
 * The protocol over a MemoryStore, for one repository. `intercept` may answer any request
 * itself (to inject statuses); `seen` records every request.
 */
class FakeServer {
  readonly store = new MemoryStore();
  readonly seen: Seen[] = [];
  readonly locks = new Map<string, LockRecord>();
  intercept: ((req: IncomingMessage, path: string) => Canned | undefined) | undefined;
  /** token → identity; requests without a known token get 401. */
  readonly identities = new Map<string, string>([[TOKEN, 'alice']]);
  private server: Server | undefined;
  private lockCounter = 0;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) =>
        send(res, 500, { error: 'internal', message: String(err) }),
      );
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const body = await readBody(req);
    this.seen.push({
      method: req.method ?? '',
      path: url.pathname,
      auth: req.headers.authorization,
      bytes: body.length,
    });
    const canned = this.intercept?.(req, url.pathname);
    if (canned) return send(res, canned.status, canned.body, canned.headers);
    const auth = req.headers.authorization ?? '';
    const identity = this.identities.get(auth.replace(/^Bearer /, ''));
    if (!identity)
      return send(
        res,
        401,
        { error: 'unauthorized', message: 'missing or invalid token' },
        { 'www-authenticate': 'Bearer' },
      );
    if (!url.pathname.startsWith(`/${REPO}/`))
      return send(res, 404, { error: 'not_found', message: 'no such repository' });
    const rest = url.pathname.slice(REPO.length + 2);
    const method = req.method ?? 'GET';
    const json = (): Record<string, unknown> =>
      JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    const s = this.store;

    if (rest === 'info' && method === 'GET') {
      const d = s.objects.get('meta/repository');
      return d
        ? send(res, 200, JSON.parse(d.toString('utf8')))
        : send(res, 404, { error: 'not_found', message: 'nothing pushed' });
    }
    if (rest === 'chunks/check' && method === 'POST') {
      const { chunks, objects } = json() as { chunks: string[]; objects: string[] };
      return send(res, 200, {
        chunks: chunks.filter((o) => !s.objects.has(`chunks/${o}`)),
        objects: objects.filter((o) => !s.objects.has(`objects/${o}`)),
      });
    }
    if (rest === 'keys' && method === 'GET') {
      return send(res, 200, {
        keys: [...s.objects.keys()].filter((k) => k.startsWith('keys/')).map((k) => k.slice(5)),
      });
    }
    if (rest === 'list' && method === 'GET') {
      const prefix = url.searchParams.get('prefix') ?? '';
      const afterKey = url.searchParams.get('after');
      const limit = Number(url.searchParams.get('limit') ?? '1000');
      const keys = [...s.objects.keys()]
        .filter((k) => k.startsWith(prefix) && (afterKey === null || k > afterKey))
        .sort();
      const page = keys.slice(0, Math.min(limit, 3)); // tiny pages: pagination must work
      return send(res, 200, {
        entries: page.map((key) => ({ key, size: s.objects.get(key)!.length })),
        next: keys.length > page.length ? page[page.length - 1] : null,
      });
    }
    if (rest === 'refs' && method === 'GET') {
      const prefix = url.searchParams.get('prefix') ?? '';
      return send(res, 200, {
        refs: Object.fromEntries([...s.refs].filter(([n]) => n.startsWith(prefix))),
      });
    }
    if (rest === 'refs' && method === 'POST') {
      const { name, expected, next } = json() as {
        name: string;
        expected: { oid: string; version: string } | null;
        next: string | null;
      };
      const ok = s.swap(name, expected, next);
      return ok
        ? send(res, 200, { ok: true })
        : send(res, 409, {
            error: 'ref_conflict',
            message: 'stale',
            current: s.refs.get(name) ?? null,
          });
    }
    if (rest === 'objects/pack' && method === 'POST') {
      let stored = 0;
      let existing = 0;
      for (const record of decodePack(body)) {
        const key = packRecordKey(record);
        if (s.objects.has(key)) existing++;
        else {
          s.objects.set(key, Buffer.from(record.data));
          stored++;
        }
      }
      return send(res, 200, { stored, existing });
    }
    if (rest === 'objects/fetch' && method === 'POST') {
      const { want } = json() as { want: string[] };
      const present = want.filter((k) => s.objects.has(k));
      const records = present.map((k) => {
        const [space, oid] = k.split('/') as [string, string];
        const data = s.objects.get(k)!;
        return { kind: space === 'chunks' ? ('chunk' as const) : ('commit' as const), oid, data };
      });
      return send(res, 200, encodePack(records), {
        'x-missing-objects': String(want.length - present.length),
      });
    }
    if (rest === 'locks' && method === 'POST') {
      const { path } = json() as { path: string };
      const held = [...this.locks.values()].find((l) => l.path === path);
      if (held) return send(res, 409, { error: 'lock_exists', message: 'locked', lock: held });
      const lock: LockRecord = {
        id: `l${++this.lockCounter}`,
        path,
        owner: identity,
        locked_at: '2026-01-01T00:00:00Z',
      };
      this.locks.set(lock.id, lock);
      return send(res, 201, { lock });
    }
    if (rest === 'locks' && method === 'GET') {
      const prefix = url.searchParams.get('path') ?? '';
      return send(res, 200, {
        locks: [...this.locks.values()].filter((l) => l.path.startsWith(prefix)),
      });
    }
    if (rest === 'locks/verify' && method === 'POST') {
      const all = [...this.locks.values()];
      return send(res, 200, {
        ours: all.filter((l) => l.owner === identity),
        theirs: all.filter((l) => l.owner !== identity),
      });
    }
    const unlock = /^locks\/([^/]+)\/unlock$/.exec(rest);
    if (unlock && method === 'POST') {
      const lock = this.locks.get(unlock[1]!);
      if (!lock) return send(res, 404, { error: 'not_found', message: 'no such lock' });
      if (lock.owner !== identity && !(json() as { force?: boolean }).force)
        return send(res, 403, { error: 'forbidden', message: 'not your lock' });
      this.locks.delete(lock.id);
      return send(res, 200, { lock });
    }
    const m = /^(chunks|manifests|objects|keys|meta)\/([a-z0-9][a-z0-9._-]*)$/.exec(rest);
    if (m) {
      const key = `${KEY_SPACES[m[1]!]}/${m[2]}`;
      if (method === 'GET') {
        const data = s.objects.get(key);
        return data
          ? send(res, 200, data)
          : send(res, 404, { error: 'not_found', message: `no ${key}` });
      }
      if (method === 'PUT') {
        const had = s.objects.has(key);
        if (!had) s.objects.set(key, body);
        return send(res, had ? 200 : 201, { ok: true });
      }
      if (method === 'DELETE') {
        s.objects.delete(key);
        return send(res, 204);
      }
    }
    return send(res, 400, { error: 'bad_request', message: `no route ${method} ${rest}` });
  }
}

const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

async function fake(): Promise<FakeServer> {
  const server = await new FakeServer().start();
  servers.push(server);
  return server;
}

function client(server: FakeServer, options: Partial<HttpStoreOptions> = {}): HttpStore {
  return new HttpStore({ origin: server.url, repo: REPO, token: TOKEN, ...options });
}

/** Every text an error could show a user: message, hint, and the same down its cause chain. */
function allText(err: unknown): string {
  const out: string[] = [];
  let current: unknown = err;
  for (let i = 0; i < 5 && current; i++) {
    out.push(String(current));
    if (current instanceof MediagitError && current.hint) out.push(current.hint);
    if (current instanceof Error && current.stack) out.push(current.stack);
    current = current instanceof Error ? current.cause : undefined;
  }
  return out.join('\n');
}

storeContract(
  'HttpStore (in-test protocol server)',
  async () => {
    const server = await fake();
    const store = client(server);
    return { store, cleanup: () => store.close() };
  },
  { concurrentCas: true, rounds: 5 },
);

describe('HttpStore: status → error mapping', () => {
  const key = `chunks/${oidFor('mapped')}`;

  async function failing(
    canned: Canned,
    options: Partial<HttpStoreOptions> = {},
  ): Promise<unknown> {
    const server = await fake();
    server.intercept = () => canned;
    const store = client(server, { rateLimitRetries: 0, ...options });
    try {
      await store.get(key);
    } catch (err) {
      return err;
    } finally {
      await store.close();
    }
    assert.fail('expected the request to fail');
  }

  test('401 → AuthError with a login hint; 403 → AuthError about the role', async () => {
    const e401 = await failing({
      status: 401,
      body: { error: 'unauthorized', message: 'expired' },
    });
    assert.ok(e401 instanceof AuthError);
    assert.equal(e401.code, 'E_AUTH');
    assert.match(e401.hint ?? '', /mediagit login .*studio\/hero/);
    assert.match(e401.hint ?? '', /MEDIAGIT_TOKEN/);
    const e403 = await failing({ status: 403, body: { error: 'forbidden', message: 'read only' } });
    assert.ok(e403 instanceof AuthError);
    assert.match(e403.message, /403/);
    assert.ok(!isTransientError(e401) && !isTransientError(e403));
  });

  test('404 → NotFoundError naming the key', async () => {
    const err = await failing({ status: 404, body: { error: 'not_found', message: 'gone' } });
    assert.ok(err instanceof NotFoundError);
    assert.equal(err.key, key);
  });

  test('422 → ObjectCorruptError carrying the OID', async () => {
    const err = await failing({
      status: 422,
      body: { error: 'mismatch', message: 'hash differs', oid: oidFor('mapped') },
    });
    assert.ok(err instanceof ObjectCorruptError);
    assert.equal(err.oid, oidFor('mapped'));
  });

  test('413 → a clear, non-retriable PayloadTooLargeError', async () => {
    const err = await failing({
      status: 413,
      body: { error: 'too_large', message: 'over 16 MiB' },
    });
    assert.ok(err instanceof PayloadTooLargeError);
    assert.match(err.message, /size limit/);
    assert.ok(!isTransientError(err));
  });

  test('429 and 503 → StoreUnavailableError with retryAfterMs; other 5xx retriable too', async () => {
    const e429 = await failing({
      status: 429,
      headers: { 'retry-after': '7' },
      body: { error: 'rate_limited', message: 'slow down' },
    });
    assert.ok(e429 instanceof StoreUnavailableError);
    assert.equal(e429.retryAfterMs, 7000);
    const e503 = await failing({
      status: 503,
      headers: { 'retry-after': '2' },
      body: { error: 'unavailable', message: 'storage down' },
    });
    assert.ok(e503 instanceof StoreUnavailableError);
    assert.equal(e503.retryAfterMs, 2000);
    const e500 = await failing({ status: 500, body: { error: 'internal', message: 'boom' } });
    assert.ok(e500 instanceof StoreUnavailableError);
    assert.ok(isTransientError(e500));
  });

  test('400 → ProtocolError; a connection refused → StoreUnavailableError', async () => {
    const e400 = await failing({ status: 400, body: { error: 'bad_name', message: 'bad name' } });
    assert.ok(e400 instanceof ProtocolError);
    const server = await fake();
    const url = server.url;
    await server.stop();
    const store = new HttpStore({ origin: url, repo: REPO, token: TOKEN });
    await assert.rejects(
      store.get(key),
      (err: unknown) => err instanceof StoreUnavailableError && /cannot reach/.test(err.message),
    );
    await store.close();
  });

  test('409 on a ref update is a plain false, not an error', async () => {
    const server = await fake();
    const store = client(server);
    assert.equal(await store.compareAndSwapRef('refs/heads/main', null, oidFor('a')), true);
    assert.equal(await store.compareAndSwapRef('refs/heads/main', null, oidFor('b')), false);
    await store.close();
  });

  test('the token never appears in a message, a hint or a cause, even when the server echoes it', async () => {
    const echo = { error: 'x', message: `token ${TOKEN} rejected; header was Bearer ${TOKEN}` };
    for (const status of [400, 401, 403, 404, 413, 422, 429, 500, 503]) {
      const err = await failing({ status, body: echo });
      assert.ok(!allText(err).includes(TOKEN), `status ${status}: ${allText(err)}`);
      assert.ok(!allText(err).includes(TOKEN.slice(4)), `status ${status}`);
    }
    const server = await fake();
    const url = server.url;
    await server.stop();
    const store = new HttpStore({ origin: url, repo: REPO, token: TOKEN });
    const err = await store.get(key).catch((e: unknown) => e);
    assert.ok(!allText(err).includes(TOKEN));
    assert.ok(!store.description.includes(TOKEN));
    await store.close();
  });

  test('the token travels only in the Authorization header', async () => {
    const server = await fake();
    const store = client(server);
    await store.put(key, Buffer.from('x'));
    await store.get(key);
    await store.close();
    assert.ok(server.seen.length >= 2);
    for (const s of server.seen) {
      assert.equal(s.auth, `Bearer ${TOKEN}`);
      assert.ok(!s.path.includes(TOKEN));
    }
  });
});

describe('HttpStore: rate limiting', () => {
  const key = `chunks/${oidFor('limited')}`;

  test('RetryingStore honours the Retry-After of a 429 surfaced by HttpStore', async () => {
    const server = await fake();
    let refusals = 2;
    server.intercept = (req) =>
      req.method === 'GET' && refusals-- > 0
        ? {
            status: 429,
            headers: { 'retry-after': '3' },
            body: { error: 'rate_limited', message: 'slow down' },
          }
        : undefined;
    server.store.objects.set(key, Buffer.from('payload'));
    const inner = client(server, { rateLimitRetries: 0, sleep: async () => {} });
    const delays: number[] = [];
    const store = new RetryingStore(inner, {
      sleep: async (ms) => {
        delays.push(ms);
      },
      random: () => 0,
    });
    assert.equal((await store.get(key)).toString(), 'payload');
    assert.deepEqual(delays, [3000, 3000]);
    await store.close();
  });

  test('a 507 from a full server is E_STORE_FULL and never retried', async () => {
    const server = await fake();
    let answered = 0;
    server.intercept = (req) => {
      if (req.method !== 'GET') return undefined;
      answered++;
      return { status: 507, body: { error: 'insufficient_storage', message: 'disk full' } };
    };
    const sleeps: number[] = [];
    const store = new RetryingStore(client(server, { sleep: async () => {} }), {
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      random: () => 0,
    });
    await assert.rejects(store.get(key), (err: Error & { code?: string; exitCode?: number }) => {
      assert.equal(err.code, 'E_STORE_FULL');
      assert.equal(err.exitCode, 12);
      assert.match(err.message, /out of storage/);
      return true;
    });
    assert.equal(answered, 1, 'one request: retrying cannot free space');
    assert.deepEqual(sleeps, []);
    await store.close();
  });

  test('HttpStore itself waits out a 429 (Retry-After, every request paused) before giving up', async () => {
    const server = await fake();
    let refusals = 3;
    server.intercept = (req) =>
      req.method === 'GET' && refusals-- > 0
        ? {
            status: 429,
            headers: { 'retry-after': '1' },
            body: { error: 'rate_limited', message: 'slow down' },
          }
        : undefined;
    server.store.objects.set(key, Buffer.from('payload'));
    const waits: number[] = [];
    const store = client(server, {
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    assert.equal((await store.get(key)).toString(), 'payload');
    assert.equal(waits.length, 3);
    for (const ms of waits) assert.ok(ms > 500 && ms <= 1000, `waited ${ms} ms`);
    await store.close();

    // With the budget spent, the 429 reaches the caller as a retriable error carrying Retry-After.
    refusals = 10;
    const impatient = client(server, { rateLimitRetries: 1, sleep: async () => {} });
    const err = await impatient.get(key).catch((e: unknown) => e);
    assert.ok(err instanceof StoreUnavailableError && err.retryAfterMs === 1000, String(err));
    await impatient.close();
  });

  test('Retry-After as an HTTP date is understood', async () => {
    const server = await fake();
    server.intercept = () => ({
      status: 503,
      headers: { 'retry-after': new Date(Date.now() + 5000).toUTCString() },
      body: { error: 'unavailable', message: 'later' },
    });
    const store = client(server);
    const err = await store.get(key).catch((e: unknown) => e);
    assert.ok(err instanceof StoreUnavailableError);
    assert.ok(
      (err.retryAfterMs ?? 0) > 3000 && (err.retryAfterMs ?? 0) <= 5000,
      String(err.retryAfterMs),
    );
    await store.close();
  });
});

describe('HttpStore: packs, checks and listing', () => {
  const envelope = (kind: 'manifest' | 'tree' | 'commit', text: string): Buffer =>
    encodeEnvelope(kind, 0, text.length, Buffer.from(text));

  test('putMany sends structured objects as packs (few requests) and getMany fetches them back', async () => {
    const server = await fake();
    const store = client(server, { packMaxObjects: 100 });
    const entries = Array.from({ length: 250 }, (_, i) => ({
      key: `objects/${oidFor(`tree-${i}`)}`,
      data: envelope('tree', `tree ${i}`),
    }));
    entries.push({ key: 'keys/main', data: Buffer.from('key file') });
    await store.putMany(entries);
    const packs = server.seen.filter((s) => s.path.endsWith('/objects/pack'));
    const puts = server.seen.filter((s) => s.method === 'PUT');
    assert.equal(packs.length, 3);
    assert.deepEqual(
      puts.map((p) => p.path),
      [`/${REPO}/keys/main`],
    );
    for (const e of entries) assert.ok(server.store.objects.get(e.key)?.equals(e.data), e.key);

    const wanted = [
      ...entries.slice(0, 120).map((e) => e.key),
      `objects/${oidFor('absent')}`,
      'keys/main',
    ];
    const got = await store.getMany(wanted);
    assert.equal(got.size, 121);
    assert.ok(!got.has(`objects/${oidFor('absent')}`));
    for (const e of entries.slice(0, 120)) assert.ok(got.get(e.key)?.equals(e.data));
    assert.equal(server.seen.filter((s) => s.path.endsWith('/objects/fetch')).length, 1);
    await store.close();
  });

  test('a 413 on a pack splits it in halves until it fits', async () => {
    const server = await fake();
    server.intercept = (_req, path) =>
      path.endsWith('/objects/pack') && server.seen[server.seen.length - 1]!.bytes > 3000
        ? { status: 413, body: { error: 'too_large', message: 'pack over limit' } }
        : undefined;
    const store = client(server);
    const entries = Array.from({ length: 40 }, (_, i) => ({
      key: `objects/${oidFor(`big-${i}`)}`,
      data: envelope('commit', 'x'.repeat(200) + i),
    }));
    await store.putMany(entries);
    for (const e of entries) assert.ok(server.store.objects.has(e.key));
    await store.close();
  });

  test('has checks 25 000 keys in batches of at most 10 000 IDs, key files by name', async () => {
    const server = await fake();
    const store = client(server);
    const keys = Array.from({ length: 25_000 }, (_, i) => `chunks/${oidFor(`many-${i}`)}`);
    for (let i = 0; i < keys.length; i += 1000)
      server.store.objects.set(keys[i]!, Buffer.from('c'));
    server.store.objects.set('keys/main', Buffer.from('k'));
    const answer = await store.has([...keys, 'keys/main', 'keys/other', 'meta/repository']);
    assert.equal(answer.filter(Boolean).length, 26);
    assert.equal(answer[1000], true);
    assert.equal(answer[1001], false);
    assert.deepEqual(answer.slice(-3), [true, false, false]);
    assert.equal(server.seen.filter((s) => s.path.endsWith('/chunks/check')).length, 3);
    await store.close();
  });

  test('a repository nothing was pushed to reads as empty, not as an error', async () => {
    const server = await fake();
    const store = new HttpStore({ origin: server.url, repo: 'other-repo', token: TOKEN });
    assert.equal(await store.readRef('refs/heads/main'), null);
    assert.equal((await store.listRefs('refs/')).size, 0);
    assert.deepEqual(await store.has([`chunks/${oidFor('x')}`, 'keys/main']), [false, false]);
    const listed = [];
    for await (const item of store.list('')) listed.push(item);
    assert.deepEqual(listed, []);
    assert.equal(await store.checkAccess(), 'empty');
    await store.close();
  });
});

describe('HttpStore: locks', () => {
  test('lock, conflict naming the holder, verify, unlock; someone else cannot unlock without force', async () => {
    const server = await fake();
    server.identities.set('bob-token-000000', 'bob');
    const alice = client(server);
    const bob = new HttpStore({ origin: server.url, repo: REPO, token: 'bob-token-000000' });
    const lock = await alice.createLock('scenes/level01.blend');
    assert.equal(lock.owner, 'alice');
    await assert.rejects(
      bob.createLock('scenes/level01.blend'),
      (err: unknown) => err instanceof LockedError && /alice/.test(err.message),
    );
    assert.deepEqual(
      (await bob.verifyLocks()).theirs.map((l) => l.path),
      ['scenes/level01.blend'],
    );
    assert.deepEqual(
      (await alice.verifyLocks()).ours.map((l) => l.path),
      ['scenes/level01.blend'],
    );
    assert.equal((await bob.listLocks('scenes/')).length, 1);
    assert.equal((await bob.listLocks('audio/')).length, 0);
    await assert.rejects(
      bob.unlock(lock.id, false, { holder: lock }),
      (err: unknown) => err instanceof LockedError && /alice/.test(err.message),
    );
    await alice.unlock(lock.id, false);
    assert.equal((await bob.listLocks()).length, 0);
    await Promise.all([alice.close(), bob.close()]);
  });
});

describe('opening http remotes', () => {
  test('openStore wraps HttpStore; batching and the lock capability reach through the wrappers', async () => {
    const server = await fake();
    const asked: string[][] = [];
    const opened = await openStore(`${server.url}/${REPO}`, {}, undefined, undefined, (o, r) => {
      asked.push([o, r]);
      return Promise.resolve(TOKEN);
    });
    const batch = opened.store.capabilities.batch;
    assert.ok(batch);
    assert.equal(lockClientFor(opened.store, 'origin').supported, true);
    const entries = [
      {
        key: `objects/${oidFor('through')}`,
        data: encodeEnvelope('tree', 0, 1, Buffer.from('t')),
      },
    ];
    await batch.putMany(entries);
    assert.equal(opened.meter.snapshot().totals.bytesWritten, entries[0]!.data.length);
    assert.equal((await batch.getMany([entries[0]!.key])).size, 1);
    assert.equal(opened.store.description, `${server.url}/${REPO}`);
    // The injected lookup is asked once, for this server and repository.
    assert.deepEqual(asked, [[server.url, REPO]]);
    await opened.store.close();
  });

  test('without a token provider, requests carry no token', async () => {
    const server = await fake();
    const opened = await openStore(`${server.url}/${REPO}`);
    await assert.rejects(opened.store.get(`chunks/${oidFor('anything')}`), AuthError);
    await opened.store.close();
  });

  test('a token in the remote options is refused; bad repository names are ConfigErrors', () => {
    const location = parseStoreUrl('http://127.0.0.1:9/hero');
    assert.throws(
      () => openHttpStore(location, { token: TOKEN }),
      (err: unknown) => err instanceof ConfigError && !String(err).includes(TOKEN),
    );
    for (const repo of ['', 'Hero', 'a/b/c', 'health', '-x', 'a'.repeat(65)]) {
      assert.throws(() => new HttpStore({ origin: 'http://127.0.0.1:9', repo }), ConfigError, repo);
    }
    assert.doesNotThrow(
      () => new HttpStore({ origin: 'http://127.0.0.1:9', repo: 'studio/hero-game' }),
    );
  });
});
