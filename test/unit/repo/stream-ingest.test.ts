/**
 * A file streamed through the main thread (too big for one lane, or an add without workers) is
 * cut where a scan of the whole file cuts, whichever way it is read: into a cut finder's window
 * when it is bigger than a chunk can be, through a Chunker otherwise, and whatever its size was
 * when it was measured.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chunkBoundaries } from '../../../src/chunking/index.js';
import { ingestFile } from '../../../src/repo/content.js';
import { silentProgress } from '../../../src/repo/progress.js';
import { initRepo, SMALL_CHUNKING } from '../../support/sync-fixtures.js';
import { xorshift32Bytes } from '../chunking/helpers.js';

for (const workers of [true, false]) {
  test(`a streamed file is cut as a whole-file scan cuts it (${workers ? 'workers' : 'no workers'})`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-stream-ingest-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const repo = await initRepo(dir);
    const ctx = repo.contentContext({ workers });
    t.after(() => ctx.close());
    const { maxSize } = SMALL_CHUNKING;
    const data = Buffer.from(xorshift32Bytes(31, 40 * maxSize + 123));
    // Zeros: hard cuts at maxSize, some across the reads' edges.
    data.fill(0, 5 * maxSize + 17, 9 * maxSize);
    const expected = chunkBoundaries(data, SMALL_CHUNKING, repo.odb.sealer.gear);
    for (const [name, bytes] of [
      ['big.bin', data],
      ['one-chunk.bin', data.subarray(0, maxSize)],
      ['small.bin', data.subarray(0, SMALL_CHUNKING.minSize + 5)],
    ] as const) {
      await writeFile(repo.absPath(name), bytes);
      // The size as stat saw it, a smaller one (the file grew since), a bigger one, or none.
      for (const hint of [bytes.length, maxSize, 50 * maxSize, undefined]) {
        const result = await ingestFile(ctx, repo.absPath(name), name, silentProgress, hint);
        const manifest = await repo.odb.readManifest(result.manifestOid);
        let end = 0;
        const ends = manifest.chunks.map((c) => (end += c.size));
        assert.deepEqual(
          ends,
          expected.filter((e) => e < bytes.length).concat(bytes.length),
          `${name} with size hint ${hint}`,
        );
        assert.equal(manifest.size, bytes.length);
        // And each chunk is the bytes it names (its ID is their hash).
        manifest.chunks.forEach((c, k) =>
          assert.equal(c.oid, repo.odb.oidOf('chunk', bytes.subarray(ends[k]! - c.size, ends[k]))),
        );
      }
    }
    assert.equal(repo.workerJobs.ingest ?? 0, 0, 'streamed, not handed whole to a worker');
    if (workers)
      assert.ok((repo.workerJobs.store ?? 0) > 0, 'the chunks were stored by the workers');
  });
}
