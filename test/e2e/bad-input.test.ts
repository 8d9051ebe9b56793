import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { Codec } from '../../src/compression/index.js';
import { encodeCommit, encodeEnvelope, sha256Hex } from '../../src/objects/index.js';
import { LocalStore } from '../../src/store/index.js';
import { runCli, tempDir } from '../support/cli.js';
import { storedChunks } from '../support/sync-fixtures.js';

const json = <T>(text: string): T => JSON.parse(text) as T;

/** Tree bytes written by hand, bypassing encodeTree's checks, as an attacker's store would serve them. */
function craftTree(entries: { name: string; type: number; oid: string; size: number }[]): Buffer {
  const parts: Buffer[] = [Buffer.from('MGTR'), Buffer.from([1])];
  const count = Buffer.alloc(4);
  count.writeUInt32BE(entries.length);
  parts.push(count);
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const head = Buffer.alloc(3);
    head.writeUInt8(e.type, 0);
    head.writeUInt16BE(name.length, 1);
    const tail = Buffer.alloc(40);
    Buffer.from(e.oid, 'hex').copy(tail);
    tail.writeBigUInt64BE(BigInt(e.size), 32);
    parts.push(head, name, tail);
  }
  return Buffer.concat(parts);
}

async function plant(store: LocalStore, kind: 'tree' | 'commit', bytes: Buffer): Promise<string> {
  const oid = sha256Hex(bytes);
  await store.put(`objects/${oid}`, encodeEnvelope(kind, Codec.raw, bytes.length, bytes));
  return oid;
}

test('crafted trees with ../x, a/b, .mediagit or NUL names are refused on read; nothing is written outside', async () => {
  const outer = await tempDir('malicious');
  const repo = path.join(outer, 'repo');
  await mkdir(repo);
  await runCli(['init', '-q'], { cwd: repo });
  await writeFile(path.join(repo, 'ok.txt'), 'fine\n');
  await runCli(['add', '.'], { cwd: repo });
  await runCli(['commit', '-m', 'base'], { cwd: repo });
  const base = json<{ tree: string }[]>(
    (await runCli(['log', '--json'], { cwd: repo })).stdout,
  )[0]!;
  const store = new LocalStore(path.join(repo, '.mediagit'));
  // Reuse the real manifest of ok.txt so only the name is malicious.
  const treeBytes = await readTreeOf(store, base.tree);
  const fileOid = treeBytes
    .subarray(9 + 3 + 'ok.txt'.length, 9 + 3 + 'ok.txt'.length + 32)
    .toString('hex');

  for (const name of ['../escaped', 'a/b', '.mediagit', 'nul\0name', '..']) {
    const tree = await plant(store, 'tree', craftTree([{ name, type: 1, oid: fileOid, size: 5 }]));
    const sig = { name: 'Eve', email: 'eve@example.com', time: 1_800_000_000, tzOffset: 0 };
    const commit = await plant(
      store,
      'commit',
      encodeCommit({ tree, parents: [], author: sig, committer: sig, message: 'evil\n' }),
    );
    const result = await runCli(['checkout', commit], { cwd: repo, allowFail: true });
    assert.equal(result.code, 6, `${JSON.stringify(name)}: ${result.stderr}`);
    assert.match(result.stderr, new RegExp(`object ${tree} is corrupt: .*unsafe name`));
    assert.equal(result.stderr.trim().split('\n').length, 2, 'one error line and one hint line');
  }
  assert.deepEqual((await readdir(outer)).sort(), ['repo']);
  assert.deepEqual((await readdir(repo)).sort(), ['.mediagit', 'ok.txt']);
});

async function readTreeOf(store: LocalStore, oid: string): Promise<Buffer> {
  const stored = await store.get(`objects/${oid}`);
  const { decodePayload } = await import('../../src/compression/index.js');
  return decodePayload(stored[6]!, stored.subarray(16), Number(stored.readBigUInt64BE(8)));
}

test('checkout refuses to write through a symbolic link planted in the working tree', async () => {
  const outer = await tempDir('symlink');
  const repo = path.join(outer, 'repo');
  const victim = path.join(outer, 'victim');
  await mkdir(path.join(repo, 'assets'), { recursive: true });
  await mkdir(victim);
  await runCli(['init', '-q'], { cwd: repo });
  await writeFile(path.join(repo, 'assets', 'tex.tif'), 'v1');
  await runCli(['add', '.'], { cwd: repo });
  await runCli(['commit', '-m', 'v1'], { cwd: repo });
  await writeFile(path.join(repo, 'assets', 'tex.tif'), 'v2');
  await runCli(['commit', '-am', 'v2'], { cwd: repo });
  await rm(path.join(repo, 'assets'), { recursive: true });
  await symlink(victim, path.join(repo, 'assets'));
  const result = await runCli(['checkout', '-f', 'HEAD~1'], { cwd: repo, allowFail: true });
  assert.equal(result.code, 15, result.stderr);
  assert.match(result.stderr, /symbolic link/);
  assert.deepEqual(await readdir(victim), []);
});

test('a corrupt chunk is named by fsck --full and by checkout; nothing half-written is left', async () => {
  const repo = await tempDir('corrupt');
  await runCli(['init', '-q', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K'], {
    cwd: repo,
  });
  const content = randomBytes(400_000);
  await writeFile(path.join(repo, 'plate.exr'), content);
  await runCli(['add', '.'], { cwd: repo });
  await runCli(['commit', '-m', 'plate'], { cwd: repo });
  // Not the first fan-out folder: init makes all 256, most of them empty.
  const { oid, file: chunkPath } = (await storedChunks(path.join(repo, '.mediagit')))[0]!;
  await chmod(chunkPath, 0o644);
  const bytes = await readFile(chunkPath);
  bytes[bytes.length - 10]! ^= 0x01;
  await writeFile(chunkPath, bytes);

  const fsck = await runCli(['fsck', '--full'], { cwd: repo, allowFail: true });
  assert.notEqual(fsck.code, 0);
  assert.match(fsck.stdout + fsck.stderr, new RegExp(oid));

  await rm(path.join(repo, 'plate.exr'));
  const restore = await runCli(['restore', 'plate.exr'], { cwd: repo, allowFail: true });
  assert.equal(restore.code, 6, restore.stderr);
  assert.match(restore.stderr, new RegExp(`object ${oid} is corrupt`));
  assert.deepEqual(
    (await readdir(repo)).filter((n) => n !== '.mediagit'),
    [],
    'no partial file or temp file left behind',
  );
});

test('clear errors: not a repository, unknown revision, dirty tree, no identity, bad usage', async () => {
  const dir = await tempDir('errors');
  const notRepo = await runCli(['status'], { cwd: dir, allowFail: true });
  assert.equal(notRepo.code, 3);
  assert.match(notRepo.stderr, /^error: not a mediagit repository/);
  assert.match(notRepo.stderr, /\nhint: /);
  assert.doesNotMatch(notRepo.stderr, /at .*\.js:\d+/, 'no stack trace without --debug');
  const debug = await runCli(['status', '--debug'], { cwd: dir, allowFail: true });
  assert.match(debug.stderr, /E_NOT_A_REPOSITORY/);
  assert.match(debug.stderr, /at .*\.js:\d+/);

  await runCli(['init', '-q'], { cwd: dir });
  await writeFile(path.join(dir, 'a.wav'), 'one');
  await runCli(['add', '.'], { cwd: dir });
  const anonymous = await runCli(['commit', '-m', 'x'], {
    cwd: dir,
    allowFail: true,
    env: {
      MEDIAGIT_AUTHOR_NAME: undefined,
      MEDIAGIT_AUTHOR_EMAIL: undefined,
      XDG_CONFIG_HOME: dir,
    },
  });
  assert.equal(anonymous.code, 11);
  assert.match(anonymous.stderr, /author identity unknown/);
  await runCli(['config', 'user.name', 'Config Person'], { cwd: dir });
  await runCli(['config', 'user.email', 'cp@example.com'], { cwd: dir });
  await runCli(['commit', '-m', 'one'], {
    cwd: dir,
    env: {
      MEDIAGIT_AUTHOR_NAME: undefined,
      MEDIAGIT_AUTHOR_EMAIL: undefined,
      XDG_CONFIG_HOME: dir,
    },
  });
  const who = json<{ author: { name: string; email: string } }[]>(
    (await runCli(['log', '--json'], { cwd: dir })).stdout,
  )[0]!;
  assert.deepEqual(who.author, { ...who.author, name: 'Config Person', email: 'cp@example.com' });

  const unknown = await runCli(['checkout', 'no-such-branch'], { cwd: dir, allowFail: true });
  assert.equal(unknown.code, 5);
  assert.match(unknown.stderr, /unknown revision/);
  const unknownLog = await runCli(['log', 'HEAD~5'], { cwd: dir, allowFail: true });
  assert.equal(unknownLog.code, 5);

  await runCli(['switch', '-c', 'other'], { cwd: dir });
  await writeFile(path.join(dir, 'a.wav'), 'two');
  await runCli(['commit', '-am', 'two'], { cwd: dir });
  await writeFile(path.join(dir, 'a.wav'), 'local edit');
  const dirty = await runCli(['switch', 'main'], { cwd: dir, allowFail: true });
  assert.equal(dirty.code, 7);
  assert.match(dirty.stderr, /a\.wav/);
  assert.equal(await readFile(path.join(dir, 'a.wav'), 'utf8'), 'local edit', 'local change kept');
  // Same size, other bytes: compared with the staged chunks, still a change to keep.
  await writeFile(path.join(dir, 'a.wav'), 'tw0');
  assert.equal((await runCli(['switch', 'main'], { cwd: dir, allowFail: true })).code, 7);
  assert.equal(
    await readFile(path.join(dir, 'a.wav'), 'utf8'),
    'tw0',
    'same-size local change kept',
  );
  // The committed bytes written again (new mtime, same content): nothing to lose, so the switch goes ahead.
  await writeFile(path.join(dir, 'a.wav'), 'two');
  await runCli(['switch', 'main'], { cwd: dir });
  assert.equal(await readFile(path.join(dir, 'a.wav'), 'utf8'), 'one');

  const usage = await runCli(['add', '--no-such-flag'], { cwd: dir, allowFail: true });
  assert.equal(usage.code, 2);
  const frozen = await runCli(['config', 'chunking.avg_size', '4096'], {
    cwd: dir,
    allowFail: true,
  });
  assert.equal(frozen.code, 11);
});

test('files with unsafe names are skipped by add with a warning', async () => {
  const dir = await tempDir('names');
  await runCli(['init', '-q'], { cwd: dir });
  await writeFile(path.join(dir, 'good.txt'), 'g');
  await writeFile(path.join(dir, 'bad\u0001name'), 'b');
  await writeFile(path.join(dir, 'colon:name'), 'c');
  const add = await runCli(['add', '.'], { cwd: dir });
  assert.ok(add.stderr.includes('skipping bad\u0001name'), add.stderr);
  const s = json<{ staged: { path: string }[] }>(
    (await runCli(['status', '--json'], { cwd: dir })).stdout,
  );
  assert.deepEqual(
    s.staged.map((c) => c.path),
    ['good.txt'],
  );
});
