/**
 * mediagit server over S3: the round trips to the bucket a push's last pack waits for once it
 * carries the ref update. The reads the update needs before its walk (whether the new ref would
 * nest with another, the tips of branches and tags) go beside the pack's own requests, and the gc
 * lease read its answer carries goes beside the ref entry's confirming read, not after it (seen
 * through a recording proxy in front of radosgw that holds every request a moment, so requests
 * sent together overlap).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { HttpStore } from '../../src/store/http/index.js';
import { startRecordingProxy, type RecordingProxy } from '../support/recording-proxy.js';
import {
  commitRecords,
  describeRepository,
  startTestServer,
  type TestServer,
} from '../support/server-harness.js';
import { createS3TestBucket } from '../support/s3-bucket.js';
import { skipUnlessServer } from '../support/test-servers.js';

const env = process.env;
const ENDPOINT = env['MEDIAGIT_TEST_S3_ENDPOINT'] ?? '';
const BUCKET = `mg-ref-rt-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const KEYS = { chunk: 'chunks', manifest: 'objects', tree: 'objects', commit: 'objects' } as const;

describe(
  'mediagit server over S3: a pack with a ref update',
  { skip: skipUnlessServer('s3') },
  () => {
    let proxy: RecordingProxy;
    let server: TestServer;

    before(async () => {
      const options = await createS3TestBucket(BUCKET);
      proxy = await startRecordingProxy({
        target: ENDPOINT,
        hold: { match: () => true, ms: 40 },
      });
      server = await startTestServer({
        storage: { url: `s3://${BUCKET}/srv`, options: { ...options, endpoint: proxy.url } },
      });
    });
    after(async () => {
      await server?.close();
      await proxy?.close();
    });

    test('waits for 4 sequential round trips: existence and the ref reads, the PUTs, the ref entry, its confirmation beside the gc lease', async () => {
      const token = await server.token('*', 'write');
      await describeRepository(`${server.url}/game`, token);
      const store = new HttpStore({ origin: server.url, repo: 'game', token });
      try {
        const first = await commitRecords([], 'first');
        proxy.reset();
        let lease: unknown;
        const swapped = await store.putManyThenSwap(
          first.records.map((r) => ({
            key: `${KEYS[r.kind as keyof typeof KEYS]}/${r.oid}`,
            data: r.stored,
          })),
          { name: 'refs/heads/main', expected: null, next: first.commit },
          { endAtNextIsEnough: true, onLeaseAfter: (read) => (lease = read) },
        );
        assert.equal(swapped, true);
        assert.deepEqual(lease, { ref: null, record: null });
        const chain: string[] = [];
        // The pack was not vouched for by a check: one existence round before its 4 PUTs. Then the
        // ref entry's create and its confirmation. Before, the ref reads waited for the PUTs and
        // the lease for the confirmation: 6.
        assert.equal(proxy.sequentialRoundTrips(chain), 4, chain.join('\n'));
      } finally {
        await store.close();
      }
    });
  },
);
