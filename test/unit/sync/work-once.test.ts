/**
 * Each piece of work done once (docs/transfer.md): push sends our own store's objects as stored,
 * without decoding and hashing them again, and the receiving side's check is what catches an
 * object that rotted on our disk.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, truncate } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ObjectCorruptError } from '../../../src/errors/index.js';
import type { Oid } from '../../../src/objects/index.js';
import { silentProgress } from '../../../src/repo/index.js';
import { LocalStore, chunkKey } from '../../../src/store/index.js';
import { fetchObjects, push } from '../../../src/sync/index.js';
import {
  MAIN,
  commitFiles,
  flipByte,
  initRepo,
  storedChunks,
} from '../../support/sync-fixtures.js';

async function tempRoot(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-work-once-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  return root;
}

function corruptNaming(oid: Oid): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof ObjectCorruptError, `expected ObjectCorruptError, got ${String(err)}`);
    assert.equal(err.oid, oid);
    return true;
  };
}

test('push sends a chunk from its own store as stored: not decoded again, so a rotted payload is caught by the reader', async (t) => {
  const root = await tempRoot(t);
  const src = await initRepo(path.join(root, 'src'));
  const tip = await commitFiles(src, [], new Map([['a.bin', randomBytes(300_000)]]), 'one');
  const chunks = await storedChunks(src.store.root);
  assert.ok(chunks.length > 1);
  // A byte of the payload, past the envelope header: only decoding and hashing would notice.
  const victim = chunks[0]!;
  await flipByte(victim.file);

  const remote = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await remote.initialize();
  const outcome = await push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress, {
    hardlinks: false,
  });
  assert.equal(outcome.status, 'created');
  assert.deepEqual(await remote.has([chunkKey(victim.oid)]), [true]);

  // Whoever reads it verifies it: a fetch fails naming the chunk and never stores it.
  const dst = await initRepo(path.join(root, 'dst'));
  await assert.rejects(
    fetchObjects(dst, remote, [tip], { progress: silentProgress, hardlinks: false }),
    corruptNaming(victim.oid),
  );
  assert.deepEqual(await dst.store.has([chunkKey(victim.oid)]), [false]);
});

test('push still refuses a chunk whose stored file is truncated below its envelope', async (t) => {
  const root = await tempRoot(t);
  const src = await initRepo(path.join(root, 'src'));
  const tip = await commitFiles(src, [], new Map([['a.bin', randomBytes(200_000)]]), 'one');
  const victim = (await storedChunks(src.store.root))[0]!;
  await truncate(victim.file, 5);

  const remote = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await remote.initialize();
  await assert.rejects(
    push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress, {
      hardlinks: false,
    }),
    corruptNaming(victim.oid),
  );
  assert.deepEqual(await remote.has([chunkKey(victim.oid)]), [false]);
  assert.equal(await remote.readRef(MAIN), null);
});
