/**
 * The S3 conditional-write probe races several create-only writers on one key and requires
 * exactly one winner, several rounds: radosgw passes it, and a server that checks and then writes
 * without a lock (test/support/non-atomic-s3.ts, in front of radosgw) fails it, so ref updates —
 * and the create-only descriptor write of a first push — are refused there (E_NO_CONDITIONAL_WRITES,
 * exit 12). A probe that only created its key twice in a row passed on that server.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { S3Store } from '../../src/store/s3/index.js';
import { ConditionalWritesUnsupportedError } from '../../src/store/s3/errors.js';
import { startNonAtomicS3Front, type NonAtomicS3Front } from '../support/non-atomic-s3.js';
import { mg, tempDir } from '../support/cli.js';
import { writeRandomFiles } from '../support/corpus.js';
import { startRecordingProxy } from '../support/recording-proxy.js';
import { createS3TestBucket, type S3TestOptions } from '../support/s3-bucket.js';
import { collectList, oidFor } from '../support/store-contract.js';
import { skipUnlessServer } from '../support/test-servers.js';

const skip = skipUnlessServer('s3');
const isProbe = (r: { method: string; url: string }): boolean =>
  r.url.includes('/meta/conditional-write-probe-');

describe('S3 conditional-write probe', { skip }, () => {
  let options: S3TestOptions;
  let front: NonAtomicS3Front;
  const bucket = `mg-probe-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;

  before(async () => {
    options = await createS3TestBucket(bucket);
    front = await startNonAtomicS3Front({
      target: options.endpoint,
      region: options.region,
      credentials: { accessKeyId: options.access_key, secretAccessKey: options.secret_key },
    });
  });
  after(() => front?.close());

  const store = (prefix: string, endpoint = options.endpoint): S3Store =>
    new S3Store({ ...options, endpoint, bucket, prefix });

  test('radosgw passes: ref updates and create-only writes work, and the probe leaves nothing behind', async () => {
    const s = store('radosgw');
    try {
      assert.equal(await s.compareAndSwapRef('refs/heads/main', null, oidFor('a')), true);
      assert.equal(await s.create('meta/repository', Buffer.from('{}\n')), true);
      assert.equal(await s.create('meta/repository', Buffer.from('{"x":1}\n')), false);
    } finally {
      // The probe's keys are deleted behind its answer; close() waits for that.
      await s.close();
    }
    const after = store('radosgw');
    assert.deepEqual(
      (await collectList(after, 'meta/')).map((k) => k.key),
      ['meta/repository'],
    );
    await after.close();
  });

  test('the probe answers in two round trips: the create that waits for it goes third', async () => {
    const proxy = await startRecordingProxy({
      target: options.endpoint,
      hold: { match: () => true, ms: 20 },
    });
    const s = store('rounds', proxy.url);
    try {
      assert.equal(await s.create('meta/repository', Buffer.from('{}\n')), true);
      const chain: string[] = [];
      // Counted up to the create itself: the probe's keys are deleted behind its answer, and on a
      // loaded machine those deletions can still be going on, one after another, after the create.
      const count = proxy.sequentialRoundTrips(
        chain,
        (r) => r.method === 'PUT' && r.url.includes('/meta/repository'),
      );
      // The race, then the read-back beside the late PUT, then the create. Before: race, read,
      // late PUT, delete, create.
      assert.equal(count, 3, chain.join('\n'));
    } finally {
      await s.close();
      await proxy.close();
    }
  });

  test('the fake front is what it claims: a lone second create is refused, racing creates all win', async () => {
    const { S3Client, PutObjectCommand } = await import('@aws-sdk/client-s3');
    const client = new S3Client({
      endpoint: front.url,
      region: options.region,
      forcePathStyle: true,
      credentials: { accessKeyId: options.access_key, secretAccessKey: options.secret_key },
      maxAttempts: 1,
    });
    const put = (key: string, body: string): Promise<number> =>
      client
        .send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, IfNoneMatch: '*' }))
        .then(
          () => 200,
          (err: { $metadata?: { httpStatusCode?: number } }) => err.$metadata?.httpStatusCode ?? 0,
        );
    try {
      assert.equal(await put('sanity/lone', 'first'), 200);
      assert.equal(await put('sanity/lone', 'second'), 412);
      const racing = await Promise.all(
        Array.from({ length: 8 }, (_, i) => put('sanity/race', `writer ${i}`)),
      );
      assert.ok(racing.filter((s) => s === 200).length > 1, `statuses ${racing.join(' ')}`);
    } finally {
      client.destroy();
    }
  });

  test('a server that checks then writes fails the probe: ref updates and create-only writes are refused, objects still work', async () => {
    const s = store('non-atomic', front.url);
    try {
      await assert.rejects(
        s.compareAndSwapRef('refs/heads/main', null, oidFor('a')),
        (e: unknown) => {
          assert.ok(e instanceof ConditionalWritesUnsupportedError, String(e));
          assert.equal(e.code, 'E_NO_CONDITIONAL_WRITES');
          assert.equal(e.exitCode, 12);
          return true;
        },
      );
      assert.equal(await s.readRef('refs/heads/main'), null, 'the refused update wrote nothing');
      await assert.rejects(
        s.create('meta/repository', Buffer.from('{}\n')),
        ConditionalWritesUnsupportedError,
      );
      // The verdict is cached for the store: no second probe.
      const creates = front.creates;
      await assert.rejects(
        s.compareAndSwapRef('refs/heads/main', null, oidFor('b')),
        ConditionalWritesUnsupportedError,
      );
      assert.equal(front.creates, creates, 'no second probe');
      const key = `chunks/${oidFor('plain object')}`;
      await s.put(key, Buffer.from('plain object'));
      assert.equal((await s.get(key)).toString(), 'plain object');
      assert.deepEqual(await collectList(s, 'meta/'), [], 'the probe cleans up after itself');
      assert.deepEqual([...(await s.listRefs('refs/'))], []);
    } finally {
      await s.close();
    }
  });

  test('a push readies the probe behind its uploads, and the probe runs its rounds at once', async () => {
    // Every request held a little, so requests sent together are seen together.
    const proxy = await startRecordingProxy({
      target: options.endpoint,
      hold: { match: () => true, ms: 20 },
    });
    try {
      const repo = await tempDir('probe-early');
      await mg(repo, 'init', '-q');
      await writeRandomFiles(
        repo,
        'one',
        Array.from({ length: 12 }, (_, i) => `f${i}.bin`),
      );
      await mg(repo, 'add', '.');
      await mg(repo, 'commit', '-q', '-m', 'one');
      // Every process probes here (no memory of a pass): what is looked at is the probe's timing.
      const remoteOptions = Object.entries({
        ...options,
        endpoint: proxy.url,
        probe_cache: '',
      }).flatMap(([k, v]) => ['-o', `${k}=${String(v)}`]);
      await mg(repo, 'remote', 'add', 'origin', `s3://${bucket}/early`, ...remoteOptions);
      // The first push creates the descriptor, which needs the probe anyway: look at the next one.
      await mg(repo, 'push', '-q');
      await writeRandomFiles(
        repo,
        'two',
        Array.from({ length: 12 }, (_, i) => `g${i}.bin`),
      );
      await mg(repo, 'add', '.');
      await mg(repo, 'commit', '-q', '-m', 'two');
      proxy.reset();
      proxy.requests.length = 0;
      await mg(repo, 'push', '-q');
      const requests = proxy.requests;
      const firstProbe = requests.findIndex(isProbe);
      const lastUpload = requests.findLastIndex(
        (r) => r.method === 'PUT' && /\/early\/(chunks|objects)\//.test(r.url),
      );
      assert.ok(firstProbe >= 0 && lastUpload >= 0, 'the push probed and uploaded');
      assert.ok(
        firstProbe < lastUpload,
        `the probe started (request ${firstProbe}) before the uploads ended (request ${lastUpload})`,
      );
      const keys = new Set(requests.filter(isProbe).map((r) => r.url.replace(/\?.*/, '')));
      assert.equal(keys.size, 3, 'three rounds, one key each, once per push');
      const together = proxy.maxInFlight((r) => isProbe(r) && r.method === 'PUT');
      assert.ok(together > 8, `the rounds' racing PUTs overlap (${together} in flight at most)`);
    } finally {
      await proxy.close();
    }
  });

  test('a passed probe is remembered for a day (probe_cache): the next process does not probe; a failed one is never remembered', async () => {
    const proxy = await startRecordingProxy({ target: options.endpoint });
    const file = path.join(await tempDir('probe-memory'), 'nested', 'probes.json');
    const memory = (prefix: string, endpoint = proxy.url): S3Store =>
      new S3Store({ ...options, endpoint, bucket, prefix, probe_cache: file });
    const probes = (): number => proxy.requests.filter(isProbe).length;
    try {
      const first = memory('remembered-1');
      assert.equal(await first.compareAndSwapRef('refs/heads/main', null, oidFor('m1')), true);
      await first.close();
      assert.ok(probes() > 0, 'the first store probed');
      const remembered = JSON.parse(await readFile(file, 'utf8')) as Record<string, number>;
      assert.deepEqual(Object.keys(remembered).length, 1);
      proxy.reset();
      proxy.requests.length = 0;
      const second = memory('remembered-2');
      assert.equal(await second.compareAndSwapRef('refs/heads/main', null, oidFor('m2')), true);
      assert.equal(await second.create('meta/repository', Buffer.from('{}\n')), true);
      await second.close();
      assert.equal(probes(), 0, 'the second store probed although a pass was remembered');

      // The pass is the endpoint's: a first push to another bucket there does not probe either,
      // unless the remote keeps the memory per bucket (probe_scope=bucket).
      const other = `${bucket}-b`;
      await createS3TestBucket(other);
      const elsewhere = new S3Store({
        ...options,
        endpoint: proxy.url,
        bucket: other,
        prefix: 'remembered-3',
        probe_cache: file,
      });
      assert.equal(await elsewhere.create('meta/repository', Buffer.from('{}\n')), true);
      assert.equal(await elsewhere.compareAndSwapRef('refs/heads/main', null, oidFor('m4')), true);
      await elsewhere.close();
      assert.equal(probes(), 0, 'a new bucket on a remembered endpoint probed');
      const own = new S3Store({
        ...options,
        endpoint: proxy.url,
        bucket: other,
        prefix: 'remembered-4',
        probe_cache: file,
        probe_scope: 'bucket',
      });
      assert.equal(await own.compareAndSwapRef('refs/heads/main', null, oidFor('m5')), true);
      await own.close();
      assert.ok(probes() > 0, 'probe_scope=bucket did not probe a bucket it had not met');
      assert.equal(
        Object.keys(JSON.parse(await readFile(file, 'utf8')) as Record<string, number>).length,
        2,
        'the endpoint entry and the bucket entry',
      );

      // Expired (a day and a minute old) or damaged: probe again, and remember anew.
      for (const content of [
        JSON.stringify(
          Object.fromEntries(
            Object.keys(remembered).map((k) => [k, Date.now() - 24 * 3600_000 - 60_000]),
          ),
        ),
        '{"not": "closed"',
      ]) {
        await writeFile(file, content);
        proxy.reset();
        proxy.requests.length = 0;
        const again = memory(`remembered-${randomBytes(3).toString('hex')}`);
        assert.equal(await again.compareAndSwapRef('refs/heads/main', null, oidFor('m3')), true);
        await again.close();
        assert.ok(probes() > 0, `no probe with ${content}`);
        const now = JSON.parse(await readFile(file, 'utf8')) as Record<string, number>;
        assert.ok(Object.values(now).every((at) => Date.now() - at < 60_000));
      }

      // The server that fails the probe: refused, and not written down.
      const bad = memory('remembered-bad', front.url);
      await assert.rejects(
        bad.compareAndSwapRef('refs/heads/main', null, oidFor('b')),
        ConditionalWritesUnsupportedError,
      );
      await bad.close();
      const after = JSON.parse(await readFile(file, 'utf8')) as Record<string, number>;
      assert.ok(
        !Object.keys(after).some((k) => k.includes(new URL(front.url).host)),
        'a failed probe was remembered',
      );
    } finally {
      await proxy.close();
    }
  });
});
