/**
 * The Azure Blob backend against Azurite (test/servers/azurite.sh), Microsoft's own emulator: it
 * implements the conditional headers (If-Match / If-None-Match) and shared-key signing the ref
 * scheme and the auth tests depend on.
 *
 *   test/servers/azurite.sh start && eval "$(test/servers/azurite.sh env)"
 *
 * Without MEDIAGIT_TEST_AZURE_ENDPOINT the Azurite tests are skipped; the tests that need no server
 * (lazy SDK loading, configuration, error mapping against a scripted server, unreachable
 * endpoint) always run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  BlobServiceClient,
  StorageSharedKeyCredential,
  type ContainerClient,
} from '@azure/storage-blob';
import {
  AuthError,
  ConfigError,
  MediagitError,
  NotFoundError,
  StoreUnavailableError,
} from '../../src/errors/index.js';
import { AzureBlobStore, type AzureBlobStoreOptions } from '../../src/store/azure/azure-store.js';
import type { RefValue, Store } from '../../src/store/store.js';
import { collectList, oidFor, patternBytes, storeContract } from '../support/store-contract.js';
import { skipUnlessServer } from '../support/test-servers.js';

const MiB = 1024 * 1024;
const ENDPOINT = process.env['MEDIAGIT_TEST_AZURE_ENDPOINT'];
const ACCOUNT = process.env['MEDIAGIT_TEST_AZURE_ACCOUNT'] ?? 'devstoreaccount1';
const KEY = process.env['MEDIAGIT_TEST_AZURE_KEY'] ?? '';
const SKIP = skipUnlessServer('azure');
const RUN = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
const CONTAINER = `mediagit-test-${RUN}`;
/** Any well-formed base64 key that is not the account's. */
const FAKE_KEY = Buffer.from('not-the-real-account-key-0123456789').toString('base64');

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

// -------------------------------------------------------------------------------------------------
// No server needed.

describe('Azure store without a server', () => {
  test('loading and constructing the backend does not load the Azure SDK', async () => {
    const moduleUrl = new URL('../../src/store/azure/azure-store.js', import.meta.url).href;
    const script = [
      "import { registerHooks } from 'node:module';",
      'const seen = [];',
      'registerHooks({ resolve(specifier, context, next) { seen.push(specifier); return next(specifier, context); } });',
      `const { AzureBlobStore } = await import(${JSON.stringify(moduleUrl)});`,
      "new AzureBlobStore({ container: 'c-1', account_name: 'a', account_key: 'a2V5' });",
      "new AzureBlobStore({ container: 'c-1', account_name: 'a', use_managed_identity: true });",
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
      seen.filter((s) => s.includes('@azure')),
      [],
      'the SDK (and @azure/identity) must be imported on first use, not at module load',
    );
  });

  test('rejects bad configuration up front, without quoting secrets', () => {
    const base = { account_name: 'acct', account_key: FAKE_KEY };
    for (const container of [
      '',
      'ab',
      'Upper',
      '-lead',
      'trail-',
      'dou--ble',
      'under_score',
      'x'.repeat(64),
    ]) {
      assert.throws(() => new AzureBlobStore({ ...base, container }), ConfigError, container);
    }
    assert.throws(() => new AzureBlobStore({ container: 'c-1' }), /no credentials/);
    assert.throws(
      () => new AzureBlobStore({ container: 'c-1', account_key: FAKE_KEY }),
      ConfigError,
    );
    assert.throws(
      () => new AzureBlobStore({ ...base, container: 'c-1', use_managed_identity: true }),
      /more than one/,
    );
    assert.throws(
      () =>
        new AzureBlobStore({
          container: 'c-1',
          connection_string: 'AccountName=a;AccountKey=b',
          account_key: FAKE_KEY,
        }),
      /more than one/,
    );
    assert.throws(
      () =>
        new AzureBlobStore({
          container: 'c-1',
          use_managed_identity: true,
          endpoint: 'http://127.0.0.1:10000/devstoreaccount1',
        }),
      /plain HTTP/,
    );
    assert.throws(
      () =>
        new AzureBlobStore({ ...base, container: 'c-1', endpoint: 'http://127.0.0.1:1/a?sig=abc' }),
      /query string/,
    );
    assert.throws(
      () => new AzureBlobStore({ ...base, container: 'c-1', endpoint: 'not a url' }),
      ConfigError,
    );
    assert.throws(
      () => new AzureBlobStore({ ...base, container: 'c-1', block_size: 0 }),
      ConfigError,
    );
    assert.throws(
      () => new AzureBlobStore({ ...base, container: 'c-1', prefix: 'a//b' }),
      ConfigError,
    );
    assert.throws(
      () => new AzureBlobStore({ container: 'c-1', connection_string: 'nonsense' }),
      /neither BlobEndpoint nor AccountName/,
    );

    assert.equal(
      new AzureBlobStore({ ...base, container: 'c-1' }).description,
      'azure:https://acct.blob.core.windows.net/c-1',
    );
    assert.equal(
      new AzureBlobStore({
        ...base,
        container: 'c-1',
        prefix: '/team/x/',
        endpoint: 'http://127.0.0.1:10000/devstoreaccount1/',
      }).description,
      'azure:http://127.0.0.1:10000/devstoreaccount1/c-1/team/x',
    );
    const cs = `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${FAKE_KEY};EndpointSuffix=core.windows.net`;
    const fromCs = new AzureBlobStore({ container: 'c-1', connection_string: cs });
    assert.equal(fromCs.description, 'azure:https://acct.blob.core.windows.net/c-1');
    assert.equal(
      new AzureBlobStore({ container: 'c-1', connection_string: 'UseDevelopmentStorage=true' })
        .endpoint,
      'http://127.0.0.1:10000/devstoreaccount1',
    );
    const withSas = new AzureBlobStore({
      container: 'c-1',
      connection_string:
        'BlobEndpoint=https://x.example/acct?sv=1&sig=SECRETSIG;SharedAccessSignature=sv=1&sig=SECRETSIG',
    });
    assert.ok(!withSas.description.includes('SECRETSIG'), withSas.description);
  });

  test('an endpoint with nothing listening gives StoreUnavailableError naming the endpoint', async () => {
    const endpoint = `http://127.0.0.1:${await unusedPort()}/devstoreaccount1`;
    const store = new AzureBlobStore({
      container: 'c-1',
      endpoint,
      account_name: 'devstoreaccount1',
      account_key: FAKE_KEY,
    });
    const key = `chunks/${oidFor('x')}`;
    for (const [label, op] of [
      ['get', () => store.get(key)],
      ['put', () => store.put(key, Buffer.from('x'))],
      ['has', () => store.has([key])],
      ['list', () => collectList(store, '')],
      ['delete', () => store.delete(key)],
      ['readRef', () => store.readRef('refs/heads/main')],
      ['listRefs', () => store.listRefs('refs/')],
      ['CAS', () => store.compareAndSwapRef('refs/heads/main', null, oidFor('x'))],
    ] as const) {
      await rejectsWith(op(), StoreUnavailableError, (err) => {
        assert.ok(err.message.includes(endpoint), `${label}: ${err.message}`);
        assert.ok(!err.message.includes(FAKE_KEY), `${label}: key leaked`);
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
      endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/devstoreaccount1`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    const azureError = (
      req: IncomingMessage,
      res: ServerResponse,
      status: number,
      code: string,
      headers: Record<string, string> = {},
    ): void => {
      res.writeHead(status, {
        'content-type': 'application/xml',
        'x-ms-error-code': code,
        'x-ms-request-id': 'r',
        ...headers,
      });
      // HEAD answers carry no body; the code is then only in x-ms-error-code.
      res.end(
        req.method === 'HEAD'
          ? undefined
          : `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${code} happened</Message></Error>`,
      );
    };
    const fake = (extra: Partial<AzureBlobStoreOptions> = {}): AzureBlobStore =>
      new AzureBlobStore({
        container: 'c-1',
        endpoint,
        account_name: 'devstoreaccount1',
        account_key: FAKE_KEY,
        ...extra,
      });

    test('503/429/500 map to StoreUnavailableError with Retry-After; no retries inside the backend', async () => {
      const key = `chunks/${oidFor('x')}`;
      for (const [status, code, retryAfter, expectMs] of [
        [503, 'ServerBusy', '7', 7000],
        [429, 'TooManyRequests', '2', 2000],
        [500, 'InternalError', undefined, undefined],
        [503, 'ServerBusy', new Date(Date.now() + 30_000).toUTCString(), 30_000],
      ] as const) {
        handler = (req, res) =>
          azureError(
            req,
            res,
            status,
            code,
            retryAfter === undefined ? {} : { 'retry-after': retryAfter },
          );
        const store = fake();
        for (const [label, op] of [
          ['get', () => store.get(key)],
          ['put', () => store.put(key, Buffer.from('x'))],
          ['has (HEAD)', () => store.has([key])],
          ['list', () => collectList(store, '')],
          ['CAS', () => store.compareAndSwapRef('refs/heads/main', null, oidFor('x'))],
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
          assert.equal(
            requests.length,
            1,
            `${what}: the backend itself must not retry (${requests.join(', ')})`,
          );
        }
      }
    });

    test('a multi-block upload fails on the first failed block without retrying it', async () => {
      handler = (req, res) => {
        if (req.method === 'HEAD') return azureError(req, res, 404, 'BlobNotFound');
        azureError(req, res, 503, 'ServerBusy', { 'retry-after': '3' });
      };
      requests.length = 0;
      const store = fake({ max_single_shot_size: 1024, block_size: 1024, upload_concurrency: 1 });
      const err = await rejectsWith(
        store.put(`chunks/${oidFor('blocks')}`, patternBytes('blocks', 4096)),
        StoreUnavailableError,
      );
      assert.equal(err.retryAfterMs, 3000);
      assert.deepEqual(
        requests.map((r) => r.split(' ')[0]),
        ['HEAD', 'PUT'],
        'existence probe, then one failed Put Block',
      );
    });

    test('a connection dropped in the middle of a download is StoreUnavailableError', async () => {
      handler = (_req, res) => {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': '100',
          etag: '"0x1"',
          'x-ms-blob-type': 'BlockBlob',
        });
        res.write(Buffer.alloc(40));
        setTimeout(() => res.socket?.destroy(), 20);
      };
      for (const op of [
        (s: AzureBlobStore) => s.get(`chunks/${oidFor('x')}`),
        (s: AzureBlobStore) => s.readRef('refs/heads/main'),
      ]) {
        await rejectsWith(op(fake()), StoreUnavailableError, (err) =>
          assert.ok(err.message.includes(endpoint), err.message),
        );
      }
    });

    test('403 is AuthError, ContainerNotFound (even on body-less HEAD) is ConfigError, other 4xx are MediagitErrors', async () => {
      const key = `chunks/${oidFor('x')}`;
      const store = fake();
      handler = (req, res) => azureError(req, res, 403, 'AuthenticationFailed');
      await rejectsWith(store.get(key), AuthError, (err) => {
        assert.equal(err.code, 'E_AUTH');
        assert.match(err.message, /AuthenticationFailed/);
        assert.ok(!err.message.includes(FAKE_KEY));
      });
      await rejectsWith(store.has([key]), AuthError);
      handler = (req, res) => azureError(req, res, 404, 'ContainerNotFound');
      for (const op of [
        () => store.has([key]),
        () => store.get(key),
        () => store.delete(key),
        () => store.readRef('refs/heads/x'),
      ]) {
        await rejectsWith(op(), ConfigError, (err) =>
          assert.match(err.message, /container 'c-1' does not exist/),
        );
      }
      handler = (req, res) => azureError(req, res, 404, 'BlobNotFound');
      assert.deepEqual(await store.has([key]), [false]);
      await rejectsWith(store.get(key), NotFoundError);
      handler = (req, res) => azureError(req, res, 400, 'InvalidHeaderValue');
      const err = await rejectsWith(store.get(key), MediagitError);
      assert.ok(
        !(err instanceof StoreUnavailableError) && !(err instanceof NotFoundError),
        err.name,
      );
      assert.match(err.message, /HTTP 400 InvalidHeaderValue/);
    });
  });
});

// -------------------------------------------------------------------------------------------------
// Against Azurite.

if (SKIP) test('Azure store against Azurite', { skip: SKIP }, () => undefined);
else
  describe('Azure store against Azurite', () => {
    const endpoint = ENDPOINT ?? '';
    let service: BlobServiceClient;
    let container: ContainerClient;
    const opened: Store[] = [];
    const options = (extra: Partial<AzureBlobStoreOptions> = {}): AzureBlobStoreOptions => ({
      container: CONTAINER,
      endpoint,
      account_name: ACCOUNT,
      account_key: KEY,
      ...extra,
    });
    const open = (extra: Partial<AzureBlobStoreOptions> = {}): AzureBlobStore => {
      const store = new AzureBlobStore(options(extra));
      opened.push(store);
      return store;
    };
    let counter = 0;
    const freshPrefix = (label: string): string =>
      `${label}-${++counter}-${randomBytes(3).toString('hex')}`;

    async function rawNames(prefix: string): Promise<string[]> {
      const names: string[] = [];
      for await (const blob of container.listBlobsFlat({ prefix })) names.push(blob.name);
      return names.sort();
    }

    async function emptyPrefix(prefix: string): Promise<void> {
      const names = await rawNames(prefix);
      for (let i = 0; i < names.length; i += 32)
        await Promise.all(
          names.slice(i, i + 32).map((n) => container.getBlobClient(n).deleteIfExists()),
        );
    }

    before(async () => {
      service = new BlobServiceClient(endpoint, new StorageSharedKeyCredential(ACCOUNT, KEY), {
        retryOptions: { maxTries: 1 },
      });
      container = service.getContainerClient(CONTAINER);
      await container.create();
    });

    after(async () => {
      await Promise.all(opened.map((s) => s.close()));
      if (container) await container.deleteIfExists();
    });

    storeContract(
      'Azure (Azurite)',
      async () => {
        const prefix = freshPrefix('contract');
        return {
          store: new AzureBlobStore(options({ prefix })),
          cleanup: () => emptyPrefix(`${prefix}/`),
        };
      },
      { concurrentCas: true },
    );

    test('a 20 MiB object goes up as 1 MiB staged blocks and round-trips', async (t) => {
      const prefix = freshPrefix('large');
      const store = open({
        prefix,
        block_size: MiB,
        max_single_shot_size: MiB,
        upload_concurrency: 4,
      });
      const data = patternBytes('large', 20 * MiB);
      const key = `chunks/${oidFor('large')}`;
      const started = performance.now();
      await store.put(key, data);
      const back = await store.get(key);
      assert.equal(back.length, data.length);
      assert.ok(back.equals(data), 'bytes differ');
      const blocks = await container
        .getBlockBlobClient(`${prefix}/${key}`)
        .getBlockList('committed');
      assert.equal(blocks.committedBlocks?.length, 20, 'one committed block per MiB');
      assert.deepEqual(await collectList(store, 'chunks/'), [{ key, size: 20 * MiB }]);
      // Exactly max_single_shot_size is one Put Blob (no block list).
      const exact = `chunks/${oidFor('exact')}`;
      await store.put(exact, data.subarray(0, MiB));
      assert.equal(
        (await container.getBlockBlobClient(`${prefix}/${exact}`).getBlockList('committed'))
          .committedBlocks?.length ?? 0,
        0,
      );
      // Putting the large object again only probes; the stored copy is untouched.
      const before = (await container.getBlobClient(`${prefix}/${key}`).getProperties()).etag;
      await store.put(key, data);
      assert.equal(
        (await container.getBlobClient(`${prefix}/${key}`).getProperties()).etag,
        before,
      );
      assert.deepEqual(
        await rawNames(`${prefix}/`),
        [`${prefix}/${exact}`, `${prefix}/${key}`].sort(),
      );
      t.diagnostic(`20 MiB block put+get: ${(performance.now() - started).toFixed(0)} ms`);
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
        // Half the writers pass ETags, half value-only versions the way the repository layer does.
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

    test('ref layout: one blob per ref holding the OID, ETag as version; foreign refs without metadata still read', async () => {
      const prefix = freshPrefix('layout');
      const store = open({ prefix });
      const ref = 'refs/heads/feature/x';
      assert.equal(await store.compareAndSwapRef(ref, null, oidFor('1')), true);
      const v1 = await store.readRef(ref);
      const blob = container.getBlobClient(`${prefix}/${ref}`);
      const props = await blob.getProperties();
      assert.equal(`"${v1?.version}"`, props.etag);
      assert.equal(props.metadata?.['oid'], oidFor('1'));
      assert.equal((await blob.downloadToBuffer()).toString(), `${oidFor('1')}\n`);
      assert.deepEqual(
        (await store.listRefs('refs/')).get(ref),
        v1,
        'listing and reading agree on the version',
      );
      // Value-only expected (as the repository layer passes it) pins the current ETag.
      assert.equal(
        await store.compareAndSwapRef(ref, { oid: oidFor('1'), version: oidFor('1') }, oidFor('2')),
        true,
      );
      assert.equal(
        await store.compareAndSwapRef(ref, { oid: oidFor('1'), version: oidFor('1') }, oidFor('3')),
        false,
      );
      assert.equal(await store.compareAndSwapRef(ref, v1, oidFor('3')), false, 'old ETag');

      // A ref written by another tool: body only, no metadata.
      const body = `${oidFor('tag')}\n`;
      await container.getBlockBlobClient(`${prefix}/refs/tags/v1`).upload(body, body.length);
      const tag = await store.readRef('refs/tags/v1');
      assert.equal(tag?.oid, oidFor('tag'));
      assert.deepEqual((await store.listRefs('refs/tags/')).get('refs/tags/v1'), tag);
      assert.equal(await store.compareAndSwapRef('refs/tags/v1', tag, null), true);
      assert.deepEqual(await rawNames(`${prefix}/`), [`${prefix}/${ref}`]);
    });

    test('list and listRefs page through results, strip the prefix; prefixes isolate stores; foreign blobs are ignored', async () => {
      const prefix = freshPrefix('paged');
      const store = open({ prefix, list_page_size: 100 });
      const neighbour = open({ prefix: `${prefix}-neighbour` });
      const keys = Array.from({ length: 345 }, (_, i) => `objects/${oidFor(`paged ${i}`)}`);
      for (let i = 0; i < keys.length; i += 64)
        await Promise.all(keys.slice(i, i + 64).map((k) => store.put(k, Buffer.from(k.slice(-8)))));
      const refNames = Array.from({ length: 150 }, (_, i) => `refs/heads/b${i}`);
      for (const name of refNames)
        assert.equal(await store.compareAndSwapRef(name, null, oidFor(name)), true);
      await neighbour.put(`objects/${oidFor('neighbour')}`, Buffer.from('n'));
      assert.equal(await neighbour.compareAndSwapRef('refs/heads/main', null, oidFor('n')), true);
      await container.getBlockBlobClient(`${prefix}/README.txt`).upload('hello', 5);
      const listed = await collectList(store, '');
      assert.equal(listed.length, keys.length);
      assert.deepEqual(
        listed.map((k) => k.key),
        [...keys].sort(),
      );
      assert.ok(listed.every((k) => k.size === 8));
      const refs = await store.listRefs('refs/');
      assert.equal(refs.size, refNames.length);
      assert.ok(refNames.every((n) => refs.get(n)?.oid === oidFor(n)));
      assert.equal(await store.readRef('refs/heads/main'), null);
      const present = await store.has([...keys.slice(0, 40), `objects/${oidFor('neighbour')}`]);
      assert.deepEqual(present, [...Array.from({ length: 40 }, () => true), false]);
    });

    test('wrong key: AuthError (E_AUTH) naming container and endpoint, never the key', async () => {
      const wrongKey = randomBytes(64).toString('base64');
      const store = open({ prefix: freshPrefix('auth'), account_key: wrongKey });
      const key = `chunks/${oidFor('auth')}`;
      for (const [label, op] of [
        ['get', () => store.get(key)],
        ['put', () => store.put(key, Buffer.from('x'))],
        ['has', () => store.has([key])],
        ['list', () => collectList(store, '')],
        ['delete', () => store.delete(key)],
        ['readRef', () => store.readRef('refs/heads/main')],
        ['listRefs', () => store.listRefs('refs/')],
        ['CAS', () => store.compareAndSwapRef('refs/heads/main', null, oidFor('x'))],
      ] as const) {
        await rejectsWith(op(), AuthError, (err) => {
          assert.equal(err.code, 'E_AUTH', label);
          assert.ok(
            err.message.includes(CONTAINER) && err.message.includes(endpoint),
            `${label}: ${err.message}`,
          );
          const everything = `${err.message}\n${err.hint ?? ''}\n${err.stack ?? ''}\n${err.cause instanceof Error ? err.cause.message : ''}`;
          assert.ok(
            !everything.includes(wrongKey) && !everything.includes(KEY),
            `${label}: a key leaked`,
          );
        });
      }
    });

    test('a missing container is a clear ConfigError, not "object not found"', async () => {
      const missing = `mediagit-missing-${RUN}`;
      const store = open({ container: missing });
      for (const [label, op] of [
        ['get', () => store.get(`chunks/${oidFor('x')}`)],
        ['put', () => store.put(`chunks/${oidFor('x')}`, Buffer.from('x'))],
        [
          'block put',
          () =>
            open({ container: missing, max_single_shot_size: 1024, block_size: 1024 }).put(
              `chunks/${oidFor('x')}`,
              patternBytes('x', 4096),
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
            err.message.includes(`container '${missing}' does not exist`),
            `${label}: ${err.message}`,
          );
        });
      }
    });

    test('connection_string authentication works and stays out of messages', async () => {
      const cs = `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};BlobEndpoint=${endpoint};`;
      const store = new AzureBlobStore({
        container: CONTAINER,
        connection_string: cs,
        prefix: freshPrefix('cs'),
      });
      opened.push(store);
      assert.equal(store.description.includes(KEY), false);
      const key = `chunks/${oidFor('cs')}`;
      await store.put(key, Buffer.from('via connection string'));
      assert.equal((await store.get(key)).toString(), 'via connection string');
      const wrong = new AzureBlobStore({
        container: CONTAINER,
        connection_string: cs.replace(KEY, FAKE_KEY),
      });
      await rejectsWith(wrong.get(key), AuthError, (err) =>
        assert.ok(
          !`${err.message}${err.cause instanceof Error ? err.cause.message : ''}`.includes(
            FAKE_KEY,
          ),
        ),
      );
    });

    test('an aborted signal stops get and put', async () => {
      const store = open({ prefix: freshPrefix('abort') });
      const controller = new AbortController();
      controller.abort(new Error('stop'));
      await assert.rejects(
        store.get(`chunks/${oidFor('x')}`, { signal: controller.signal }),
        (err: unknown) => !(err instanceof StoreUnavailableError),
      );
      await assert.rejects(
        store.put(`chunks/${oidFor('x')}`, Buffer.from('x'), { signal: controller.signal }),
        (err: unknown) => !(err instanceof StoreUnavailableError),
      );
      assert.deepEqual(await collectList(store, ''), []);
    });
  });
