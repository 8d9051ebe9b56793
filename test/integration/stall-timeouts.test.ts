/**
 * No hang, ever (issue 16, item 1): every cloud backend behind a fault proxy that accepts a request
 * and never answers, or sends the start of a reply and then nothing. Each stalled attempt must end
 * (per-request deadline, or the backend's idle timer), be retried, and when the retries run out
 * fail as E_STORE_UNAVAILABLE naming the remote. A stall on one attempt only must cost a retry and
 * nothing else.
 *
 * The timeouts are set small through the remote's options; the tests assert on outcomes and on
 * what the proxy saw, never on elapsed time.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { StoreUnavailableError } from '../../src/errors/index.js';
import { openStore, type Store, type StoreOptions } from '../../src/store/index.js';
import { nextRequests, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { descriptorBytes, startTestServer, type TestServer } from '../support/server-harness.js';
import { skipUnlessServer } from '../support/test-servers.js';

const RUN = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const env = process.env;
const KEY = 'meta/repository';

interface Backend {
  name: string;
  skip: string | false;
  /** The server's own URL (the proxy's target), and the remote URL + options given the proxy's URL. */
  prepare(): Promise<{
    target: string;
    remote(proxyUrl: string): { url: string; options: StoreOptions };
    tokens?: (origin: string, repo: string) => Promise<string | undefined>;
    close?: () => Promise<void>;
  }>;
}

const backends: Backend[] = [
  {
    name: 'S3 (radosgw)',
    skip: skipUnlessServer('s3'),
    async prepare() {
      const bucket = `mg-stall-${RUN}`.toLowerCase();
      const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
      const client = new S3Client({
        endpoint: env['MEDIAGIT_TEST_S3_ENDPOINT']!,
        region: env['MEDIAGIT_TEST_S3_REGION'] ?? 'us-east-1',
        forcePathStyle: true,
        credentials: {
          accessKeyId: env['MEDIAGIT_TEST_S3_ACCESS_KEY'] ?? '',
          secretAccessKey: env['MEDIAGIT_TEST_S3_SECRET_KEY'] ?? '',
        },
      });
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      client.destroy();
      return {
        target: env['MEDIAGIT_TEST_S3_ENDPOINT']!,
        remote: (proxyUrl) => ({
          url: `s3://${bucket}/stall`,
          options: {
            endpoint: proxyUrl,
            region: env['MEDIAGIT_TEST_S3_REGION'] ?? 'us-east-1',
            force_path_style: true,
            access_key: env['MEDIAGIT_TEST_S3_ACCESS_KEY'] ?? '',
            secret_key: env['MEDIAGIT_TEST_S3_SECRET_KEY'] ?? '',
          },
        }),
      };
    },
  },
  {
    name: 'Azure Blob (Azurite)',
    skip: skipUnlessServer('azure'),
    async prepare() {
      const container = `mg-stall-${RUN}`.toLowerCase();
      const { BlobServiceClient, StorageSharedKeyCredential } = await import('@azure/storage-blob');
      const endpoint = env['MEDIAGIT_TEST_AZURE_ENDPOINT']!;
      const account = env['MEDIAGIT_TEST_AZURE_ACCOUNT'] ?? 'devstoreaccount1';
      const key = env['MEDIAGIT_TEST_AZURE_KEY'] ?? '';
      await new BlobServiceClient(
        endpoint,
        new StorageSharedKeyCredential(account, key),
      ).createContainer(container);
      const origin = new URL(endpoint);
      return {
        target: origin.origin,
        // Azurite's endpoint carries the account as its path: keep it behind the proxy.
        remote: (proxyUrl) => ({
          url: `azure://${container}/stall`,
          options: {
            endpoint: `${proxyUrl}${origin.pathname.replace(/\/$/, '')}`,
            account_name: account,
            account_key: key,
          },
        }),
      };
    },
  },
  {
    name: 'GCS (test server)',
    skip: skipUnlessServer('gcs'),
    async prepare() {
      const bucket = `mg-stall-${RUN}`.toLowerCase();
      const { Storage } = await import('@google-cloud/storage');
      const endpoint = env['MEDIAGIT_TEST_GCS_ENDPOINT']!;
      await new Storage({ apiEndpoint: endpoint, projectId: 'test' }).createBucket(bucket);
      return {
        target: new URL(endpoint).origin,
        remote: (proxyUrl) => ({
          url: `gs://${bucket}/stall`,
          options: { endpoint: proxyUrl, project: 'test' },
        }),
      };
    },
  },
  {
    name: 'mediagit server',
    skip: false,
    async prepare() {
      const server: TestServer = await startTestServer();
      const token = await server.token('*', 'admin');
      return {
        target: server.url,
        remote: (proxyUrl) => ({ url: `${proxyUrl}/stall`, options: {} }),
        tokens: () => Promise.resolve(token),
        close: () => server.close(),
      };
    },
  },
];

const TIMEOUTS: StoreOptions = { request_timeout_ms: 1500, max_retries: 2 };

for (const backend of backends) {
  describe(`stalled connections: ${backend.name}`, { skip: backend.skip }, () => {
    let proxy: FaultProxy;
    let store: Store;
    let close: (() => Promise<void>) | undefined;
    const data = descriptorBytes();

    before(async () => {
      const prepared = await backend.prepare();
      close = prepared.close;
      proxy = await startFaultProxy({ target: prepared.target });
      const { url, options } = prepared.remote(proxy.url);
      ({ store } = await openStore(
        url,
        { ...options, ...TIMEOUTS },
        process.cwd(),
        undefined,
        prepared.tokens,
      ));
      await store.put(KEY, data);
    });

    after(async () => {
      await store?.close();
      await proxy?.close();
      await close?.();
    });

    test('a request that is never answered is retried, then reported unavailable naming the remote', async () => {
      proxy.setPlan(() => ({ kind: 'stall' }));
      const seen = proxy.injected.get('stall') ?? 0;
      await assert.rejects(store.get(KEY), (err: unknown) => {
        assert.ok(err instanceof StoreUnavailableError, String(err));
        assert.equal(err.code, 'E_STORE_UNAVAILABLE');
        assert.ok(err.message.includes(store.description), err.message);
        return true;
      });
      // The first attempt and both retries all reached the proxy and stalled there.
      assert.ok((proxy.injected.get('stall') ?? 0) - seen >= 3);
      proxy.setPlan(undefined);
    });

    test('a ref read that is never answered fails as unavailable instead of hanging', async () => {
      proxy.setPlan(() => ({ kind: 'stall' }));
      await assert.rejects(
        store.readRef('refs/heads/main'),
        (err: unknown) => err instanceof StoreUnavailableError,
      );
      proxy.setPlan(undefined);
    });

    test('one stalled attempt (headers never come) costs a retry and the read succeeds', async () => {
      proxy.setPlan(nextRequests({ kind: 'stall' }, 1));
      assert.deepEqual(await store.get(KEY), data);
      proxy.setPlan(undefined);
    });

    test('a reply that stops mid-body is retried and the read succeeds', async () => {
      const before = proxy.injected.get('stall-body') ?? 0;
      proxy.setPlan(nextRequests({ kind: 'stall-body', bytes: 10 }, 1, (r) => r.method === 'GET'));
      assert.deepEqual(await store.get(KEY), data);
      assert.equal((proxy.injected.get('stall-body') ?? 0) - before, 1);
      proxy.setPlan(undefined);
    });
  });
}
