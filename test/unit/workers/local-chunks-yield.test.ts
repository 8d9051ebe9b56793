/**
 * `add` ingests whole files on its main thread too (one of its lanes). A file whose chunks the
 * store already holds costs no write to wait for, so without a deliberate turn of the event loop
 * the whole file would be read, cut and hashed in one go, holding back timers, the workers'
 * replies and a Ctrl-C's cleanup.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_CHUNKING } from '../../../src/chunking/index.js';
import { LocalChunks } from '../../../src/workers/index.js';

const MiB = 1024 * 1024;

test('ingesting a file already in the store lets the event loop turn while it reads', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'mg-yield-'));
  try {
    const file = join(dir, 'big.bin');
    await writeFile(file, randomBytes(64 * MiB));
    const chunks = new LocalChunks({
      root: join(dir, 'objects'),
      fsync: false,
      compressionLevel: 1,
      master: null,
      chunking: DEFAULT_CHUNKING,
    });
    const first = await chunks.ingestFile(file, 'big.bin', () => undefined);
    assert.ok(first.newChunks > 1);
    // Every chunk is stored now: the second ingest has nothing to write and nothing to wait for.
    let turns = 0;
    let counting = true;
    const tick = (): void => {
      if (!counting) return;
      turns++;
      setImmediate(tick);
    };
    setImmediate(tick);
    const second = await chunks.ingestFile(file, 'big.bin', () => undefined);
    counting = false;
    assert.equal(second.newChunks, 0);
    assert.deepEqual(second.chunks, first.chunks);
    // 64 MiB read 4 MiB at a time, a turn every 16 MiB: at least 3 turns within the ingest.
    assert.ok(turns >= 3, `the event loop turned ${turns} times during a 64 MiB ingest`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
