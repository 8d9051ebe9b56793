/**
 * S3 at a native's request count, seen on the wire through a recording proxy in front of radosgw:
 * existence asked by LIST where that takes fewer requests than one HEAD per key (never more), and
 * the answers exactly what HEADs would say.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { S3Store } from '../../src/store/s3/index.js';
import {
  startRecordingProxy,
  type RecordedRequest,
  type RecordingProxy,
} from '../support/recording-proxy.js';
import { createS3TestBucket } from '../support/s3-bucket.js';
import { skipUnlessServer } from '../support/test-servers.js';

const env = process.env;
const ENDPOINT = env['MEDIAGIT_TEST_S3_ENDPOINT'] ?? '';
const ACCESS_KEY = env['MEDIAGIT_TEST_S3_ACCESS_KEY'] ?? '';
const SECRET_KEY = env['MEDIAGIT_TEST_S3_SECRET_KEY'] ?? '';
const REGION = env['MEDIAGIT_TEST_S3_REGION'] ?? 'us-east-1';
const BUCKET = `mg-requests-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;

const chunk = (): string => `chunks/${randomBytes(32).toString('hex')}`;
const isProbe = (r: RecordedRequest): boolean =>
  r.method === 'HEAD' || (r.method === 'GET' && /list-type=2/.test(r.url));

describe('S3 existence checks (radosgw)', { skip: skipUnlessServer('s3') }, () => {
  let proxy: RecordingProxy;
  let prefixes = 0;

  before(async () => {
    await createS3TestBucket(BUCKET);
    proxy = await startRecordingProxy({ target: ENDPOINT });
  });
  after(() => proxy?.close());

  const store = (): S3Store =>
    new S3Store({
      bucket: BUCKET,
      prefix: `p${++prefixes}`,
      endpoint: proxy.url,
      region: REGION,
      access_key: ACCESS_KEY,
      secret_key: SECRET_KEY,
    });

  async function probes(s: S3Store, keys: readonly string[]): Promise<[boolean[], number]> {
    proxy.reset();
    const answer = await s.has(keys);
    return [answer, proxy.requests.filter(isProbe).length];
  }

  test('a push to a fresh remote: 200 keys answered in one request per parallel run, not 200 HEADs', async () => {
    const s = store();
    const present = Array.from({ length: 20 }, chunk);
    await Promise.all(present.map((k) => s.put(k, Buffer.from(k))));
    const absent = Array.from({ length: 180 }, chunk);
    const keys = [...absent, ...present].sort(() => Math.random() - 0.5);
    const [answer, requests] = await probes(s, keys);
    assert.deepEqual(
      answer,
      keys.map((k) => present.includes(k)),
    );
    // Runs of at least 32 keys: 7 listings (16, one per run of 13, before).
    assert.ok(requests <= 8, `${requests} requests for ${keys.length} keys`);
  });

  test('chunks and objects asked together are answered in one round trip', async (t) => {
    // Held long enough that a listing sent after another's answer cannot overlap it.
    const slow = await startRecordingProxy({
      target: ENDPOINT,
      hold: { match: isProbe, ms: 40 },
    });
    t.after(() => slow.close());
    const s = new S3Store({
      bucket: BUCKET,
      prefix: `p${++prefixes}`,
      endpoint: slow.url,
      region: REGION,
      access_key: ACCESS_KEY,
      secret_key: SECRET_KEY,
    });
    const object = (): string => `objects/${randomBytes(32).toString('hex')}`;
    const present = [chunk(), object()];
    await Promise.all(present.map((k) => s.put(k, Buffer.from(k))));
    // 30 and 30: with 16 runs of 4 keys, one run holds the last chunks and the first objects.
    const keys = [
      ...Array.from({ length: 29 }, chunk),
      ...Array.from({ length: 29 }, object),
      ...present,
    ];
    slow.reset();
    const answer = await s.has(keys);
    assert.deepEqual(
      answer,
      keys.map((k) => present.includes(k)),
    );
    const chain: string[] = [];
    const trips = slow.sequentialRoundTrips(chain);
    assert.equal(trips, 1, `${trips} round trips:\n${chain.join('\n')}`);
    assert.ok(slow.requests.length <= 18, `${slow.requests.length} requests for 60 keys`);
    await s.close();
  });

  test('a sparse question in a fuller bucket never takes more requests than HEADs', async () => {
    const s = store();
    const stored = Array.from({ length: 300 }, chunk);
    for (let i = 0; i < stored.length; i += 50)
      await Promise.all(stored.slice(i, i + 50).map((k) => s.put(k, Buffer.from('x'))));
    for (const keys of [
      [stored[3]!, chunk(), stored[250]!],
      [...stored.slice(0, 40), chunk(), chunk()],
      Array.from({ length: 10 }, chunk),
    ]) {
      const [answer, requests] = await probes(s, keys);
      assert.deepEqual(
        answer,
        keys.map((k) => stored.includes(k)),
      );
      assert.ok(requests <= keys.length, `${requests} requests for ${keys.length} keys`);
    }
    // However full the bucket around the keys, at most three round trips: two pages, then HEADs
    // of the rest at once.
    const slow = await startRecordingProxy({ target: ENDPOINT, hold: { match: isProbe, ms: 40 } });
    try {
      const held = new S3Store({
        bucket: BUCKET,
        prefix: `p${prefixes}`,
        endpoint: slow.url,
        region: REGION,
        access_key: ACCESS_KEY,
        secret_key: SECRET_KEY,
      });
      for (const keys of [
        [...Array.from({ length: 40 }, chunk), stored[7]!, stored[150]!, stored[299]!],
        [...stored.slice(0, 120), ...Array.from({ length: 10 }, chunk)],
        [...stored, ...Array.from({ length: 30 }, chunk)],
      ]) {
        slow.reset();
        const answer = await held.has(keys);
        assert.deepEqual(
          answer,
          keys.map((k) => stored.includes(k)),
        );
        const chain: string[] = [];
        const trips = slow.sequentialRoundTrips(chain);
        assert.ok(trips <= 3, `${trips} round trips for ${keys.length} keys:\n${chain.join('\n')}`);
        assert.ok(slow.requests.length <= keys.length, `${slow.requests.length} requests`);
      }
      await held.close();
    } finally {
      await slow.close();
    }
    // Objects under other prefixes of the bucket and other kinds do not confuse the answers.
    const other = `objects/${randomBytes(32).toString('hex')}`;
    await s.put(other, Buffer.from('o'));
    const mixed = [other, ...stored.slice(100, 110), `objects/${randomBytes(32).toString('hex')}`];
    const [answer] = await probes(s, mixed);
    assert.deepEqual(answer, [true, ...Array<boolean>(10).fill(true), false]);
  });
});

describe('S3 ref updates after a read (radosgw)', { skip: skipUnlessServer('s3') }, () => {
  let proxy: RecordingProxy;
  let prefixes = 0;
  const oid = (): string => randomBytes(32).toString('hex');
  const isRefRead = (r: RecordedRequest): boolean =>
    r.method === 'GET' && (/list-type=2/.test(r.url) || /\/refs\//.test(r.url));

  before(async () => {
    await createS3TestBucket(`${BUCKET}-refs`);
    proxy = await startRecordingProxy({ target: ENDPOINT });
  });
  after(() => proxy?.close());

  const store = (prefix: string): S3Store =>
    new S3Store({
      bucket: `${BUCKET}-refs`,
      prefix,
      endpoint: proxy.url,
      region: REGION,
      access_key: ACCESS_KEY,
      secret_key: SECRET_KEY,
    });

  test('an update of the value just read writes against that read: no second read of the log', async () => {
    const prefix = `r${++prefixes}`;
    const s = store(prefix);
    const ref = 'refs/heads/main';
    assert.equal(await s.compareAndSwapRef(ref, null, oid()), true);
    // The probe is done; from here the requests are the update's own.
    for (const read of [() => s.readRef(ref), async () => (await s.listRefs('refs/')).get(ref)]) {
      const value = await read();
      assert.ok(value);
      proxy.reset();
      assert.equal(await s.compareAndSwapRef(ref, value, oid()), true);
      const before = proxy.requests.findIndex((r) => r.method === 'PUT');
      assert.ok(before >= 0, 'no entry was created');
      assert.deepEqual(
        proxy.requests.slice(0, before).filter(isRefRead),
        [],
        'the log was read again before the write',
      );
    }
  });

  test('a value read before another writer moved the ref: the write against it fails, the ref keeps theirs', async () => {
    const prefix = `r${++prefixes}`;
    const ours = store(prefix);
    const theirs = store(prefix);
    const ref = 'refs/heads/main';
    assert.equal(await ours.compareAndSwapRef(ref, null, oid()), true);
    const seen = await ours.readRef(ref);
    const winner = oid();
    assert.equal(await theirs.compareAndSwapRef(ref, await theirs.readRef(ref), winner), true);
    assert.equal(await ours.compareAndSwapRef(ref, seen, oid()), false);
    assert.equal((await ours.readRef(ref))?.oid, winner);
    // A repeat of an update (the same writer token) reads the log first, to tell its own landed
    // write from another's.
    const token = randomBytes(16).toString('hex');
    const value = await ours.readRef(ref);
    const next = oid();
    assert.equal(await ours.compareAndSwapRef(ref, value, next, { writerToken: token }), true);
    proxy.reset();
    assert.equal(await ours.compareAndSwapRef(ref, value, next, { writerToken: token }), true);
    assert.ok(proxy.requests.some(isRefRead), 'the repeat did not read the log');
    assert.equal(proxy.requests.filter((r) => r.method === 'PUT').length, 0, 'the repeat wrote');
  });

  test('a ref the last listing found absent is created without reading its log first', async () => {
    const prefix = `r${++prefixes}`;
    const ours = store(prefix);
    const theirs = store(prefix);
    // The probe is done; from here the requests are the updates' own.
    assert.equal(await ours.compareAndSwapRef('refs/heads/main', null, oid()), true);
    const isRefWrite = (r: RecordedRequest): boolean =>
      r.method === 'PUT' && /\/refs\//.test(r.url);
    await ours.listRefs('refs/');
    proxy.reset();
    const created = oid();
    assert.equal(await ours.compareAndSwapRef('refs/heads/new', null, created), true);
    const write = proxy.requests.findIndex(isRefWrite);
    assert.ok(write >= 0, 'no entry was created');
    assert.deepEqual(
      proxy.requests.slice(0, write).filter(isRefRead),
      [],
      'the log was read first',
    );
    assert.equal((await theirs.readRef('refs/heads/new'))?.oid, created);

    // Created by another writer after the listing: the create against it loses, theirs stays.
    await ours.listRefs('refs/');
    const winner = oid();
    assert.equal(await theirs.compareAndSwapRef('refs/heads/late', null, winner), true);
    assert.equal(await ours.compareAndSwapRef('refs/heads/late', null, oid()), false);
    assert.equal((await ours.readRef('refs/heads/late'))?.oid, winner);

    // Created and deleted again after the listing: absent holds, so the update succeeds, as it
    // would have with a read first.
    await ours.listRefs('refs/');
    assert.equal(await theirs.compareAndSwapRef('refs/heads/gone', null, oid()), true);
    const gone = await theirs.readRef('refs/heads/gone');
    assert.equal(await theirs.compareAndSwapRef('refs/heads/gone', gone, null), true);
    const again = oid();
    assert.equal(await ours.compareAndSwapRef('refs/heads/gone', null, again), true);
    assert.equal((await theirs.readRef('refs/heads/gone'))?.oid, again);
  });

  test('onWritten is told once the entry is stored and before the confirming read', async () => {
    const prefix = `r${++prefixes}`;
    const s = store(prefix);
    const ref = 'refs/heads/main';
    assert.equal(await s.compareAndSwapRef(ref, null, oid()), true);
    const value = await s.readRef(ref);
    proxy.reset();
    const seen: RecordedRequest[][] = [];
    const swapped = await s.compareAndSwapRef(ref, value, oid(), {
      onWritten: () => seen.push([...proxy.requests]),
    });
    assert.equal(swapped, true);
    assert.equal(seen.length, 1, 'told once');
    const last = seen[0]!.at(-1);
    assert.ok(
      last?.method === 'PUT' && last.url.includes('/refs/heads/main/'),
      'told before the write',
    );
    assert.ok(proxy.requests.slice(seen[0]!.length).some(isRefRead), 'no confirming read after it');
  });

  test('a write against a value just read still needs conditional writes', async () => {
    const prefix = `r${++prefixes}`;
    const ref = 'refs/heads/main';
    assert.equal(await store(prefix).compareAndSwapRef(ref, null, oid()), true);
    const unsafe = new S3Store({
      bucket: `${BUCKET}-refs`,
      prefix,
      endpoint: proxy.url,
      region: REGION,
      access_key: ACCESS_KEY,
      secret_key: SECRET_KEY,
      conditional_writes: 'unsupported',
    });
    const value = await unsafe.readRef(ref);
    assert.ok(value);
    await assert.rejects(unsafe.compareAndSwapRef(ref, value, oid()), {
      code: 'E_NO_CONDITIONAL_WRITES',
    });
    assert.equal((await unsafe.readRef(ref))?.oid, value.oid);
  });
});
