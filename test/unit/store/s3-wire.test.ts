/**
 * The S3 store's own HTTP client (src/store/s3/wire.ts, sigv4.ts): signatures equal to the AWS
 * SDK's signer on the same requests, ListObjectsV2 answers parsed with escaped keys, failures
 * mapped as the SDK's were, cut answers refused, and one keep-alive connection for a run of
 * requests whatever they answer (an unread error answer used to pin its socket).
 */
import assert from 'node:assert/strict';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  AuthError,
  ConfigError,
  NotFoundError,
  StoreUnavailableError,
} from '../../../src/errors/index.js';
import { S3Store } from '../../../src/store/s3/index.js';
import { SigV4Signer, UNSIGNED_PAYLOAD, uriEncode } from '../../../src/store/s3/sigv4.js';
import { parseListPage } from '../../../src/store/s3/wire.js';

/** node:crypto in the shape the SDK's signer takes a hash in (keyed: HMAC-SHA256). */
class Sha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: Data) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: Data): void {
    this.h.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.h.digest()));
  }
  reset(): void {}
}
type Data = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: Data): string | Buffer =>
  typeof d === 'string'
    ? d
    : d instanceof ArrayBuffer
      ? Buffer.from(d)
      : Buffer.from(d.buffer, d.byteOffset, d.byteLength);

const credentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
const withToken = { ...credentials, sessionToken: 'token/with+odd=chars' };

test('signatures equal the AWS SDK signer on the same requests', async () => {
  const when = new Date('2026-12-06T10:11:12.345Z');
  const cases = [
    {
      method: 'GET',
      key: 'team/chunks/ab12',
      query: [] as [string, string][],
      hash: UNSIGNED_PAYLOAD,
    },
    {
      method: 'GET',
      key: undefined,
      query: [
        ['list-type', '2'],
        ['prefix', 'team a/chunks/'],
        ['start-after', "team a/chunks/x!'()*~"],
        ['continuation-token', 'a+b/c=='],
        ['max-keys', '32'],
      ] as [string, string][],
      hash: createHash('sha256').update('').digest('hex'),
    },
    {
      method: 'PUT',
      key: 'p/refs/heads/é ü/0001',
      query: [],
      hash: createHash('sha256').update('body').digest('hex'),
    },
    { method: 'HEAD', key: 'weird key (1)*.bin', query: [], hash: UNSIGNED_PAYLOAD },
  ];
  for (const creds of [credentials, withToken]) {
    const ours = new SigV4Signer('eu-west-3');
    const sdk = new SignatureV4({
      service: 's3',
      region: 'eu-west-3',
      credentials: creds,
      sha256: Sha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    for (const c of cases) {
      const path = `/bucket/${c.key === undefined ? '' : uriEncode(c.key, true)}`;
      const host = '127.0.0.1:7480';
      const mine = ours.sign({ method: c.method, host, path, query: c.query }, creds, c.hash, when);
      const theirs = await sdk.sign(
        {
          method: c.method,
          protocol: 'http:',
          hostname: '127.0.0.1',
          port: 7480,
          path,
          query: Object.fromEntries(c.query),
          headers: { host, 'x-amz-content-sha256': c.hash },
        },
        { signingDate: when },
      );
      assert.equal(mine['authorization'], theirs.headers['authorization'], `${c.method} ${path}`);
      assert.equal(mine['x-amz-date'], theirs.headers['x-amz-date']);
    }
  }
});

test('ListObjectsV2 answers: escaped keys, sizes, dates, truncation and the next token', () => {
  const page = parseListPage(
    `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><Prefix>p/</Prefix>` +
      `<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>` +
      `<NextContinuationToken>tok&amp;1</NextContinuationToken>` +
      `<Contents><Key>p/a&amp;b&lt;c&gt;&#x41;&#66;</Key><LastModified>2026-12-06T10:00:00.000Z</LastModified><ETag>&quot;x&quot;</ETag><Size>12</Size></Contents>` +
      `<Contents><Key>p/&lt;IsTruncated&gt;</Key><Size>0</Size></Contents></ListBucketResult>`,
  );
  assert.deepEqual(page, {
    contents: [
      { key: 'p/a&b<c>AB', size: 12, lastModified: Date.parse('2026-12-06T10:00:00.000Z') },
      { key: 'p/<IsTruncated>', size: 0, lastModified: undefined },
    ],
    truncated: true,
    nextToken: 'tok&1',
  });
  const last = parseListPage(
    '<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>',
  );
  assert.deepEqual(last, { contents: [], truncated: false, nextToken: undefined });
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A scripted S3 endpoint on loopback that counts the connections it was given. */
async function scripted(
  t: { after(fn: () => unknown): void },
  handler: Handler,
): Promise<{ store: S3Store; connections: () => number }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => handler(req, res));
  });
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const store = new S3Store({
    bucket: 'b',
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    access_key: 'k',
    secret_key: 'secret-never-shown',
    max_retries: 0,
  });
  t.after(async () => {
    await store.close();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { store, connections: () => connections };
}

const errorXml = (code: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>m</Message></Error>`;
const KEY = `chunks/${'cd'.repeat(32)}`;

test('failures map as they did with the SDK: 404, 403, 503 with Retry-After, NoSuchBucket', async (t) => {
  let answer: { status: number; body: string; headers?: Record<string, string> } = {
    status: 404,
    body: errorXml('NoSuchKey'),
  };
  const { store } = await scripted(t, (_req, res) => {
    res.writeHead(answer.status, { 'content-type': 'application/xml', ...answer.headers });
    res.end(answer.body);
  });
  await assert.rejects(store.get(KEY), NotFoundError);
  assert.deepEqual(await store.has([KEY]), [false]);
  answer = { status: 403, body: errorXml('SignatureDoesNotMatch') };
  await assert.rejects(store.get(KEY), (err: unknown) => {
    assert.ok(err instanceof AuthError);
    assert.ok(!err.message.includes('secret-never-shown'));
    return true;
  });
  answer = { status: 503, body: errorXml('SlowDown'), headers: { 'retry-after': '3' } };
  await assert.rejects(store.put(KEY, Buffer.from('x')), (err: unknown) => {
    assert.ok(err instanceof StoreUnavailableError);
    assert.equal(err.retryAfterMs, 3000);
    return true;
  });
  answer = { status: 404, body: errorXml('NoSuchBucket') };
  await assert.rejects(store.get(KEY), ConfigError);
});

test('an answer cut short of its Content-Length is a lost connection, never a short object', async (t) => {
  const { store } = await scripted(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '1000' });
    res.write(Buffer.alloc(400, 1));
    setImmediate(() => res.socket?.destroy());
  });
  await assert.rejects(store.get(KEY), StoreUnavailableError);
});

test('one keep-alive connection serves a run of requests, error answers included', async (t) => {
  let n = 0;
  const { store, connections } = await scripted(t, (req, res) => {
    n++;
    if (req.method === 'HEAD') return void res.writeHead(404, { 'content-length': '0' }).end();
    if (n % 3 === 0) return void res.writeHead(500).end(errorXml('InternalError'));
    res.writeHead(200, { 'content-length': '2' }).end('ok');
  });
  for (let i = 0; i < 30; i++) {
    assert.deepEqual(await store.has([KEY]), [false]);
    await store.get(KEY).catch((err: unknown) => assert.ok(err instanceof StoreUnavailableError));
  }
  assert.equal(connections(), 1);
});
