/**
 * POST /<repo>/negotiate (docs/protocol.md "Negotiate") against a real server: each part of the
 * answer equals what the separate endpoint answers, before and after the descriptor; a reader may
 * ask; malformed bodies are 400; `[server] negotiate = false` answers as a server from before it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ForwardingStore, type Passage, type Store } from '../../src/store/index.js';
import {
  describeRepository,
  http,
  startTestServer,
  storedObject,
  uploadCommit,
  type TestServer,
} from '../support/server-harness.js';

describe('POST /<repo>/negotiate', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  test('before anything is pushed: no descriptor, no refs, everything missing', async () => {
    const token = await server.token('*', 'write', 'alice');
    const chunk = await storedObject('chunk', randomBytes(100));
    const answer = await http(`${server.url}/empty/negotiate`, {
      token,
      json: {
        refs: 'refs/',
        check: { chunks: [chunk.oid], objects: [] },
        locks: true,
        keys: true,
        gc_lease: true,
      },
    });
    assert.equal(answer.status, 200, answer.body.toString());
    assert.deepEqual(answer.json, {
      version: 1,
      descriptor: null,
      refs: {},
      missing: { chunks: [chunk.oid], objects: [] },
      locks: { ours: [], theirs: [] },
      keys: [],
      gc_lease: { ref: null, record: null },
      descriptor_in_pack: true,
    });
  });

  test('every part matches the endpoint that answers it alone', async () => {
    const base = `${server.url}/game`;
    const alice = await server.token('*', 'write', 'alice');
    const bob = await server.token('*', 'write', 'bob');
    await describeRepository(base, alice);
    const commit = await uploadCommit(base, alice);
    const ref = await http(`${base}/refs`, {
      token: alice,
      json: { name: 'refs/heads/main', expected: null, next: commit },
    });
    assert.equal(ref.status, 200);
    assert.equal(
      (await http(`${base}/locks`, { token: alice, json: { path: 'a.psd' } })).status,
      201,
    );
    assert.equal(
      (await http(`${base}/locks`, { token: bob, json: { path: 'b.psd' } })).status,
      201,
    );
    const absent = await storedObject('chunk', randomBytes(64));

    const answer = await http(`${base}/negotiate`, {
      token: alice,
      json: {
        refs: 'refs/heads/',
        check: { chunks: [absent.oid], objects: [commit] },
        locks: true,
      },
    });
    assert.equal(answer.status, 200, answer.body.toString());
    const json = answer.json!;
    assert.deepEqual(json['descriptor'], (await http(`${base}/info`, { token: alice })).json);
    assert.deepEqual(
      json['refs'],
      (await http(`${base}/refs?prefix=refs/heads/`, { token: alice })).json!['refs'],
    );
    assert.deepEqual(json['missing'], { chunks: [absent.oid], objects: [] });
    assert.deepEqual(
      json['locks'],
      (await http(`${base}/locks/verify`, { token: alice, json: {} })).json,
    );
    // Only what was asked is answered.
    assert.equal(json['keys'], undefined);
    assert.equal(json['gc_lease'], undefined);

    // A reader may negotiate (a fetch does); locks are readable by readers anyway.
    const reader = await server.token('game', 'read', 'carol');
    const read = await http(`${base}/negotiate`, { token: reader, json: { refs: 'refs/' } });
    assert.equal(read.status, 200);
    assert.ok(Object.keys(read.json!['refs'] as object).includes('refs/heads/main'));
    // Nobody else may.
    assert.equal((await http(`${base}/negotiate`, { json: {} })).status, 401);
  });

  test('malformed requests are 400', async () => {
    const token = await server.token('*', 'write');
    const bad: unknown[] = [
      { refs: 7 },
      { refs: 'heads/' },
      { check: [] },
      { check: { chunks: ['not-an-oid'] } },
      { locks: 'yes' },
      { check: { chunks: Array.from({ length: 10_001 }, () => 'a'.repeat(64)) } },
    ];
    for (const json of bad) {
      const answer = await http(`${server.url}/game/negotiate`, { token, json });
      assert.equal(answer.status, 400, JSON.stringify(json).slice(0, 80));
      assert.equal(answer.json?.['error'], 'bad_request');
    }
  });

  test('[server] negotiate = false: the endpoint does not exist, as on a server from before it', async () => {
    const old = await startTestServer({ config: '[server]\nnegotiate = false\n' });
    try {
      const token = await old.token('*', 'write');
      const answer = await http(`${old.url}/game/negotiate`, { token, json: { refs: 'refs/' } });
      assert.equal(answer.status, 400);
      assert.equal(answer.json?.['error'], 'bad_request');
    } finally {
      await old.close();
    }
  });
});

/** Counts the existence checks (`has`) the server asks of each repository's storage. */
class CountingStore extends ForwardingStore {
  constructor(
    inner: Store,
    private readonly counted: { has: number },
  ) {
    super(inner);
  }
  protected override pass<T>(passage: Passage<T>): Promise<T> {
    if (passage.operation === 'has') this.counted.has++;
    return passage.run();
  }
}

describe('POST /<repo>/negotiate: the check of a repository without a descriptor', () => {
  const counts = new Map<string, { has: number }>();
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      wrapStore: (store, area) => {
        const counted = { has: 0 };
        counts.set(area, counted);
        return new CountingStore(store, counted);
      },
    });
  });
  after(() => server?.close());

  test('is answered without asking storage (nothing can be there); once described, it is checked', async () => {
    const base = `${server.url}/first`;
    const token = await server.token('*', 'write');
    const chunks = await Promise.all(
      [1, 2, 3].map((n) => storedObject('chunk', randomBytes(n * 50))),
    );
    const question = (chunkOids: string[], objects: string[]) => ({
      refs: 'refs/',
      check: { chunks: chunkOids, objects },
      gc_lease: true,
    });
    const objectOid = 'ab'.repeat(32);
    const first = await http(`${base}/negotiate`, {
      token,
      json: question(
        chunks.map((c) => c.oid),
        [objectOid],
      ),
    });
    assert.equal(first.status, 200, first.body.toString());
    assert.deepEqual(first.json?.['missing'], {
      chunks: chunks.map((c) => c.oid),
      objects: [objectOid],
    });
    assert.equal(counts.get('first')?.has, 0, 'existence checks asked of storage');

    await describeRepository(base, token);
    const commit = await uploadCommit(base, token);
    const before = counts.get('first')!.has;
    const again = await http(`${base}/negotiate`, {
      token,
      json: question([chunks[0]!.oid], [commit]),
    });
    assert.equal(again.status, 200, again.body.toString());
    assert.deepEqual(again.json?.['missing'], { chunks: [chunks[0]!.oid], objects: [] });
    assert.equal(counts.get('first')!.has - before, 1, 'the check went to storage');
  });
});
