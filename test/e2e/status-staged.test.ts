import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';

type Status = {
  staged: { path: string; status: string }[];
  unstaged: { path: string; status: string }[];
};

test("status reports staged changes right whether or not the index knows HEAD's tree", async () => {
  const repo = await tempDir('staged');
  const run = (...args: string[]) => runCli(args, { cwd: repo });
  const staged = async (): Promise<string[]> =>
    (JSON.parse((await run('status', '--json')).stdout) as Status).staged.map(
      (c) => `${c.status} ${c.path}`,
    );
  const recordedTree = async (): Promise<string | undefined> =>
    (JSON.parse(await readFile(path.join(repo, '.mediagit', 'index'), 'utf8')) as { tree?: string })
      .tree;

  await run('init', '-q');
  for (const name of ['a.txt', 'b.txt', 'c.txt'])
    await writeFile(path.join(repo, name), `${name} v1\n`);
  await run('add', '.');
  assert.equal(await recordedTree(), undefined, 'add alone records no tree');
  assert.deepEqual(await staged(), ['A a.txt', 'A b.txt', 'A c.txt']);
  await run('commit', '-q', '-m', 'one');
  const head = (
    JSON.parse((await run('log', '--json', '-n', '1')).stdout) as { tree: string }[]
  )[0]!.tree;
  assert.equal(await recordedTree(), head, 'commit records the tree it wrote');
  assert.deepEqual(await staged(), []);

  // A stat-only change (touch) is refreshed into the index by status and keeps the tree.
  await writeFile(path.join(repo, 'a.txt'), 'a.txt v1\n');
  assert.deepEqual(await staged(), []);
  assert.equal(await recordedTree(), head);

  await writeFile(path.join(repo, 'a.txt'), 'a.txt v2\n');
  await run('add', 'a.txt');
  assert.equal(await recordedTree(), undefined, 'a staged change forgets it');
  assert.deepEqual(await staged(), ['M a.txt']);
  await run('rm', '-q', 'b.txt');
  assert.deepEqual(await staged(), ['M a.txt', 'D b.txt']);
  await run('commit', '-q', '-m', 'two');
  assert.deepEqual(await staged(), []);

  // HEAD moves, the index does not: its recorded tree is no longer HEAD's.
  await run('reset', '--soft', 'HEAD~1');
  assert.deepEqual(await staged(), ['M a.txt', 'D b.txt']);
  await run('commit', '-q', '-m', 'two again');
  assert.deepEqual(await staged(), []);
  await run('checkout', '-q', '-b', 'side', 'HEAD~1');
  assert.deepEqual(await staged(), []);
  assert.equal(await readFile(path.join(repo, 'b.txt'), 'utf8'), 'b.txt v1\n');
});

/**
 * A repository with `take.wav` and one small text file committed, then the take grown in place to
 * a 64 GB sparse file (reading it, even its holes, takes the better part of a minute: only not
 * reading it is quick) and the text file given `edited`, new bytes of the same size.
 */
async function grownTake(
  prefix: string,
  text: { name: string; committed: string; edited: string },
) {
  const repo = await tempDir(prefix);
  const run = (...args: string[]) => runCli(args, { cwd: repo, timeoutMs: 20_000 });
  await run('init', '-q');
  await writeFile(path.join(repo, 'take.wav'), 'RIFF take one\n');
  await writeFile(path.join(repo, text.name), text.committed);
  await run('add', '.');
  await run('commit', '-q', '-m', 'one');
  await truncate(path.join(repo, 'take.wav'), 64 * 1024 ** 3);
  await writeFile(path.join(repo, text.name), text.edited);
  return { repo, run };
}

test('status calls a file whose size changed modified without reading it (a 64 GB sparse file answers at once)', async () => {
  // Same size, new bytes: the text file has to be read to be told apart.
  const { run } = await grownTake('status-size', {
    name: 'same-size.txt',
    committed: 'abc\n',
    edited: 'abd\n',
  });
  const started = performance.now();
  const status = JSON.parse((await run('status', '--json')).stdout) as Status & {
    unstaged: { size: number }[];
  };
  const secs = (performance.now() - started) / 1000;
  assert.deepEqual(status.unstaged, [
    { path: 'same-size.txt', status: 'M', size: 4 },
    { path: 'take.wav', status: 'M', size: 64 * 1024 ** 3 },
  ]);
  assert.ok(secs < 10, `status took ${secs.toFixed(1)} s`);
  assert.equal((await run('status', '--porcelain')).stdout, ' M same-size.txt\n M take.wav\n');
});

test('status compares a same-size file with its staged chunks: any byte changed is M, a touch alone is clean', async () => {
  const repo = await tempDir('status-compare');
  const run = (...args: string[]) => runCli(args, { cwd: repo });
  await run('init', '-q');
  const original = randomBytes(12 * 1024 * 1024);
  const file = path.join(repo, 'plate.exr');
  await writeFile(file, original);
  await run('add', '.');
  await run('commit', '-q', '-m', 'one');
  for (const at of [0, 5 * 1024 * 1024 + 17, original.length - 1]) {
    const edited = Buffer.from(original);
    edited[at] = edited[at]! ^ 0x01;
    await writeFile(file, edited);
    assert.equal(
      (await run('status', '--porcelain')).stdout,
      ' M plate.exr\n',
      `byte ${at} flipped`,
    );
  }
  // The same bytes again, with a new mtime (in the past: a future one would be smudged as racy):
  // compared, found equal, and the stat refreshed.
  await writeFile(file, original);
  const earlier = new Date(Date.now() - 100_000);
  await utimes(file, earlier, earlier);
  assert.equal((await run('status', '--porcelain')).stdout, '');
  const [entry] = (
    JSON.parse(await readFile(path.join(repo, '.mediagit', 'index'), 'utf8')) as {
      entries: string[][];
    }
  ).entries;
  assert.equal(
    entry![4],
    String((await stat(file, { bigint: true })).mtimeNs),
    'status refreshed the stat data',
  );
});

test('diff --stat / --name-status against the index read no more than status does; diff HEAD still tells a revert', async () => {
  const { repo, run } = await grownTake('diff-compare', {
    name: 'notes.txt',
    committed: 'one\n',
    edited: 'two\n',
  });
  assert.equal((await run('diff', '--name-status')).stdout, 'M\tnotes.txt\nM\ttake.wav\n');
  assert.equal(
    (await run('diff', '--stat')).stdout,
    ` notes.txt | Bin 4 -> 4 bytes\n take.wav  | Bin 14 -> ${64 * 1024 ** 3} bytes\n 2 files changed\n`,
  );
  // Staged 'two', then back to HEAD's 'one' on disk: against the index it changed, against HEAD not.
  await truncate(path.join(repo, 'take.wav'), 14);
  await writeFile(path.join(repo, 'take.wav'), 'RIFF take one\n');
  await run('add', 'notes.txt');
  await writeFile(path.join(repo, 'notes.txt'), 'one\n');
  assert.equal((await run('diff', '--name-status')).stdout, 'M\tnotes.txt\n');
  assert.equal((await run('diff', 'HEAD', '--name-status')).stdout, '');
});
