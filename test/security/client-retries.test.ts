/**
 * The client's retry budget against a real `mediagit server`: long enough to ride out the server
 * being killed and restarted in the middle of a push, while a server that stalls still fails the
 * command in bounded time (three timeouts, not one per retry) with E_STORE_UNAVAILABLE.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, tempDir, type CliResult } from '../support/cli.js';
import { freePort } from '../support/fault-push.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';

const SMALL_CHUNKS = ['--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K'];

/** Files anywhere under `dir` (0 while it does not exist). */
async function countFiles(dir: string): Promise<number> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).length;
  } catch {
    return 0;
  }
}

/** A repository of `files` × 1 MiB of random bytes (hundreds of small chunks), committed. */
async function repoToPush(label: string, files: number): Promise<string> {
  const src = path.join(await tempDir(label), 'src');
  await mkdir(src, { recursive: true });
  for (let i = 0; i < files; i++)
    await writeFile(path.join(src, `take-${i}.bin`), randomBytes(1024 * 1024));
  await runCli(['init', '-q', ...SMALL_CHUNKS], { cwd: src });
  await runCli(['add', '.'], { cwd: src });
  await runCli(['commit', '-q', '-m', 'takes'], { cwd: src });
  return src;
}

test('a server killed and restarted mid-push: the push rides it out and lands whole', async (t) => {
  const data = path.join(await tempDir('restart-data'), 'storage');
  const port = await freePort();
  const secret = randomBytes(32).toString('hex');
  const start = (): Promise<TestServer> =>
    startTestServer({
      child: true,
      port,
      env: { MEDIAGIT_JWT_SECRET: secret },
      config: `[storage]\nbackend = "local"\n[storage.local]\npath = ${JSON.stringify(data)}\nfsync = false\n`,
    });
  let server = await start();
  const first = server;
  try {
    const token = await server.token('restart', 'write', 'alice');
    const src = await repoToPush('restart-src', 24);
    await runCli(['remote', 'add', 'origin', `${server.url}/restart`], { cwd: src });
    let ended = false;
    const push = runCli(['push'], {
      cwd: src,
      env: { MEDIAGIT_TOKEN: token },
      allowFail: true,
    }).finally(() => (ended = true));
    // Kill only once the push is sending chunks, so the restart lands in its middle.
    while (!ended && (await countFiles(path.join(data, 'restart', 'chunks'))) < 20) await sleep(10);
    assert.equal(ended, false, 'the push was over before the server could be killed');
    const killedAt = Date.now();
    server.process!.kill('SIGKILL');
    await server.exited;
    server = await start();
    t.diagnostic(`server down for ${Date.now() - killedAt} ms (SIGKILL to listening again)`);
    const res: CliResult = await push;
    assert.equal(res.code, 0, `push across the restart failed:\n${res.stderr}`);

    // Everything it pushed is there and whole.
    const clone = path.join(path.dirname(src), 'clone');
    const cloned = await runCli(['clone', `${server.url}/restart`, clone], {
      cwd: path.dirname(src),
      env: { MEDIAGIT_TOKEN: token },
      allowFail: true,
    });
    assert.equal(cloned.code, 0, cloned.stderr);
    const fsck = await runCli(['fsck', '--remote', 'origin', '--full'], {
      cwd: src,
      env: { MEDIAGIT_TOKEN: token },
      allowFail: true,
    });
    assert.equal(fsck.code, 0, `${fsck.stdout}\n${fsck.stderr}`);
  } finally {
    await server.close();
    if (first !== server) await first.close();
  }
});

test('a server that accepts and never answers: the push fails with E_STORE_UNAVAILABLE after three stalls', async () => {
  let requests = 0;
  const held: Socket[] = [];
  const silent = createNetServer((socket) => {
    held.push(socket);
    socket.on('data', (bytes) => {
      requests += bytes.toString('latin1').split(' HTTP/1.1\r\n').length - 1;
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const { port } = silent.address() as AddressInfo;
  try {
    const src = await repoToPush('stall-src', 1);
    await runCli(
      ['remote', 'add', 'origin', `http://127.0.0.1:${port}/stalled`, '-o', 'read_timeout_ms=300'],
      { cwd: src },
    );
    const res = await runCli(['push'], {
      cwd: src,
      env: { MEDIAGIT_TOKEN: 'any' },
      allowFail: true,
    });
    assert.equal(res.code, 12, res.stderr);
    assert.match(res.stderr, /^error: .*127\.0\.0\.1/m);
    assert.equal(requests, 3, 'a stalled call is tried three times, not once per retry');
  } finally {
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});
