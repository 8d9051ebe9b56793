/**
 * CleanFileChunks: a checkout copies chunks that only moved from the clean files it is about to
 * replace, never from a file whose stat changed after it was found clean, and never bytes that
 * do not match the chunk's ID (a file edited with its stat kept, or rotted on disk).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { Manifest, Oid } from '../../../src/objects/index.js';
import { CleanFileChunks } from '../../../src/repo/index.js';

const sha256 = (b: Uint8Array): Oid => createHash('sha256').update(b).digest('hex');
const checked = (): CleanFileChunks =>
  new CleanFileChunks((plain) => Promise.resolve(sha256(plain)));
/** The old file's three chunks: 1000, 1500 and 500 bytes; IDs by their content. */
const BOUNDS = [0, 1000, 2500, 3000];
let chunkIds: Oid[] = [];
const oid = (n: number): Oid => chunkIds[n - 1] ?? n.toString(16).padStart(64, '0');

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<{
  dir: string;
  old: string;
  bytes: Buffer;
  manifest: Manifest;
}> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mediagit-clean-chunks-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const bytes = randomBytes(3000);
  chunkIds = [0, 1, 2].map((i) => sha256(bytes.subarray(BOUNDS[i], BOUNDS[i + 1])));
  const old = path.join(dir, 'old.bin');
  await writeFile(old, bytes);
  const manifest: Manifest = {
    size: 3000,
    chunks: [
      { oid: oid(1), size: 1000 },
      { oid: oid(2), size: 1500 },
      { oid: oid(3), size: 500 },
    ],
  };
  return { dir, old, bytes, manifest };
}

test('copies a chunk of a clean file to its new offset in another file', async (t) => {
  const { dir, old, bytes, manifest } = await setup(t);
  const chunks = checked();
  chunks.add(old, await lstat(old, { bigint: true }), manifest);
  const target = await open(path.join(dir, 'new.bin'), 'w+');
  try {
    // The new file starts with 7 inserted bytes, then the old file's second and third chunks.
    await target.write(Buffer.from('INSERT!'), 0, 7, 0);
    assert.equal(await chunks.copyInto(oid(2), target.fd, 7, 1500), 1500);
    assert.equal(await chunks.copyInto(oid(3), target.fd, 1507, 500), 500);
    assert.equal(await chunks.copyInto(oid(9), target.fd, 0, 10), null, 'not offered');
    assert.equal(await chunks.copyInto(oid(1), target.fd, 0, 999), null, 'another size');
  } finally {
    await target.close();
    await chunks.close();
  }
  assert.equal(chunks.copied, 2);
  assert.deepEqual(
    await readFile(path.join(dir, 'new.bin')),
    Buffer.concat([Buffer.from('INSERT!'), bytes.subarray(1000)]),
  );
});

test('a file rewritten after it was found clean is not read: its chunks must come another way', async (t) => {
  const { dir, old, manifest } = await setup(t);
  const chunks = checked();
  chunks.add(old, await lstat(old, { bigint: true }), manifest);
  // Same size, other bytes, a new inode: what an editor saving the file does.
  await rm(old);
  await writeFile(old, randomBytes(3000));
  const target = await open(path.join(dir, 'new.bin'), 'w+');
  try {
    assert.equal(await chunks.copyInto(oid(1), target.fd, 0, 1000), null);
    assert.equal((await target.stat()).size, 0, 'nothing written');
  } finally {
    await target.close();
    await chunks.close();
  }
  assert.equal(chunks.copied, 0);
});

test('consecutive chunks of one clean file are copied as one run; the run ends where the order breaks', async (t) => {
  const { dir, old, bytes, manifest } = await setup(t);
  const chunks = checked();
  chunks.add(old, await lstat(old, { bigint: true }), manifest);
  // The new version: a new chunk, then the old second and third (one run), then the old first.
  const next = [
    { oid: oid(7), size: 10 },
    { oid: oid(2), size: 1500 },
    { oid: oid(3), size: 500 },
    { oid: oid(1), size: 1000 },
  ];
  assert.equal(chunks.runAt(next, 0), 0, 'a chunk it does not hold');
  assert.equal(chunks.runAt(next, 1), 2, 'the second and third, in order in the old file');
  assert.equal(chunks.runAt(next, 3), 1);
  const target = await open(path.join(dir, 'new.bin'), 'w+');
  try {
    await target.write(Buffer.alloc(10, 7), 0, 10, 0);
    assert.equal(await chunks.copyRun(next, 1, 2, target.fd, 10), true);
    assert.equal(await chunks.copyRun(next, 3, 1, target.fd, 2010), true);
  } finally {
    await target.close();
    await chunks.close();
  }
  assert.equal(chunks.copied, 3);
  assert.deepEqual(
    await readFile(path.join(dir, 'new.bin')),
    Buffer.concat([Buffer.alloc(10, 7), bytes.subarray(1000), bytes.subarray(0, 1000)]),
  );
});

test('bytes that do not match the chunk (the file edited with its size and time kept) are not copied', async (t) => {
  const { dir, old, manifest } = await setup(t);
  // Overwritten in place (same inode, same size) with its time kept, so the dirty-tree check
  // found it clean: the stat it offers its chunks with is the one after the edit.
  const handle = await open(old, 'r+');
  await handle.write(Buffer.from('rot'), 0, 3, 1200);
  await handle.close();
  const chunks = checked();
  chunks.add(old, await lstat(old, { bigint: true }), manifest);
  const target = await open(path.join(dir, 'new.bin'), 'w+');
  try {
    assert.equal(await chunks.copyInto(oid(2), target.fd, 0, 1500), null, 'the damaged chunk');
    assert.equal(await chunks.copyRun(manifest.chunks, 1, 2, target.fd, 0), false, 'its run');
    assert.equal(await chunks.copyInto(oid(3), target.fd, 1500, 500), 500, 'an intact one');
  } finally {
    await target.close();
    await chunks.close();
  }
  assert.equal(chunks.mismatched, 2);
  assert.equal(chunks.copied, 1);
});

test('copies of many chunks read through a few buffers, not a new one per chunk', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mediagit-clean-chunks-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // 24 chunks of 64 KiB (beyond Buffer's shared pool, so every fresh buffer would be its own).
  const size = 64 * 1024;
  const bytes = randomBytes(24 * size);
  const pieces = Array.from({ length: 24 }, (_, i) => bytes.subarray(i * size, (i + 1) * size));
  const manifest: Manifest = {
    size: bytes.length,
    chunks: pieces.map((p) => ({ oid: sha256(p), size })),
  };
  const old = path.join(dir, 'old.bin');
  await writeFile(old, bytes);
  // Each chunk's bytes come to the ID check: the memory they sit in is the read buffer.
  const seen = new Set<ArrayBufferLike>();
  const chunks = new CleanFileChunks((plain) => {
    seen.add(plain.buffer);
    return Promise.resolve(sha256(plain));
  });
  chunks.add(old, await lstat(old, { bigint: true }), manifest);
  const target = await open(path.join(dir, 'new.bin'), 'w+');
  try {
    // In reverse order, all at once: 24 copies, at most 8 of them in flight.
    const sizes = await Promise.all(
      manifest.chunks.map((c, i) => chunks.copyInto(c.oid, target.fd, (23 - i) * size, size)),
    );
    assert.deepEqual(sizes, Array<number>(24).fill(size));
  } finally {
    await target.close();
    await chunks.close();
  }
  assert.equal(chunks.copied, 24);
  assert.deepEqual(await readFile(path.join(dir, 'new.bin')), Buffer.concat(pieces.reverse()));
  assert.ok(seen.size <= 8, `${seen.size} read buffers for 24 chunks`);
  assert.equal(chunks.buffers, seen.size);
});
