/**
 * Round trips that wait on each other when a push goes straight to a bucket (radosgw), counted
 * through a recording proxy that holds every request a moment so that parallel ones overlap
 * (recording-proxy.ts, `sequentialRoundTrips`). A bucket has no negotiate endpoint: the push asks
 * the same questions with separate reads, all at once after the gc lease (sync/negotiation.ts),
 * and the conditional-write probe ran behind its uploads until a pass was remembered for a day
 * (probe_cache): the second push of the day does not probe. On this repository (24 files, 4
 * changed) an incremental push counted 21-22 sequential round trips with the reads one after
 * another, 13 with them at once, 10 with the probe remembered, and 9 now that the gc lease is
 * read beside the ref update's confirming LIST, 7 now that trees and the commit go beside the
 * manifests. A first push of 4 files to a fresh bucket counted 13-15: the probe now starts beside
 * the reads and the ref's first entry is written against the listing the reads took (no LIST of
 * its log first): 9-10 (requests held 80 ms there), 7-8 with trees and commit beside the manifests.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, tempDir, type CliResult } from '../support/cli.js';
import { writeRandomFiles } from '../support/corpus.js';
import { startRecordingProxy, type RecordingProxy } from '../support/recording-proxy.js';
import { createS3TestBucket, type S3TestOptions } from '../support/s3-bucket.js';
import { skipUnlessServer } from '../support/test-servers.js';

const skip = skipUnlessServer('s3');
/**
 * Incremental push to a bucket: lease, the reads at once (the ref's log listed, then its newest
 * entry read), chunks, then manifests, trees and the commit together (one wave per kind, 9 in
 * all, before), the ref entry's PUT, then its confirming LIST beside the lease's.
 */
const PUSH_LIMIT = 7;
/**
 * First push of a few files (one wave of each kind) to a fresh bucket: lease, the reads at once
 * beside the probe's race, the probe's read-back, the descriptor's create, chunks, then
 * manifests, trees and commit together (7; 9-10 with a wave per kind), the ref entry's PUT, then the
 * confirming LIST beside the lease's.
 */
const FIRST_PUSH_LIMIT = 8;

describe('sequential round trips of a push straight to S3', { skip }, () => {
  const bucket = `mg-rt-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  let options: S3TestOptions;
  let proxy: RecordingProxy;

  before(async () => {
    options = await createS3TestBucket(bucket);
    proxy = await startRecordingProxy({
      target: options.endpoint,
      // Long enough that requests a loaded machine's process sends together still overlap.
      hold: { match: () => true, ms: 80 },
    });
  });
  after(() => proxy?.close());

  test(`a first push of a few files to a fresh bucket lists nothing to find and costs at most ${FIRST_PUSH_LIMIT} sequential round trips`, async (t) => {
    const repo = await tempDir('s3-rt-first');
    const env = { XDG_CACHE_HOME: await tempDir('s3-rt-first-cache') };
    const mg = async (...args: string[]): Promise<CliResult> => {
      const result = await runCli(args, { cwd: repo, env });
      assert.equal(result.code, 0, `mediagit ${args.join(' ')}: ${result.stderr}`);
      return result;
    };
    await mg('init', '-q');
    await writeRandomFiles(
      repo,
      'first',
      Array.from({ length: 4 }, (_, i) => `assets/${i}/file_${i}.bin`),
    );
    await mg('add', '.');
    await mg('commit', '-q', '-m', 'v1');
    // Its own proxy holding each request longer: a first push sends its reads, the probe's race
    // and its clean-up at once, and on a loaded machine the process staggers them by more than
    // 20 ms, which the count would take for round trips.
    const slow = await startRecordingProxy({
      target: options.endpoint,
      hold: { match: () => true, ms: 80 },
    });
    t.after(() => slow.close());
    const remoteOptions = Object.entries({ ...options, endpoint: slow.url }).flatMap(([k, v]) => [
      '-o',
      `${k}=${String(v)}`,
    ]);
    await mg('remote', 'add', 'origin', `s3://${bucket}/first`, ...remoteOptions);
    await mg('push', '-q');
    // The bucket had no descriptor, so nothing of the repository was there to find: no existence
    // listing of chunks/ or objects/ (there were 2 before, one per folder).
    const existence = slow.requests.filter(
      (r) => /list-type=2/.test(r.url) && /prefix=[^&]*%2F(chunks|objects)%2F/.test(r.url),
    );
    assert.deepEqual(
      existence.map((r) => r.url),
      [],
      'a first push asked a bucket without a descriptor which objects it holds',
    );
    const chain: string[] = [];
    const count = slow.sequentialRoundTrips(chain);
    t.diagnostic(`first push: ${count} sequential round trips, ${slow.requests.length} requests`);
    assert.ok(count <= FIRST_PUSH_LIMIT, `${count} sequential round trips:\n${chain.join('\n')}`);
  });

  test('a manifest goes as soon as its chunks have landed, not after the last chunk', async (t) => {
    const repo = await tempDir('s3-rt-manifests');
    const env = { XDG_CACHE_HOME: await tempDir('s3-rt-manifests-cache') };
    const mg = async (...args: string[]): Promise<CliResult> => {
      const result = await runCli(args, { cwd: repo, env });
      assert.equal(result.code, 0, `mediagit ${args.join(' ')}: ${result.stderr}`);
      return result;
    };
    await mg('init', '-q');
    const small = Array.from({ length: 40 }, (_, i) => `a/small_${i}.bin`);
    await writeRandomFiles(repo, 'small', small, 512);
    await writeRandomFiles(repo, 'large', ['z/large_0.bin', 'z/large_1.bin'], 3 * 1024 * 1024);
    await mg('add', '.');
    await mg('commit', '-q', '-m', 'v1');
    const remoteOptions = Object.entries({ ...options, endpoint: proxy.url }).flatMap(([k, v]) => [
      '-o',
      `${k}=${String(v)}`,
    ]);
    await mg('remote', 'add', 'origin', `s3://${bucket}/manifests`, ...remoteOptions);
    proxy.reset();
    await mg('push', '-q');
    const puts = proxy.requests.filter((r) => r.method === 'PUT');
    const lastChunk = puts.findLastIndex((r) => r.url.includes('/chunks/'));
    // Trees and the commit follow every manifest, so an object before the last chunk is a manifest.
    const early = puts.slice(0, lastChunk).filter((r) => r.url.includes('/objects/')).length;
    t.diagnostic(`${early} of 42 manifests went before the last chunk`);
    assert.ok(early > 0, 'every manifest waited for the last chunk');
    // What the push sent is whole: a clone of it checks out every file.
    const clone = path.join(await tempDir('s3-rt-manifests-clone'), 'c');
    const cloned = await runCli(
      ['clone', '-q', `s3://${bucket}/manifests`, clone, ...remoteOptions],
      { cwd: repo, env },
    );
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.equal(
      (await stat(path.join(clone, 'z/large_1.bin'))).size,
      (await stat(path.join(repo, 'z/large_1.bin'))).size,
    );
  });

  test(`an incremental push costs at most ${PUSH_LIMIT} sequential round trips, and does not probe again`, async (t) => {
    const repo = await tempDir('s3-rt');
    // The user's cache folder, where the first push remembers its passed probe (probe_cache).
    const env = { XDG_CACHE_HOME: await tempDir('s3-rt-cache') };
    const mg = async (cwd: string, ...args: string[]): Promise<CliResult> => {
      const result = await runCli(args, { cwd, env });
      assert.equal(result.code, 0, `mediagit ${args.join(' ')}: ${result.stderr}`);
      return result;
    };
    const v1 = Array.from({ length: 24 }, (_, i) => `assets/${i % 4}/file_${i}.bin`);
    await mg(repo, 'init', '-q');
    await writeRandomFiles(repo, 'v1', v1);
    await mg(repo, 'add', '.');
    await mg(repo, 'commit', '-q', '-m', 'v1');
    const remoteOptions = Object.entries({ ...options, endpoint: proxy.url }).flatMap(([k, v]) => [
      '-o',
      `${k}=${String(v)}`,
    ]);
    await mg(repo, 'remote', 'add', 'origin', `s3://${bucket}/rt`, ...remoteOptions);
    await mg(repo, 'push', '-q');
    await writeRandomFiles(repo, 'v2', [v1[0]!, v1[5]!, v1[6]!, 'new.bin']);
    await mg(repo, 'add', '.');
    await mg(repo, 'commit', '-q', '-m', 'v2');
    proxy.reset();
    proxy.requests.length = 0;
    await mg(repo, 'push', '-q');
    const chain: string[] = [];
    const count = proxy.sequentialRoundTrips(chain);
    t.diagnostic(
      `incremental push: ${count} sequential round trips, ${proxy.requests.length} requests`,
    );
    assert.ok(count <= PUSH_LIMIT, `${count} sequential round trips:\n${chain.join('\n')}`);
    const probes = proxy.requests.filter((r) => r.url.includes('/meta/conditional-write-probe-'));
    assert.equal(probes.length, 0, 'the second push probed again');
  });
});
