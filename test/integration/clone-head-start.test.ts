/**
 * A clone's first chunk requests leave as soon as the fetch has named the checked-out files'
 * chunks, not once the trees and manifests are stored and the checkout has read them
 * (src/sync/head-start.ts), against a real server on loopback; and a clone closes the
 * connections it opened.
 */
import assert from 'node:assert/strict';
import dc from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { Repository, STREAM_CONCURRENCY, silentProgress } from '../../src/repo/index.js';
import { HttpStore } from '../../src/store/http/index.js';
import { clone, push } from '../../src/sync/index.js';
import { tempDir } from '../support/cli.js';
import { Prng } from '../support/corpus.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';
import { MAIN, commitFiles, fsckFull, initRepo } from '../support/sync-fixtures.js';

let server: TestServer | undefined;
after(() => server?.close());

/** The clone runs in this process and takes its token from the environment, as the CLI's would. */
function useToken(t: TestContext, token: string): void {
  const saved = process.env['MEDIAGIT_TOKEN'];
  process.env['MEDIAGIT_TOKEN'] = token;
  t.after(() => {
    if (saved === undefined) delete process.env['MEDIAGIT_TOKEN'];
    else process.env['MEDIAGIT_TOKEN'] = saved;
  });
}

test('clone asks for the first wave of chunks before its checkout starts, and none twice', async (t) => {
  server = await startTestServer();
  const name = 'head-start';
  const token = await server.token(name, 'write');
  const store = new HttpStore({ origin: server.url, repo: name, token });
  t.after(() => store.close());
  const source = await initRepo(path.join(await tempDir(name), 'source'));
  const prng = new Prng(name);
  // More files than one wave, one chunk each.
  const files = new Map<string, Buffer>();
  for (let i = 0; i < STREAM_CONCURRENCY + 8; i++)
    files.set(`f/${String(i).padStart(2, '0')}.bin`, prng.fill(Buffer.alloc(3000 + i)));
  const tip = await commitFiles(source, [], files, 'one');
  await push(source, store, { oid: tip, ref: MAIN, force: false }, silentProgress);

  // The client's chunk requests, counted as each is created (this process runs the clone).
  const chunkGets: string[] = [];
  const onRequest = (message: unknown): void => {
    const { request } = message as { request: ClientRequest };
    if (request.method === 'GET' && request.path.includes('/chunks/')) chunkGets.push(request.path);
  };
  dc.subscribe('http.client.request.start', onRequest);
  t.after(() => dc.unsubscribe('http.client.request.start', onRequest));
  useToken(t, token);

  let askedAtCheckout: number | undefined;
  const directory = path.join(await tempDir(name), 'clone');
  await clone({
    url: `${server.url}/${name}`,
    directory,
    progress: () => ({
      ...silentProgress,
      start: (phase) => {
        if (phase === 'checkout') askedAtCheckout ??= chunkGets.length;
      },
    }),
  });

  assert.equal(askedAtCheckout, STREAM_CONCURRENCY, 'one wave asked for ahead, no more');
  assert.equal(chunkGets.length, files.size, 'every chunk asked for');
  assert.equal(new Set(chunkGets).size, files.size, 'none twice');
  for (const [file, data] of files)
    assert.deepEqual(await readFile(path.join(directory, file)), data, file);
  const report = await fsckFull(await Repository.open(directory));
  assert.ok(report.ok, JSON.stringify(report.problems));
});

test('clone closes the connections it opened before it returns', async (t) => {
  server ??= await startTestServer();
  const name = 'closes';
  const token = await server.token(name, 'write');
  const store = new HttpStore({ origin: server.url, repo: name, token });
  const source = await initRepo(path.join(await tempDir(name), 'source'));
  const prng = new Prng(name);
  const files = new Map([['a.bin', prng.fill(Buffer.alloc(200_000))]]);
  const tip = await commitFiles(source, [], files, 'one');
  await push(source, store, { oid: tip, ref: MAIN, force: false }, silentProgress);
  await store.close();

  // Every client connection this process opens from here on (the clone runs in it).
  const sockets: Socket[] = [];
  const onSocket = (message: unknown): void => {
    sockets.push((message as { socket: Socket }).socket);
  };
  dc.subscribe('net.client.socket', onSocket);
  t.after(() => dc.unsubscribe('net.client.socket', onSocket));
  useToken(t, token);

  const directory = path.join(await tempDir(name), 'clone');
  await clone({ url: `${server.url}/${name}`, directory });
  dc.unsubscribe('net.client.socket', onSocket);

  assert.ok(sockets.length > 0, 'the clone connected');
  assert.deepEqual(
    sockets.filter((s) => !s.destroyed).length,
    0,
    `${sockets.length} connections opened, some still open`,
  );
  assert.deepEqual(await readFile(path.join(directory, 'a.bin')), files.get('a.bin'));
});
