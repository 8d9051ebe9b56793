/**
 * Each remote paces its own transfers (StoreCapabilities.pacing), seen at the server through a
 * recording proxy that holds every request a moment so that parallel ones really overlap: a push
 * to and a clone from S3 keep 16 requests in flight (`max_concurrent_requests`), another remote the
 * 8 every remote had before; and objects above the multipart threshold wait for each other within
 * the byte budget (`part_size × max_concurrent_parts`) instead of all going up at once. A server
 * over S3 keeps the same pace at its bucket, however many packs it stores at once.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { StoreOptions } from '../../src/store/index.js';
import { mg, tempDir } from '../support/cli.js';
import { writeRandomFiles } from '../support/corpus.js';
import { PROXIED_BACKENDS, type PreparedBackend } from '../support/proxied-backends.js';
import {
  startRecordingProxy,
  type RecordedRequest,
  type RecordingProxy,
} from '../support/recording-proxy.js';
import { createS3TestBucket } from '../support/s3-bucket.js';
import {
  describeRepository,
  encodeTestPack,
  http,
  startTestServer,
  storedObject,
} from '../support/server-harness.js';
import { skipUnlessServer } from '../support/test-servers.js';

const MiB = 1024 * 1024;
/** Enough one-chunk files that a push has far more uploads than any limit lets run at once. */
const FILES = 48;

const optionArgs = (options: StoreOptions): string[] =>
  Object.entries(options).flatMap(([k, v]) => ['-o', `${k}=${String(v)}`]);
const chunkPut = (r: RecordedRequest): boolean => r.method === 'PUT' && r.url.includes('/chunks/');
const chunkGet = (r: RecordedRequest): boolean => r.method === 'GET' && r.url.includes('/chunks/');

async function proxied(
  backend: (typeof PROXIED_BACKENDS)[number],
  label: string,
): Promise<{ prepared: PreparedBackend; proxy: RecordingProxy }> {
  const prepared = await backend.prepare(label);
  const proxy = await startRecordingProxy({
    target: prepared.target,
    hold: { match: () => true, ms: 30 },
  });
  after(async () => {
    await proxy.close();
    await prepared.close?.();
  });
  return { prepared, proxy };
}

async function repoWith(
  names: readonly string[],
  size: number,
  init: string[] = [],
): Promise<string> {
  const repo = await tempDir('pacing');
  await mg(repo, 'init', '-q', ...init);
  await writeRandomFiles(repo, 'pacing', names, size);
  await mg(repo, 'add', '.');
  await mg(repo, 'commit', '-q', '-m', 'v1');
  return repo;
}

const s3 = PROXIED_BACKENDS.find((b) => b.name.startsWith('S3'))!;
const azure = PROXIED_BACKENDS.find((b) => b.name.startsWith('Azure'))!;
const files = Array.from({ length: FILES }, (_, i) => `f/${i}.bin`);

describe('requests in flight per remote', () => {
  test('S3: a push and a clone keep 16 chunk requests in flight', { skip: s3.skip }, async () => {
    const { prepared, proxy } = await proxied(s3, 'pace');
    const remote = prepared.remote(proxy.url, 'r');
    const repo = await repoWith(files, 64 * 1024);
    await mg(repo, 'remote', 'add', 'origin', remote.url, ...optionArgs(remote.options));
    proxy.reset();
    await mg(repo, 'push', '-q');
    assert.equal(proxy.requests.filter(chunkPut).length, FILES);
    assert.equal(proxy.maxInFlight(chunkPut), 16);

    proxy.reset();
    const dir = path.join(await tempDir('pacing-clone'), 'c');
    await mg(repo, 'clone', '-q', remote.url, dir, ...optionArgs(remote.options));
    assert.equal(proxy.requests.filter(chunkGet).length, FILES);
    assert.equal(proxy.maxInFlight(chunkGet), 16);
  });

  test('another remote (Azure Blob) keeps the 8 it had', { skip: azure.skip }, async () => {
    const { prepared, proxy } = await proxied(azure, 'pace');
    const remote = prepared.remote(proxy.url, 'r');
    const repo = await repoWith(files, 64 * 1024);
    await mg(repo, 'remote', 'add', 'origin', remote.url, ...optionArgs(remote.options));
    proxy.reset();
    await mg(repo, 'push', '-q');
    assert.equal(proxy.requests.filter(chunkPut).length, FILES);
    assert.equal(proxy.maxInFlight(chunkPut), 8);
  });
});

describe('byte budget of S3 transfers', { skip: s3.skip }, () => {
  test('objects above the multipart threshold are held within part_size × max_concurrent_parts', async () => {
    const { prepared, proxy } = await proxied(s3, 'budget');
    const remote = prepared.remote(proxy.url, 'b');
    // One chunk per file (each file is below the minimum chunk size), each above part_size.
    const big = Array.from({ length: 6 }, (_, i) => `big/${i}.bin`);
    const size = Math.round(6.5 * MiB);
    const repo = await repoWith(big, size, [
      '--chunk-min',
      '7M',
      '--chunk-avg',
      '8M',
      '--chunk-max',
      '16M',
    ]);
    const budget = 10 * MiB;
    const options = { ...remote.options, part_size: String(5 * MiB), max_concurrent_parts: '2' };
    await mg(repo, 'remote', 'add', 'origin', remote.url, ...optionArgs(options));
    proxy.reset();
    await mg(repo, 'push', '-q');
    // Every upload request naming a chunk (create, parts, complete) belongs to that chunk's
    // upload; the existence checks before them (HEAD) hold nothing.
    const byChunk = (r: RecordedRequest): string | null =>
      r.method === 'PUT' || r.method === 'POST'
        ? (/\/chunks\/([0-9a-f]{64})/.exec(r.url)?.[1] ?? null)
        : null;
    const uploads = new Set(proxy.requests.map(byChunk).filter((k) => k !== null));
    assert.equal(uploads.size, big.length);
    assert.ok(
      proxy.requests.some((r) => r.method === 'PUT' && /partNumber=/.test(r.url)),
      'the chunks went up as multipart uploads',
    );
    const held = proxy.maxGroupBytesInFlight(byChunk);
    assert.ok(held >= size, `${held} bytes: at least one whole upload`);
    assert.ok(held <= budget, `${(held / MiB).toFixed(1)} MiB held at once, budget 10 MiB`);
  });
});

describe("a server over S3 keeps the bucket's pace", { skip: skipUnlessServer('s3') }, () => {
  test('packs stored at once through a server over S3 keep 16 PUTs in flight at the bucket, not one set per pack', async () => {
    const bucket = `mg-srv-pace-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
    await createS3TestBucket(bucket);
    const proxy = await startRecordingProxy({
      target: process.env['MEDIAGIT_TEST_S3_ENDPOINT'] ?? '',
      hold: { match: chunkPut, ms: 30 },
    });
    const server = await startTestServer({
      storage: {
        url: `s3://${bucket}/srv`,
        options: {
          endpoint: proxy.url,
          region: process.env['MEDIAGIT_TEST_S3_REGION'] ?? 'us-east-1',
          access_key: process.env['MEDIAGIT_TEST_S3_ACCESS_KEY'] ?? '',
          secret_key: process.env['MEDIAGIT_TEST_S3_SECRET_KEY'] ?? '',
          force_path_style: true,
        },
      },
    });
    after(async () => {
      await server.close();
      await proxy.close();
    });
    const token = await server.token('*', 'write');
    const base = `${server.url}/paced`;
    await describeRepository(base, token);
    // Four packs of 20 chunks, as a push sends them (checked first, then several at once): each
    // pack stores 16 records at once, so together they would have 64 PUTs to make at a time.
    const packs = await Promise.all(
      Array.from({ length: 4 }, (_, p) =>
        Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            storedObject('chunk', randomBytes(2000 + 20 * p + i)).then((c) => ({
              kind: 'chunk' as const,
              ...c,
            })),
          ),
        ),
      ),
    );
    const check = await http(`${base}/chunks/check`, {
      token,
      json: { chunks: packs.flat().map((c) => c.oid) },
    });
    assert.equal((check.json!['chunks'] as string[]).length, 80);
    proxy.reset();
    const answers = await Promise.all(
      packs.map((records) =>
        http(`${base}/objects/pack`, { token, body: encodeTestPack(records) }),
      ),
    );
    for (const answer of answers) assert.deepEqual(answer.json, { stored: 20, existing: 0 });
    assert.equal(proxy.requests.filter(chunkPut).length, 80);
    assert.equal(proxy.maxInFlight(chunkPut), 16);
  });
});
