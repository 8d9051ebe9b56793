/**
 * An incremental push through `mediagit server` larger than one pack: the client splits what it
 * sends into several packs, and packs sent at once can land in any order. The server stores a
 * manifest only once its chunks are there, so the pack carrying manifests must not overtake the
 * packs carrying their chunks. The proxy holds the first pack back to force the overtaking.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';
import { Prng } from '../support/corpus.js';
import { startRecordingProxy } from '../support/recording-proxy.js';
import { startTestServer } from '../support/server-harness.js';
import { assertTreesEqual, hashTree } from '../support/tree.js';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

test('an incremental push of several packs lands whatever order they travel in; a clone is byte-identical', async () => {
  const server = await startTestServer();
  closers.push(() => server.close());
  let packs = 0;
  const proxy = await startRecordingProxy({
    target: server.url,
    // The first pack upload of the incremental push (the one with chunks only) arrives late.
    hold: {
      match: (r) => r.method === 'POST' && r.url.endsWith('/objects/pack') && ++packs === 1,
      ms: 1500,
    },
  });
  closers.push(() => proxy.close());
  const env = {
    XDG_CONFIG_HOME: await tempDir('pack-order-xdg'),
    MEDIAGIT_TOKEN: await server.token('*', 'write', 'alice'),
  };
  const work = await tempDir('pack-order');
  const artist = path.join(work, 'artist');
  await mkdir(artist);
  const mg = (cwd: string, ...args: string[]) => runCli(args, { cwd, env, timeoutMs: 300_000 });
  const prng = new Prng('pack-order');
  const write = async (name: string, bytes: number): Promise<void> => {
    await mkdir(path.dirname(path.join(artist, name)), { recursive: true });
    await writeFile(path.join(artist, name), prng.fill(Buffer.alloc(bytes)));
  };

  await mg(artist, 'init', '-q');
  await write('small.bin', 64 * 1024);
  await mg(artist, 'add', '.');
  await mg(artist, 'commit', '-q', '-m', 'v1');
  await mg(artist, 'remote', 'add', 'origin', `${proxy.url}/hero`);
  await mg(artist, 'push', '-q', 'origin', 'main');

  // Over one pack (4 MiB) but within what the push sends as one batch: several packs, one push.
  packs = 0;
  for (let i = 0; i < 3; i++) await write(`textures/t${i}.bin`, 2 * 1024 * 1024);
  await mg(artist, 'add', '.');
  await mg(artist, 'commit', '-q', '-m', 'v2');
  const pushed = await runCli(['push', 'origin', 'main'], {
    cwd: artist,
    env,
    timeoutMs: 300_000,
    allowFail: true,
  });
  assert.equal(pushed.code, 0, `push of several packs failed:\n${pushed.stderr}`);
  assert.ok(packs >= 2, `the push sent ${packs} pack(s); the test needs at least two`);

  const clone = path.join(work, 'clone');
  await mg(work, 'clone', '-q', `${server.url}/hero`, clone);
  assertTreesEqual(await hashTree(clone), await hashTree(artist), 'clone of v2');
  assert.match((await mg(artist, 'fsck', '--remote', 'origin', '--full')).stdout, /no problems/);
});
