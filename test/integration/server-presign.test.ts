/**
 * Presigned downloads from a mediagit server over S3 (radosgw): a clone reads every chunk from the
 * bucket through URLs the server hands out, so the server reads no chunk byte from storage (counted
 * by a store wrapper at the server) and the clone is byte-identical; a URL the bucket refuses (as it
 * refuses an expired one) is asked for again; the server hands out URLs only for this repository's
 * content-addressed keys, to readers (not to a push's negotiation), and only over S3; a bucket that serves other bytes is caught
 * by the client's verification as a server that did would be.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ForwardingStore, type Passage } from '../../src/store/index.js';
import { S3Store } from '../../src/store/s3/index.js';
import { runCli, tempDir } from '../support/cli.js';
import { Prng } from '../support/corpus.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startRecordingProxy } from '../support/recording-proxy.js';
import { createS3TestBucket, type S3TestOptions } from '../support/s3-bucket.js';
import { http, startTestServer, type TestServer } from '../support/server-harness.js';
import { SMALL_CHUNK_ARGS } from '../support/sync-fixtures.js';
import { skipUnlessServer } from '../support/test-servers.js';

/** Removed when the file's tests end (a folder made in a hook would go when the hook ends). */
const work = await tempDir('presign');
const BUCKET = `mg-presign-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const MiB = 1024 * 1024;
const GET = '[server]\npresign = "get"\n';
const OFF = '[server]\npresign = "off"\n';

async function listed(store: S3Store, prefix: string): Promise<{ key: string; size: number }[]> {
  const out: { key: string; size: number }[] = [];
  for await (const entry of store.list(prefix)) out.push(entry);
  return out;
}

/** Counts the chunk bytes the server reads from storage, whole or as streams. */
class ChunkReads extends ForwardingStore {
  static bytes = 0;
  static reads = 0;

  protected override async pass<T>(passage: Passage<T>): Promise<T> {
    const result = await passage.run();
    if (passage.operation === 'get' && passage.target.startsWith('chunks/')) {
      ChunkReads.reads++;
      if (Buffer.isBuffer(result)) ChunkReads.bytes += result.length;
      else if (typeof result === 'object' && result !== null && 'size' in result)
        ChunkReads.bytes += Number((result as { size: number }).size);
    }
    return result;
  }
}

describe('mediagit server over S3: presigned downloads', { skip: skipUnlessServer('s3') }, () => {
  let options: S3TestOptions;
  const closers: (() => Promise<void>)[] = [];
  const source = path.join(work, 'source');
  const files = new Map<string, Buffer>();
  let remotes = 0;

  /** Over the bucket; the default configuration hands out download URLs. */
  const startServer = async (config = '', prefix = 'srv'): Promise<TestServer> => {
    const server = await startTestServer({
      storage: { url: `s3://${BUCKET}/${prefix}`, options },
      config,
      wrapStore: (store) => new ChunkReads(store),
    });
    closers.push(() => server.close());
    return server;
  };

  const cli = (server: TestServer, token: string) => {
    const env = { XDG_CONFIG_HOME: path.join(work, 'xdg'), MEDIAGIT_TOKEN: token };
    return (cwd: string, ...args: string[]) =>
      runCli(args, { cwd, env, timeoutMs: 300_000, allowFail: true });
  };

  /** Pushes the test repository to `repo` on `server`. */
  const pushTo = async (server: TestServer, repo: string): Promise<void> => {
    const mg = cli(server, await server.token('*', 'write', 'alice'));
    const remote = `r${++remotes}`;
    await mg(source, 'remote', 'add', remote, `${server.url}/${repo}`);
    const pushed = await mg(source, 'push', '-q', remote, 'main');
    assert.equal(pushed.code, 0, pushed.stderr);
  };

  const assertCloned = async (dir: string): Promise<void> => {
    for (const [name, data] of files)
      assert.ok((await readFile(path.join(dir, name))).equals(data), `${name} byte-identical`);
  };

  before(async () => {
    options = await createS3TestBucket(BUCKET);
    await mkdir(source);
    const prng = new Prng('presign');
    files.set('plate.exr', prng.fill(Buffer.alloc(3 * MiB)));
    files.set('take.wav', prng.fill(Buffer.alloc(2 * MiB)));
    files.set('notes.txt', Buffer.from('small file\n'));
    for (const [name, data] of files) await writeFile(path.join(source, name), data);
    const run = (...args: string[]) => runCli(args, { cwd: source, timeoutMs: 300_000 });
    await run('init', '-q', ...SMALL_CHUNK_ARGS);
    await run('add', '.');
    await run('commit', '-q', '-m', 'v1');
  });

  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  });

  test('a clone reads every chunk from the bucket: byte-identical, 0 chunk bytes through the server', async () => {
    const server = await startServer();
    await pushTo(server, 'direct');
    ChunkReads.bytes = 0;
    ChunkReads.reads = 0;
    const mg = cli(server, await server.token('direct', 'read', 'bob'));
    const dir = path.join(work, 'clone-direct');
    const cloned = await mg(work, 'clone', '-q', `${server.url}/direct`, dir);
    assert.equal(cloned.code, 0, cloned.stderr);
    await assertCloned(dir);
    assert.equal(ChunkReads.reads, 0, 'chunk reads at the server');
    assert.equal(ChunkReads.bytes, 0, 'chunk bytes the server read from the bucket');

    // The same clone with presigned URLs off: every chunk through the server (the counter works).
    const relay = await startServer(OFF);
    const relayed = path.join(work, 'clone-relayed');
    const viaRelay = await cli(relay, await relay.token('direct', 'read', 'bob'))(
      work,
      'clone',
      '-q',
      `${relay.url}/direct`,
      relayed,
    );
    assert.equal(viaRelay.code, 0, viaRelay.stderr);
    await assertCloned(relayed);
    assert.ok(ChunkReads.bytes >= 5 * MiB, `relayed ${ChunkReads.bytes} chunk bytes`);
  });

  test('a clone asks for all its URLs ahead, in one request per 1000 chunks', async () => {
    const server = await startServer();
    await pushTo(server, 'ahead');
    const proxy = await startRecordingProxy({ target: server.url });
    closers.push(() => proxy.close());
    const dir = path.join(work, 'clone-ahead');
    const cloned = await cli(server, await server.token('ahead', 'read', 'bob'))(
      work,
      'clone',
      '-q',
      `${proxy.url}/ahead`,
      dir,
    );
    assert.equal(cloned.code, 0, cloned.stderr);
    await assertCloned(dir);
    const asks = proxy.requests.filter(
      (r) => r.method === 'POST' && r.url.endsWith('/objects/urls'),
    );
    // Every chunk's URL in one request, not a request per wave of parallel reads.
    assert.equal(asks.length, 1, `${asks.length} URL requests`);
  });

  test('a pull asks for its new chunks’ URLs ahead, in one request', async () => {
    const server = await startServer();
    const repo = path.join(work, 'pull-source');
    await mkdir(repo);
    const prng = new Prng('presign-pull');
    const v1 = prng.fill(Buffer.alloc(2 * MiB));
    await writeFile(path.join(repo, 'plate.exr'), v1);
    const writer = cli(server, await server.token('pullahead', 'write', 'alice'));
    for (const args of [
      ['init', '-q', ...SMALL_CHUNK_ARGS],
      ['add', '.'],
      ['commit', '-q', '-m', 'v1'],
      ['remote', 'add', 'origin', `${server.url}/pullahead`],
      ['push', '-q', 'origin', 'main'],
    ]) {
      const done = await writer(repo, ...args);
      assert.equal(done.code, 0, done.stderr);
    }
    const proxy = await startRecordingProxy({ target: server.url });
    closers.push(() => proxy.close());
    const reader = cli(server, await server.token('pullahead', 'read', 'bob'));
    const dir = path.join(work, 'pull-ahead');
    const cloned = await reader(work, 'clone', '-q', `${proxy.url}/pullahead`, dir);
    assert.equal(cloned.code, 0, cloned.stderr);
    // v2: edits spread through the file and a new file: new chunks far apart in the write order.
    const v2 = Buffer.from(v1);
    for (let at = 100_000; at < v2.length; at += 400_000) prng.fill(v2.subarray(at, at + 2000));
    const added = prng.fill(Buffer.alloc(2 * MiB));
    await writeFile(path.join(repo, 'plate.exr'), v2);
    await writeFile(path.join(repo, 'take2.wav'), added);
    for (const args of [
      ['add', '.'],
      ['commit', '-q', '-m', 'v2'],
      ['push', '-q', 'origin', 'main'],
    ]) {
      const done = await writer(repo, ...args);
      assert.equal(done.code, 0, done.stderr);
    }
    const before = proxy.requests.length;
    const pulled = await reader(dir, 'pull', '-q');
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.ok((await readFile(path.join(dir, 'plate.exr'))).equals(v2));
    assert.ok((await readFile(path.join(dir, 'take2.wav'))).equals(added));
    const asks = proxy.requests
      .slice(before)
      .filter((r) => r.method === 'POST' && r.url.endsWith('/objects/urls'));
    assert.equal(asks.length, 1, `${asks.length} URL requests`);
  });

  test('a URL the bucket refuses (expired) is asked for again, and the clone completes', async () => {
    const refusedOnce = new Set<string>();
    const proxy: FaultProxy = await startFaultProxy({
      target: options.endpoint,
      // The first GET of every object is refused as an expired URL is.
      plan: (r) => {
        const key = r.url.split('?')[0]!;
        if (r.method !== 'GET' || refusedOnce.has(key)) return undefined;
        refusedOnce.add(key);
        return { kind: 'refuse', status: 403 };
      },
    });
    closers.push(() => proxy.close());
    const server = await startServer(`${GET}presign_endpoint = "${proxy.url}"\n`);
    await pushTo(server, 'renew');
    ChunkReads.bytes = 0;
    const dir = path.join(work, 'clone-renew');
    const cloned = await cli(server, await server.token('renew', 'read', 'bob'))(
      work,
      'clone',
      '-q',
      `${server.url}/renew`,
      dir,
    );
    assert.equal(cloned.code, 0, cloned.stderr);
    await assertCloned(dir);
    assert.ok(refusedOnce.size > 5, `${refusedOnce.size} objects refused once`);
    // Every refused object was read through a second URL, none through the server.
    const gets = proxy.traffic.answered.filter((a) => a.method === 'GET');
    assert.equal(gets.filter((a) => a.status === 200).length, refusedOnce.size);
    assert.equal(ChunkReads.bytes, 0, 'chunk bytes the server read from the bucket');
  });

  test('a URL past its expiry is refused by the bucket', async () => {
    const store = new S3Store({ bucket: BUCKET, prefix: 'srv/direct', ...options });
    try {
      const [first] = await listed(store, 'chunks/');
      assert.ok(first, 'a chunk to read');
      const fresh = await store.presign({ method: 'GET', key: first.key, expiresInS: 60 });
      assert.equal((await fetch(fresh)).status, 200);
      const stale = await store.presign({
        method: 'GET',
        key: first.key,
        expiresInS: 60,
        signedAt: new Date(Date.now() - 3600_000),
      });
      assert.equal((await fetch(stale)).status, 403);
    } finally {
      await store.close();
    }
  });

  test('a presigned PUT stores a body of its signed length and refuses another length', async () => {
    const store = new S3Store({ bucket: BUCKET, prefix: 'srv/put-url', ...options });
    try {
      const key = `chunks/${'c'.repeat(64)}`;
      const body = Buffer.from('seven bytes and more');
      const url = await store.presign({
        method: 'PUT',
        key,
        expiresInS: 60,
        contentLength: body.length,
      });
      const longer = await fetch(url, { method: 'PUT', body: Buffer.concat([body, body]) });
      assert.equal(longer.status, 403);
      assert.equal((await fetch(url, { method: 'PUT', body })).status, 200);
      assert.deepEqual(await store.get(key), body);
    } finally {
      await store.close();
    }
  });

  test('URLs only for this repository’s chunks and objects, to readers of it, and only over S3', async () => {
    const server = await startServer();
    await pushTo(server, 'guarded');
    const reader = await server.token('guarded', 'read', 'bob');
    const other = await server.token('elsewhere', 'read', 'eve');
    const ask = (get: unknown, token?: string, repo = 'guarded') =>
      http(`${server.url}/${repo}/objects/urls`, {
        json: { get },
        ...(token !== undefined ? { token } : {}),
      });
    const oid = 'a'.repeat(64);

    const ok = await ask([`chunks/${oid}`, `objects/${oid}`], reader);
    assert.equal(ok.status, 200);
    const urls = ok.json?.['urls'] as Record<string, string>;
    assert.match(urls[`chunks/${oid}`]!, new RegExp(`/${BUCKET}/srv/guarded/chunks/${oid}\\?`));
    assert.equal(ok.json?.['expires_in'], 300);

    for (const key of [
      'refs/heads/main',
      'meta/repository',
      'keys/default',
      `chunks/${oid}/../../../other/chunks/${oid}`,
      `../other/chunks/${oid}`,
      `chunks/${oid.toUpperCase()}`,
      `incoming/${oid}`,
    ]) {
      const refused = await ask([key], reader);
      assert.equal(refused.status, 400, `${key}: ${refused.status}`);
      assert.equal(refused.json?.['error'], 'bad_request');
    }
    assert.equal((await ask([`chunks/${oid}`])).status, 401, 'no token');
    assert.equal((await ask([`chunks/${oid}`], other)).status, 403, "another repository's reader");

    const negotiated = await http(`${server.url}/guarded/negotiate`, {
      json: { refs: 'refs/' },
      token: reader,
    });
    assert.deepEqual(negotiated.json?.['presign'], { get: true, expires_in: 300 });
    // A push's negotiation (it asks for the gc lease) reads no chunk: no offer, so a pushing
    // client does not load its bucket client in front of its first upload.
    const pushing = await http(`${server.url}/guarded/negotiate`, {
      json: { refs: 'refs/', gc_lease: true },
      token: await server.token('guarded', 'write', 'alice'),
    });
    assert.equal(pushing.status, 200);
    assert.equal(pushing.json?.['presign'], undefined);

    // Over a folder, or with presign off, there is nothing to hand out: no offer, 400.
    for (const plain of [await startTestServer({ config: GET }), await startServer(OFF, 'srv')]) {
      if (plain.dataDir !== undefined) closers.push(() => plain.close());
      const token = await plain.token('guarded', 'read', 'bob');
      const answer = await http(`${plain.url}/guarded/objects/urls`, {
        json: { get: [`chunks/${oid}`] },
        token,
      });
      assert.equal(answer.status, 400);
      const offer = await http(`${plain.url}/guarded/negotiate`, { json: {}, token });
      assert.equal(offer.json?.['presign'], undefined);
    }
  });

  test('a bucket that serves other bytes than the ID is caught by the client', async () => {
    const server = await startServer(GET, 'srv-bad');
    await pushTo(server, 'poisoned');
    const store = new S3Store({ bucket: BUCKET, prefix: 'srv-bad/poisoned', ...options });
    try {
      const chunks = await listed(store, 'chunks/');
      const victim = chunks.sort((a, b) => b.size - a.size)[0]!;
      const stored = await store.get(victim.key);
      stored[stored.length - 1] = stored[stored.length - 1]! ^ 0xff;
      await store.put(victim.key, stored);
    } finally {
      await store.close();
    }
    const dir = path.join(work, 'clone-poisoned');
    const cloned = await cli(server, await server.token('poisoned', 'read', 'bob'))(
      work,
      'clone',
      '-q',
      `${server.url}/poisoned`,
      dir,
    );
    assert.notEqual(cloned.code, 0, 'the clone fails');
    assert.match(cloned.stderr, /corrupt|does not match|integrity/i);
  });
});
