/**
 * The S3 backend against a real S3 implementation (Ceph radosgw in CI: test/servers/radosgw.sh),
 * because the ref scheme depends on how a real server treats conditional writes and races — an
 * emulator that ignores conditions would pass everything and prove nothing.
 *
 *   test/servers/radosgw.sh start && eval "$(test/servers/radosgw.sh env)"
 *
 * Without MEDIAGIT_TEST_S3_ENDPOINT the real-server tests are skipped; the tests that need no server
 * (lazy SDK loading, error mapping against a scripted fake, unreachable endpoint) always run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  AuthError,
  ConfigError,
  MediagitError,
  NotFoundError,
  RefConflictError,
  StoreUnavailableError,
} from '../../src/errors/index.js';
import {
  ConditionalWritesUnsupportedError,
  S3BucketNotFoundError,
  S3Store,
  type S3StoreOptions,
} from '../../src/store/s3/index.js';
import type { RefValue, Store } from '../../src/store/store.js';
import { collectList, oidFor, patternBytes, storeContract } from '../support/store-contract.js';
import { skipUnlessServer } from '../support/test-servers.js';

const MiB = 1024 * 1024;
const ENDPOINT = process.env['MEDIAGIT_TEST_S3_ENDPOINT'];
const ACCESS_KEY = process.env['MEDIAGIT_TEST_S3_ACCESS_KEY'] ?? '';
const SECRET_KEY = process.env['MEDIAGIT_TEST_S3_SECRET_KEY'] ?? '';
const REGION = process.env['MEDIAGIT_TEST_S3_REGION'] ?? 'us-east-1';
const SKIP = skipUnlessServer('s3');

const RUN = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const BUCKET = `mediagit-test-${RUN}`;

function admin(): S3Client {
  return new S3Client({
    endpoint: ENDPOINT,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

function storeOptions(prefix: string, extra: Partial<S3StoreOptions> = {}): S3StoreOptions {
  return {
    bucket: BUCKET,
    prefix,
    endpoint: ENDPOINT,
    region: REGION,
    access_key: ACCESS_KEY,
    secret_key: SECRET_KEY,
    ...extra,
  };
}

let prefixCounter = 0;
function freshPrefix(label: string): string {
  return `${label}-${++prefixCounter}-${randomBytes(3).toString('hex')}`;
}

/** Every key under a bucket prefix; sequential deletes because batch delete needs Content-MD5 handling that varies by server. */
async function emptyPrefix(client: S3Client, prefix: string): Promise<number> {
  let deleted = 0;
  for (;;) {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, MaxKeys: 1000 }),
    );
    const keys = (page.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [o.Key]));
    if (keys.length === 0) return deleted;
    for (let i = 0; i < keys.length; i += 32) {
      await Promise.all(
        keys
          .slice(i, i + 32)
          .map((Key) => client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key }))),
      );
    }
    deleted += keys.length;
  }
}

async function rawKeys(client: S3Client, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) if (o.Key !== undefined) out.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return out.sort();
}

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

// -------------------------------------------------------------------------------------------------
// Tests that need no S3 server.

describe('S3 store without a server', () => {
  test('loading the backend module does not load the AWS SDK', async () => {
    const moduleUrl = new URL('../../src/store/s3/index.js', import.meta.url).href;
    const script = [
      "import { registerHooks } from 'node:module';",
      'const seen = [];',
      'registerHooks({ resolve(specifier, context, next) { seen.push(specifier); return next(specifier, context); } });',
      `const { S3Store } = await import(${JSON.stringify(moduleUrl)});`,
      "new S3Store({ bucket: 'b', endpoint: 'http://127.0.0.1:9' });",
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
      seen.filter((s) => s.includes('@aws-sdk') || s.includes('@smithy')),
      [],
      'the SDK must be imported on first use, not at module load',
    );
  });

  test('rejects bad configuration up front', () => {
    assert.throws(() => new S3Store({ bucket: '' }), ConfigError);
    assert.throws(() => new S3Store({ bucket: 'b', access_key: 'x' }), ConfigError);
    assert.throws(() => new S3Store({ bucket: 'b', part_size: 1 * MiB }), /at least 5 MiB/);
    assert.throws(() => new S3Store({ bucket: 'b', max_concurrent_parts: 0 }), ConfigError);
    const s = new S3Store({
      bucket: 'b',
      endpoint: 'http://user:pw@127.0.0.1:9',
      prefix: '/team/x/',
      max_retries: 5,
    });
    assert.equal(s.prefix, 'team/x/');
    assert.equal(s.maxRetries, 5);
    assert.equal(s.partSize, 100 * MiB);
    assert.equal(s.maxConcurrentParts, 8);
    assert.ok(
      !s.description.includes('pw') && !s.endpoint.includes('pw'),
      'userinfo must not reach messages',
    );
  });

  test('an endpoint with nothing listening gives StoreUnavailableError naming the endpoint', async () => {
    const port = await unusedPort();
    const endpoint = `http://127.0.0.1:${port}`;
    const store = new S3Store({
      bucket: 'b',
      endpoint,
      access_key: 'AK',
      secret_key: 'a-secret-that-must-not-leak',
    });
    try {
      for (const op of [
        () => store.get(`chunks/${oidFor('x')}`),
        () => store.put(`chunks/${oidFor('x')}`, Buffer.from('x')),
        () => store.has([`chunks/${oidFor('x')}`]),
        () => collectList(store, ''),
        () => store.readRef('refs/heads/main'),
        () => store.compareAndSwapRef('refs/heads/main', null, oidFor('x')),
      ]) {
        await rejectsWith(op(), StoreUnavailableError, (err) => {
          assert.ok(err.message.includes(endpoint), err.message);
          assert.ok(!err.message.includes('a-secret-that-must-not-leak'));
        });
      }
    } finally {
      await store.close();
    }
  });

  describe('against a scripted fake server', () => {
    let server: Server;
    let endpoint = '';
    let handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void = (_req, res) =>
      res.end();
    const requests: { method: string; url: string; ifNoneMatch: string | undefined }[] = [];

    before(async () => {
      server = createServer((req, res) => {
        const parts: Buffer[] = [];
        req.on('data', (d: Buffer) => parts.push(d));
        req.on('end', () => {
          const inm = req.headers['if-none-match'];
          requests.push({
            method: req.method ?? '',
            url: req.url ?? '',
            ifNoneMatch: typeof inm === 'string' ? inm : undefined,
          });
          handler(req, res, Buffer.concat(parts));
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    const fake = (extra: Partial<S3StoreOptions> = {}): S3Store =>
      new S3Store({
        bucket: 'fake',
        endpoint,
        access_key: 'AK',
        secret_key: 'fake-secret-value',
        ...extra,
      });

    const s3Error = (
      res: ServerResponse,
      status: number,
      code: string,
      headers: Record<string, string> = {},
    ): void => {
      res.writeHead(status, { 'content-type': 'application/xml', ...headers });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`,
      );
    };

    test('a server that ignores If-None-Match fails the probe: CAS throws ConditionalWritesUnsupportedError, objects still work', async () => {
      const objects = new Map<string, Buffer>();
      handler = (req, res, body) => {
        const url = req.url ?? '';
        const path = url.split('?')[0] ?? '';
        if (req.method === 'PUT') {
          objects.set(path, body); // the condition is ignored: this is the broken server
          res.writeHead(200, { etag: '"x"' });
          res.end();
        } else if (req.method === 'GET' && objects.has(path)) {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          res.end(objects.get(path));
        } else if (req.method === 'DELETE') {
          objects.delete(path);
          res.writeHead(204);
          res.end();
        } else if (req.method === 'GET' && url.includes('list-type=2')) {
          res.writeHead(200, { 'content-type': 'application/xml' });
          res.end(
            '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>fake</Name><IsTruncated>false</IsTruncated></ListBucketResult>',
          );
        } else s3Error(res, 404, 'NoSuchKey');
      };
      requests.length = 0;
      const store = fake();
      try {
        const err = await rejectsWith(
          store.compareAndSwapRef('refs/heads/main', null, oidFor('a')),
          ConditionalWritesUnsupportedError,
        );
        assert.equal(err.code, 'E_NO_CONDITIONAL_WRITES');
        assert.equal(err.exitCode, 12);
        assert.ok(err.message.includes(endpoint) && /unsafe/.test(err.message), err.message);
        const probes = requests.filter((r) => r.method === 'PUT');
        // A server that ignores the condition lets every racing writer of the first round in.
        assert.ok(probes.length >= 2, `the probe races create-only writers (${probes.length})`);
        assert.ok(
          probes.every(
            (r) => r.ifNoneMatch === '*' && r.url.includes('/meta/conditional-write-probe-'),
          ),
        );
        // The verdict is cached: no second probe.
        requests.length = 0;
        await rejectsWith(
          store.compareAndSwapRef('refs/heads/main', null, oidFor('a')),
          ConditionalWritesUnsupportedError,
        );
        assert.equal(requests.length, 0);
        // Objects do not need conditions.
        const key = `chunks/${oidFor('plain')}`;
        await store.put(key, Buffer.from('plain'));
        assert.equal((await store.get(key)).toString(), 'plain');
        // The probe's keys are deleted behind its answer, by the time the store is closed.
        await store.close();
        assert.ok(
          requests.some((r) => r.method === 'DELETE'),
          'the probe cleans up after itself',
        );
        assert.deepEqual(
          [...objects.keys()].map((k) => k.endsWith(key)),
          [true],
          'only the object is left',
        );
      } finally {
        await store.close();
      }
    });

    test('a server answering 501 to If-None-Match also fails the probe', async () => {
      handler = (req, res) => {
        if (req.method === 'PUT' && req.headers['if-none-match'])
          s3Error(res, 501, 'NotImplemented');
        else {
          res.writeHead(204);
          res.end();
        }
      };
      const store = fake();
      try {
        await rejectsWith(
          store.compareAndSwapRef('refs/heads/main', null, oidFor('a')),
          ConditionalWritesUnsupportedError,
        );
      } finally {
        await store.close();
      }
    });

    test('503 and 429 map to StoreUnavailableError with Retry-After; no retries inside the backend', async () => {
      for (const [status, code, retryAfter, expectMs] of [
        [503, 'SlowDown', '7', 7000],
        [429, 'TooManyRequests', '2', 2000],
        [500, 'InternalError', undefined, undefined],
        [503, 'ServiceUnavailable', new Date(Date.now() + 30_000).toUTCString(), 30_000],
      ] as const) {
        requests.length = 0;
        handler = (_req, res) =>
          s3Error(res, status, code, retryAfter === undefined ? {} : { 'retry-after': retryAfter });
        const store = fake();
        try {
          const err = await rejectsWith(store.get(`chunks/${oidFor('x')}`), StoreUnavailableError);
          if (expectMs === undefined) assert.equal(err.retryAfterMs, undefined);
          else {
            assert.ok(err.retryAfterMs !== undefined, `${status} ${code}: retryAfterMs missing`);
            assert.ok(
              Math.abs(err.retryAfterMs - expectMs) <= 2000,
              `${status} ${code}: retryAfterMs ${err.retryAfterMs}`,
            );
          }
          assert.equal(requests.length, 1, `${status} ${code}: the backend itself must not retry`);
        } finally {
          await store.close();
        }
      }
    });

    test('403 with a body-less answer (HEAD) is AuthError; 404 on HEAD is "absent"', async () => {
      handler = (req, res) => {
        res.writeHead(req.url?.includes(oidFor('forbidden')) ? 403 : 404);
        res.end();
      };
      const store = fake();
      try {
        assert.deepEqual(await store.has([`chunks/${oidFor('absent')}`]), [false]);
        const err = await rejectsWith(
          store.has([`chunks/${oidFor('absent')}`, `chunks/${oidFor('forbidden')}`]),
          AuthError,
        );
        assert.equal(err.code, 'E_AUTH');
        assert.ok(!err.message.includes('fake-secret-value'));
      } finally {
        await store.close();
      }
    });

    /** Just enough S3 for the ref paths: create-only PUT, GET, DELETE and ListObjectsV2 (no paging). */
    const memoryS3 =
      (objects: Map<string, Buffer>) =>
      (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
        const [rawPath = '', query = ''] = (req.url ?? '').split('?');
        const path = decodeURIComponent(rawPath).replace(/^\/fake\//, '');
        if (req.method === 'PUT') {
          if (req.headers['if-none-match'] === '*' && objects.has(path))
            return s3Error(res, 412, 'PreconditionFailed');
          objects.set(path, body);
          res.writeHead(200);
          return void res.end();
        }
        if (req.method === 'DELETE') {
          objects.delete(path);
          res.writeHead(204);
          return void res.end();
        }
        if (req.method === 'GET' && query.includes('list-type=2')) {
          const prefix = decodeURIComponent(/(?:^|&)prefix=([^&]*)/.exec(query)?.[1] ?? '');
          const keys = [...objects.keys()].filter((k) => k.startsWith(prefix)).sort();
          res.writeHead(200, { 'content-type': 'application/xml' });
          return void res.end(
            `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>fake</Name><IsTruncated>false</IsTruncated>${keys
              .map(
                (k) =>
                  `<Contents><Key>${k}</Key><Size>1</Size><LastModified>2024-01-01T00:00:00.000Z</LastModified></Contents>`,
              )
              .join('')}</ListBucketResult>`,
          );
        }
        const found = objects.get(path);
        if (req.method === 'GET' && found) {
          res.writeHead(200);
          return void res.end(found);
        }
        s3Error(res, 404, 'NoSuchKey');
      };

    test('a 500 answer to a create-only ref write is settled by reading the entry back', async () => {
      // radosgw answers some race losers with 500; the entry is then someone else's, ours, or absent.
      const objects = new Map<string, Buffer>();
      const memory = memoryS3(objects);
      let mode: 'theirs' | 'ours' | 'nothing' = 'theirs';
      handler = (req, res, body) => {
        if (req.method !== 'PUT' || (req.url ?? '').includes('/meta/'))
          return memory(req, res, body);
        const path = decodeURIComponent((req.url ?? '').split('?')[0] ?? '').replace(
          /^\/fake\//,
          '',
        );
        if (mode === 'theirs')
          objects.set(
            path,
            Buffer.from(
              JSON.stringify({ oid: oidFor('theirs'), writer: 'f'.repeat(32), prev: null }),
            ),
          );
        if (mode === 'ours') objects.set(path, body);
        s3Error(res, 500, 'UnknownError');
      };
      const store = fake();
      try {
        assert.equal(
          await store.compareAndSwapRef('refs/heads/a', null, oidFor('mine')),
          false,
          '500 + a foreign entry: lost',
        );
        assert.equal((await store.readRef('refs/heads/a'))?.oid, oidFor('theirs'));
        mode = 'ours';
        assert.equal(
          await store.compareAndSwapRef('refs/heads/b', null, oidFor('mine')),
          true,
          '500 + our own entry: it landed',
        );
        assert.equal((await store.readRef('refs/heads/b'))?.oid, oidFor('mine'));
        mode = 'nothing';
        // Nothing stored and no clear refusal: unknown, so retriable — never a silent success.
        await rejectsWith(
          store.compareAndSwapRef('refs/heads/c', null, oidFor('mine')),
          StoreUnavailableError,
        );
        assert.equal(await store.readRef('refs/heads/c'), null);
      } finally {
        await store.close();
      }
    });

    test('an update that landed but cannot be confirmed: true when quick, else E_REF_CONFLICT (never a retriable error)', async () => {
      const objects = new Map<string, Buffer>();
      const memory = memoryS3(objects);
      let written = false;
      handler = (req, res, body) => {
        if (written && req.method === 'GET' && (req.url ?? '').includes('list-type=2'))
          return s3Error(res, 503, 'SlowDown');
        if (req.method === 'PUT' && (req.url ?? '').includes('/refs/')) written = true;
        memory(req, res, body);
      };
      const quick = fake();
      const strict = fake({ ref_log_grace_ms: 0 });
      try {
        assert.equal(await quick.compareAndSwapRef('refs/heads/main', null, oidFor('one')), true);
        written = false;
        await rejectsWith(
          strict.compareAndSwapRef('refs/heads/other', null, oidFor('two')),
          RefConflictError,
          (err) => {
            assert.equal(err.code, 'E_REF_CONFLICT');
          },
        );
      } finally {
        await quick.close();
        await strict.close();
      }
    });
  });
});

async function unusedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

// -------------------------------------------------------------------------------------------------
// Tests against the real server.

// A skipped test (not a skipped suite) so the runner's summary counts it and prints the reason.
if (SKIP) test('S3 store against a real server', { skip: SKIP }, () => undefined);
else
  describe('S3 store against a real server', () => {
    let client: S3Client;
    const opened: Store[] = [];
    const open = (options: S3StoreOptions): S3Store => {
      const store = new S3Store(options);
      opened.push(store);
      return store;
    };

    before(async () => {
      client = admin();
      await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
    });

    after(async () => {
      await Promise.all(opened.map((s) => s.close()));
      if (!client) return;
      // memstore keeps every byte in the OSD's RAM: leave nothing behind.
      await emptyPrefix(client, '');
      // An aborted lib-storage upload cancels its multipart upload in the background; make sure.
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
      for (const u of uploads.Uploads ?? []) {
        await client.send(
          new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: u.Key, UploadId: u.UploadId }),
        );
      }
      await client.send(new DeleteBucketCommand({ Bucket: BUCKET }));
      client.destroy();
    });

    storeContract(
      'S3 (real server)',
      async () => {
        const prefix = freshPrefix('contract');
        return {
          store: new S3Store(storeOptions(prefix)),
          cleanup: async () => void (await emptyPrefix(client, `${prefix}/`)),
        };
      },
      { concurrentCas: true },
    );

    test('objects above part_size go up as a multipart upload and round-trip', async (t) => {
      const prefix = freshPrefix('multipart');
      const store = open(storeOptions(prefix, { part_size: 5 * MiB, max_concurrent_parts: 2 }));
      const data = patternBytes('multipart', 12 * MiB);
      const key = `chunks/${oidFor('multipart')}`;
      const started = performance.now();
      await store.put(key, data);
      const back = await store.get(key);
      assert.equal(back.length, data.length);
      assert.ok(back.equals(data), 'bytes differ');
      // A multipart object's ETag is "<md5 of part md5s>-<parts>": proof that lib-storage split it.
      const head = await client.send(
        new HeadObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${key}` }),
      );
      assert.match(head.ETag ?? '', /-3"?$/, `ETag ${head.ETag} should name 3 parts`);
      assert.deepEqual(await collectList(store, 'chunks/'), [{ key, size: 12 * MiB }]);
      // Exactly part_size is still one PUT.
      const exact = `chunks/${oidFor('exact')}`;
      await store.put(exact, patternBytes('exact', 5 * MiB));
      const exactHead = await client.send(
        new HeadObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${exact}` }),
      );
      assert.doesNotMatch(exactHead.ETag ?? '', /-\d+"?$/);
      assert.deepEqual(
        await rawKeys(client, `${prefix}/`),
        [`${prefix}/${exact}`, `${prefix}/${key}`].sort(),
        'no stray parts or temp keys',
      );
      t.diagnostic(`12 MiB multipart put+get: ${(performance.now() - started).toFixed(0)} ms`);
    });

    test('ref-log race: 8 separate clients × 20 rounds, exactly one winner per round', async (t) => {
      const prefix = freshPrefix('race');
      const writers = Array.from({ length: 8 }, () => open(storeOptions(prefix)));
      const ref = 'refs/heads/race';
      const started = performance.now();
      for (let round = 0; round < 20; round++) {
        // Each writer reads for itself, as separate processes would, and half of them use value-only
        // versions (version = oid) the way the repository layer does.
        const seen = await Promise.all(writers.map((w) => w.readRef(ref)));
        assert.ok(
          seen.every((v) => v?.version === seen[0]?.version),
          `round ${round}: writers saw different states`,
        );
        const candidates = writers.map((_, i) => oidFor(`race ${round} ${i}`));
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
      const value = await writers[3]!.readRef(ref);
      assert.equal(value?.version, '00000000000000000020', 'one log entry per round');
      t.diagnostic(`160 racing CAS calls: ${(performance.now() - started).toFixed(0)} ms`);
    });

    test('the ref log layout: one create-once entry per update, tombstones for deletes', async () => {
      const prefix = freshPrefix('layout');
      const store = open(storeOptions(prefix));
      const ref = 'refs/heads/feature/x';
      assert.equal(await store.compareAndSwapRef(ref, null, oidFor('1')), true);
      const v1 = await store.readRef(ref);
      assert.equal(await store.compareAndSwapRef(ref, v1, oidFor('2')), true);
      const v2 = await store.readRef(ref);
      assert.equal(await store.compareAndSwapRef(ref, v2, null), true);
      assert.deepEqual(
        await rawKeys(client, `${prefix}/`),
        [1, 2, 3].map((n) => `${prefix}/${ref}/${String(n).padStart(20, '0')}`),
      );
      // A nested ref next to its parent name is its own log.
      assert.equal(
        await store.compareAndSwapRef('refs/heads/feature/x/y', null, oidFor('nested')),
        true,
      );
      assert.equal(await store.readRef(ref), null);
      assert.equal((await store.readRef('refs/heads/feature/x/y'))?.oid, oidFor('nested'));
      assert.deepEqual(
        [...(await store.listRefs('refs/heads/feature/'))].map(([n]) => n),
        ['refs/heads/feature/x/y'],
      );
      // Recreate after delete continues the same log.
      assert.equal(await store.compareAndSwapRef(ref, null, oidFor('3')), true);
      assert.equal((await store.readRef(ref))?.version, '00000000000000000004');
    });

    test('pruning keeps the newest entries; a writer holding a pruned version cannot resurrect it', async () => {
      const prefix = freshPrefix('prune');
      const ref = 'refs/heads/main';
      const fast = open(storeOptions(prefix, { ref_log_keep: 2, ref_log_grace_ms: 0 }));
      assert.equal(await fast.compareAndSwapRef(ref, null, oidFor('p0')), true);
      const stale = await fast.readRef(ref);
      for (let i = 1; i <= 5; i++)
        assert.equal(
          await fast.compareAndSwapRef(ref, await fast.readRef(ref), oidFor(`p${i}`)),
          true,
        );
      const entries = await rawKeys(client, `${prefix}/${ref}/`);
      assert.deepEqual(
        entries.map((k) => Number(k.slice(-20))),
        [5, 6],
        'only the newest ref_log_keep entries survive',
      );
      // The caller's old version names a pruned entry: the pre-read sees the ref has moved on.
      assert.equal(await fast.compareAndSwapRef(ref, stale, oidFor('late')), false);
      assert.equal((await fast.readRef(ref))?.oid, oidFor('p5'));

      // Worst case: the writer read the ref, then stalled while the ref moved on and was pruned, and
      // its create of the next sequence number now succeeds. The post-create check must catch it.
      let staged = false;
      const other = open(storeOptions(prefix, { ref_log_keep: 2, ref_log_grace_ms: 0 }));
      const sleeper = open(
        storeOptions(prefix, {
          test_hooks: {
            beforeRefCreate: async () => {
              if (staged) return;
              staged = true;
              for (let i = 6; i <= 10; i++)
                assert.equal(
                  await other.compareAndSwapRef(ref, await other.readRef(ref), oidFor(`p${i}`)),
                  true,
                );
            },
          },
        }),
      );
      assert.equal(
        await sleeper.compareAndSwapRef(ref, await sleeper.readRef(ref), oidFor('resurrected')),
        false,
      );
      assert.equal((await fast.readRef(ref))?.oid, oidFor('p10'));
      const after = (await rawKeys(client, `${prefix}/${ref}/`)).map((k) => Number(k.slice(-20)));
      assert.deepEqual(after, [10, 11], 'the resurrected entry (7) was removed again');
    });

    test('an entry confirmed by its successor counts even when it is no longer the newest', async () => {
      const prefix = freshPrefix('successor');
      const ref = 'refs/heads/main';
      const other = open(storeOptions(prefix));
      let built = false;
      const writer = open(
        storeOptions(prefix, {
          test_hooks: {
            afterRefCreate: async () => {
              if (built) return;
              built = true;
              // Someone reads our fresh entry and builds on it before we check.
              assert.equal(
                await other.compareAndSwapRef(ref, await other.readRef(ref), oidFor('next')),
                true,
              );
            },
          },
        }),
      );
      assert.equal(await writer.compareAndSwapRef(ref, null, oidFor('first')), true);
      assert.equal((await other.readRef(ref))?.oid, oidFor('next'));
    });

    test('list paginates past 1000 keys and strips the store prefix; prefixes isolate stores', async () => {
      const prefix = freshPrefix('paged');
      const store = open(storeOptions(prefix));
      const neighbour = open(storeOptions(`${prefix}-neighbour`));
      const keys = Array.from({ length: 1105 }, (_, i) => `objects/${oidFor(`paged ${i}`)}`);
      for (let i = 0; i < keys.length; i += 64)
        await Promise.all(keys.slice(i, i + 64).map((k) => store.put(k, Buffer.from(k.slice(-8)))));
      await neighbour.put(`objects/${oidFor('neighbour')}`, Buffer.from('n'));
      assert.equal(await neighbour.compareAndSwapRef('refs/heads/main', null, oidFor('n')), true);
      // Something foreign in our prefix is not a store key.
      await client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}/README.txt`, Body: 'hello' }),
      );
      const listed = await collectList(store, '');
      assert.equal(listed.length, keys.length);
      assert.deepEqual(
        listed.map((k) => k.key),
        [...keys].sort(),
      );
      assert.ok(listed.every((k) => k.size === 8));
      assert.equal((await store.listRefs('refs/')).size, 0);
      assert.equal(await store.readRef('refs/heads/main'), null);
      const present = await store.has([...keys.slice(0, 40), `objects/${oidFor('neighbour')}`]);
      assert.deepEqual(present, [...Array.from({ length: 40 }, () => true), false]);
    });

    test('wrong secret: AuthError (E_AUTH) naming bucket and endpoint, never the secret', async () => {
      const secret = `wrong-${randomBytes(12).toString('hex')}`;
      const store = open(storeOptions(freshPrefix('auth'), { secret_key: secret }));
      const key = `chunks/${oidFor('auth')}`;
      for (const [label, op] of [
        ['get', () => store.get(key)],
        ['put', () => store.put(key, Buffer.from('x'))],
        ['has', () => store.has([key])],
        ['list', () => collectList(store, '')],
        ['readRef', () => store.readRef('refs/heads/main')],
        ['CAS', () => store.compareAndSwapRef('refs/heads/main', null, oidFor('x'))],
      ] as const) {
        await rejectsWith(op(), AuthError, (err) => {
          assert.equal(err.code, 'E_AUTH', label);
          assert.ok(err.message.includes(BUCKET), `${label}: ${err.message}`);
          assert.ok(err.message.includes(ENDPOINT ?? ''), `${label}: ${err.message}`);
          const everything = `${err.message}\n${err.hint ?? ''}\n${err.stack ?? ''}`;
          assert.ok(!everything.includes(secret), `${label}: the secret leaked`);
        });
      }
    });

    test('missing bucket: a clear configuration error, not "object not found"', async () => {
      const missing = `mediagit-missing-${RUN}`;
      const store = open({ ...storeOptions('x'), bucket: missing });
      for (const op of [
        () => store.get(`chunks/${oidFor('x')}`),
        () => store.put(`chunks/${oidFor('x')}`, Buffer.from('x')),
        () => collectList(store, ''),
        () => store.readRef('refs/heads/main'),
        () => store.compareAndSwapRef('refs/heads/main', null, oidFor('x')),
      ]) {
        await rejectsWith(op(), S3BucketNotFoundError, (err) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.code, 'E_CONFIG');
          assert.equal(err.bucket, missing);
          assert.ok(err.message.includes(`"${missing}" does not exist`), err.message);
        });
      }
    });

    test('probe forced to unsupported: CAS throws ConditionalWritesUnsupportedError; objects and ref reads still work', async () => {
      const prefix = freshPrefix('nocond');
      const store = open(storeOptions(prefix, { conditional_writes: 'unsupported' }));
      const err = await rejectsWith(
        store.compareAndSwapRef('refs/heads/main', null, oidFor('x')),
        ConditionalWritesUnsupportedError,
      );
      assert.ok(err instanceof MediagitError);
      assert.equal(err.code, 'E_NO_CONDITIONAL_WRITES');
      assert.equal(err.exitCode, 12);
      assert.ok(err.message.includes(ENDPOINT ?? ''), err.message);
      await rejectsWith(
        store.compareAndSwapRef(
          'refs/heads/main',
          { oid: oidFor('x'), version: '00000000000000000001' },
          null,
        ),
        ConditionalWritesUnsupportedError,
      );
      const key = `chunks/${oidFor('still works')}`;
      await store.put(key, Buffer.from('still works'));
      assert.equal((await store.get(key)).toString(), 'still works');
      assert.deepEqual(await store.has([key]), [true]);
      await store.delete(key);
      await rejectsWith(store.get(key), NotFoundError);
      assert.equal(await store.readRef('refs/heads/main'), null);
      assert.deepEqual(
        await rawKeys(client, `${prefix}/`),
        [],
        'nothing written for the refused ref update',
      );
    });

    test('the real probe passes on this server and leaves nothing behind', async () => {
      const prefix = freshPrefix('probe');
      const store = open(storeOptions(prefix));
      assert.equal(await store.compareAndSwapRef('refs/heads/main', null, oidFor('probe')), true);
      assert.deepEqual(await rawKeys(client, `${prefix}/meta/`), []);
    });

    test('an aborted signal rejects with AbortError, for single and multipart puts alike', async () => {
      const prefix = freshPrefix('abort');
      const store = open(storeOptions(prefix, { part_size: 5 * MiB }));
      const controller = new AbortController();
      controller.abort();
      await assert.rejects(store.get(`chunks/${oidFor('x')}`, { signal: controller.signal }), {
        name: 'AbortError',
      });
      const midway = new AbortController();
      setTimeout(() => midway.abort(), 20);
      const key = `chunks/${oidFor('aborted multipart')}`;
      await assert.rejects(store.put(key, Buffer.alloc(30 * MiB, 7), { signal: midway.signal }), {
        name: 'AbortError',
      });
      assert.deepEqual(
        await store.has([key]),
        [false],
        'an aborted upload never shows up as an object',
      );
    });
  });
