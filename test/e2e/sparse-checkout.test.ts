/**
 * `sparse-checkout set|add|list|disable`: paths outside the set stay tracked and are never
 * reported or staged as deleted; widening fetches and writes exactly the new paths; an
 * unreachable remote changes nothing; editing sparse.include by hand is refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { mg, mgFail, pathExists, runCli, tempDir } from '../support/cli.js';
import { SMALL_CHUNK_ARGS, storedChunks } from '../support/sync-fixtures.js';
import { hashTree } from '../support/tree.js';

const FILES: Record<string, number> = {
  'audio/take.raw': 200_000,
  'video/shot.raw': 500_000,
  'video/b-roll.raw': 400_000,
  'textures/t.tif': 300_000,
};

async function source(
  work: string,
): Promise<{ src: string; remote: string; content: Map<string, Buffer> }> {
  const src = path.join(work, 'src');
  const remote = path.join(work, 'remote.mediagit');
  await mkdir(src);
  await mg(src, 'init', '-q', ...SMALL_CHUNK_ARGS);
  const content = new Map<string, Buffer>();
  for (const [file, size] of Object.entries(FILES)) {
    const bytes = randomBytes(size);
    content.set(file, bytes);
    await mkdir(path.dirname(path.join(src, file)), { recursive: true });
    await writeFile(path.join(src, file), bytes);
  }
  await mg(src, 'add', '.');
  await mg(src, 'commit', '-q', '-m', 'first');
  await mg(src, 'remote', 'add', 'origin', remote);
  await mg(src, 'init', '-q', '--bare', remote);
  await mg(src, 'push', '-q', 'origin', 'main');
  return { src, remote, content };
}

const chunkOids = async (repo: string): Promise<Set<string>> =>
  new Set((await storedChunks(path.join(repo, '.mediagit'))).map((c) => c.oid));

async function fileChunks(repo: string, file: string): Promise<number> {
  return (
    JSON.parse((await mg(repo, 'show', '--json', `HEAD:${file}`)).stdout) as { chunks: number }
  ).chunks;
}

test("after clone --include 'audio/**': status clean, add . && commit commits nothing, sparse-checkout add 'video/**' fetches and writes exactly video/", async (t) => {
  const work = await tempDir('sparse-widen');
  const { remote, content } = await source(work);
  const clone = path.join(work, 'clone');
  await mg(work, 'clone', '-q', '--include', 'audio/**', remote, clone);
  assert.equal(await pathExists(path.join(clone, 'video')), false);

  const status = await mg(clone, 'status', '--porcelain');
  assert.equal(status.stdout.trim(), '', `status is clean: ${status.stdout}`);
  const log = (await mg(clone, 'log', '--oneline')).stdout;
  await mg(clone, 'add', '.');
  await runCli(['commit', '-q', '-m', 'nothing'], { cwd: clone, allowFail: true });
  assert.equal((await mg(clone, 'log', '--oneline')).stdout, log, 'no commit was made');
  assert.match((await mg(clone, 'show', '--stat', 'HEAD')).stdout, /first/);

  const before = await chunkOids(clone);
  await mg(clone, 'sparse-checkout', 'add', 'video/**');
  const fetched = [...(await chunkOids(clone))].filter((oid) => !before.has(oid));
  const expected =
    (await fileChunks(clone, 'video/shot.raw')) + (await fileChunks(clone, 'video/b-roll.raw'));
  t.diagnostic(`widening fetched ${fetched.length} chunks; video/ has ${expected}`);
  assert.equal(fetched.length, expected, 'exactly video/’s chunks');
  for (const file of ['video/shot.raw', 'video/b-roll.raw', 'audio/take.raw'])
    assert.ok((await readFile(path.join(clone, file))).equals(content.get(file)!), file);
  assert.equal(await pathExists(path.join(clone, 'textures')), false, 'textures/ left out');
  assert.deepEqual((await mg(clone, 'sparse-checkout', 'list')).stdout.trim().split('\n'), [
    'audio/**',
    'video/**',
  ]);
  assert.equal((await mg(clone, 'status', '--porcelain')).stdout.trim(), '');
  assert.match((await mg(clone, 'fsck')).stdout, /no problems found/);
});

test('set narrows (files removed, still tracked and committed), disable restores everything; local edits are never dropped', async () => {
  const work = await tempDir('sparse-narrow');
  const { src, remote, content } = await source(work);
  const clone = path.join(work, 'clone');
  await mg(work, 'clone', '-q', remote, clone);

  await writeFile(path.join(clone, 'video', 'shot.raw'), 'edited');
  const refused = await mgFail(clone, 'sparse-checkout', 'set', 'audio/**');
  assert.match(refused.stderr, /local changes/);
  assert.ok(await pathExists(path.join(clone, 'video', 'b-roll.raw')), 'nothing was removed');
  await mg(clone, 'restore', 'video/shot.raw');

  await mg(clone, 'sparse-checkout', 'set', 'audio/**');
  assert.equal(await pathExists(path.join(clone, 'video')), false);
  assert.equal(await pathExists(path.join(clone, 'textures')), false);
  assert.equal((await mg(clone, 'status', '--porcelain')).stdout.trim(), '');
  // A commit from the narrowed tree keeps the files left out.
  await writeFile(path.join(clone, 'audio', 'take.raw'), randomBytes(1000));
  await mg(clone, 'add', '.');
  await mg(clone, 'commit', '-q', '-m', 'audio only');
  const changed = (await mg(clone, 'show', '--stat', 'HEAD')).stdout;
  assert.match(changed, /audio\/take\.raw/);
  assert.doesNotMatch(changed, /video|textures/);
  await mg(clone, 'push', '-q', 'origin', 'main');
  await mg(src, 'pull', '-q');
  assert.ok(
    (await readFile(path.join(src, 'video', 'shot.raw'))).equals(content.get('video/shot.raw')!),
  );

  await mg(clone, 'sparse-checkout', 'disable');
  assert.equal((await mg(clone, 'sparse-checkout', 'list')).stdout.trim(), '');
  for (const file of ['video/shot.raw', 'video/b-roll.raw', 'textures/t.tif'])
    assert.ok((await readFile(path.join(clone, file))).equals(content.get(file)!), file);
  assert.equal((await mg(clone, 'status', '--porcelain')).stdout.trim(), '');
});

test('widening with the remote gone fails with exit 19 and changes nothing; config sparse.include is refused', async () => {
  const work = await tempDir('sparse-offline');
  const { remote, content } = await source(work);
  const clone = path.join(work, 'clone');
  await mg(work, 'clone', '-q', '--include', 'audio/**', remote, clone);
  const refused = await mgFail(clone, 'config', 'sparse.include', 'textures/**');
  assert.match(refused.stderr, /sparse-checkout/);
  assert.equal((await mg(clone, 'status', '--porcelain')).stdout.trim(), '');

  await rename(remote, `${remote}.away`);
  const tree = await hashTree(clone);
  const res = await mgFail(clone, 'sparse-checkout', 'add', 'textures/**');
  assert.equal(res.code, 19, res.stderr);
  assert.match(res.stderr, /textures\/t\.tif/);
  assert.deepEqual(await hashTree(clone), tree, 'the working tree is unchanged');
  assert.equal((await mg(clone, 'sparse-checkout', 'list')).stdout.trim(), 'audio/**');

  await rename(`${remote}.away`, remote);
  await mg(clone, 'sparse-checkout', 'add', '-q', 'textures/**');
  assert.ok(
    (await readFile(path.join(clone, 'textures', 't.tif'))).equals(content.get('textures/t.tif')!),
  );
});
