import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { nextRequests, startFaultProxy, type FaultProxy } from '../../support/fault-proxy.js';

/** A server that stores PUT bodies by path and returns them on GET, so a test sees what landed. */
async function startEcho(): Promise<{ server: Server; url: string; stored: Map<string, Buffer> }> {
  const stored = new Map<string, Buffer>();
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      if (req.method === 'PUT') {
        stored.set(req.url ?? '/', Buffer.concat(parts));
        res.writeHead(201, { 'x-landed': 'yes' }).end('stored');
        return;
      }
      const body = stored.get(req.url ?? '/');
      if (!body) res.writeHead(404).end();
      else res.writeHead(200, { 'content-length': body.length }).end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stored };
}

interface Outcome {
  status?: number;
  headers?: Record<string, string | string[] | undefined>;
  body?: Buffer;
  error?: string;
}

/** One request with its own connection; a stall shows as `error: 'timeout'` after `timeoutMs`. */
function send(url: string, method: string, path: string, body?: Buffer, timeoutMs = 2_000) {
  return new Promise<Outcome>((resolve) => {
    const parts: Buffer[] = [];
    const req = request(`${url}${path}`, { method, agent: false }, (res) => {
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }),
      );
      res.on('error', (e) => resolve({ status: res.statusCode!, error: e.message }));
      res.on('aborted', () => resolve({ status: res.statusCode!, error: 'aborted' }));
    });
    req.setTimeout(timeoutMs, () => {
      req.destroy();
      resolve({ error: 'timeout', body: Buffer.concat(parts) });
    });
    req.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
    req.end(body);
  });
}

describe('fault proxy', () => {
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let proxy: FaultProxy;
  before(async () => {
    echo = await startEcho();
    proxy = await startFaultProxy({ target: echo.url });
  });
  after(async () => {
    await proxy.close();
    echo.server.close();
  });

  test('passes requests through byte for byte when the plan picks nothing', async () => {
    const body = Buffer.from('x'.repeat(100_000));
    assert.equal((await send(proxy.url, 'PUT', '/a', body)).status, 201);
    const read = await send(proxy.url, 'GET', '/a');
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, body);
  });

  test('reset: the client sees a reset and nothing lands', async () => {
    proxy.setPlan(nextRequests({ kind: 'reset' }));
    const outcome = await send(proxy.url, 'PUT', '/reset', Buffer.from('v'));
    assert.equal(outcome.error, 'ECONNRESET');
    assert.equal(echo.stored.has('/reset'), false);
  });

  test('refuse: 503 with Retry-After, and the server never saw the request', async () => {
    proxy.setPlan(nextRequests({ kind: 'refuse', status: 503, retryAfter: '2' }));
    const outcome = await send(proxy.url, 'PUT', '/refused', Buffer.from('v'));
    assert.equal(outcome.status, 503);
    assert.equal(outcome.headers?.['retry-after'], '2');
    assert.equal(echo.stored.has('/refused'), false);
  });

  test('lose-reply: the write lands, the client only sees its connection die', async () => {
    proxy.setPlan(nextRequests({ kind: 'lose-reply' }));
    const outcome = await send(proxy.url, 'PUT', '/lost', Buffer.from('landed'));
    assert.ok(outcome.error, 'the client got no answer');
    assert.deepEqual(echo.stored.get('/lost'), Buffer.from('landed'));
  });

  test('replace-reply: the write lands, the client is told 429', async () => {
    proxy.setPlan(nextRequests({ kind: 'replace-reply', status: 429, retryAfter: '1' }));
    const outcome = await send(proxy.url, 'PUT', '/replaced', Buffer.from('landed'));
    assert.equal(outcome.status, 429);
    assert.deepEqual(echo.stored.get('/replaced'), Buffer.from('landed'));
  });

  test('cut-body and stall-body deliver only the prefix; stall never answers', async () => {
    const body = Buffer.alloc(64 * 1024, 7);
    await send(proxy.url, 'PUT', '/big', body);
    proxy.setPlan(nextRequests({ kind: 'cut-body', bytes: 1000 }));
    const cut = await send(proxy.url, 'GET', '/big');
    assert.ok(cut.error, 'a cut body is an error, not a short success');
    proxy.setPlan(nextRequests({ kind: 'stall-body', bytes: 1000 }));
    const stalledBody = await send(proxy.url, 'GET', '/big', undefined, 300);
    assert.equal(stalledBody.error, 'timeout');
    assert.equal(stalledBody.body?.length, 1000);
    proxy.setPlan(nextRequests({ kind: 'stall' }));
    assert.equal((await send(proxy.url, 'GET', '/big', undefined, 300)).error, 'timeout');
    assert.equal(proxy.injected.get('stall'), 1);
  });
});

test('resetAfterRequestBytes drops a connection once that many request bytes went through', async () => {
  const echo = await startEcho();
  const proxy = await startFaultProxy({ target: echo.url, resetAfterRequestBytes: 64 * 1024 });
  try {
    assert.equal((await send(proxy.url, 'PUT', '/small', Buffer.alloc(1000))).status, 201);
    const big = await send(proxy.url, 'PUT', '/big', Buffer.alloc(1024 * 1024));
    assert.ok(big.error);
    assert.equal(echo.stored.has('/big'), false);
    assert.equal(proxy.injected.get('reset-after-bytes'), 1);
  } finally {
    await proxy.close();
    echo.server.close();
  }
});

test('refuses targets beyond loopback', async () => {
  await assert.rejects(startFaultProxy({ target: 'http://10.0.0.1:80' }), /loopback/);
});
