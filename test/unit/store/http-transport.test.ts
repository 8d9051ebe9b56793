/**
 * The HTTP client's transport (src/store/http/transport.ts): keep-alive reuse and its bound on
 * connections (counted at the server), connections opened ahead (warm), the read timeout, cancellation, and that talking to a
 * server loads no HTTP client library (its start-up cost is paid by every command).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { StoreUnavailableError } from '../../../src/errors/index.js';
import { HttpStore } from '../../../src/store/http/index.js';
import { HttpTransport } from '../../../src/store/http/transport.js';

describe('HTTP transport', () => {
  let server: Server;
  let origin: string;
  let connections = 0;
  let mostInFlight = 0;
  /** Answers held until this many requests wait at once (or all that are left do). */
  let holdUntil = 1;
  let held: (() => void)[] = [];
  const sockets = new Set<Socket>();

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url?.startsWith('/silent')) return; // never answers
        held.push(() =>
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'),
        );
        mostInFlight = Math.max(mostInFlight, held.length);
        if (held.length < holdUntil) return;
        const go = held;
        held = [];
        for (const answer of go) answer();
      });
    });
    server.on('connection', (socket: Socket) => {
      connections++;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  /**
   * What a child process prints (JSON, from `report`) after it imported the HTTP store, read a ref
   * from this server and closed the store: a fresh process, so what it loaded is the store's doing.
   */
  const loadedByAChildReadingARef = async (report: string): Promise<string[]> => {
    const http = fileURLToPath(new URL('../../../src/store/http/index.js', import.meta.url));
    const script = `
      import { createRequire } from 'node:module';
      const { HttpStore } = await import(${JSON.stringify(http)});
      const store = new HttpStore({ origin: ${JSON.stringify(origin)}, repo: 'r' });
      await store.readRef('refs/heads/main').catch(() => undefined);
      await store.close();
      ${report}
    `;
    // Not spawnSync: this process serves the child's request.
    const run = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]);
    return JSON.parse(run.stdout) as string[];
  };

  const transport = (connectionsMax: number, readTimeoutMs = 10_000): HttpTransport =>
    new HttpTransport({
      origin,
      connections: connectionsMax,
      connectTimeoutMs: 10_000,
      readTimeoutMs,
    });

  const call = async (t: HttpTransport, path = '/r/x', signal?: AbortSignal): Promise<string> => {
    const response = await t.request({
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      body: '{}',
      signal,
    });
    let text = '';
    for await (const piece of response.body as AsyncIterable<Buffer>) text += piece.toString();
    return text;
  };

  test('requests one after another reuse one connection', async () => {
    const t = transport(16);
    connections = 0;
    try {
      for (let i = 0; i < 20; i++) assert.equal(await call(t), '{"ok":true}');
      assert.equal(connections, 1);
    } finally {
      t.close();
    }
  });

  test('parallel requests open at most `connections` connections, and each is reused', async () => {
    const t = transport(4);
    connections = 0;
    mostInFlight = 0;
    // Answered four at a time: a fifth request in flight would wait forever for company.
    holdUntil = 4;
    try {
      await Promise.all(Array.from({ length: 40 }, () => call(t)));
      assert.equal(connections, 4);
      assert.equal(mostInFlight, 4);
    } finally {
      holdUntil = 1;
      t.close();
    }
  });

  test('warm connections are open before any request, within the limit, and requests use them', async () => {
    const t = transport(4);
    connections = 0;
    holdUntil = 4;
    try {
      t.warm(1);
      t.warm(9);
      // They open on the next turn of the event loop; the server counts them as it accepts.
      for (let i = 0; i < 1000 && connections < 4; i++)
        await new Promise((resolve) => setImmediate(resolve));
      assert.equal(connections, 4, 'warmed connections: at most the limit of 4');
      await Promise.all(Array.from({ length: 8 }, () => call(t)));
      assert.equal(connections, 4, 'requests opened connections of their own beside the warm ones');
      // Warming again with every connection idle in the agent opens nothing.
      holdUntil = 1;
      t.warm(4);
      await call(t);
      assert.equal(connections, 4);
    } finally {
      holdUntil = 1;
      t.close();
    }
  });

  test('a server that never answers: the read timeout fails the request with ETIMEDOUT', async () => {
    const t = transport(2, 200);
    try {
      await assert.rejects(call(t, '/silent'), { code: 'ETIMEDOUT' });
    } finally {
      t.close();
    }
  });

  test('an aborted request rejects at once and frees its connection', async () => {
    const t = transport(1);
    try {
      const controller = new AbortController();
      const pending = call(t, '/silent', controller.signal);
      setImmediate(() => controller.abort());
      await assert.rejects(pending, { name: 'AbortError' });
      // The only connection is free again.
      assert.equal(await call(t), '{"ok":true}');
    } finally {
      t.close();
    }
  });

  test('HttpStore maps a read timeout to a retriable StoreUnavailableError', async () => {
    const store = new HttpStore({ origin, repo: 'silent', readTimeoutMs: 200 });
    try {
      await assert.rejects(store.readRef('refs/heads/main'), StoreUnavailableError);
    } finally {
      await store.close();
    }
  });

  test('talking to a server loads no HTTP client library, not even the one inside Node', async () => {
    const loaded = await loadedByAChildReadingARef(`
      const required = Object.keys(createRequire(import.meta.url).cache);
      // Node's own bundled fetch client too (an ES import of node:http loads it).
      const internal = process.moduleLoadList.filter((m) => m.includes('undici'));
      console.log(JSON.stringify([...required.filter((f) => f.includes('node_modules')), ...internal]));
    `);
    assert.deepEqual(loaded, []);
  });

  test('an http:// remote loads no TLS stack (node:tls, node:https): only an https one needs it', async () => {
    const before = connections;
    const builtins = (
      await loadedByAChildReadingARef(`
        console.log(JSON.stringify(process.moduleLoadList.filter((m) => m.startsWith('NativeModule '))));
      `)
    ).map((m) => m.slice('NativeModule '.length));
    // The evidence is real: the child talked to this server with Node's HTTP client.
    assert.ok(connections > before, 'the child made no connection');
    assert.ok(builtins.includes('_http_client'), 'the child loaded no HTTP client');
    assert.deepEqual(
      builtins.filter((m) => m === 'tls' || m === 'https' || m.startsWith('internal/tls/')),
      [],
    );
  });
});
