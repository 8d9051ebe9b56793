/**
 * mediagit server over S3 and the conditional-write probe (33 requests in two round trips that a
 * store runs before its first ref write): a push's negotiate starts it, so it runs beside the
 * negotiate's reads instead of in front of the push's first write (the descriptor of a new
 * repository), and a passed probe is remembered in the server's user cache folder as the CLI
 * remembers it, so the next repository (or the next server process) does not probe again.
 * Requests are seen through a recording proxy in front of radosgw.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  startRecordingProxy,
  type RecordedRequest,
  type RecordingProxy,
} from '../support/recording-proxy.js';
import {
  describeRepository,
  http,
  startTestServer,
  type TestServer,
} from '../support/server-harness.js';
import { createS3TestBucket, s3TestOptions } from '../support/s3-bucket.js';
import { skipUnlessServer } from '../support/test-servers.js';

const BUCKET = `mg-srv-probe-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;

const probes = (repo: string) => (r: RecordedRequest) =>
  r.url.includes(`/${repo}/meta/conditional-write-probe`);

describe(
  'mediagit server over S3: the conditional-write probe',
  { skip: skipUnlessServer('s3') },
  () => {
    let proxy: RecordingProxy;
    let cacheHome: string;
    const servers: TestServer[] = [];
    const savedCacheHome = process.env['XDG_CACHE_HOME'];

    before(async () => {
      await createS3TestBucket(BUCKET);
      proxy = await startRecordingProxy({ target: s3TestOptions().endpoint });
      cacheHome = await mkdtemp(path.join(os.tmpdir(), 'mg-srv-probe-cache-'));
      // The in-process server's user cache folder (util/user-dirs) for the memory test.
      process.env['XDG_CACHE_HOME'] = cacheHome;
    });
    after(async () => {
      for (const s of servers) await s.close();
      await proxy?.close();
      if (savedCacheHome === undefined) delete process.env['XDG_CACHE_HOME'];
      else process.env['XDG_CACHE_HOME'] = savedCacheHome;
      await rm(cacheHome, { recursive: true, force: true });
    });

    async function serverOverS3(prefix: string, extra: Record<string, string> = {}) {
      const { endpoint: _direct, ...options } = s3TestOptions();
      const server = await startTestServer({
        storage: {
          url: `s3://${BUCKET}/${prefix}`,
          options: { ...options, endpoint: proxy.url, ...extra },
        },
      });
      servers.push(server);
      return server;
    }

    const negotiate = (base: string, token: string, push: boolean) =>
      http(`${base}/negotiate`, {
        method: 'POST',
        token,
        json: {
          refs: 'refs/',
          check: { chunks: [randomBytes(32).toString('hex')], objects: [] },
          ...(push ? { locks: true, gc_lease: true } : {}),
        },
      });

    test("a push's negotiate starts the probe; a fetch's does not", async () => {
      // No memory: every store of this server probes for itself.
      const server = await serverOverS3('no-memory', { probe_cache: '' });
      const token = await server.token('*', 'write');

      const fetching = await negotiate(`${server.url}/fetched`, token, false);
      assert.equal(fetching.status, 200);
      assert.equal(proxy.requests.filter(probes('fetched')).length, 0);

      const pushing = await negotiate(`${server.url}/pushed`, token, true);
      assert.equal(pushing.status, 200);
      // Before the push has written anything, the probe's racing PUTs have already gone out.
      const early = proxy.requests.filter(probes('pushed'));
      assert.ok(
        early.some((r) => r.method === 'PUT'),
        `the probe had not started when the negotiate answered (${early.length} probe requests)`,
      );
      // The write it was started for waits for it and goes through.
      await describeRepository(`${server.url}/pushed`, token);
    });

    test('a passed probe is remembered in the user cache folder: the next repository does not probe', async () => {
      const server = await serverOverS3('memory');
      const token = await server.token('*', 'write');

      await describeRepository(`${server.url}/first`, token);
      const first = proxy.requests.filter(probes('first'));
      assert.ok(first.length > 0, 'the first repository of a new bucket should probe');
      const memory = await readFile(
        path.join(cacheHome, 'mediagit', 's3-conditional-writes.json'),
        'utf8',
      );
      assert.ok(Object.keys(JSON.parse(memory) as object).length > 0);

      await describeRepository(`${server.url}/second`, token);
      assert.equal(proxy.requests.filter(probes('second')).length, 0);
      // Another server process over the same bucket reads the same memory.
      const next = await serverOverS3('memory-next');
      await describeRepository(`${next.url}/third`, await next.token('*', 'write'));
      assert.equal(proxy.requests.filter(probes('third')).length, 0);
    });
  },
);
