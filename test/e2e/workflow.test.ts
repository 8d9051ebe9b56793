import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';
import { makeCorpus } from '../support/corpus.js';
import { assertTreesEqual, hashTree } from '../support/tree.js';

interface Stats {
  chunks: number;
  uniqueBytes: number;
  logicalBytes: number;
  storedBytes: number;
  dedupRatio: number;
  compressionRatio: number;
}

const json = <T>(text: string): T => JSON.parse(text) as T;

test('corpus v1 and v2: commit, check out each, byte-identical; fsck --full clean', async () => {
  const work = await tempDir('corpus');
  const repo = path.join(work, 'repo');
  const v1copy = path.join(work, 'v1');
  await makeCorpus(repo, 1, 'small');
  await cp(repo, v1copy, { recursive: true });
  const v1 = await hashTree(repo);

  await runCli(['init', '-q'], { cwd: repo });
  await runCli(['add', '.'], { cwd: repo });
  await runCli(['commit', '-m', 'v1'], { cwd: repo });
  await runCli(['tag', 'v1'], { cwd: repo });

  await makeCorpus(repo, 2, 'small');
  const v2 = await hashTree(repo);
  const status = json<{ unstaged: { path: string; status: string }[]; untracked: string[] }>(
    (await runCli(['status', '--json'], { cwd: repo })).stdout,
  );
  assert.ok(
    status.unstaged.some((c) => c.path === 'scenes/level01.scene' && c.status === 'M'),
    'edited scene shows as modified',
  );
  assert.ok(
    status.unstaged.some((c) => c.status === 'D'),
    'renamed/deleted files show as deleted',
  );
  assert.ok(status.untracked.length > 0, 'new files show as untracked');
  await runCli(['add', '.'], { cwd: repo });
  await runCli(['commit', '-m', 'v2'], { cwd: repo });
  const clean = json<{ clean: boolean }>(
    (await runCli(['status', '--json'], { cwd: repo })).stdout,
  );
  assert.equal(clean.clean, true);

  await runCli(['checkout', 'v1'], { cwd: repo });
  assertTreesEqual(await hashTree(repo), v1, 'checkout v1');
  await runCli(['checkout', 'main'], { cwd: repo });
  assertTreesEqual(await hashTree(repo), v2, 'checkout v2');

  // A checkout into an emptied working tree rebuilds every file from the store alone.
  for (const entry of ['audio', 'textures', 'video', 'scenes', 'metadata', 'README.txt'])
    await rm(path.join(repo, entry), { recursive: true, force: true });
  await runCli(['reset', '--hard'], { cwd: repo });
  assertTreesEqual(await hashTree(repo), v2, 'reset --hard into an empty tree');

  const log = json<{ oid: string; parents: string[]; message: string; author: { name: string } }[]>(
    (await runCli(['log', '--json'], { cwd: repo })).stdout,
  );
  assert.equal(log.length, 2);
  assert.equal(log[0]!.message, 'v2\n');
  assert.deepEqual(log[0]!.parents, [log[1]!.oid]);
  assert.equal(log[0]!.author.name, 'Test');
  const fsck = await runCli(['fsck', '--full'], { cwd: repo });
  assert.match(fsck.stdout, /no problems found/);
  assert.ok((await hashTree(v1copy)).size === v1.size);
});

test('dedup: a 1 KiB insertion in a 100 MB file stores at most 3 new chunks; re-adding stores nothing', async () => {
  const repo = await tempDir('dedup');
  await runCli(['init', '-q'], { cwd: repo });
  const big = randomBytes(100 * 1000 * 1000);
  await writeFile(path.join(repo, 'take.mov.raw'), big);
  const first = json<{ newChunks: number; chunks: number }>(
    (await runCli(['add', '--json', '.'], { cwd: repo })).stdout,
  );
  assert.equal(first.newChunks, first.chunks);
  await runCli(['commit', '-m', 'take 1'], { cwd: repo });
  const before = json<Stats>((await runCli(['stats', '--json'], { cwd: repo })).stdout);

  const mid = big.length >> 1;
  await writeFile(
    path.join(repo, 'take.mov.raw'),
    Buffer.concat([big.subarray(0, mid), randomBytes(1024), big.subarray(mid)]),
  );
  const second = json<{ newChunks: number; chunks: number }>(
    (await runCli(['add', '--json', '.'], { cwd: repo })).stdout,
  );
  assert.ok(
    second.newChunks >= 1 && second.newChunks <= 3,
    `new chunks after 1 KiB insertion: ${second.newChunks}`,
  );
  // The edited file was staged along its old chunks (proposed to the workers); status, given a new
  // mtime, cuts it afresh from scratch and must find the very manifest the index holds.
  const later = new Date(Date.now() + 5_000);
  await utimes(path.join(repo, 'take.mov.raw'), later, later);
  assert.equal(
    (await runCli(['status', '--porcelain'], { cwd: repo })).stdout,
    'M  take.mov.raw\n',
  );
  await runCli(['commit', '-m', 'take 2'], { cwd: repo });
  const after = json<Stats>((await runCli(['stats', '--json'], { cwd: repo })).stdout);
  assert.equal(
    after.chunks - before.chunks,
    second.newChunks,
    'stats counts exactly the new chunks',
  );
  assert.ok(
    after.uniqueBytes - before.uniqueBytes < 3 * 4 * 1024 * 1024,
    'unique bytes grow by at most three chunks',
  );
  assert.ok(
    after.dedupRatio > 1.9,
    `dedup ratio ${after.dedupRatio} for two near-identical versions`,
  );

  // Touching every file (new mtimes, same bytes) and adding again writes nothing new.
  await writeFile(path.join(repo, 'take.mov.raw'), await readFile(path.join(repo, 'take.mov.raw')));
  const third = json<{ newChunks: number; storedBytes: number; staged: number }>(
    (await runCli(['add', '--json', '.'], { cwd: repo })).stdout,
  );
  assert.equal(third.newChunks, 0);
  assert.equal(third.storedBytes, 0);
  const unchanged = json<Stats>((await runCli(['stats', '--json'], { cwd: repo })).stdout);
  assert.equal(unchanged.chunks, after.chunks);
  assert.equal(unchanged.storedBytes, after.storedBytes);
  const nothing = await runCli(['commit', '-m', 'nothing'], { cwd: repo, allowFail: true });
  assert.notEqual(nothing.code, 0);
  assert.match(nothing.stderr, /nothing to commit/);
});

test('branches, three-way merge and a binary conflict resolved with --theirs + add', async () => {
  const repo = await tempDir('merge');
  await runCli(['init', '-q'], { cwd: repo });
  await writeFile(path.join(repo, 'hero.tif'), randomBytes(300_000));
  await writeFile(path.join(repo, 'shared.wav'), randomBytes(200_000));
  await runCli(['add', '.'], { cwd: repo });
  await runCli(['commit', '-m', 'base'], { cwd: repo });
  await runCli(['switch', '-c', 'lighting'], { cwd: repo });
  const theirs = randomBytes(300_000);
  await writeFile(path.join(repo, 'hero.tif'), theirs);
  await writeFile(path.join(repo, 'light.exr'), randomBytes(1000));
  await runCli(['add', '.'], { cwd: repo });
  await runCli(['commit', '-m', 'lighting'], { cwd: repo });
  await runCli(['switch', 'main'], { cwd: repo });
  await writeFile(path.join(repo, 'hero.tif'), randomBytes(300_000));
  await writeFile(path.join(repo, 'notes.txt'), 'ours\n');
  await runCli(['add', '.'], { cwd: repo });
  await runCli(['commit', '-m', 'ours'], { cwd: repo });

  const merge = await runCli(['merge', 'lighting'], { cwd: repo, allowFail: true });
  assert.equal(merge.code, 8, merge.stderr);
  assert.match(merge.stdout, /CONFLICT \(content\): Merge conflict in hero\.tif/);
  const status = json<{ conflicts: { path: string }[]; merging: string | null }>(
    (await runCli(['status', '--json'], { cwd: repo })).stdout,
  );
  assert.deepEqual(
    status.conflicts.map((c) => c.path),
    ['hero.tif'],
  );
  assert.ok(status.merging);
  const blocked = await runCli(['commit', '-m', 'too early'], { cwd: repo, allowFail: true });
  assert.equal(blocked.code, 8);

  await runCli(['checkout', '--theirs', 'hero.tif'], { cwd: repo });
  assert.deepEqual(await readFile(path.join(repo, 'hero.tif')), theirs);
  await runCli(['add', 'hero.tif'], { cwd: repo });
  await runCli(['commit', '-m', 'merge lighting'], { cwd: repo });
  const log = json<{ parents: string[] }[]>(
    (await runCli(['log', '--json', '-n', '1'], { cwd: repo })).stdout,
  );
  assert.equal(log[0]!.parents.length, 2);
  assert.equal(await readFile(path.join(repo, 'notes.txt'), 'utf8'), 'ours\n');
  assert.equal((await readFile(path.join(repo, 'light.exr'))).length, 1000);

  // Fast-forward: main is now ahead of lighting; merging main into lighting moves it.
  await runCli(['switch', 'lighting'], { cwd: repo });
  const ff = await runCli(['merge', 'main'], { cwd: repo });
  assert.match(ff.stdout, /Fast-forward/);
  assert.equal(await readFile(path.join(repo, 'notes.txt'), 'utf8'), 'ours\n');
});

test('HEAD~N, HEAD^, reset modes, restore, rm and mv behave as in git', async () => {
  const repo = await tempDir('revs');
  await runCli(['init', '-q'], { cwd: repo });
  for (let i = 1; i <= 3; i++) {
    await writeFile(path.join(repo, 'a.txt'), `version ${i}\n`);
    await runCli(['add', 'a.txt'], { cwd: repo });
    await runCli(['commit', '-m', `c${i}`], { cwd: repo });
  }
  const oneline = (await runCli(['log', '--oneline'], { cwd: repo })).stdout.trim().split('\n');
  assert.equal(oneline.length, 3);
  const c1 = oneline[2]!.split(' ')[0]!;
  const headTilde2 = json<{ oid: string }[]>(
    (await runCli(['log', '--json', '-n', '1', 'HEAD~2'], { cwd: repo })).stdout,
  )[0]!.oid;
  const headCaretCaret = json<{ oid: string }[]>(
    (await runCli(['log', '--json', '-n', '1', 'HEAD^^'], { cwd: repo })).stdout,
  )[0]!.oid;
  assert.equal(headTilde2, headCaretCaret);
  assert.ok(headTilde2.startsWith(c1));

  await runCli(['reset', '--soft', 'HEAD~1'], { cwd: repo });
  assert.equal(await readFile(path.join(repo, 'a.txt'), 'utf8'), 'version 3\n');
  type Status = {
    staged: { path: string; status: string }[];
    unstaged: { path: string; status: string }[];
  };
  let s = json<Status>((await runCli(['status', '--json'], { cwd: repo })).stdout);
  assert.deepEqual(
    s.staged.map((c) => c.path),
    ['a.txt'],
  );
  await runCli(['reset', 'HEAD'], { cwd: repo });
  s = json<Status>((await runCli(['status', '--json'], { cwd: repo })).stdout);
  assert.equal(s.staged.length, 0);
  assert.deepEqual(
    s.unstaged.map((c) => c.path),
    ['a.txt'],
  );
  await runCli(['restore', 'a.txt'], { cwd: repo });
  assert.equal(await readFile(path.join(repo, 'a.txt'), 'utf8'), 'version 2\n');
  await runCli(['reset', '--hard', 'HEAD~1'], { cwd: repo });
  assert.equal(await readFile(path.join(repo, 'a.txt'), 'utf8'), 'version 1\n');

  await runCli(['mv', 'a.txt', 'b.txt'], { cwd: repo });
  s = json<Status>((await runCli(['status', '--json'], { cwd: repo })).stdout);
  assert.deepEqual(
    s.staged.map((c) => `${c.status} ${c.path}`),
    ['D a.txt', 'A b.txt'],
  );
  await runCli(['commit', '-m', 'rename'], { cwd: repo });
  await runCli(['rm', 'b.txt'], { cwd: repo });
  await runCli(['commit', '-m', 'remove'], { cwd: repo });
  const files = await hashTree(repo);
  assert.equal(files.size, 0);
  await runCli(['checkout', 'HEAD~1', '--', 'b.txt'], { cwd: repo });
  assert.equal(await readFile(path.join(repo, 'b.txt'), 'utf8'), 'version 1\n');
});

test('.mediagitignore is honoured by add and status; add -f overrides', async () => {
  const repo = await tempDir('ignore');
  await runCli(['init', '-q'], { cwd: repo });
  await writeFile(path.join(repo, '.mediagitignore'), '*.tmp\ncache/\n');
  await writeFile(path.join(repo, 'keep.psd'), 'k');
  await writeFile(path.join(repo, 'scratch.tmp'), 't');
  await mkdir(path.join(repo, 'cache'));
  await writeFile(path.join(repo, 'cache', 'x.psd'), 'c');
  await runCli(['add', '.'], { cwd: repo });
  const s = json<{ staged: { path: string }[]; untracked: string[] }>(
    (await runCli(['status', '--json'], { cwd: repo })).stdout,
  );
  assert.deepEqual(s.staged.map((c) => c.path).sort(), ['.mediagitignore', 'keep.psd']);
  assert.deepEqual(s.untracked, []);
  const refused = await runCli(['add', 'scratch.tmp'], { cwd: repo, allowFail: true });
  assert.equal(refused.code, 5);
  assert.match(refused.stderr, /ignored/);
  await runCli(['add', '-f', 'scratch.tmp'], { cwd: repo });
});
