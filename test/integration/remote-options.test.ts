/**
 * Remote options take effect: each key open.ts used to drop (verify_downloads, block_size,
 * max_single_shot_size, upload_concurrency, list_page_size, resumable_threshold, chunk_size,
 * connect_timeout_ms, has_concurrency) is given through `openStore`, as a remote's config would
 * give it, and its effect is observed on the wire — through a recording proxy in front of the real
 * test server — or, for connect_timeout_ms, against a port on 127.0.0.1 that never answers a
 * connection. Also: a multi remote with different options per side round-trips, and a server
 * refuses unknown [storage] keys at start.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { ConfigError, StoreUnavailableError } from '../../src/errors/index.js';
import { loadServerConfig } from '../../src/server/config.js';
import { openStore, type OpenedStore, type StoreOptions } from '../../src/store/index.js';
import { tempDir } from '../support/cli.js';
import {
  startRecordingProxy,
  type RecordedRequest,
  type RecordingProxy,
} from '../support/recording-proxy.js';
import { createS3TestBucket } from '../support/s3-bucket.js';
import { skipUnlessServer } from '../support/test-servers.js';

const env = process.env;
const RUN = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const KiB = 1024;
const MiB = 1024 * KiB;

const oid = (): string => randomBytes(32).toString('hex');
const chunk = (): string => `chunks/${oid()}`;

async function open(url: string, options: StoreOptions): Promise<OpenedStore> {
  // No retries: every request the proxy sees is one the option caused.
  return openStore(url, { ...options, max_retries: 0 }, process.cwd());
}

const count = (proxy: RecordingProxy, match: (r: RecordedRequest) => boolean): number =>
  proxy.requests.filter(match).length;

// ---- Azure -----------------------------------------------------------------------------------

describe('Azure options take effect (Azurite)', { skip: skipUnlessServer('azure') }, () => {
  const container = `mg-opts-${RUN}`.toLowerCase();
  const account = env['MEDIAGIT_TEST_AZURE_ACCOUNT'] ?? 'devstoreaccount1';
  const key = env['MEDIAGIT_TEST_AZURE_KEY'] ?? '';
  let proxy: RecordingProxy;
  const isHead = (r: RecordedRequest): boolean => r.method === 'HEAD';
  const isBlock = (r: RecordedRequest): boolean =>
    r.method === 'PUT' && /comp=block(&|$)/.test(r.url);

  before(async () => {
    const { BlobServiceClient, StorageSharedKeyCredential } = await import('@azure/storage-blob');
    await new BlobServiceClient(
      env['MEDIAGIT_TEST_AZURE_ENDPOINT']!,
      new StorageSharedKeyCredential(account, key),
    ).createContainer(container);
    proxy = await startRecordingProxy({
      target: env['MEDIAGIT_TEST_AZURE_ENDPOINT']!,
      // Parallel probes and blocks must overlap for the concurrency counts to mean anything.
      hold: { match: (r) => isHead(r) || isBlock(r), ms: 30 },
    });
  });
  after(async () => {
    await proxy?.close();
    const { BlobServiceClient, StorageSharedKeyCredential } = await import('@azure/storage-blob');
    await new BlobServiceClient(
      env['MEDIAGIT_TEST_AZURE_ENDPOINT']!,
      new StorageSharedKeyCredential(account, key),
    )
      .deleteContainer(container)
      .catch(() => undefined);
  });

  const azure = (prefix: string, options: StoreOptions = {}): Promise<OpenedStore> =>
    open(`azure://${container}/${prefix}`, {
      endpoint: proxy.url,
      account_name: account,
      account_key: key,
      ...options,
    });

  test('list_page_size: pages of that many blobs, so more List Blobs requests', async () => {
    const { store } = await azure('list');
    for (let i = 0; i < 5; i++) await store.put(chunk(), Buffer.from(`blob ${i}`));
    const lists = (r: RecordedRequest): boolean => r.method === 'GET' && /comp=list/.test(r.url);
    const listed = async (options: StoreOptions): Promise<number> => {
      const opened = await azure('list', options);
      proxy.reset();
      let n = 0;
      for await (const _ of opened.store.list('chunks/')) n++;
      assert.equal(n, 5);
      await opened.store.close();
      return count(proxy, lists);
    };
    assert.equal(await listed({}), 1, 'default: one page');
    assert.equal(await listed({ list_page_size: 2 }), 3, 'five blobs in pages of two');
  });

  test('max_single_shot_size and block_size: staged blocks of that size above the threshold', async () => {
    const data = randomBytes(3 * MiB);
    const upload = async (options: StoreOptions): Promise<{ blocks: number; lists: number }> => {
      const { store } = await azure('blocks', options);
      proxy.reset();
      const k = chunk();
      await store.put(k, data);
      assert.ok((await store.get(k)).equals(data));
      return {
        blocks: count(proxy, isBlock),
        lists: count(proxy, (r) => r.method === 'PUT' && /comp=blocklist/.test(r.url)),
      };
    };
    assert.deepEqual(await upload({}), { blocks: 0, lists: 0 }, 'default 8 MiB: one Put Blob');
    assert.deepEqual(
      await upload({ max_single_shot_size: MiB, block_size: MiB }),
      { blocks: 3, lists: 1 },
      '3 MiB in 1 MiB blocks',
    );
    assert.deepEqual(
      await upload({ max_single_shot_size: MiB, block_size: 512 * KiB }),
      { blocks: 6, lists: 1 },
      '3 MiB in 512 KiB blocks',
    );
  });

  test('upload_concurrency: blocks of one object in flight at once', async () => {
    const data = randomBytes(2 * MiB);
    const inFlight = async (n: number): Promise<number> => {
      const { store } = await azure('concurrency', {
        max_single_shot_size: 256 * KiB,
        block_size: 256 * KiB,
        upload_concurrency: n,
      });
      proxy.reset();
      await store.put(chunk(), data);
      assert.equal(count(proxy, isBlock), 8);
      return proxy.maxInFlight(isBlock);
    };
    assert.equal(await inFlight(1), 1);
    const four = await inFlight(4);
    assert.ok(four > 1 && four <= 4, `upload_concurrency=4 had ${four} blocks in flight`);
  });

  test('has_concurrency: existence probes of one has() in flight at once', async () => {
    const keys = Array.from({ length: 12 }, chunk);
    const inFlight = async (n: number): Promise<number> => {
      const { store } = await azure('has', { has_concurrency: n });
      proxy.reset();
      assert.deepEqual(
        await store.has(keys),
        keys.map(() => false),
      );
      return proxy.maxInFlight(isHead);
    };
    assert.equal(await inFlight(1), 1);
    const six = await inFlight(6);
    assert.ok(six > 1 && six <= 6, `has_concurrency=6 had ${six} probes in flight`);
  });
});

// ---- GCS -------------------------------------------------------------------------------------

describe('GCS options take effect (test server)', { skip: skipUnlessServer('gcs') }, () => {
  const bucket = `mg-opts-${RUN}`.toLowerCase();
  let proxy: RecordingProxy;
  const isMetadata = (r: RecordedRequest): boolean =>
    r.method === 'GET' && /\/o\/[^?]+/.test(r.url) && !/alt=media/.test(r.url);
  const isMedia = (r: RecordedRequest): boolean => r.method === 'GET' && /alt=media/.test(r.url);
  let corrupt = false;

  before(async () => {
    const { Storage } = await import('@google-cloud/storage');
    await new Storage({
      apiEndpoint: env['MEDIAGIT_TEST_GCS_ENDPOINT']!,
      projectId: 'test',
    }).createBucket(bucket);
    proxy = await startRecordingProxy({
      target: env['MEDIAGIT_TEST_GCS_ENDPOINT']!,
      hold: { match: isMetadata, ms: 30 },
      corrupt: (r) => corrupt && isMedia(r),
    });
  });
  after(() => proxy?.close());

  const gcs = (prefix: string, options: StoreOptions = {}): Promise<OpenedStore> =>
    open(`gs://${bucket}/${prefix}`, { endpoint: proxy.url, project: 'test', ...options });

  const uploads = (kind: string) => (r: RecordedRequest) =>
    r.method === 'POST' && r.url.includes(`uploadType=${kind}`);
  const sessionPuts = (r: RecordedRequest): boolean =>
    r.method === 'PUT' && r.url.includes('upload_id=');

  test('resumable_threshold: objects above it use a resumable session', async () => {
    const data = randomBytes(MiB);
    const upload = async (options: StoreOptions): Promise<[number, number]> => {
      const { store } = await gcs('threshold', options);
      proxy.reset();
      const k = chunk();
      await store.put(k, data);
      assert.ok((await store.get(k)).equals(data));
      return [count(proxy, uploads('multipart')), count(proxy, uploads('resumable'))];
    };
    assert.deepEqual(await upload({}), [1, 0], 'default 8 MiB: one multipart request');
    assert.deepEqual(await upload({ resumable_threshold: 256 * KiB }), [0, 1]);
  });

  test('chunk_size: a resumable upload in requests of that size', async () => {
    const data = randomBytes(MiB);
    const puts = async (options: StoreOptions): Promise<number> => {
      const { store } = await gcs('chunks', { resumable_threshold: 0, ...options });
      proxy.reset();
      const k = chunk();
      await store.put(k, data);
      assert.ok((await store.get(k)).equals(data));
      return count(proxy, sessionPuts);
    };
    assert.equal(await puts({}), 1, 'default: the whole object in one request');
    assert.equal(await puts({ chunk_size: 256 * KiB }), 4, '1 MiB in 256 KiB chunks');
  });

  test('verify_downloads: a body corrupted on the way is caught only when on', async () => {
    const data = randomBytes(64 * KiB);
    const k = chunk();
    await (await gcs('verify')).store.put(k, data);
    corrupt = true;
    try {
      const plain = await (await gcs('verify')).store.get(k);
      assert.equal(plain.length, data.length);
      assert.ok(!plain.equals(data), 'without verification the flipped byte gets through');
      await assert.rejects((await gcs('verify', { verify_downloads: true })).store.get(k));
    } finally {
      corrupt = false;
    }
    assert.ok((await (await gcs('verify', { verify_downloads: true })).store.get(k)).equals(data));
  });

  test('has_concurrency: metadata probes of one has() in flight at once', async () => {
    const keys = Array.from({ length: 12 }, chunk);
    const inFlight = async (n: number): Promise<number> => {
      const { store } = await gcs('has', { has_concurrency: n });
      proxy.reset();
      assert.deepEqual(
        await store.has(keys),
        keys.map(() => false),
      );
      return proxy.maxInFlight(isMetadata);
    };
    assert.equal(await inFlight(1), 1);
    const six = await inFlight(6);
    assert.ok(six > 1 && six <= 6, `has_concurrency=6 had ${six} probes in flight`);
  });
});

// ---- S3 --------------------------------------------------------------------------------------

/**
 * A port on 127.0.0.1 that never completes a TCP handshake: a listener with the smallest backlog,
 * in a worker whose event loop is blocked so nothing is ever accepted, and the backlog filled.
 */
async function blackhole(): Promise<{ port: number; close: () => Promise<void> }> {
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     const net = require('node:net');
     const server = net.createServer();
     server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0), 50);
     });`,
    { eval: true },
  );
  const port = await new Promise<number>((resolve) => worker.once('message', resolve));
  await new Promise((r) => setTimeout(r, 200));
  const fillers: Socket[] = [];
  for (let i = 0; i < 4; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    fillers.push(s);
  }
  await new Promise((r) => setTimeout(r, 200));
  return {
    port,
    close: async () => {
      for (const s of fillers) s.destroy();
      await worker.terminate();
    },
  };
}

describe('S3 connect_timeout_ms takes effect', () => {
  test('a connection that never completes fails after about connect_timeout_ms, shorter first', async (t) => {
    const hole = await blackhole();
    try {
      const attempt = async (ms: number): Promise<number> => {
        const { store } = await open('s3://bucket/p', {
          endpoint: `http://127.0.0.1:${hole.port}`,
          access_key: 'a',
          secret_key: 'b',
          connect_timeout_ms: ms,
        });
        const started = performance.now();
        await assert.rejects(store.get(chunk()), StoreUnavailableError);
        const elapsed = performance.now() - started;
        await store.close();
        return elapsed;
      };
      const short = await attempt(200);
      const long = await attempt(3000);
      t.diagnostic(`gave up after ${Math.round(short)} ms (200) and ${Math.round(long)} ms (3000)`);
      // Ordering only: the short timeout ends before the long one could have, the long one not before it is due.
      assert.ok(long >= 3000, `a 3000 ms connect timeout gave up after ${Math.round(long)} ms`);
      assert.ok(short < 3000, `a 200 ms connect timeout took ${Math.round(short)} ms`);
    } finally {
      await hole.close();
    }
  });
});

// ---- multi with per-side options --------------------------------------------------------------

describe(
  'a multi remote with options per side round-trips (S3 primary, GCS secondary)',
  { skip: skipUnlessServer('s3') || skipUnlessServer('gcs') },
  () => {
    test('each side reaches its own endpoint with its own options', async () => {
      const bucket = `mg-multi-${RUN}`.toLowerCase();
      const s3 = await createS3TestBucket(bucket);
      const { Storage } = await import('@google-cloud/storage');
      await new Storage({
        apiEndpoint: env['MEDIAGIT_TEST_GCS_ENDPOINT']!,
        projectId: 'test',
      }).createBucket(bucket);

      // Both sides take `endpoint`: only per-side keys can point them at different services.
      const options: StoreOptions = {
        primary: `s3://${bucket}/hero`,
        secondary: `gs://${bucket}/hero-mirror`,
        'primary.endpoint': s3.endpoint,
        'primary.region': s3.region,
        'primary.access_key': s3.access_key,
        'primary.secret_key': s3.secret_key,
        'secondary.endpoint': env['MEDIAGIT_TEST_GCS_ENDPOINT']!,
        'secondary.project': 'test',
      };
      const { store } = await open('multi:', options);
      const k = chunk();
      const data = randomBytes(100 * KiB);
      await store.put(k, data);
      const target = oid();
      assert.equal(await store.compareAndSwapRef('refs/heads/main', null, target), true);

      const primary = (await open(`s3://${bucket}/hero`, s3)).store;
      const secondary = (
        await open(`gs://${bucket}/hero-mirror`, {
          endpoint: env['MEDIAGIT_TEST_GCS_ENDPOINT']!,
          project: 'test',
        })
      ).store;
      assert.ok((await primary.get(k)).equals(data), 'on the S3 primary');
      assert.ok((await secondary.get(k)).equals(data), 'on the GCS secondary');
      assert.equal((await primary.readRef('refs/heads/main'))?.oid, target);
      assert.equal((await secondary.readRef('refs/heads/main'))?.oid, target);
      assert.ok((await store.get(k)).equals(data));
      await store.close();
      await primary.close();
      await secondary.close();
    });
  },
);

// ---- server start ------------------------------------------------------------------------------

describe('mediagit server refuses unknown storage options at start', () => {
  const load = async (text: string): Promise<unknown> =>
    loadServerConfig({ configText: text, env: {}, cwd: await tempDir('opts-server') });
  const refused = async (text: string, key: RegExp, valid: RegExp): Promise<void> => {
    await assert.rejects(load(text), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.exitCode, 11);
      assert.match(err.message, key);
      assert.match(`${err.message}\n${err.hint ?? ''}`, valid);
      return true;
    });
  };

  test('in a backend table, in [storage.options], and per multi side', async () => {
    await refused(
      '[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "media"\nno_such_key = 1\n',
      /no_such_key/,
      /no_such_key/,
    );
    await refused(
      '[storage]\nurl = "gs://media/p"\n[storage.options]\nblock_size = 1048576\n',
      /block_size/,
      /verify_downloads/,
    );
    await refused(
      '[storage]\nurl = "multi:"\n[storage.options]\nprimary = "/srv/a"\nsecondary = "s3://media/b"\n"primary.endpoint" = "http://127.0.0.1:1"\n',
      /primary\.endpoint/,
      /secondary\.endpoint/,
    );
    await refused(
      '[storage]\nurl = "azure://media/p"\n[storage.options]\naccount_name = "a"\nlist_page_size = 9000\n',
      /list_page_size/,
      /5000/,
    );
  });

  test('documented keys, the new ones included, are accepted and kept per side', async () => {
    const config = (await load(
      '[storage]\nbackend = "azure"\n[storage.azure]\ncontainer = "media"\naccount_name = "a"\naccount_key = "k"\nblock_size = 1048576\nlist_page_size = 100\n',
    )) as { storage: unknown };
    assert.deepEqual(config.storage, {
      kind: 'single',
      url: 'azure://media/',
      options: { account_name: 'a', account_key: 'k', block_size: 1048576, list_page_size: 100 },
    });
    const multi = (await load(
      '[storage]\nurl = "multi:"\n[storage.options]\nprimary = "/srv/a"\nsecondary = "s3://media/b"\n"secondary.endpoint" = "http://127.0.0.1:1"\nfsync = false\n',
    )) as { storage: unknown };
    assert.deepEqual(multi.storage, {
      kind: 'multi',
      primary: { kind: 'single', url: path.resolve('/srv/a'), options: { fsync: false } },
      secondary: {
        kind: 'single',
        url: 's3://media/b',
        options: { endpoint: 'http://127.0.0.1:1' },
      },
    });
  });
});
