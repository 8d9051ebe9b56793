/**
 * push and fetch between two folders take objects by hard link (git's local clone): what is
 * shared, what `hardlinks: false` changes, what a refused link falls back to, and why skipping
 * verification on the way in is safe — every read still verifies.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { ObjectCorruptError } from '../../../src/errors/index.js';
import type { Oid } from '../../../src/objects/index.js';
import { silentProgress, type Repository } from '../../../src/repo/index.js';
import { LocalStore, chunkKey, type LocalStoreOptions } from '../../../src/store/index.js';
import { fetchObjects, push } from '../../../src/sync/index.js';
import {
  MAIN,
  commitFiles,
  fsckFull,
  initRepo,
  storedChunks,
} from '../../support/sync-fixtures.js';

interface Setup {
  root: string;
  src: Repository;
  tip: Oid;
}

async function setup(t: TestContext): Promise<Setup> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-sync-hardlinks-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const src = await initRepo(path.join(root, 'src'));
  const tip = await commitFiles(
    src,
    [],
    new Map([
      ['media/a.bin', randomBytes(500_000)],
      ['media/b.bin', Buffer.alloc(300_000, 7)],
      ['notes.txt', Buffer.from('hello\n')],
    ]),
    'content',
  );
  return { root, src, tip };
}

async function remoteAt(
  root: string,
  name: string,
  options: LocalStoreOptions = {},
): Promise<LocalStore> {
  const remote = new LocalStore(path.join(root, name), { fsync: false, ...options });
  await remote.initialize();
  return remote;
}

async function inode(file: string): Promise<{ ino: number; nlink: number }> {
  const info = await stat(file);
  return { ino: info.ino, nlink: info.nlink };
}

/** Chunks of `a` whose file in `b` is the same inode. */
async function sharedChunks(a: string, b: string): Promise<{ shared: number; total: number }> {
  const chunks = await storedChunks(a);
  let shared = 0;
  for (const c of chunks) {
    const other = path.join(b, 'chunks', c.oid.slice(0, 2), c.oid.slice(2));
    if (
      (await inode(c.file)).ino ===
      (await stat(other).then(
        (s) => s.ino,
        () => -1,
      ))
    )
      shared++;
  }
  return { shared, total: chunks.length };
}

test('push and fetch between folders hard-link every object; bytes count what the remote gained; hardlinks: false copies', async (t) => {
  const { root, src, tip } = await setup(t);
  const remote = await remoteAt(root, 'remote');
  const outcome = await push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress);
  const remoteKeys: { key: string; size: number }[] = [];
  for await (const item of remote.list(''))
    if (!item.key.startsWith('meta/')) remoteKeys.push(item);
  assert.equal(outcome.stats.objects, remoteKeys.length);
  assert.equal(
    outcome.stats.bytes,
    remoteKeys.reduce((n, k) => n + k.size, 0),
    'stats.bytes is not the stored size of what landed',
  );
  for (const { key } of remoteKeys) {
    const [a, b] = await Promise.all([inode(src.store.pathOf(key)), inode(remote.pathOf(key))]);
    assert.equal(b.ino, a.ino, `${key} on the remote is not the source's inode`);
  }

  const dst = await initRepo(path.join(root, 'dst'));
  const fetched = await fetchObjects(dst, remote, [tip], { progress: silentProgress });
  await dst.updateRef(MAIN, tip, null);
  assert.ok(fetched.objects > 0);
  const chunks = await sharedChunks(dst.store.root, src.store.root);
  assert.ok(chunks.total > 3);
  assert.equal(chunks.shared, chunks.total, 'fetched chunks should share the source inode');
  assert.deepEqual((await fsckFull(dst)).problems, []);

  const copyRemote = await remoteAt(root, 'copy-remote');
  const copied = await push(
    src,
    copyRemote,
    { oid: tip, ref: MAIN, force: false },
    silentProgress,
    { hardlinks: false },
  );
  assert.equal(copied.stats.bytes, outcome.stats.bytes);
  assert.equal(
    (await sharedChunks(copyRemote.root, src.store.root)).shared,
    0,
    'hardlinks: false shared an inode',
  );
  const dst2 = await initRepo(path.join(root, 'dst2'));
  await fetchObjects(dst2, remote, [tip], { progress: silentProgress, hardlinks: false });
  assert.equal(
    (await sharedChunks(dst2.store.root, src.store.root)).shared,
    0,
    'fetch with hardlinks: false shared an inode',
  );
});

test('a remote on which links fail (as across filesystems) gets kernel copies; push, fetch and fsck work as before', async (t) => {
  const { root, src, tip } = await setup(t);
  let refused = 0;
  const remote = await remoteAt(root, 'remote', {
    fsync: true,
    link: () => {
      refused++;
      return Promise.reject(
        Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV' }),
      );
    },
  });
  const outcome = await push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress);
  assert.ok(
    refused >= outcome.stats.objects,
    `links tried ${refused}, objects ${outcome.stats.objects}`,
  );
  const chunks = await sharedChunks(remote.root, src.store.root);
  assert.equal(chunks.shared, 0);
  for (const c of await storedChunks(remote.root))
    assert.equal((await stat(c.file)).mode & 0o777, 0o444);
  assert.equal(
    (await push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress)).status,
    'up-to-date',
  );

  const dst = await initRepo(path.join(root, 'dst'));
  await fetchObjects(dst, remote, [tip], { progress: silentProgress });
  await dst.updateRef(MAIN, tip, null);
  assert.deepEqual((await fsckFull(dst)).problems, []);
});

test('a corrupt chunk on a folder remote: a hard-linking fetch takes it unverified but every read of it fails; hardlinks: false refuses it', async (t) => {
  const { root, src, tip } = await setup(t);
  const remote = await remoteAt(root, 'remote');
  await push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress);
  // Damage the remote's copy only: a new file in its place, so the source's inode stays intact.
  const victim = (await storedChunks(remote.root))[0]!;
  const bytes = await readFile(victim.file);
  bytes[bytes.length >> 1]! ^= 0xff;
  await unlink(victim.file);
  await writeFile(victim.file, bytes);
  await chmod(victim.file, 0o444);

  const verified = await initRepo(path.join(root, 'verified'));
  await assert.rejects(
    fetchObjects(verified, remote, [tip], { progress: silentProgress, hardlinks: false }),
    (err) => err instanceof ObjectCorruptError && err.oid === victim.oid,
  );
  assert.deepEqual(
    await verified.store.has([chunkKey(victim.oid)]),
    [false],
    'the corrupt chunk was written',
  );

  const linked = await initRepo(path.join(root, 'linked'));
  await fetchObjects(linked, remote, [tip], { progress: silentProgress });
  await linked.updateRef(MAIN, tip, null);
  await assert.rejects(
    linked.odb.read('chunk', victim.oid),
    (err) => err instanceof ObjectCorruptError && err.oid === victim.oid,
  );
  const report = await fsckFull(linked);
  assert.equal(report.ok, false);
  assert.ok(
    report.problems.some((p) => JSON.stringify(p).includes(victim.oid)),
    `fsck --full does not name ${victim.oid}: ${JSON.stringify(report.problems)}`,
  );
  assert.deepEqual(
    (await fsckFull(src)).problems,
    [],
    'the source was damaged along with the remote',
  );
});
