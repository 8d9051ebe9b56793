/**
 * Google Cloud Storage's own limits, as the GCS test server (test/servers/gcs/) plays them: about
 * one write per second to one object (429 rateLimitExceeded beyond it) and a bucket retention
 * policy (403 retentionPolicyNotMet for an object too young to replace or delete). Stores are
 * opened the way the CLI opens them (openStore: timeouts and retries), and each test starts its
 * own server in this process, so nothing here depends on a shared one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Storage } from '@google-cloud/storage';
import { AuthError, MediagitError, RetentionLockedError } from '../../src/errors/index.js';
import { openStore, type RetryInfo, type Store } from '../../src/store/index.js';
import { startFakeGcs, type FakeGcs } from '../servers/gcs/fake-gcs.js';
import { oidFor } from '../support/store-contract.js';

const PROJECT = 'mediagit-test';

async function gcsStore(
  fake: FakeGcs,
  bucket: string,
  onRetry?: (info: RetryInfo) => void,
): Promise<Store> {
  const { store } = await openStore(
    `gs://${bucket}/repo`,
    { endpoint: fake.url, project: PROJECT },
    process.cwd(),
    onRetry,
  );
  return store;
}

describe('GCS: one write per second to one object', () => {
  let fake: FakeGcs;
  let throttled = 0;

  before(async () => {
    fake = await startFakeGcs({
      objectWriteIntervalMs: 1000,
      log: (line) => {
        if (line.endsWith('-> 429')) throttled++;
      },
    });
    await new Storage({ apiEndpoint: fake.url, projectId: PROJECT }).createBucket('limits');
  });

  after(() => fake?.close());

  test('10 clients advancing one ref all land, none reports the remote unavailable; each 429 waits ≥ 1 s, jittered', async () => {
    const waits: number[] = [];
    const onRetry = (info: RetryInfo): void => {
      if (/\b429\b/.test(String(info.error))) waits.push(info.delayMs);
    };
    const clients = await Promise.all(
      Array.from({ length: 10 }, () => gcsStore(fake, 'limits', onRetry)),
    );
    const ref = 'refs/heads/main';
    try {
      const outcomes = await Promise.allSettled(
        clients.map(async (store, i) => {
          const mine = oidFor(`client ${i}`);
          // A push's loop: read, swap, and on losing read again and retry.
          for (let round = 0; ; round++) {
            assert.ok(round < 100, `client ${i} never landed`);
            const current = await store.readRef(ref);
            if (await store.compareAndSwapRef(ref, current, mine)) return;
          }
        }),
      );
      const failures = outcomes.flatMap((o) => (o.status === 'rejected' ? [String(o.reason)] : []));
      assert.deepEqual(failures, []);
      assert.ok(throttled > 0, 'the write limit was reached');
      assert.ok(waits.length > 0);
      for (const ms of waits) assert.ok(ms >= 1000, `waited only ${ms} ms after a 429`);
      if (waits.length > 2) assert.ok(new Set(waits).size > 1, 'the waits are jittered');
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});

describe('GCS: bucket retention policy', () => {
  let fake: FakeGcs;

  before(async () => {
    fake = await startFakeGcs();
    await new Storage({ apiEndpoint: fake.url, projectId: PROJECT }).createBucket('retained', {
      retentionPolicy: { retentionPeriod: 3600 },
    });
  });

  after(() => fake?.close());

  test('replacing or deleting a retained object is reported as retention, not as refused credentials', async () => {
    const store = await gcsStore(fake, 'retained');
    try {
      const ref = 'refs/heads/main';
      assert.equal(await store.compareAndSwapRef(ref, null, oidFor('one')), true);
      const current = await store.readRef(ref);
      const key = `chunks/${oidFor('chunk')}`;
      await store.put(key, Buffer.from('kept'));
      for (const call of [
        () => store.compareAndSwapRef(ref, current, oidFor('two')),
        () => store.delete(key),
      ]) {
        await assert.rejects(call(), (err: unknown) => {
          assert.ok(!(err instanceof AuthError), `reported as refused credentials: ${String(err)}`);
          assert.ok(err instanceof RetentionLockedError, String(err));
          assert.equal(err.code, 'E_RETENTION_LOCKED');
          assert.match(err.message, /retention/);
          assert.ok(err instanceof MediagitError && err.exitCode === 12);
          return true;
        });
      }
      assert.equal((await store.readRef(ref))?.oid, oidFor('one'));
    } finally {
      await store.close();
    }
  });
});
