/**
 * The GCS backend driven through the real @google-cloud/storage client against the fake GCS
 * server in test/servers/gcs/ (there is no offline GCS). Because the fake stands in for the real
 * service, it is tested on its own too: the protocol tests below speak raw HTTP to it and pin
 * down the behaviour the store relies on — preconditions and resumable uploads above all.
 *
 *   npm run build && test/servers/gcs.sh start && eval "$(test/servers/gcs.sh env)"
 *
 * Without MEDIAGIT_TEST_GCS_ENDPOINT the store tests against that server are skipped. Tests that
 * start their own in-process fake (protocol, credentials, chunking) or need no server at all
 * (lazy loading, configuration, error mapping against a scripted server) always run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Storage } from '@google-cloud/storage';
import {
  AuthError,
  ConfigError,
  MediagitError,
  NotFoundError,
  StoreUnavailableError,
} from '../../src/errors/index.js';
import { GcsStore, type GcsStoreOptions } from '../../src/store/gcs/gcs-store.js';
import type { RefValue, Store } from '../../src/store/store.js';
import { crc32cBase64 } from '../servers/gcs/crc32c.js';
import { RESUMABLE_QUANTUM, startFakeGcs, type FakeGcs } from '../servers/gcs/fake-gcs.js';
import { collectList, oidFor, patternBytes, storeContract } from '../support/store-contract.js';
import { skipUnlessServer } from '../support/test-servers.js';

const MiB = 1024 * 1024;
const ENDPOINT = process.env['MEDIAGIT_TEST_GCS_ENDPOINT'];
const SKIP = skipUnlessServer('gcs');
const PROJECT = 'mediagit-test';
const RUN = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const BUCKET = `mediagit-test-${RUN}`;

async function rejectsWith<T extends Error>(
  promise: Promise<unknown>,
  cls: abstract new (...args: never[]) => T,
  check?: (err: T) => void,
): Promise<T> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(
    caught instanceof cls,
    `expected ${cls.name}, got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught)}`,
  );
  check?.(caught);
  return caught;
}

async function unusedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** An admin client for setup and inspection, configured like the store (no auth, no retries). */
function adminClient(endpoint: string): Storage {
  return new Storage({
    apiEndpoint: endpoint,
    projectId: PROJECT,
    retryOptions: { autoRetry: false },
  });
}

async function emptyAndDeleteBucket(storage: Storage, bucket: string): Promise<void> {
  const [files] = await storage.bucket(bucket).getFiles();
  for (let i = 0; i < files.length; i += 32)
    await Promise.all(files.slice(i, i + 32).map((f) => f.delete({ ignoreNotFound: true })));
  await storage.bucket(bucket).delete();
}

// -------------------------------------------------------------------------------------------------
// No server needed.

describe('GCS store without a server', () => {
  test('loading and constructing the backend does not load the Google SDK', async () => {
    const moduleUrl = new URL('../../src/store/gcs/gcs-store.js', import.meta.url).href;
    const script = [
      "import { registerHooks } from 'node:module';",
      'const seen = [];',
      'registerHooks({ resolve(specifier, context, next) { seen.push(specifier); return next(specifier, context); } });',
      `const { GcsStore } = await import(${JSON.stringify(moduleUrl)});`,
      "new GcsStore({ bucket: 'b-1', endpoint: 'http://127.0.0.1:9' });",
      'console.log(JSON.stringify(seen));',
    ].join('\n');
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.on('error', reject);
      child.on('close', (code) =>
        code === 0 ? resolve(text) : reject(new Error(`child exited ${code}`)),
      );
    });
    const seen = JSON.parse(out) as string[];
    assert.ok(seen.length > 0, 'the resolve hook saw nothing');
    assert.deepEqual(
      seen.filter((s) => /@google-cloud|google-auth-library|gaxios|teeny-request/.test(s)),
      [],
      'the SDK must be imported on first use, not at module load',
    );
  });

  test('rejects bad configuration up front', () => {
    for (const bucket of [
      '',
      'ab',
      'UPPER',
      '-lead',
      'trail-',
      'goog-bucket',
      'a..b',
      'x'.repeat(64),
    ]) {
      assert.throws(() => new GcsStore({ bucket }), ConfigError, bucket);
    }
    assert.throws(() => new GcsStore({ bucket: 'b-1', chunk_size: 100_000 }), ConfigError);
    assert.throws(
      () => new GcsStore({ bucket: 'b-1', chunk_size: RESUMABLE_QUANTUM + 1 }),
      /multiple of 256 KiB/,
    );
    assert.throws(() => new GcsStore({ bucket: 'b-1', endpoint: 'ftp://x' }), ConfigError);
    assert.throws(
      () => new GcsStore({ bucket: 'b-1', endpoint: 'http://user:pw@127.0.0.1:9' }),
      ConfigError,
    );
    assert.throws(() => new GcsStore({ bucket: 'b-1', prefix: 'a/../b' }), ConfigError);
    assert.throws(() => new GcsStore({ bucket: 'b-1', has_concurrency: 0 }), ConfigError);
    const s = new GcsStore({ bucket: 'b-1', prefix: '/team/x/', endpoint: 'http://127.0.0.1:9/' });
    assert.equal(s.description, 'gs://b-1/team/x (http://127.0.0.1:9)');
    assert.equal(new GcsStore({ bucket: 'my.bucket_1' }).description, 'gs://my.bucket_1');
  });

  test('an unreadable or malformed credentials_path is a ConfigError that does not quote the file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mediagit-gcs-creds-'));
    try {
      const secret = `private-${randomBytes(8).toString('hex')}`;
      const cases: [string, string | undefined][] = [
        ['missing.json', undefined],
        ['garbage.json', `not json ${secret}`],
        ['untyped.json', JSON.stringify({ private_key: secret })],
        ['weird.json', JSON.stringify({ type: 'api_key', key: secret })],
      ];
      for (const [name, content] of cases) {
        const file = path.join(dir, name);
        if (content !== undefined) await writeFile(file, content);
        const store = new GcsStore({
          bucket: 'b-1',
          endpoint: 'http://127.0.0.1:9',
          credentials_path: file,
        });
        await rejectsWith(store.get(`chunks/${oidFor('x')}`), ConfigError, (err) => {
          assert.ok(err.message.includes(file), err.message);
          assert.ok(!`${err.message}${err.hint ?? ''}`.includes(secret), 'file content leaked');
        });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('an endpoint with nothing listening gives StoreUnavailableError naming the endpoint', async () => {
    const endpoint = `http://127.0.0.1:${await unusedPort()}`;
    const stores = [
      new GcsStore({ bucket: 'b-1', endpoint }),
      new GcsStore({ bucket: 'b-1', endpoint, resumable_threshold: 0 }),
    ];
    const key = `chunks/${oidFor('x')}`;
    for (const [label, op] of [
      ['get', () => stores[0]!.get(key)],
      ['put', () => stores[0]!.put(key, Buffer.from('x'))],
      ['resumable put', () => stores[1]!.put(key, Buffer.from('x'))],
      ['has', () => stores[0]!.has([key])],
      ['list', () => collectList(stores[0]!, '')],
      ['readRef', () => stores[0]!.readRef('refs/heads/main')],
      ['listRefs', () => stores[0]!.listRefs('refs/')],
      ['CAS', () => stores[0]!.compareAndSwapRef('refs/heads/main', null, oidFor('x'))],
      ['delete', () => stores[0]!.delete(key)],
    ] as const) {
      await rejectsWith(op(), StoreUnavailableError, (err) => {
        assert.ok(err.message.includes(endpoint), `${label}: ${err.message}`);
        assert.equal(err.code, 'E_STORE_UNAVAILABLE');
      });
    }
  });

  describe('against a scripted server', () => {
    let server: Server;
    let endpoint = '';
    let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
    const requests: string[] = [];

    before(async () => {
      server = createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          requests.push(`${req.method} ${req.url}`);
          handler(req, res);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    const jsonError = (
      res: ServerResponse,
      status: number,
      message: string,
      headers: Record<string, string> = {},
    ): void => {
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
      res.end(
        JSON.stringify({
          error: { code: status, message, errors: [{ message, domain: 'global', reason: 'x' }] },
        }),
      );
    };

    test('503/429/500 map to StoreUnavailableError with Retry-After, for every request shape; no retries inside the backend', async () => {
      const key = `chunks/${oidFor('x')}`;
      for (const [status, retryAfter, expectMs] of [
        [503, '7', 7000],
        [429, '2', 2000],
        [500, undefined, undefined],
        [503, new Date(Date.now() + 30_000).toUTCString(), 30_000],
      ] as const) {
        handler = (req, res) => {
          // Let a resumable upload start, so the failure hits its data request.
          if (req.method === 'POST' && req.url?.includes('uploadType=resumable')) {
            res.writeHead(200, {
              location: `${endpoint}/upload/storage/v1/b/b-1/o?uploadType=resumable&upload_id=abc`,
            });
            return res.end();
          }
          if (req.method === 'GET' && !req.url?.includes('alt=media') && req.url?.includes('/o/'))
            return jsonError(res, 404, 'No such object: b-1/x');
          jsonError(
            res,
            status,
            'overloaded',
            retryAfter === undefined ? {} : { 'retry-after': retryAfter },
          );
        };
        const plain = new GcsStore({ bucket: 'b-1', endpoint });
        const resumable = new GcsStore({ bucket: 'b-1', endpoint, resumable_threshold: 0 });
        for (const [label, op, expectedRequests] of [
          ['get', () => plain.get(key), 1],
          ['multipart put', () => plain.put(key, Buffer.from('x')), 1],
          ['resumable put', () => resumable.put(key, Buffer.from('x')), 3],
          ['list', () => collectList(plain, ''), 1],
        ] as const) {
          requests.length = 0;
          const err = await rejectsWith(op(), StoreUnavailableError);
          const what = `${status} ${label}`;
          if (expectMs === undefined) assert.equal(err.retryAfterMs, undefined, what);
          else {
            assert.ok(err.retryAfterMs !== undefined, `${what}: retryAfterMs missing`);
            assert.ok(
              Math.abs(err.retryAfterMs - expectMs) <= 2000,
              `${what}: retryAfterMs ${err.retryAfterMs}`,
            );
          }
          // Resumable: existence probe, session start, one data request — and no second try.
          assert.equal(
            requests.length,
            expectedRequests,
            `${what}: the backend itself must not retry (${requests.join(', ')})`,
          );
        }
      }
    });

    test('a download cut short is StoreUnavailableError, never short data', async () => {
      const key = `chunks/${oidFor('short')}`;
      const store = new GcsStore({ bucket: 'b-1', endpoint });
      // Chunked body shorter than the stored length the headers announce.
      handler = (_req, res) => {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'x-goog-stored-content-length': '100',
          'x-goog-stored-content-encoding': 'identity',
        });
        res.end(Buffer.alloc(60));
      };
      await rejectsWith(store.get(key), StoreUnavailableError, (err) =>
        assert.match(err.message, /60 of 100 bytes/),
      );
      // Connection dropped in the middle of a Content-Length body.
      handler = (_req, res) => {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': '100',
          'x-goog-stored-content-length': '100',
        });
        res.write(Buffer.alloc(40));
        setTimeout(() => res.socket?.destroy(), 20);
      };
      await rejectsWith(store.get(key), StoreUnavailableError, (err) =>
        assert.ok(err.message.includes(endpoint), err.message),
      );
      handler = (_req, res) => {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'x-goog-stored-content-length': '3',
        });
        res.end('abc');
      };
      assert.equal((await store.get(key)).toString(), 'abc');
    });

    test('403 is AuthError; a 404 naming the bucket is a ConfigError; other 4xx are plain MediagitErrors', async () => {
      const key = `chunks/${oidFor('x')}`;
      const store = new GcsStore({ bucket: 'b-1', endpoint });
      handler = (_req, res) =>
        jsonError(res, 403, 'caller does not have storage.objects.get access');
      await rejectsWith(store.get(key), AuthError, (err) => assert.equal(err.code, 'E_AUTH'));
      await rejectsWith(store.has([key]), AuthError);
      handler = (_req, res) => jsonError(res, 404, 'The specified bucket does not exist.');
      await rejectsWith(store.has([key]), ConfigError, (err) =>
        assert.match(err.message, /bucket 'b-1' does not exist/),
      );
      await rejectsWith(store.delete(key), ConfigError);
      handler = (_req, res) => jsonError(res, 400, 'Invalid argument.');
      const err = await rejectsWith(store.get(key), MediagitError);
      assert.ok(
        !(err instanceof StoreUnavailableError) && !(err instanceof NotFoundError),
        err.name,
      );
    });
  });
});

// -------------------------------------------------------------------------------------------------
// The fake server itself, over raw HTTP.

interface RawResponse {
  status: number;
  headers: Headers;
  body: Buffer;
  json: () => Record<string, unknown>;
}

describe('fake GCS server protocol', () => {
  let fake: FakeGcs;
  const bucket = 'proto-bucket';

  before(async () => {
    fake = await startFakeGcs();
    const res = await raw('POST', `/storage/v1/b?project=${PROJECT}`, {
      body: JSON.stringify({ name: bucket }),
    });
    assert.equal(res.status, 200);
  });
  after(() => fake.close());

  async function raw(
    method: string,
    pathAndQuery: string,
    init: { headers?: Record<string, string>; body?: Buffer | string } = {},
  ): Promise<RawResponse> {
    const url = pathAndQuery.startsWith('http') ? pathAndQuery : `${fake.url}${pathAndQuery}`;
    const res = await fetch(url, {
      method,
      headers: init.headers,
      body: init.body,
      redirect: 'manual',
    });
    const body = Buffer.from(await res.arrayBuffer());
    return {
      status: res.status,
      headers: res.headers,
      body,
      json: () => JSON.parse(body.toString('utf8')) as Record<string, unknown>,
    };
  }

  const objectPath = (name: string, query = ''): string =>
    `/storage/v1/b/${bucket}/o/${encodeURIComponent(name)}${query ? `?${query}` : ''}`;
  const mediaUpload = (name: string, data: Buffer | string, query = ''): Promise<RawResponse> =>
    raw(
      'POST',
      `/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${encodeURIComponent(name)}${query ? `&${query}` : ''}`,
      {
        headers: { 'content-type': 'application/octet-stream' },
        body: data,
      },
    );
  const generationOf = (res: RawResponse): string => {
    const g = res.json().generation;
    assert.equal(typeof g, 'string');
    return g as string;
  };

  test('buckets: insert, get, conflict, missing, delete only when empty; errors use the JSON API error shape', async () => {
    assert.equal((await raw('GET', `/storage/v1/b/${bucket}`)).json().name, bucket);
    const dup = await raw('POST', `/storage/v1/b?project=${PROJECT}`, {
      body: JSON.stringify({ name: bucket }),
    });
    assert.equal(dup.status, 409);
    const missing = await raw('GET', '/storage/v1/b/no-such-bucket');
    assert.equal(missing.status, 404);
    const err = missing.json().error as {
      code: number;
      message: string;
      errors: { reason: string }[];
    };
    assert.equal(err.code, 404);
    assert.equal(err.message, 'The specified bucket does not exist.');
    assert.equal(err.errors[0]?.reason, 'notFound');
    assert.equal(
      (await raw('POST', '/storage/v1/b', { body: JSON.stringify({ name: 'no-project' }) })).status,
      400,
    );
    assert.equal(
      (
        await raw('POST', `/storage/v1/b?project=${PROJECT}`, {
          body: JSON.stringify({ name: 'Bad_Name!' }),
        })
      ).status,
      400,
    );
    await raw('POST', `/storage/v1/b?project=${PROJECT}`, {
      body: JSON.stringify({ name: 'short-lived' }),
    });
    await raw('POST', `/upload/storage/v1/b/short-lived/o?uploadType=media&name=x`, { body: 'x' });
    assert.equal((await raw('DELETE', '/storage/v1/b/short-lived')).status, 409);
    assert.equal((await raw('DELETE', '/storage/v1/b/short-lived/o/x')).status, 204);
    assert.equal((await raw('DELETE', '/storage/v1/b/short-lived')).status, 204);
    assert.equal((await raw('GET', '/storage/v1/b/short-lived')).status, 404);
    assert.equal(
      (await raw('GET', '/storage/v1/b/no-such-bucket/o/x')).json().error !== undefined,
      true,
    );
    assert.equal((await raw('GET', '/storage/v1/projects/x/hmacKeys')).status, 501);
  });

  test('media and multipart uploads; metadata, download with hashes, ranges; generations grow', async () => {
    const data = patternBytes('proto-media', 300_000);
    const first = await mediaUpload('dir/media.bin', data);
    assert.equal(first.status, 200);
    const meta = first.json();
    assert.equal(meta.size, String(data.length));
    assert.equal(meta.md5Hash, createHash('md5').update(data).digest('base64'));
    assert.equal(meta.crc32c, crc32cBase64(data));
    assert.equal(meta.metageneration, '1');

    const got = await raw('GET', objectPath('dir/media.bin', 'alt=media'));
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(data));
    assert.equal(
      got.headers.get('x-goog-hash'),
      `crc32c=${meta.crc32c as string},md5=${meta.md5Hash as string}`,
    );
    assert.equal(got.headers.get('x-goog-generation'), meta.generation);
    assert.equal(got.headers.get('x-goog-stored-content-encoding'), 'identity');
    const viaDownload = await raw(
      'GET',
      `/download/storage/v1/b/${bucket}/o/${encodeURIComponent('dir/media.bin')}?alt=media`,
    );
    assert.ok(viaDownload.body.equals(data));

    const ranged = await raw('GET', objectPath('dir/media.bin', 'alt=media'), {
      headers: { range: 'bytes=10-19' },
    });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get('content-range'), `bytes 10-19/${data.length}`);
    assert.ok(ranged.body.equals(data.subarray(10, 20)));
    const tail = await raw('GET', objectPath('dir/media.bin', 'alt=media'), {
      headers: { range: 'bytes=-5' },
    });
    assert.ok(tail.body.equals(data.subarray(-5)));
    assert.equal(
      (
        await raw('GET', objectPath('dir/media.bin', 'alt=media'), {
          headers: { range: `bytes=${data.length}-` },
        })
      ).status,
      416,
    );

    const boundary = 'b0undary';
    const metadata = JSON.stringify({
      name: 'dir/multi.txt',
      contentType: 'text/plain',
      metadata: { oid: 'abc' },
    });
    const body = Buffer.concat([
      Buffer.from(
        `--${boundary}\r\nContent-Type: application/json\r\n\r\n${metadata}\r\n--${boundary}\r\nContent-Type: text/plain\r\n\r\n`,
      ),
      Buffer.from('line one\r\n--not-the-boundary\r\n'),
      Buffer.from(`\r\n--${boundary}--`),
    ]);
    const multi = await raw('POST', `/upload/storage/v1/b/${bucket}/o?uploadType=multipart`, {
      headers: { 'content-type': `multipart/related; boundary=${boundary}` },
      body,
    });
    assert.equal(multi.status, 200);
    assert.equal(multi.json().contentType, 'text/plain');
    assert.deepEqual(multi.json().metadata, { oid: 'abc' });
    assert.equal(
      (await raw('GET', objectPath('dir/multi.txt', 'alt=media'))).body.toString(),
      'line one\r\n--not-the-boundary\r\n',
    );
    assert.ok(BigInt(generationOf(multi)) > BigInt(meta.generation as string));

    const replaced = await mediaUpload('dir/media.bin', 'new');
    assert.ok(BigInt(generationOf(replaced)) > BigInt(generationOf(multi)));
    const missing = await raw('GET', objectPath('dir/none', 'alt=media'));
    assert.equal(missing.status, 404);
    assert.equal(missing.body.toString(), `No such object: ${bucket}/dir/none`);
    assert.equal(
      (await raw('GET', objectPath('dir/media.bin', `generation=${meta.generation as string}`)))
        .status,
      404,
      'old generations are gone',
    );
  });

  test('supplied MD5/CRC32C are checked before the object is committed', async () => {
    const name = 'hash/checked';
    const wrongMd5 = await raw(
      'POST',
      `/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${encodeURIComponent(name)}`,
      {
        headers: { 'x-goog-hash': `md5=${createHash('md5').update('other').digest('base64')}` },
        body: 'payload',
      },
    );
    assert.equal(wrongMd5.status, 400);
    assert.match((wrongMd5.json().error as { message: string }).message, /MD5/);
    const wrongCrc = await raw(
      'POST',
      `/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${encodeURIComponent(name)}`,
      {
        headers: { 'x-goog-hash': `crc32c=${crc32cBase64(Buffer.from('other'))}` },
        body: 'payload',
      },
    );
    assert.equal(wrongCrc.status, 400);
    assert.equal((await raw('GET', objectPath(name))).status, 404, 'nothing was stored');
    const right = await raw(
      'POST',
      `/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${encodeURIComponent(name)}`,
      {
        headers: {
          'x-goog-hash': `crc32c=${crc32cBase64(Buffer.from('payload'))},md5=${createHash('md5').update('payload').digest('base64')}`,
        },
        body: 'payload',
      },
    );
    assert.equal(right.status, 200);
  });

  test('preconditions on insert, get, patch and delete', async () => {
    const name = 'pre/obj';
    // ifGenerationMatch=0: only when absent.
    const created = await mediaUpload(name, 'v1', 'ifGenerationMatch=0');
    assert.equal(created.status, 200);
    const g1 = generationOf(created);
    const again = await mediaUpload(name, 'v1b', 'ifGenerationMatch=0');
    assert.equal(again.status, 412);
    assert.equal(
      (again.json().error as { errors: { reason: string }[] }).errors[0]?.reason,
      'conditionNotMet',
    );
    // ifGenerationMatch=<g>: only when that generation is live.
    const v2 = await mediaUpload(name, 'v2', `ifGenerationMatch=${g1}`);
    assert.equal(v2.status, 200);
    const g2 = generationOf(v2);
    assert.equal(
      (await mediaUpload(name, 'v3', `ifGenerationMatch=${g1}`)).status,
      412,
      'stale generation',
    );
    assert.equal(
      (await mediaUpload('pre/absent', 'x', `ifGenerationMatch=${g1}`)).status,
      412,
      'no live object to match',
    );
    // ifGenerationNotMatch: needs a live object whose generation differs.
    assert.equal((await mediaUpload(name, 'x', `ifGenerationNotMatch=${g2}`)).status, 412);
    assert.equal(
      (await mediaUpload('pre/absent', 'x', 'ifGenerationNotMatch=0')).status,
      412,
      'NotMatch=0 means "must exist"',
    );
    // ifMetagenerationMatch on insert.
    assert.equal((await mediaUpload(name, 'x', 'ifMetagenerationMatch=2')).status, 412);
    assert.equal(
      (await raw('GET', objectPath(name, 'alt=media'))).body.toString(),
      'v2',
      'failed writes changed nothing',
    );

    // Reads: Match failures are 412, NotMatch failures are 304 Not Modified.
    assert.equal((await raw('GET', objectPath(name, `ifGenerationMatch=${g1}`))).status, 412);
    assert.equal((await raw('GET', objectPath(name, `ifGenerationMatch=${g2}`))).status, 200);
    assert.equal(
      (await raw('GET', objectPath(name, `ifGenerationNotMatch=${g2}&alt=media`))).status,
      304,
    );
    assert.equal(
      (await raw('GET', objectPath(name, `ifGenerationNotMatch=${g1}&alt=media`))).body.toString(),
      'v2',
    );
    assert.equal((await raw('GET', objectPath(name, 'ifMetagenerationMatch=1'))).status, 200);
    assert.equal((await raw('GET', objectPath(name, 'ifMetagenerationNotMatch=1'))).status, 304);
    assert.equal((await raw('GET', objectPath('pre/absent', 'ifGenerationMatch=0'))).status, 404);

    // Patch bumps metageneration only; metageneration preconditions see it.
    const patch = (query: string, body: object): Promise<RawResponse> =>
      raw('PATCH', objectPath(name, query), {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    assert.equal((await patch('ifMetagenerationMatch=2', { metadata: { a: '1' } })).status, 412);
    const patched = await patch('ifMetagenerationMatch=1', { metadata: { a: '1' } });
    assert.equal(patched.status, 200);
    assert.equal(patched.json().metageneration, '2');
    assert.equal(patched.json().generation, g2);
    assert.deepEqual(patched.json().metadata, { a: '1' });
    assert.deepEqual((await patch('', { metadata: { a: null, b: '2' } })).json().metadata, {
      b: '2',
    });
    assert.equal((await mediaUpload(name, 'x', 'ifMetagenerationMatch=1')).status, 412);
    const v3 = await mediaUpload(name, 'v3', 'ifMetagenerationMatch=3');
    assert.equal(v3.status, 200);
    assert.equal(v3.json().metageneration, '1', 'a new generation starts at metageneration 1');
    const g3 = generationOf(v3);

    // Delete.
    assert.equal((await raw('DELETE', objectPath(name, `ifGenerationMatch=${g2}`))).status, 412);
    assert.equal((await raw('DELETE', objectPath(name, 'ifGenerationMatch=0'))).status, 412);
    assert.equal((await raw('DELETE', objectPath(name, 'ifMetagenerationMatch=7'))).status, 412);
    assert.equal((await raw('DELETE', objectPath(name, `ifGenerationMatch=${g3}`))).status, 204);
    assert.equal((await raw('DELETE', objectPath(name))).status, 404);
    assert.equal(
      (await raw('GET', objectPath(name, 'ifGenerationMatch=abc'))).status,
      400,
      'non-numeric condition',
    );
  });

  test('create-if-absent is atomic: 20 simultaneous inserts with ifGenerationMatch=0, one 200', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        mediaUpload('race/one', `writer ${i}`, 'ifGenerationMatch=0'),
      ),
    );
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 200).length, 1, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 412).length, 19);
    const winner = results.find((r) => r.status === 200)!;
    const stored = await raw('GET', objectPath('race/one', 'alt=media'));
    assert.equal(stored.headers.get('x-goog-generation'), generationOf(winner));
    // Same for replacing a known generation.
    const g = generationOf(winner);
    const updates = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        mediaUpload('race/one', `update ${i}`, `ifGenerationMatch=${g}`),
      ),
    );
    assert.equal(updates.filter((r) => r.status === 200).length, 1);
  });

  describe('resumable uploads', () => {
    const start = async (
      name: string,
      query = '',
      headers: Record<string, string> = {},
      body: object = {},
    ): Promise<string> => {
      const res = await raw(
        'POST',
        `/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=${encodeURIComponent(name)}${query ? `&${query}` : ''}`,
        {
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify(body),
        },
      );
      assert.equal(res.status, 200);
      const location = res.headers.get('location');
      assert.ok(location?.includes('upload_id='), `no session URI: ${location}`);
      return location ?? '';
    };
    const put = (
      uri: string,
      range: string | undefined,
      body: Buffer = Buffer.alloc(0),
      headers: Record<string, string> = {},
    ): Promise<RawResponse> =>
      raw('PUT', uri, {
        headers: { ...(range === undefined ? {} : { 'content-range': range }), ...headers },
        body,
      });

    test('chunks: 308 with Range, non-final chunks kept in 256 KiB units, resend of overlap, final 200, idempotent after', async () => {
      const data = patternBytes('resumable', 3 * RESUMABLE_QUANTUM + 1000);
      const uri = await start('res/obj', '', { 'x-upload-content-type': 'application/x-test' });
      const status0 = await put(uri, 'bytes */*');
      assert.equal(status0.status, 308);
      assert.equal(status0.headers.get('range'), null, 'nothing persisted yet');

      // 1.5 quanta: only one quantum is kept.
      const first = await put(
        uri,
        `bytes 0-${RESUMABLE_QUANTUM * 1.5 - 1}/*`,
        data.subarray(0, RESUMABLE_QUANTUM * 1.5),
      );
      assert.equal(first.status, 308);
      assert.equal(first.headers.get('range'), `bytes=0-${RESUMABLE_QUANTUM - 1}`);
      // A gap is refused.
      assert.equal(
        (
          await put(
            uri,
            `bytes ${RESUMABLE_QUANTUM * 2}-${RESUMABLE_QUANTUM * 3 - 1}/*`,
            data.subarray(RESUMABLE_QUANTUM * 2, RESUMABLE_QUANTUM * 3),
          )
        ).status,
        400,
      );
      // Resending from the middle of what was kept: the overlap is ignored.
      const second = await put(
        uri,
        `bytes ${RESUMABLE_QUANTUM / 2}-${RESUMABLE_QUANTUM * 2 + RESUMABLE_QUANTUM / 2 - 1}/*`,
        data.subarray(RESUMABLE_QUANTUM / 2, RESUMABLE_QUANTUM * 2 + RESUMABLE_QUANTUM / 2),
      );
      assert.equal(second.headers.get('range'), `bytes=0-${RESUMABLE_QUANTUM * 2 - 1}`);
      assert.equal(
        (await put(uri, 'bytes */*')).headers.get('range'),
        `bytes=0-${RESUMABLE_QUANTUM * 2 - 1}`,
      );
      // A Content-Range that disagrees with the body length is refused.
      assert.equal(
        (
          await put(
            uri,
            `bytes ${RESUMABLE_QUANTUM * 2}-${RESUMABLE_QUANTUM * 2 + 9}/*`,
            Buffer.alloc(5),
          )
        ).status,
        400,
      );
      assert.equal(
        (await raw('GET', objectPath('res/obj'))).status,
        404,
        'invisible until finished',
      );

      const final = await put(
        uri,
        `bytes ${RESUMABLE_QUANTUM * 2}-${data.length - 1}/${data.length}`,
        data.subarray(RESUMABLE_QUANTUM * 2),
      );
      assert.equal(final.status, 200);
      assert.equal(final.json().size, String(data.length));
      assert.equal(final.json().contentType, 'application/x-test');
      assert.ok((await raw('GET', objectPath('res/obj', 'alt=media'))).body.equals(data));
      const repeat = await put(uri, 'bytes */*');
      assert.equal(repeat.status, 200, 'a finished session answers with the object');
      assert.equal(repeat.json().generation, final.json().generation);
    });

    test('single request with an open end, with and without a declared length', async () => {
      const data = patternBytes('open-ended', 100_000);
      const open = await start('res/open');
      const done = await put(open, 'bytes 0-*/*', data);
      assert.equal(done.status, 200);
      assert.equal(done.json().size, String(data.length));

      const declared = await start('res/declared', '', {
        'x-upload-content-length': String(data.length),
      });
      assert.equal(
        (await put(declared, 'bytes 0-*/*', data.subarray(1))).status,
        400,
        'short of the declared length',
      );
      const good = await start('res/declared2', '', {
        'x-upload-content-length': String(data.length),
      });
      assert.equal((await put(good, `bytes 0-*/${data.length}`, data)).status, 200);
      // "bytes */N" finishes an upload whose bytes are all in.
      const late = await start('res/late-total');
      assert.equal(
        (
          await put(
            late,
            `bytes 0-${RESUMABLE_QUANTUM - 1}/*`,
            patternBytes('q', RESUMABLE_QUANTUM),
          )
        ).status,
        308,
      );
      const fin = await put(late, `bytes */${RESUMABLE_QUANTUM}`);
      assert.equal(fin.status, 200);
      assert.equal(fin.json().size, String(RESUMABLE_QUANTUM));
    });

    test('preconditions are judged when the upload completes, against the object as it is then', async () => {
      const uri = await start('res/cond', 'ifGenerationMatch=0');
      // Another writer creates the object after the session started.
      assert.equal((await mediaUpload('res/cond', 'theirs')).status, 200);
      const done = await put(uri, 'bytes 0-3/4', Buffer.from('mine'));
      assert.equal(done.status, 412);
      assert.equal((await put(uri, 'bytes */*')).status, 412, 'a refused session stays refused');
      assert.equal(
        (await raw('GET', objectPath('res/cond', 'alt=media'))).body.toString(),
        'theirs',
      );

      const ok = await start('res/cond2', 'ifGenerationMatch=0');
      assert.equal((await put(ok, 'bytes 0-3/4', Buffer.from('mine'))).status, 200);
    });

    test('hash mismatch on the final request and cancellation leave nothing behind', async () => {
      const data = Buffer.from('resumable payload');
      const bad = await start(
        'res/hash',
        '',
        {},
        { md5Hash: createHash('md5').update('something else').digest('base64') },
      );
      assert.equal((await put(bad, `bytes 0-${data.length - 1}/${data.length}`, data)).status, 400);
      const badHeader = await start('res/hash');
      assert.equal(
        (
          await put(badHeader, `bytes 0-${data.length - 1}/${data.length}`, data, {
            'x-goog-hash': `crc32c=${crc32cBase64(Buffer.from('x'))}`,
          })
        ).status,
        400,
      );
      assert.equal((await raw('GET', objectPath('res/hash'))).status, 404);

      const cancelled = await start('res/cancel');
      assert.equal(
        (
          await put(
            cancelled,
            `bytes 0-${RESUMABLE_QUANTUM - 1}/*`,
            patternBytes('c', RESUMABLE_QUANTUM),
          )
        ).status,
        308,
      );
      assert.equal((await raw('DELETE', cancelled)).status, 499);
      assert.equal((await put(cancelled, 'bytes */*')).status, 404);
      assert.equal((await raw('GET', objectPath('res/cancel'))).status, 404);
      assert.equal(
        (
          await put(
            `${fake.url}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&upload_id=nope`,
            'bytes */*',
          )
        ).status,
        404,
      );
      assert.equal(
        (await raw('POST', `/upload/storage/v1/b/no-such-bucket/o?uploadType=resumable&name=x`))
          .status,
        404,
      );
    });
  });

  test('list: prefix, delimiter, startOffset/endOffset, pagination and partial responses', async () => {
    const names = ['l/a/1', 'l/a/2', 'l/b', 'l/c/1', 'l/c/2/x', 'l/d', 'l/é'];
    for (const n of names) assert.equal((await mediaUpload(n, n)).status, 200);
    const list = async (
      query: string,
    ): Promise<{ items?: { name: string }[]; prefixes?: string[]; nextPageToken?: string }> =>
      (await raw('GET', `/storage/v1/b/${bucket}/o?${query}`)).json() as {
        items?: { name: string }[];
        prefixes?: string[];
        nextPageToken?: string;
      };

    assert.deepEqual(
      (await list('prefix=l/')).items?.map((i) => i.name),
      names,
    );
    const rolled = await list('prefix=l/&delimiter=/');
    assert.deepEqual(
      rolled.items?.map((i) => i.name),
      ['l/b', 'l/d', 'l/é'],
    );
    assert.deepEqual(rolled.prefixes, ['l/a/', 'l/c/']);
    assert.deepEqual(
      (await list('prefix=l/&startOffset=l/b&endOffset=l/d')).items?.map((i) => i.name),
      ['l/b', 'l/c/1', 'l/c/2/x'],
    );
    assert.deepEqual(await list('prefix=nothing/'), { kind: 'storage#objects' } as object);

    // Pages of 2 with a delimiter: prefixes count towards the page and are never repeated.
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await list(
        `prefix=l/&delimiter=/&maxResults=2${token ? `&pageToken=${encodeURIComponent(token)}` : ''}`,
      );
      seen.push(...(page.items ?? []).map((i) => i.name), ...(page.prefixes ?? []));
      token = page.nextPageToken;
      pages++;
    } while (token);
    assert.equal(pages, 3);
    assert.deepEqual(seen.sort(), ['l/a/', 'l/b', 'l/c/', 'l/d', 'l/é'].sort());
    assert.equal((await raw('GET', `/storage/v1/b/${bucket}/o?pageToken=garbage`)).status, 400);

    const partial = (
      await raw(
        'GET',
        `/storage/v1/b/${bucket}/o?prefix=l/a/&fields=items(name,size),nextPageToken`,
      )
    ).json();
    assert.deepEqual(partial, {
      items: [
        { name: 'l/a/1', size: '5' },
        { name: 'l/a/2', size: '5' },
      ],
    });
    const meta = (await raw('GET', objectPath('l/b', 'fields=name,generation'))).json();
    assert.deepEqual(Object.keys(meta).sort(), ['generation', 'name']);
  });

  test('driven by the real client: chunked resumable uploads take one request per chunk', async () => {
    const store = new GcsStore({
      bucket,
      endpoint: fake.url,
      resumable_threshold: MiB,
      chunk_size: RESUMABLE_QUANTUM * 4,
      verify_downloads: true,
    });
    const data = patternBytes('chunked', 5 * MiB + 123);
    const before = fake.stats.get('PUT upload objects') ?? 0;
    await store.put(`chunks/${oidFor('chunked')}`, data);
    assert.equal(
      (fake.stats.get('PUT upload objects') ?? 0) - before,
      6,
      'ceil(5 MiB / 1 MiB) chunk requests',
    );
    assert.ok((await store.get(`chunks/${oidFor('chunked')}`)).equals(data));
    await store.close();
  });

  test('auth mode: bearer tokens from the token-exchange endpoint, 401 otherwise', async () => {
    const secure = await startFakeGcs({ auth: { subjectToken: 'the-subject' } });
    try {
      assert.equal((await fetch(`${secure.url}/storage/v1/b/x`)).status, 401);
      assert.equal(
        (
          await fetch(`${secure.url}/storage/v1/b/x`, {
            headers: { authorization: 'Bearer made-up' },
          })
        ).status,
        401,
      );
      const exchange = (subject: string): Promise<Response> =>
        fetch(`${secure.url}/token`, {
          method: 'POST',
          body: new URLSearchParams({
            grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
            subject_token: subject,
          }),
        });
      const refused = await exchange('wrong');
      assert.equal(refused.status, 400);
      assert.equal(((await refused.json()) as { error: string }).error, 'invalid_grant');
      const granted = (await (await exchange('the-subject')).json()) as { access_token: string };
      assert.equal(
        (
          await fetch(`${secure.url}/storage/v1/b/x`, {
            headers: { authorization: `Bearer ${granted.access_token}` },
          })
        ).status,
        404,
      );
    } finally {
      await secure.close();
    }
  });
});

// -------------------------------------------------------------------------------------------------
// Credentials, through the real client's external-account flow against an in-process fake.

describe('GCS store credentials', () => {
  let secure: FakeGcs;
  let dir: string;
  const subject = `subject-${randomBytes(12).toString('hex')}`;

  before(async () => {
    secure = await startFakeGcs({ auth: { subjectToken: subject } });
    dir = await mkdtemp(path.join(tmpdir(), 'mediagit-gcs-auth-'));
    const res = await fetch(`${secure.url}/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: subject,
      }),
    });
    const { access_token } = (await res.json()) as { access_token: string };
    await fetch(`${secure.url}/storage/v1/b?project=${PROJECT}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${access_token}` },
      body: JSON.stringify({ name: 'auth-bucket' }),
    });
  });
  after(async () => {
    await secure.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** An external-account credentials file whose token exchange goes to the fake server. */
  async function credentials(label: string, token: string): Promise<string> {
    const tokenFile = path.join(dir, `${label}.token`);
    const file = path.join(dir, `${label}.json`);
    await writeFile(tokenFile, token);
    await writeFile(
      file,
      JSON.stringify({
        type: 'external_account',
        audience:
          '//iam.googleapis.com/projects/0/locations/global/workloadIdentityPools/test/providers/test',
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_url: `${secure.url}/token`,
        credential_source: { file: tokenFile },
      }),
    );
    return file;
  }

  test('valid credentials_path with an endpoint authenticates every request shape', async () => {
    const store = new GcsStore({
      bucket: 'auth-bucket',
      endpoint: secure.url,
      project: PROJECT,
      credentials_path: await credentials('good', subject),
      resumable_threshold: 1000,
    });
    const key = `chunks/${oidFor('auth-ok')}`;
    await store.put(key, patternBytes('auth', 5000));
    assert.ok((await store.get(key)).equals(patternBytes('auth', 5000)));
    // Above the threshold, yet no resumable session: the SDK's resumable uploader would drop the
    // credentials for a non-Google endpoint, so the store uploads in one multipart request.
    assert.equal(secure.stats.get('PUT upload objects') ?? 0, 0);
    assert.equal(await store.compareAndSwapRef('refs/heads/main', null, oidFor('a')), true);
    assert.equal((await store.listRefs('refs/')).size, 1);
    await store.close();
  });

  test('wrong credentials: AuthError (E_AUTH) for every operation, never quoting the secret', async () => {
    const wrong = `wrong-${randomBytes(12).toString('hex')}`;
    const file = await credentials('wrong', wrong);
    const key = `chunks/${oidFor('auth-bad')}`;
    const store = new GcsStore({
      bucket: 'auth-bucket',
      endpoint: secure.url,
      project: PROJECT,
      credentials_path: file,
    });
    const resumable = new GcsStore({
      bucket: 'auth-bucket',
      endpoint: secure.url,
      project: PROJECT,
      credentials_path: file,
      resumable_threshold: 0,
    });
    const anonymous = new GcsStore({ bucket: 'auth-bucket', endpoint: secure.url });
    for (const [label, op] of [
      ['get', () => store.get(key)],
      ['put', () => store.put(key, Buffer.from('x'))],
      ['resumable put', () => resumable.put(key, Buffer.from('x'))],
      ['has', () => store.has([key])],
      ['list', () => collectList(store, '')],
      ['readRef', () => store.readRef('refs/heads/main')],
      ['CAS', () => store.compareAndSwapRef('refs/heads/main', null, oidFor('x'))],
      ['anonymous get', () => anonymous.get(key)],
      ['anonymous CAS', () => anonymous.compareAndSwapRef('refs/heads/x', null, oidFor('x'))],
    ] as const) {
      await rejectsWith(op(), AuthError, (err) => {
        assert.equal(err.code, 'E_AUTH', label);
        assert.ok(err.message.includes('auth-bucket'), `${label}: ${err.message}`);
        const everything = `${err.message}\n${err.hint ?? ''}\n${err.stack ?? ''}\n${err.cause instanceof Error ? err.cause.message : ''}`;
        assert.ok(
          !everything.includes(wrong) && !everything.includes(subject),
          `${label}: a secret leaked`,
        );
      });
    }
  });
});

// -------------------------------------------------------------------------------------------------
// The store against the shared fake server (test/servers/gcs.sh).

if (SKIP) test('GCS store against the fake GCS server', { skip: SKIP }, () => undefined);
else
  describe('GCS store against the fake GCS server', () => {
    const endpoint = ENDPOINT ?? '';
    let admin: Storage;
    const opened: Store[] = [];
    const open = (options: Partial<GcsStoreOptions> = {}): GcsStore => {
      const store = new GcsStore({ bucket: BUCKET, endpoint, project: PROJECT, ...options });
      opened.push(store);
      return store;
    };
    let counter = 0;
    const freshPrefix = (label: string): string =>
      `${label}-${++counter}-${randomBytes(3).toString('hex')}`;

    async function rawNames(prefix: string): Promise<string[]> {
      const [files] = await admin.bucket(BUCKET).getFiles({ prefix });
      return files.map((f) => f.name).sort();
    }

    before(async () => {
      admin = adminClient(endpoint);
      await admin.createBucket(BUCKET);
    });

    after(async () => {
      await Promise.all(opened.map((s) => s.close()));
      if (admin) await emptyAndDeleteBucket(admin, BUCKET);
    });

    storeContract(
      'GCS (fake GCS server)',
      async () => {
        const prefix = freshPrefix('contract');
        return {
          store: new GcsStore({ bucket: BUCKET, endpoint, project: PROJECT, prefix }),
          cleanup: async () => {
            const [files] = await admin.bucket(BUCKET).getFiles({ prefix: `${prefix}/` });
            await Promise.all(files.map((f) => f.delete({ ignoreNotFound: true })));
          },
        };
      },
      { concurrentCas: true },
    );

    test('a 20 MiB object round-trips through a chunked resumable upload (256 KiB chunks) and a verified download', async (t) => {
      const prefix = freshPrefix('large');
      const store = open({
        prefix,
        resumable_threshold: 8 * MiB,
        chunk_size: RESUMABLE_QUANTUM,
        verify_downloads: true,
      });
      const data = patternBytes('large', 20 * MiB);
      const key = `chunks/${oidFor('large')}`;
      const started = performance.now();
      await store.put(key, data);
      const back = await store.get(key);
      assert.equal(back.length, data.length);
      assert.ok(back.equals(data), 'bytes differ');
      const [meta] = await admin.bucket(BUCKET).file(`${prefix}/${key}`).getMetadata();
      assert.equal(meta.md5Hash, createHash('md5').update(data).digest('base64'));
      assert.deepEqual(await collectList(store, 'chunks/'), [{ key, size: 20 * MiB }]);
      // The second put of the same content only probes.
      await store.put(key, data);
      // Single-request resumable (no chunk_size) and the multipart path at the threshold.
      const single = open({ prefix, resumable_threshold: MiB });
      const other = `chunks/${oidFor('large-single')}`;
      await single.put(other, data.subarray(0, 9 * MiB));
      assert.ok((await single.get(other)).equals(data.subarray(0, 9 * MiB)));
      const edge = `chunks/${oidFor('at-threshold')}`;
      await single.put(edge, data.subarray(0, MiB));
      assert.ok((await single.get(edge)).equals(data.subarray(0, MiB)));
      assert.deepEqual(
        await rawNames(`${prefix}/`),
        [`${prefix}/${edge}`, `${prefix}/${other}`, `${prefix}/${key}`].sort(),
      );
      t.diagnostic(`20 MiB chunked put+get: ${(performance.now() - started).toFixed(0)} ms`);
    });

    test('8 separate clients × 20 rounds of CAS on one ref: exactly one winner per round', async (t) => {
      const prefix = freshPrefix('race');
      const writers = Array.from({ length: 8 }, () => open({ prefix }));
      const ref = 'refs/heads/race';
      const started = performance.now();
      for (let round = 0; round < 20; round++) {
        const seen = await Promise.all(writers.map((w) => w.readRef(ref)));
        assert.ok(
          seen.every((v) => v?.version === seen[0]?.version),
          `round ${round}: writers saw different states`,
        );
        const candidates = writers.map((_, i) => oidFor(`race ${round} ${i}`));
        // Half the writers pass generations, half value-only versions the way the repository layer does.
        const results = await Promise.all(
          writers.map((w, i) => {
            const base = seen[i] ?? null;
            const expected: RefValue | null =
              base === null || i % 2 === 0 ? base : { oid: base.oid, version: base.oid };
            return w.compareAndSwapRef(ref, expected, candidates[i] ?? null);
          }),
        );
        const winners = candidates.filter((_, i) => results[i]);
        assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`);
        assert.equal((await writers[0]!.readRef(ref))?.oid, winners[0]);
      }
      t.diagnostic(`160 racing CAS calls: ${(performance.now() - started).toFixed(0)} ms`);
    });

    test('ref layout: one object per ref holding the OID, generation as version; foreign refs without metadata still read', async () => {
      const prefix = freshPrefix('layout');
      const store = open({ prefix });
      const ref = 'refs/heads/feature/x';
      assert.equal(await store.compareAndSwapRef(ref, null, oidFor('1')), true);
      const v1 = await store.readRef(ref);
      const file = admin.bucket(BUCKET).file(`${prefix}/${ref}`);
      const [meta] = await file.getMetadata();
      assert.equal(v1?.version, String(meta.generation));
      assert.equal(meta.metadata?.['oid'], oidFor('1'));
      const [body] = await file.download();
      assert.equal(body.toString(), `${oidFor('1')}\n`);
      // Value-only expected (as the repository layer passes it) pins the current generation.
      assert.equal(
        await store.compareAndSwapRef(ref, { oid: oidFor('1'), version: oidFor('1') }, oidFor('2')),
        true,
      );
      assert.equal(
        await store.compareAndSwapRef(ref, { oid: oidFor('1'), version: oidFor('1') }, oidFor('3')),
        false,
      );
      assert.equal(await store.compareAndSwapRef(ref, v1, oidFor('3')), false, 'old generation');
      assert.equal(
        await store.compareAndSwapRef(
          ref,
          { oid: oidFor('2'), version: 'not-a-generation' },
          oidFor('3'),
        ),
        false,
      );

      // A ref written by another tool: body only, no custom metadata.
      await admin
        .bucket(BUCKET)
        .file(`${prefix}/refs/tags/v1`)
        .save(`${oidFor('tag')}\n`, { resumable: false });
      const tag = await store.readRef('refs/tags/v1');
      assert.equal(tag?.oid, oidFor('tag'));
      assert.equal((await store.listRefs('refs/tags/')).get('refs/tags/v1')?.oid, oidFor('tag'));
      assert.equal(await store.compareAndSwapRef('refs/tags/v1', tag, null), true);
      assert.deepEqual(await rawNames(`${prefix}/`), [`${prefix}/${ref}`]);
    });

    test('list paginates past 1000 keys and strips the prefix; prefixes isolate stores; foreign objects are ignored', async () => {
      const prefix = freshPrefix('paged');
      const store = open({ prefix });
      const neighbour = open({ prefix: `${prefix}-neighbour` });
      const keys = Array.from({ length: 1105 }, (_, i) => `objects/${oidFor(`paged ${i}`)}`);
      for (let i = 0; i < keys.length; i += 64)
        await Promise.all(keys.slice(i, i + 64).map((k) => store.put(k, Buffer.from(k.slice(-8)))));
      await neighbour.put(`objects/${oidFor('neighbour')}`, Buffer.from('n'));
      assert.equal(await neighbour.compareAndSwapRef('refs/heads/main', null, oidFor('n')), true);
      await admin.bucket(BUCKET).file(`${prefix}/README.txt`).save('hello', { resumable: false });
      const listed = await collectList(store, '');
      assert.equal(listed.length, keys.length);
      assert.deepEqual(
        listed.map((k) => k.key),
        [...keys].sort(),
      );
      assert.ok(listed.every((k) => k.size === 8));
      assert.equal((await store.listRefs('refs/')).size, 0);
      const present = await store.has([...keys.slice(0, 40), `objects/${oidFor('neighbour')}`]);
      assert.deepEqual(present, [...Array.from({ length: 40 }, () => true), false]);
    });

    test('a missing bucket is a clear ConfigError, not "object not found"', async () => {
      const missing = `mediagit-missing-${RUN}`;
      const store = open({ bucket: missing });
      for (const [label, op] of [
        ['get', () => store.get(`chunks/${oidFor('x')}`)],
        ['put', () => store.put(`chunks/${oidFor('x')}`, Buffer.from('x'))],
        [
          'resumable put',
          () =>
            open({ bucket: missing, resumable_threshold: 0 }).put(
              `chunks/${oidFor('x')}`,
              Buffer.from('x'),
            ),
        ],
        ['has', () => store.has([`chunks/${oidFor('x')}`])],
        ['list', () => collectList(store, '')],
        ['delete', () => store.delete(`chunks/${oidFor('x')}`)],
        ['readRef', () => store.readRef('refs/heads/main')],
        ['listRefs', () => store.listRefs('refs/')],
        ['CAS', () => store.compareAndSwapRef('refs/heads/main', null, oidFor('x'))],
      ] as const) {
        await rejectsWith(op(), ConfigError, (err) => {
          assert.equal(err.code, 'E_CONFIG', label);
          assert.ok(
            err.message.includes(`bucket '${missing}' does not exist`),
            `${label}: ${err.message}`,
          );
        });
      }
    });

    test('an aborted signal stops get and put', async () => {
      const store = open({ prefix: freshPrefix('abort') });
      const controller = new AbortController();
      controller.abort(new Error('stop'));
      await assert.rejects(
        store.get(`chunks/${oidFor('x')}`, { signal: controller.signal }),
        /stop/,
      );
      await assert.rejects(
        store.put(`chunks/${oidFor('x')}`, Buffer.from('x'), { signal: controller.signal }),
        /stop/,
      );
      assert.deepEqual(await collectList(store, ''), []);
    });
  });
