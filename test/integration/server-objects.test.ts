/**
 * mediagit server over real HTTP: the object, pack, listing, key/meta and descriptor endpoints of
 * docs/protocol.md, for plain and encrypted repositories, including two-part repository names.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { encodeEnvelope, encodeManifest, sha256Hex } from '../../src/objects/index.js';
import {
  decodeTestPack,
  encodeTestPack,
  describeRepository,
  http,
  startTestServer,
  storedObject,
  type TestServer,
} from '../support/server-harness.js';

const descriptor = (encryption: 'aes-256-gcm' | null): Buffer =>
  Buffer.from(
    JSON.stringify({
      format: 'mediagit',
      version: 1,
      chunking: { min_size: 262144, avg_size: 1048576, max_size: 4194304 },
      encryption,
    }),
  );

/** A well-formed encrypted envelope header (docs/encryption.md) and random "ciphertext". */
function sealed(
  kind: 'chunk' | 'manifest' | 'commit',
  size = 200,
): { oid: string; stored: Buffer } {
  const header = encodeEnvelope(kind, 0, 0, Buffer.alloc(0), 1);
  return {
    oid: randomBytes(32).toString('hex'),
    stored: Buffer.concat([header, randomBytes(size)]),
  };
}

describe('mediagit server: objects', () => {
  let server: TestServer;
  let write: string;
  let read: string;
  let admin: string;

  before(async () => {
    server = await startTestServer();
    write = await server.token('*', 'write', 'writer');
    read = await server.token('*', 'read', 'reader');
    admin = await server.token('*', 'admin', 'boss');
    for (const repo of ['plain-a', 'studio/hero-game', 'packs', 'bad-packs', 'listing'])
      await describeRepository(`${server.url}/${repo}`, write);
  });
  after(() => server.close());

  test('chunks: PUT 201, again 200, GET the same bytes, HEAD, check reports only the missing', async () => {
    const { oid, stored } = await storedObject('chunk', randomBytes(5000), true);
    const base = `${server.url}/plain-a`;
    assert.equal(
      (await http(`${base}/chunks/${oid}`, { method: 'PUT', token: write, body: stored })).status,
      201,
    );
    assert.equal(
      (await http(`${base}/chunks/${oid}`, { method: 'PUT', token: write, body: stored })).status,
      200,
    );
    const got = await http(`${base}/chunks/${oid}`, { token: read });
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(got.body, stored);
    assert.equal(
      (await http(`${base}/chunks/${oid}`, { method: 'HEAD', token: read })).status,
      200,
    );
    const absent = sha256Hex(randomBytes(8));
    assert.equal((await http(`${base}/chunks/${absent}`, { token: read })).status, 404);
    assert.equal(
      (await http(`${base}/chunks/${absent}`, { method: 'HEAD', token: read })).status,
      404,
    );
    const check = await http(`${base}/chunks/check`, {
      token: read,
      json: { chunks: [oid, absent], objects: [absent] },
    });
    assert.equal(check.status, 200);
    assert.deepEqual(check.json, { chunks: [absent], objects: [absent] });
  });

  test('manifests and objects: kinds are enforced per endpoint; GET /manifests serves only manifests', async () => {
    const base = `${server.url}/studio/hero-game`;
    const chunk = await storedObject('chunk', Buffer.from('hello'));
    const manifest = await storedObject(
      'manifest',
      encodeManifest({ size: 5, chunks: [{ oid: chunk.oid, size: 5 }] }),
    );
    const commitText = Buffer.from(
      `tree ${'0'.repeat(64)}\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\n\nm\n`,
    );
    const commit = await storedObject('commit', commitText);
    // A manifest is taken only once its chunks are on the server.
    assert.equal(
      (
        await http(`${base}/manifests/${manifest.oid}`, {
          method: 'PUT',
          token: write,
          body: manifest.stored,
        })
      ).status,
      422,
    );
    assert.equal(
      (
        await http(`${base}/chunks/${chunk.oid}`, {
          method: 'PUT',
          token: write,
          body: chunk.stored,
        })
      ).status,
      201,
    );
    assert.equal(
      (
        await http(`${base}/manifests/${manifest.oid}`, {
          method: 'PUT',
          token: write,
          body: manifest.stored,
        })
      ).status,
      201,
    );
    assert.equal(
      (
        await http(`${base}/objects/${commit.oid}`, {
          method: 'PUT',
          token: write,
          body: commit.stored,
        })
      ).status,
      201,
    );
    // A commit is not a manifest, and a chunk is not an object.
    const wrong = await http(`${base}/manifests/${commit.oid}`, {
      method: 'PUT',
      token: write,
      body: commit.stored,
    });
    assert.equal(wrong.status, 422);
    assert.equal(wrong.json?.['error'], 'invalid_object');
    assert.equal(
      (
        await http(`${base}/objects/${chunk.oid}`, {
          method: 'PUT',
          token: write,
          body: chunk.stored,
        })
      ).status,
      422,
    );
    assert.deepEqual(
      (await http(`${base}/objects/${manifest.oid}`, { token: read })).body,
      manifest.stored,
    );
    assert.deepEqual(
      (await http(`${base}/manifests/${manifest.oid}`, { token: read })).body,
      manifest.stored,
    );
    assert.equal((await http(`${base}/manifests/${commit.oid}`, { token: read })).status, 404);
  });

  test('a chunk an admin deleted is not taken as still there: a manifest naming it is refused until it is uploaded again', async () => {
    const base = `${server.url}/plain-a`;
    const chunk = await storedObject('chunk', randomBytes(700));
    const manifest = await storedObject(
      'manifest',
      encodeManifest({ size: 700, chunks: [{ oid: chunk.oid, size: 700 }] }),
    );
    const put = (path: string, body: Buffer, token = write) =>
      http(`${base}/${path}`, { method: 'PUT', token, body });
    // Stored through this server, so it remembers the chunk as present...
    assert.equal((await put(`chunks/${chunk.oid}`, chunk.stored)).status, 201);
    const gone = await http(`${base}/chunks/${chunk.oid}`, { method: 'DELETE', token: admin });
    assert.equal(gone.status, 204);
    // ...until the DELETE: the manifest's check looks at storage again.
    const refused = await put(`manifests/${manifest.oid}`, manifest.stored);
    assert.equal(refused.status, 422, refused.body.toString());
    assert.equal(refused.json?.['oid'], manifest.oid);
    const inPack = await http(`${base}/objects/pack`, {
      token: write,
      body: encodeTestPack([{ kind: 'manifest', ...manifest }]),
    });
    assert.equal(inPack.status, 422);
    assert.equal((await put(`chunks/${chunk.oid}`, chunk.stored)).status, 201);
    assert.equal((await put(`manifests/${manifest.oid}`, manifest.stored)).status, 201);
  });

  test('packs: upload stores every record once, fetch returns those present and counts the rest', async () => {
    const base = `${server.url}/packs`;
    const chunks = await Promise.all(
      Array.from({ length: 20 }, () => storedObject('chunk', randomBytes(300), false)),
    );
    const manifest = await storedObject(
      'manifest',
      encodeManifest({ size: 300, chunks: [{ oid: chunks[0]!.oid, size: 300 }] }),
      true,
    );
    const records = [
      ...chunks.map((c) => ({ kind: 'chunk' as const, ...c })),
      { kind: 'manifest' as const, ...manifest },
    ];
    const first = await http(`${base}/objects/pack`, {
      token: write,
      body: encodeTestPack(records.slice(0, 5)),
    });
    assert.equal(first.status, 200);
    assert.deepEqual(first.json, { stored: 5, existing: 0 });
    const second = await http(`${base}/objects/pack`, {
      token: write,
      body: encodeTestPack(records),
    });
    assert.deepEqual(second.json, { stored: records.length - 5, existing: 5 });

    const missing = sha256Hex(randomBytes(4));
    const want = [
      ...chunks.map((c) => `chunks/${c.oid}`),
      `objects/${manifest.oid}`,
      `objects/${missing}`,
    ];
    const fetched = await http(`${base}/objects/fetch`, { token: read, json: { want } });
    assert.equal(fetched.status, 200);
    assert.equal(fetched.headers.get('x-missing-objects'), '1');
    const got = decodeTestPack(fetched.body);
    assert.equal(got.length, records.length);
    for (const r of got) {
      const original = records.find((x) => x.oid === r.oid);
      assert.ok(original);
      assert.equal(r.kind, original.kind === 'chunk' ? 1 : 2);
      assert.deepEqual(r.stored, original.stored);
    }
  });

  test('packs: one bad record → 422 naming it, and nothing of the pack is stored', async () => {
    const base = `${server.url}/bad-packs`;
    const good = await storedObject('chunk', randomBytes(100));
    const bad = await storedObject('chunk', randomBytes(100));
    const liar = {
      kind: 'chunk' as const,
      oid: sha256Hex(Buffer.from('something else')),
      stored: bad.stored,
    };
    const res = await http(`${base}/objects/pack`, {
      token: write,
      body: encodeTestPack([{ kind: 'chunk', ...good }, liar]),
    });
    assert.equal(res.status, 422);
    assert.equal(res.json?.['oid'], liar.oid);
    const check = await http(`${base}/chunks/check`, { token: read, json: { chunks: [good.oid] } });
    assert.deepEqual(check.json?.['chunks'], [good.oid]);
    const garbage = await http(`${base}/objects/pack`, {
      token: write,
      body: Buffer.from('MGPK\x01\x00\x00\x00\x05junk'),
    });
    assert.equal(garbage.status, 400);
  });

  test('list: sorted pages with next, filtered by prefix', async () => {
    const base = `${server.url}/listing`;
    const chunks = await Promise.all(
      Array.from({ length: 7 }, () => storedObject('chunk', randomBytes(50))),
    );
    for (const c of chunks)
      assert.equal(
        (await http(`${base}/chunks/${c.oid}`, { method: 'PUT', token: write, body: c.stored }))
          .status,
        201,
      );
    const keys: string[] = [];
    let after = '';
    for (let page = 0; page < 10; page++) {
      const res = await http(
        `${base}/list?prefix=chunks/&limit=3${after ? `&after=${after}` : ''}`,
        { token: read },
      );
      assert.equal(res.status, 200);
      const entries = res.json?.['entries'] as { key: string; size: number }[];
      keys.push(...entries.map((e) => e.key));
      const next = res.json?.['next'] as string | null;
      if (next === null) break;
      after = next;
    }
    assert.deepEqual(keys, chunks.map((c) => `chunks/${c.oid}`).sort());
    assert.equal((await http(`${base}/list?prefix=../`, { token: read })).status, 400);
    assert.equal((await http(`${base}/list?limit=0`, { token: read })).status, 400);
  });

  test('info, keys and meta: descriptor round trip, 201/200/409 on PUT, admin-only DELETE', async () => {
    const base = `${server.url}/described`;
    assert.equal((await http(`${base}/info`, { token: read })).status, 404);
    assert.equal(
      (
        await http(`${base}/meta/repository`, {
          method: 'PUT',
          token: write,
          body: Buffer.from('{"not":"a descriptor"}'),
        })
      ).status,
      400,
    );
    assert.equal(
      (
        await http(`${base}/meta/repository`, {
          method: 'PUT',
          token: write,
          body: descriptor(null),
        })
      ).status,
      201,
    );
    assert.equal(
      (
        await http(`${base}/meta/repository`, {
          method: 'PUT',
          token: write,
          body: descriptor(null),
        })
      ).status,
      200,
    );
    assert.equal(
      (
        await http(`${base}/meta/repository`, {
          method: 'PUT',
          token: write,
          body: descriptor('aes-256-gcm'),
        })
      ).status,
      409,
    );
    const info = await http(`${base}/info`, { token: read });
    assert.equal(info.status, 200);
    assert.equal(info.json?.['format'], 'mediagit');
    assert.equal(
      (
        await http(`${base}/keys/laptop`, {
          method: 'PUT',
          token: write,
          body: Buffer.from('{"k":1}'),
        })
      ).status,
      201,
    );
    assert.deepEqual((await http(`${base}/keys`, { token: read })).json, { keys: ['laptop'] });
    assert.deepEqual(
      (await http(`${base}/keys/laptop`, { token: read })).body,
      Buffer.from('{"k":1}'),
    );
    assert.equal(
      (await http(`${base}/meta/lock-x`, { method: 'PUT', token: write, body: Buffer.from('{}') }))
        .status,
      400,
    );
    assert.equal(
      (await http(`${base}/keys/laptop`, { method: 'DELETE', token: write })).status,
      403,
    );
    assert.equal(
      (await http(`${base}/keys/laptop`, { method: 'DELETE', token: admin })).status,
      204,
    );
    assert.equal((await http(`${base}/keys/laptop`, { token: read })).status, 404);
    const { oid, stored } = await storedObject('chunk', randomBytes(10));
    await http(`${base}/chunks/${oid}`, { method: 'PUT', token: write, body: stored });
    assert.equal(
      (await http(`${base}/chunks/${oid}`, { method: 'DELETE', token: admin })).status,
      204,
    );
    assert.equal((await http(`${base}/chunks/${oid}`, { token: read })).status, 404);
  });

  test('unencrypted repository: compressed envelopes are decoded and hashed; sealed ones are refused', async () => {
    const base = `${server.url}/plain-b`;
    await http(`${base}/meta/repository`, { method: 'PUT', token: write, body: descriptor(null) });
    const good = await storedObject('chunk', Buffer.alloc(20_000, 7), true);
    assert.equal(
      (await http(`${base}/chunks/${good.oid}`, { method: 'PUT', token: write, body: good.stored }))
        .status,
      201,
    );
    const s = sealed('chunk');
    assert.equal(
      (await http(`${base}/chunks/${s.oid}`, { method: 'PUT', token: write, body: s.stored }))
        .status,
      422,
    );
    const truncated = good.stored.subarray(0, good.stored.length - 5);
    assert.equal(
      (await http(`${base}/chunks/${good.oid}`, { method: 'PUT', token: write, body: truncated }))
        .status,
      422,
    );
  });

  test('encrypted repository: header checks only (cipher 1, codec 0, length 0, minimum size)', async () => {
    const base = `${server.url}/secret`;
    assert.equal(
      (
        await http(`${base}/meta/repository`, {
          method: 'PUT',
          token: write,
          body: descriptor('aes-256-gcm'),
        })
      ).status,
      201,
    );
    const s = sealed('chunk');
    assert.equal(
      (await http(`${base}/chunks/${s.oid}`, { method: 'PUT', token: write, body: s.stored }))
        .status,
      201,
    );
    const m = sealed('manifest');
    assert.equal(
      (await http(`${base}/manifests/${m.oid}`, { method: 'PUT', token: write, body: m.stored }))
        .status,
      201,
    );
    const plain = await storedObject('chunk', randomBytes(100));
    assert.equal(
      (
        await http(`${base}/chunks/${plain.oid}`, {
          method: 'PUT',
          token: write,
          body: plain.stored,
        })
      ).status,
      422,
    );
    const tiny = sealed('chunk', 10);
    assert.equal(
      (await http(`${base}/chunks/${tiny.oid}`, { method: 'PUT', token: write, body: tiny.stored }))
        .status,
      422,
    );
    const wrongKind = sealed('commit');
    assert.equal(
      (
        await http(`${base}/chunks/${wrongKind.oid}`, {
          method: 'PUT',
          token: write,
          body: wrongKind.stored,
        })
      ).status,
      422,
    );
    const pack = encodeTestPack([
      { kind: 'chunk', ...sealed('chunk') },
      { kind: 'commit', ...sealed('commit') },
    ]);
    assert.deepEqual((await http(`${base}/objects/pack`, { token: write, body: pack })).json, {
      stored: 2,
      existing: 0,
    });
  });

  test('health endpoints need no credentials', async () => {
    assert.deepEqual((await http(`${server.url}/health`)).json, { status: 'ok' });
    const detailed = (await http(`${server.url}/health/detailed`)).json;
    assert.equal(detailed?.['status'], 'ok');
    assert.deepEqual(detailed?.['storage'], { reachable: true, backend: 'local', full: false });
    assert.equal(typeof detailed?.['version'], 'string');
    assert.equal(typeof detailed?.['uptime_s'], 'number');
  });
});
