/**
 * A pull into a lean working tree downloads only what is new: the unchanged chunks of an edited
 * file sit in the checked-out file (the store keeps no copy of them), and the merge reads them
 * from there rather than downloading them again. Bytes counted on the wire, through a pass-through
 * proxy in front of a real `mediagit server`.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';
import { Prng } from '../support/corpus.js';
import { startLinkEmulator } from '../support/link-emulator.js';
import { startTestServer } from '../support/server-harness.js';
import { SMALL_CHUNK_ARGS } from '../support/sync-fixtures.js';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

const MiB = 1024 * 1024;

test('pull into a lean clone downloads the edited part of a file, not the whole file again', async () => {
  const server = await startTestServer();
  closers.push(() => server.close());
  // Used only to count bytes: fast enough never to be the limit.
  const wire = await startLinkEmulator({
    target: server.url,
    rateBitsPerSecond: 50e9,
    rttMs: 0,
    handshake: false,
  });
  closers.push(() => wire.close());
  const env = {
    XDG_CONFIG_HOME: await tempDir('pull-bytes-xdg'),
    MEDIAGIT_TOKEN: await server.token('*', 'write', 'alice'),
  };
  const mg = (cwd: string, ...args: string[]) => runCli(args, { cwd, env, timeoutMs: 300_000 });
  const work = await tempDir('pull-bytes');
  const artist = path.join(work, 'artist');
  await mkdir(artist);
  const prng = new Prng('pull-bytes');
  const original = prng.fill(Buffer.alloc(4 * MiB));
  await writeFile(path.join(artist, 'plate.exr'), original);
  await mg(artist, 'init', '-q', ...SMALL_CHUNK_ARGS);
  await mg(artist, 'add', '.');
  await mg(artist, 'commit', '-q', '-m', 'v1');
  await mg(artist, 'remote', 'add', 'origin', `${wire.url}/hero`);
  await mg(artist, 'push', '-q', 'origin', 'main');
  const clone = path.join(work, 'clone');
  await mg(work, 'clone', '-q', `${wire.url}/hero`, clone);

  // v2: 64 KiB rewritten in the middle; a few chunks around it change, the rest stay.
  const edited = Buffer.from(original);
  prng.fill(edited.subarray(2 * MiB, 2 * MiB + 64 * 1024));
  await writeFile(path.join(artist, 'plate.exr'), edited);
  await mg(artist, 'commit', '-q', '-a', '-m', 'v2');
  await mg(artist, 'push', '-q');

  const before = wire.counters();
  await mg(clone, 'pull', '-q');
  const down = wire.counters().down - before.down;
  assert.ok((await readFile(path.join(clone, 'plate.exr'))).equals(edited), 'pulled file');
  assert.ok(
    down < MiB,
    `the pull downloaded ${down} bytes for a 64 KiB edit of a 4 MiB file (it had the rest)`,
  );
  assert.match((await mg(clone, 'fsck')).stdout, /no problems/);
});
