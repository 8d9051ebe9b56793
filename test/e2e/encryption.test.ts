import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, cp, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { chunkBuffer, DEFAULT_CHUNKING } from '../../src/chunking/index.js';
import { Repository } from '../../src/repo/index.js';
import { runCli, tempDir } from '../support/cli.js';
import { makeCorpus } from '../support/corpus.js';
import { assertTreesEqual, hashTree } from '../support/tree.js';

const A = 'correct horse battery staple';
const B = 'a completely different passphrase';
const env = (pass: string, fresh?: string): Record<string, string> => ({
  MEDIAGIT_PASSPHRASE: pass,
  ...(fresh ? { MEDIAGIT_NEW_PASSPHRASE: fresh } : {}),
});
const MARKER = 'MEDIAGIT-PLAINTEXT-MARKER-0123456789abcdefghijklmnopqrstuvwxyz!!'; // 64 bytes

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) out.push(path.join(e.parentPath, e.name));
  return out;
}

async function dirFingerprint(dir: string): Promise<string> {
  const h = createHash('sha256');
  for (const f of (await allFiles(dir)).sort()) {
    const info = await stat(f);
    h.update(`${path.relative(dir, f)}\0${info.mtimeMs}\0`);
    h.update(await readFile(f));
  }
  return h.digest('hex');
}

async function storedChunkPaths(repo: string): Promise<string[]> {
  return (await allFiles(path.join(repo, '.mediagit', 'chunks'))).sort();
}

test('encrypted repository: corpus round trip byte-identical, fsck --full clean', async () => {
  assert.equal(Buffer.byteLength(MARKER), 64);
  const repo = await tempDir('enc-corpus');
  await makeCorpus(repo, 1, 'small');
  const v1 = await hashTree(repo);
  await runCli(['init', '-q', '--encrypt'], { cwd: repo, env: env(A, A) });
  await runCli(['add', '.'], { cwd: repo, env: env(A) });
  await runCli(['commit', '-m', 'v1'], { cwd: repo, env: env(A) });
  await makeCorpus(repo, 2, 'small');
  const v2 = await hashTree(repo);
  await runCli(['add', '.'], { cwd: repo, env: env(A) });
  await runCli(['commit', '-m', 'v2'], { cwd: repo, env: env(A) });
  await runCli(['checkout', 'HEAD~1'], { cwd: repo, env: env(A) });
  assertTreesEqual(await hashTree(repo), v1, 'encrypted checkout v1');
  await runCli(['checkout', 'main'], { cwd: repo, env: env(A) });
  assertTreesEqual(await hashTree(repo), v2, 'encrypted checkout v2');
  const fsck = await runCli(['fsck', '--full'], { cwd: repo, env: env(A) });
  assert.match(fsck.stdout, /no problems found/);
});

test('nothing readable at rest: no marker bytes, no OID equal to a plain SHA-256 of a file or chunk', async () => {
  const repo = await tempDir('enc-plain');
  await runCli(['init', '-q', '--encrypt'], { cwd: repo, env: env(A, A) });
  const noise = randomBytes(3_000_000);
  const withMarker = Buffer.concat([
    Buffer.from(MARKER),
    noise.subarray(0, 500_000),
    Buffer.from(MARKER),
  ]);
  await writeFile(path.join(repo, 'secret.txt'), MARKER.repeat(20));
  await writeFile(path.join(repo, 'plate.raw'), withMarker);
  await writeFile(path.join(repo, 'noise.bin'), noise);
  await runCli(['add', '.'], { cwd: repo, env: env(A) });
  await runCli(['commit', '-m', `commit message with ${MARKER}`], { cwd: repo, env: env(A) });
  await runCli(['tag', '-a', 'v1', '-m', MARKER], { cwd: repo, env: env(A) });
  // Reflogs and the stash list keep no user text in an encrypted repository either.
  await writeFile(path.join(repo, 'secret.txt'), 'edited');
  const stashed = await runCli(['stash', 'push', '-q', '-m', MARKER], { cwd: repo, env: env(A) });
  assert.equal(stashed.code, 0);
  const list = await runCli(['stash', 'list'], { cwd: repo, env: env(A) });
  assert.equal(
    list.stdout,
    `stash@{0}: On main: ${MARKER}\n`,
    'the message is in the sealed commit',
  );

  for (const file of await allFiles(path.join(repo, '.mediagit'))) {
    const bytes = await readFile(file);
    assert.equal(bytes.includes(Buffer.from(MARKER)), false, `${file} contains the marker`);
    assert.equal(
      bytes.includes(Buffer.from(MARKER.slice(0, 32))),
      false,
      `${file} contains half the marker`,
    );
  }

  const storedIds = new Set<string>();
  for (const file of await allFiles(path.join(repo, '.mediagit'))) {
    const rel = path.relative(path.join(repo, '.mediagit'), file).split(path.sep);
    if ((rel[0] === 'chunks' || rel[0] === 'objects') && rel.length === 3)
      storedIds.add(rel[1]! + rel[2]!);
  }
  assert.ok(storedIds.size > 5);
  const opened = await Repository.open(repo, { passphrase: async () => A });
  const keyedGear = opened.contentContext().gear;
  assert.ok(keyedGear, 'encrypted repositories chunk with a keyed gear table');
  const plainHashes = new Set<string>();
  for (const name of ['secret.txt', 'plate.raw', 'noise.bin']) {
    const content = await readFile(path.join(repo, name));
    plainHashes.add(createHash('sha256').update(content).digest('hex'));
    for (const gear of [undefined, keyedGear])
      for (const chunk of chunkBuffer(content, DEFAULT_CHUNKING, gear))
        plainHashes.add(createHash('sha256').update(chunk).digest('hex'));
  }
  for (const id of storedIds)
    assert.equal(plainHashes.has(id), false, `object ${id} is named by a plain SHA-256`);
});

test('tampering is detected with a typed error naming the object: bit flip, swap, truncation, foreign object', async () => {
  const work = await tempDir('enc-tamper');
  const repo = path.join(work, 'repo');
  const other = path.join(work, 'other');
  const content = randomBytes(600_000);
  for (const dir of [repo, other]) {
    await runCli(
      [
        'init',
        '-q',
        '--encrypt',
        '--chunk-min',
        '16K',
        '--chunk-avg',
        '64K',
        '--chunk-max',
        '256K',
        dir,
      ],
      { cwd: work, env: env(A, A) },
    );
    await writeFile(path.join(dir, 'plate.exr'), content);
    await runCli(['add', '.'], { cwd: dir, env: env(A) });
    await runCli(['commit', '-m', 'plate'], { cwd: dir, env: env(A) });
  }
  const chunks = await storedChunkPaths(repo);
  const foreign = await storedChunkPaths(other);
  assert.ok(chunks.length >= 3);
  const original = new Map<string, Buffer>();
  for (const c of chunks) original.set(c, await readFile(c));
  const oidOf = (file: string): string => path.basename(path.dirname(file)) + path.basename(file);
  const restoreAll = async (): Promise<void> => {
    for (const [file, bytes] of original) {
      await chmod(file, 0o644);
      await writeFile(file, bytes);
    }
  };
  const expectNamed = async (victim: string, label: string): Promise<void> => {
    const fsck = await runCli(['fsck', '--full'], { cwd: repo, env: env(A), allowFail: true });
    assert.notEqual(fsck.code, 0, `${label}: fsck --full must fail`);
    assert.match(
      fsck.stdout + fsck.stderr,
      new RegExp(oidOf(victim)),
      `${label}: fsck names the object`,
    );
    await rename(path.join(repo, 'plate.exr'), path.join(work, 'plate.bak'));
    const restore = await runCli(['restore', 'plate.exr'], {
      cwd: repo,
      env: env(A),
      allowFail: true,
    });
    assert.equal(restore.code, 6, `${label}: ${restore.stderr}`);
    assert.match(restore.stderr, new RegExp(`object ${oidOf(victim)} is corrupt`), label);
    await rename(path.join(work, 'plate.bak'), path.join(repo, 'plate.exr'));
    await restoreAll();
  };

  const victim = chunks[1]!;
  await chmod(victim, 0o644);
  const flipped = Buffer.from(original.get(victim)!);
  flipped[flipped.length >> 1]! ^= 0x01;
  await writeFile(victim, flipped);
  await expectNamed(victim, 'bit flip');

  await chmod(victim, 0o644);
  await writeFile(victim, original.get(chunks[0]!)!);
  await expectNamed(victim, 'swap');

  await chmod(victim, 0o644);
  await writeFile(victim, original.get(victim)!.subarray(0, original.get(victim)!.length - 7));
  await expectNamed(victim, 'truncation');

  await chmod(victim, 0o644);
  await writeFile(victim, await readFile(foreign[0]!));
  await expectNamed(victim, 'object from another repository with the same passphrase');

  const clean = await runCli(['fsck', '--full'], { cwd: repo, env: env(A) });
  assert.match(clean.stdout, /no problems found/);
});

test('wrong passphrase: one clear line, exit 14, nothing written', async () => {
  const repo = await tempDir('enc-wrong');
  await runCli(['init', '-q', '--encrypt'], { cwd: repo, env: env(A, A) });
  await writeFile(path.join(repo, 'a.wav'), randomBytes(10_000));
  await runCli(['add', '.'], { cwd: repo, env: env(A) });
  await runCli(['commit', '-m', 'one'], { cwd: repo, env: env(A) });
  await writeFile(path.join(repo, 'b.wav'), randomBytes(10_000));
  const before = await dirFingerprint(path.join(repo, '.mediagit'));
  for (const args of [
    ['status'],
    ['add', '.'],
    ['commit', '-am', 'x'],
    ['log'],
    ['checkout', '-b', 'x'],
    ['fsck'],
    ['gc', '--prune', 'now'],
    ['key', 'add'],
  ]) {
    const r = await runCli(args, { cwd: repo, env: env('not the passphrase', B), allowFail: true });
    assert.equal(r.code, 14, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^error: wrong passphrase/);
    assert.equal(r.stderr.trim().split('\n').length, 2);
    assert.equal(r.stderr.includes('not the passphrase'), false, 'the passphrase is never echoed');
  }
  const missing = await runCli(['status'], {
    cwd: repo,
    env: { MEDIAGIT_PASSPHRASE: undefined as unknown as string },
    allowFail: true,
  });
  assert.equal(missing.code, 14);
  assert.match(missing.stderr, /MEDIAGIT_PASSPHRASE|--passphrase-file/);
  assert.equal(await dirFingerprint(path.join(repo, '.mediagit')), before, '.mediagit unchanged');
  const fromFile = path.join(repo, '..', `pass-${path.basename(repo)}`);
  await writeFile(fromFile, `${A}\n`);
  await runCli(['--passphrase-file', fromFile, 'status'], {
    cwd: repo,
    env: { MEDIAGIT_PASSPHRASE: undefined as unknown as string },
  });
});

test('key rotation: add B, remove A → A fails, B opens, data intact; the last key cannot be removed', async () => {
  const repo = await tempDir('enc-rotate');
  await runCli(['init', '-q', '--encrypt'], { cwd: repo, env: env(A, A) });
  const content = randomBytes(200_000);
  await writeFile(path.join(repo, 'hero.tif'), content);
  await runCli(['add', '.'], { cwd: repo, env: env(A) });
  await runCli(['commit', '-m', 'hero'], { cwd: repo, env: env(A) });
  await runCli(['key', 'add', '--label', 'B'], { cwd: repo, env: env(A, B) });
  const keys = JSON.parse(
    (await runCli(['key', 'list', '--json'], { cwd: repo, env: env(B) })).stdout,
  ) as { id: string; label: string; current: boolean }[];
  assert.equal(keys.length, 2);
  const keyA = keys.find((k) => !k.current)!;
  const self = await runCli(['key', 'remove', keys.find((k) => k.current)!.id], {
    cwd: repo,
    env: env(B),
    allowFail: true,
  });
  assert.notEqual(self.code, 0, 'cannot remove the key in use');
  await runCli(['key', 'remove', keyA.id], { cwd: repo, env: env(B) });
  const withA = await runCli(['status'], { cwd: repo, env: env(A), allowFail: true });
  assert.equal(withA.code, 14);
  await runCli(['rm', '-q', 'hero.tif'], { cwd: repo, env: env(B) });
  await runCli(['reset', '--hard'], { cwd: repo, env: env(B) });
  assert.deepEqual(await readFile(path.join(repo, 'hero.tif')), content);
  const last = await runCli(['key', 'remove', keys.find((k) => k.current)!.id], {
    cwd: repo,
    env: env(B),
    allowFail: true,
  });
  assert.notEqual(last.code, 0);
  await runCli(['key', 'passwd'], { cwd: repo, env: env(B, A) });
  await runCli(['fsck', '--full'], { cwd: repo, env: env(A) });
  assert.equal((await runCli(['status'], { cwd: repo, env: env(B), allowFail: true })).code, 14);
  void cp;
});
