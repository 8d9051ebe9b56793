import assert from 'node:assert/strict';
import { createCipheriv, createHash } from 'node:crypto';
import { test } from 'node:test';
import { chunkBoundaries, DEFAULT_CHUNKING } from '../../../src/chunking/index.js';

const MIB = 1024 * 1024;

/** AES-256-CTR keystream: incompressible and deterministic, and fast enough to make 100 MiB in well under a second. */
function keystream(bytes: number, keyByte: number): Buffer {
  return createCipheriv('aes-256-ctr', Buffer.alloc(32, keyByte), Buffer.alloc(16)).update(
    Buffer.alloc(bytes),
  );
}

function chunkHashes(data: Buffer): string[] {
  const out: string[] = [];
  let start = 0;
  for (const end of chunkBoundaries(data, DEFAULT_CHUNKING)) {
    out.push(createHash('sha256').update(data.subarray(start, end)).digest('hex'));
    start = end;
  }
  return out;
}

function newChunks(before: readonly string[], after: readonly string[]): number {
  const known = new Set(before);
  return after.filter((h) => !known.has(h)).length;
}

test('locality: a 1 KiB insert or delete in the middle of 100 MiB changes at most 3 chunks', () => {
  const original = keystream(100 * MIB, 0x5a);
  const base = chunkHashes(original);
  assert.ok(base.length > 50, `expected ~90 chunks of ~1 MiB, got ${base.length}`);

  const mid = 50 * MIB + 12_345;
  const inserted = Buffer.concat([
    original.subarray(0, mid),
    keystream(1024, 0xa5),
    original.subarray(mid),
  ]);
  const afterInsert = chunkHashes(inserted);
  assert.ok(
    newChunks(base, afterInsert) <= 3,
    `insert produced ${newChunks(base, afterInsert)} new chunks`,
  );
  assert.ok(newChunks(base, afterInsert) >= 1, 'the chunk holding the insert must change');

  const deleted = Buffer.concat([original.subarray(0, mid), original.subarray(mid + 1024)]);
  const afterDelete = chunkHashes(deleted);
  assert.ok(
    newChunks(base, afterDelete) <= 3,
    `delete produced ${newChunks(base, afterDelete)} new chunks`,
  );
});
