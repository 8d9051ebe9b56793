/**
 * S3 bodies go unsigned (UNSIGNED-PAYLOAD) only where the transport guards them: TLS or loopback.
 * Seen on the wire by a scripted S3 endpoint on 127.0.0.1 that records each request's payload hash.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { S3Store, unsignedPayloadSafe } from '../../../src/store/s3/index.js';

test('unsigned payloads: TLS and loopback yes, plain http over the network no', () => {
  assert.equal(unsignedPayloadSafe(undefined), true, 'AWS itself is https');
  assert.equal(unsignedPayloadSafe('https://minio.example:9000'), true);
  assert.equal(unsignedPayloadSafe('http://127.0.0.1:7480'), true);
  assert.equal(unsignedPayloadSafe('http://127.8.0.3:7480'), true);
  assert.equal(unsignedPayloadSafe('http://localhost:7480'), true);
  assert.equal(unsignedPayloadSafe('http://[::1]:7480'), true);
  assert.equal(unsignedPayloadSafe('http://minio.internal:9000'), false);
  assert.equal(unsignedPayloadSafe('http://10.0.0.5:9000'), false);
  assert.equal(unsignedPayloadSafe('http://127.0.0.1.example.com'), false);
  assert.equal(unsignedPayloadSafe('not a url'), false);
});

test('a PUT to a loopback endpoint carries UNSIGNED-PAYLOAD, and the body arrives whole', async (t) => {
  const seen: { method: string; hash: string | undefined; bytes: number }[] = [];
  const server = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (b: Buffer) => (bytes += b.length));
    req.on('end', () => {
      const hash = req.headers['x-amz-content-sha256'];
      seen.push({
        method: req.method ?? '',
        hash: typeof hash === 'string' ? hash : undefined,
        bytes,
      });
      res.writeHead(200, { ETag: '"x"' }).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const port = (server.address() as AddressInfo).port;
  const store = new S3Store({
    bucket: 'b',
    endpoint: `http://127.0.0.1:${port}`,
    access_key: 'k',
    secret_key: 's',
  });
  const body = Buffer.alloc(100_000, 7);
  await store.put(`chunks/${'ab'.repeat(32)}`, body);
  assert.deepEqual(seen, [{ method: 'PUT', hash: 'UNSIGNED-PAYLOAD', bytes: body.length }]);
});
