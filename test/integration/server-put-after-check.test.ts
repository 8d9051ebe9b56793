/**
 * mediagit server over S3 does not look before storing what the client's check just found
 * absent: one S3 request per uploaded chunk instead of two (seen through a recording proxy in
 * front of radosgw), whether it comes alone or in a pack. A PUT or pack the check did not vouch
 * for, or a repeated one, still looks first. Over a local folder likewise: no second look on
 * the disk before writing what the check just found absent.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';
import { Prng } from '../support/corpus.js';
import {
  startRecordingProxy,
  type RecordedRequest,
  type RecordingProxy,
} from '../support/recording-proxy.js';
import {
  describeRepository,
  encodeTestPack,
  http,
  startTestServer,
  storedObject,
  type TestServer,
} from '../support/server-harness.js';
import { createS3TestBucket } from '../support/s3-bucket.js';
import { skipUnlessServer } from '../support/test-servers.js';

const env = process.env;
const ENDPOINT = env['MEDIAGIT_TEST_S3_ENDPOINT'] ?? '';
const ACCESS_KEY = env['MEDIAGIT_TEST_S3_ACCESS_KEY'] ?? '';
const SECRET_KEY = env['MEDIAGIT_TEST_S3_SECRET_KEY'] ?? '';
const REGION = env['MEDIAGIT_TEST_S3_REGION'] ?? 'us-east-1';
const BUCKET = `mg-put-check-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;

describe('mediagit server over S3: a PUT after the check', { skip: skipUnlessServer('s3') }, () => {
  let proxy: RecordingProxy;
  let server: TestServer;

  before(async () => {
    await createS3TestBucket(BUCKET);
    proxy = await startRecordingProxy({ target: ENDPOINT });
    server = await startTestServer({
      storage: {
        url: `s3://${BUCKET}/srv`,
        options: {
          endpoint: proxy.url,
          region: REGION,
          access_key: ACCESS_KEY,
          secret_key: SECRET_KEY,
          force_path_style: true,
        },
      },
    });
  });
  after(async () => {
    await server?.close();
    await proxy?.close();
  });

  const heads = (oid: string) => (r: RecordedRequest) =>
    r.method === 'HEAD' && r.url.includes(`chunks/${oid}`);

  test('checked-absent chunks are stored without a HEAD; unchecked and repeated PUTs still look', async () => {
    const token = await server.token('*', 'write');
    const base = `${server.url}/game`;
    await describeRepository(base, token);
    const chunks = await Promise.all(
      Array.from({ length: 5 }, (_, i) => storedObject('chunk', randomBytes(1000 + i))),
    );
    const check = await http(`${base}/chunks/check`, {
      method: 'POST',
      token,
      json: { chunks: chunks.map((c) => c.oid) },
    });
    assert.equal(check.status, 200);
    assert.equal((check.json?.['chunks'] as string[]).length, 5);

    proxy.reset();
    for (const c of chunks) {
      const put = await http(`${base}/chunks/${c.oid}`, { method: 'PUT', token, body: c.stored });
      assert.equal(put.status, 201);
    }
    for (const c of chunks) assert.equal(proxy.requests.filter(heads(c.oid)).length, 0, c.oid);

    // Again: the check's answer was used up, so the server looks, finds it, and says so.
    const again = await http(`${base}/chunks/${chunks[0]!.oid}`, {
      method: 'PUT',
      token,
      body: chunks[0]!.stored,
    });
    assert.equal(again.status, 200);
    assert.equal(proxy.requests.filter(heads(chunks[0]!.oid)).length, 1);

    // Never checked: looked for first.
    const fresh = await storedObject('chunk', randomBytes(2000));
    const put = await http(`${base}/chunks/${fresh.oid}`, {
      method: 'PUT',
      token,
      body: fresh.stored,
    });
    assert.equal(put.status, 201);
    assert.equal(proxy.requests.filter(heads(fresh.oid)).length, 1);
    const got = await http(`${base}/chunks/${chunks[3]!.oid}`, { token });
    assert.deepEqual(got.body, chunks[3]!.stored);
  });

  /** Requests that ask S3 whether a key exists: a HEAD of it, or any listing. */
  const looks = (r: RecordedRequest) =>
    (r.method === 'HEAD' && /\/(chunks|objects)\//.test(r.url)) ||
    (r.method === 'GET' && r.url.includes('list-type=2'));

  test('a pack of checked-absent chunks costs one PUT per chunk and no existence request; an unchecked pack still looks', async () => {
    const token = await server.token('*', 'write');
    const base = `${server.url}/packs`;
    await describeRepository(base, token);
    const chunk = (i: number) =>
      storedObject('chunk', randomBytes(3000 + i)).then((c) => ({ kind: 'chunk' as const, ...c }));
    const checked = await Promise.all(Array.from({ length: 6 }, (_, i) => chunk(i)));
    const check = await http(`${base}/chunks/check`, {
      method: 'POST',
      token,
      json: { chunks: checked.map((c) => c.oid) },
    });
    assert.equal((check.json?.['chunks'] as string[]).length, 6);

    proxy.reset();
    const pack = await http(`${base}/objects/pack`, {
      method: 'POST',
      token,
      body: encodeTestPack(checked),
    });
    assert.equal(pack.status, 200, pack.body.toString());
    assert.deepEqual(pack.json, { stored: 6, existing: 0 });
    const puts = proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes('/chunks/'));
    assert.equal(puts.length, 6, 'one PUT per chunk');
    assert.deepEqual(proxy.requests.filter(looks), [], 'no existence request before the PUTs');
    // Besides the PUTs, at most the descriptor's one read (remembered from then on).
    const others = proxy.requests.filter((r) => !puts.includes(r));
    assert.ok(
      others.every((r) => r.method === 'GET' && r.url.endsWith('/meta/repository')),
      JSON.stringify(others),
    );

    // Not vouched for by a check: the server looks before storing (and stores what is absent).
    const unchecked = await Promise.all(Array.from({ length: 6 }, (_, i) => chunk(10 + i)));
    proxy.reset();
    const second = await http(`${base}/objects/pack`, {
      method: 'POST',
      token,
      body: encodeTestPack([checked[0]!, ...unchecked]),
    });
    assert.equal(second.status, 200, second.body.toString());
    assert.deepEqual(second.json, { stored: 6, existing: 1 });
    assert.ok(proxy.requests.filter(looks).length > 0, 'an unchecked pack is looked for');
    for (const c of [checked[5]!, unchecked[0]!]) {
      const got = await http(`${base}/chunks/${c.oid}`, { token });
      assert.deepEqual(got.body, c.stored);
    }
  });

  test('a push through the server stores each object with one S3 PUT and reads none of them back', async () => {
    const token = await server.token('*', 'write');
    const repo = await tempDir('put-check-push');
    const prng = new Prng('put-check-push');
    // Over one pack (4 MiB): chunk packs, then the structured objects' pack.
    for (let i = 0; i < 6; i++) {
      await mkdir(path.join(repo, `dir${i % 2}`), { recursive: true });
      await writeFile(
        path.join(repo, `dir${i % 2}`, `f${i}.bin`),
        prng.fill(Buffer.alloc((i + 1) * 300_000)),
      );
    }
    const env = { MEDIAGIT_TOKEN: token, XDG_CONFIG_HOME: await tempDir('put-check-xdg') };
    const mg = (...args: string[]) => runCli(args, { cwd: repo, env });
    await mg('init', '-q');
    await mg('add', '.');
    await mg('commit', '-q', '-m', 'v1');
    await mg('remote', 'add', 'origin', `${server.url}/pushed`);
    const objects: string[] = [];
    for (const ns of ['chunks', 'objects'])
      for (const fan of await readdir(path.join(repo, '.mediagit', ns)))
        for (const name of await readdir(path.join(repo, '.mediagit', ns, fan)))
          objects.push(`${ns}/${fan}${name}`);

    proxy.reset();
    await mg('push', '-q', 'origin', 'main');
    const ofObjects = proxy.requests.filter((r) => /\/srv\/pushed\/(chunks|objects)\//.test(r.url));
    const puts = ofObjects.filter((r) => r.method === 'PUT');
    assert.deepEqual(
      puts.map((r) => r.url.slice(r.url.indexOf('/srv/pushed/') + 12)).sort(),
      objects.sort(),
      'one PUT per pushed object',
    );
    // Neither before storing (the negotiation found them absent), nor for a manifest's chunks
    // (stored by an earlier pack of this push), nor for the ref update's walk (its commit and
    // trees came in the same pack): the negotiation's LISTs are the only existence check.
    assert.deepEqual(
      ofObjects.filter((r) => r.method !== 'PUT'),
      [],
      'no HEAD or GET of an object',
    );
    // The descriptor is read by the negotiation only (a first push: it is absent then); the one
    // the push stores is not read back before its first pack.
    const descriptorReads = proxy.requests.filter(
      (r) => r.method === 'GET' && r.url.endsWith('/srv/pushed/meta/repository'),
    );
    assert.equal(descriptorReads.length, 1);
  });
});

describe('mediagit server over a local folder: a PUT after the check', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server?.close());

  /** The object file the folder store keeps for a chunk (chunks/ab/<62 hex>). */
  const fileOf = (repo: string, oid: string): string =>
    path.join(server.dataDir!, repo, 'chunks', oid.slice(0, 2), oid.slice(2));

  test('checked-absent chunks are written without a second look (a copy that arrived meanwhile is written over), others are looked for', async () => {
    const token = await server.token('*', 'write');
    const base = `${server.url}/folder`;
    await describeRepository(base, token);
    const chunk = (i: number) =>
      storedObject('chunk', randomBytes(3000 + i)).then((c) => ({ kind: 'chunk' as const, ...c }));
    const [single, packed, unchecked] = await Promise.all([chunk(0), chunk(1), chunk(2)]);
    const check = await http(`${base}/chunks/check`, {
      token,
      json: { chunks: [single.oid, packed.oid] },
    });
    assert.equal((check.json?.['chunks'] as string[]).length, 2);
    // Another writer lands the same bytes between the check and the uploads. The server does not
    // look again (the check just did), so it writes the object once more: a new file (inode)
    // where a look would have found the object and left it.
    const inodes = new Map<string, number>();
    for (const c of [single, packed, unchecked]) {
      await mkdir(path.dirname(fileOf('folder', c.oid)), { recursive: true });
      await writeFile(fileOf('folder', c.oid), c.stored, { mode: 0o444 });
      inodes.set(c.oid, (await stat(fileOf('folder', c.oid))).ino);
    }
    const put = await http(`${base}/chunks/${single.oid}`, {
      method: 'PUT',
      token,
      body: single.stored,
    });
    assert.equal(put.status, 201);
    const pack = await http(`${base}/objects/pack`, { token, body: encodeTestPack([packed]) });
    assert.deepEqual(pack.json, { stored: 1, existing: 0 });
    for (const c of [single, packed]) {
      assert.notEqual((await stat(fileOf('folder', c.oid))).ino, inodes.get(c.oid), c.oid);
      assert.deepEqual(await readFile(fileOf('folder', c.oid)), c.stored);
    }
    // Never checked: looked for, found, left alone.
    const again = await http(`${base}/chunks/${unchecked.oid}`, {
      method: 'PUT',
      token,
      body: unchecked.stored,
    });
    assert.equal(again.status, 200);
    assert.equal((await stat(fileOf('folder', unchecked.oid))).ino, inodes.get(unchecked.oid));
  });
});
