import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';
import { hashTree, assertTreesEqual } from '../support/tree.js';

const FAN_OUTS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

async function assertEmptyFanOuts(store: string): Promise<void> {
  for (const ns of ['chunks', 'objects']) {
    const names = (await readdir(path.join(store, ns))).sort();
    assert.deepEqual(names, FAN_OUTS, `${ns}/ holds the 256 fan-out folders`);
    for (const name of names)
      assert.deepEqual(await readdir(path.join(store, ns, name)), [], `${ns}/${name} is empty`);
  }
}

async function someFiles(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'art'), { recursive: true });
  // Large enough to be cut into several chunks, which land in several fan-out folders.
  await writeFile(path.join(dir, 'art', 'big.bin'), randomBytes(3 * 1024 * 1024));
  await writeFile(path.join(dir, 'readme.txt'), 'fan-out folders\n');
}

test('init, init --bare and clone make every fan-out folder of chunks/ and objects/ up front; fsck and gc take them empty', async () => {
  const work = await tempDir('fan-out');
  const repo = path.join(work, 'repo');
  await mkdir(repo);
  await runCli(['init', '-q'], { cwd: repo });
  await assertEmptyFanOuts(path.join(repo, '.mediagit'));

  const fsckEmpty = await runCli(['fsck', '--full'], { cwd: repo });
  assert.match(fsckEmpty.stdout, /no problems found/);

  const bare = path.join(work, 'bare');
  await runCli(['init', '--bare', bare], { cwd: work });
  await assertEmptyFanOuts(bare);

  await someFiles(repo);
  await runCli(['add', '.'], { cwd: repo });
  await runCli(['commit', '-m', 'one'], { cwd: repo });
  await runCli(['gc'], { cwd: repo });
  const fsck = await runCli(['fsck', '--full'], { cwd: repo });
  assert.match(fsck.stdout, /no problems found/);
  // gc leaves the (mostly still empty) fan-out folders in place.
  for (const ns of ['chunks', 'objects'])
    assert.equal((await readdir(path.join(repo, '.mediagit', ns))).length, 256);

  const cloned = path.join(work, 'cloned');
  await runCli(['clone', repo, cloned], { cwd: work });
  assertTreesEqual(await hashTree(cloned), await hashTree(repo), 'clone');
  for (const ns of ['chunks', 'objects'])
    assert.equal((await readdir(path.join(cloned, '.mediagit', ns))).length, 256);
});

test('a repository made by an older init (no fan-out folders) still takes add, commit and checkout', async () => {
  const work = await tempDir('fan-out-old');
  const repo = path.join(work, 'repo');
  await mkdir(repo);
  await runCli(['init', '-q'], { cwd: repo });
  // What an init before the fan-outs were made up front leaves: chunks/ and objects/ empty.
  for (const ns of ['chunks', 'objects'])
    for (const name of FAN_OUTS) await rmdir(path.join(repo, '.mediagit', ns, name));

  await someFiles(repo);
  const before = await hashTree(repo);
  await runCli(['add', '.'], { cwd: repo });
  await runCli(['commit', '-m', 'old layout'], { cwd: repo });
  const fsck = await runCli(['fsck', '--full'], { cwd: repo });
  assert.match(fsck.stdout, /no problems found/);

  // Rebuilt from the store alone.
  await rm(path.join(repo, 'art'), { recursive: true });
  await rm(path.join(repo, 'readme.txt'));
  await runCli(['reset', '--hard'], { cwd: repo });
  assertTreesEqual(await hashTree(repo), before, 'checkout after add into an old layout');
});
