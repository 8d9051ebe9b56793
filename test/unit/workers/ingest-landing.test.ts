/**
 * A lane of `add` (a chunk worker, or the main thread) cuts one file after another. Each file's
 * last chunks still have their fsync and rename ahead of them when the cutting ends; the lane goes
 * on to its next file meanwhile, and only the file's manifest waits for them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ChunkingParams } from '../../../src/chunking/index.js';
import { ingestFile } from '../../../src/repo/content.js';
import { silentProgress } from '../../../src/repo/progress.js';
import { LocalChunks, type ChunkStoreSpec, type Landing } from '../../../src/workers/index.js';
import { initRepo } from '../../support/sync-fixtures.js';

const KiB = 1024;
const SMALL_CHUNKS: ChunkingParams = { minSize: 16 * KiB, avgSize: 64 * KiB, maxSize: 256 * KiB };

/** An fsync that waits until the test lets it finish, counting the calls. */
function heldFsync(): { fsyncFd: (fd: number) => Promise<void>; calls: number[]; release(): void } {
  const calls: number[] = [];
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  return {
    calls,
    release: () => open(),
    fsyncFd: async (fd) => {
      calls.push(fd);
      await gate;
    },
  };
}

/** Resolves after `n` turns of the event loop: long enough for anything not waiting on the gate. */
async function turns(n: number): Promise<'still waiting'> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  return 'still waiting';
}

test('an ingest given a landing list returns once the file is cut, its chunks still landing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mg-ingest-landing-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const first = join(dir, 'first.bin');
  const second = join(dir, 'second.bin');
  await writeFile(first, randomBytes(1024 * KiB));
  await writeFile(second, randomBytes(768 * KiB));
  const held = heldFsync();
  const spec: ChunkStoreSpec = {
    root: join(dir, 'store'),
    fsync: true,
    compressionLevel: 1,
    master: null,
    chunking: SMALL_CHUNKS,
  };
  const chunks = new LocalChunks(spec, { fsyncFd: held.fsyncFd });

  const landing: Landing = [];
  const ingest = chunks.ingestFile(first, 'first.bin', () => undefined, undefined, landing);
  // No fsync ever finishes here: an ingest that waited for its chunks would never return.
  const verdict = await Promise.race([ingest.then(() => 'cut' as const), turns(20)]);
  assert.equal(verdict, 'cut', 'the ingest returned with its chunks still landing');
  const file = await ingest;
  assert.ok(file.newChunks > 1, `${file.newChunks} chunks`);
  assert.equal(landing.length, file.newChunks, 'every new chunk is left landing for the caller');
  assert.equal(held.calls.length, file.newChunks);

  // The same thread cuts its next file while the first one's chunks are still landing.
  const nextLanding: Landing = [];
  const next = chunks.ingestFile(second, 'second.bin', () => undefined, undefined, nextLanding);
  assert.equal(await Promise.race([next.then(() => 'cut' as const), turns(20)]), 'cut');
  const nextFile = await next;
  assert.equal(held.calls.length, file.newChunks + nextFile.newChunks);

  // Nothing is at its name before its fsync: the bytes are not claimed to be durable yet.
  const store = join(spec.root, 'chunks');
  const pathOf = (oid: string): string => join(store, oid.slice(0, 2), oid.slice(2));
  for (const { oid } of [...file.chunks, ...nextFile.chunks])
    assert.equal(existsSync(pathOf(oid)), false, `${oid} is not in place before its fsync`);
  // A file whose chunks an earlier file of this thread is still landing writes nothing, yet its
  // manifest must wait for those chunks too: they are in its landing list.
  const againLanding: Landing = [];
  const again = await chunks.ingestFile(
    first,
    'again.bin',
    () => undefined,
    undefined,
    againLanding,
  );
  assert.equal(again.newChunks, 0);
  assert.deepEqual(again.chunks, file.chunks);
  assert.equal(againLanding.length, file.chunks.length, 'it waits for the chunks it shares');
  assert.equal(held.calls.length, file.newChunks + nextFile.newChunks, 'nothing written twice');
  held.release();
  await Promise.all([...landing, ...nextLanding]);
  for (const { oid } of [...file.chunks, ...nextFile.chunks])
    assert.ok(existsSync(pathOf(oid)), `${oid} is in place once landed`);
});

test('on the main lane the file is cut before its chunks land, and its manifest waits for them', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mg-main-lane-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const repo = await initRepo(dir);
  const data = randomBytes(1024 * KiB);
  await writeFile(repo.absPath('a.bin'), data);
  const held = heldFsync();
  const base = repo.contentContext({ workers: true, mainLane: true });
  t.after(() => base.close());
  const mainChunks = new LocalChunks(
    {
      root: repo.store.root,
      fsync: true,
      compressionLevel: repo.settings.compressionLevel,
      master: null,
      chunking: repo.settings.chunking,
    },
    { fsyncFd: held.fsyncFd },
  );
  const ctx = { ...base, mainChunks };

  let cut = false;
  const ingest = ingestFile(ctx, repo.absPath('a.bin'), 'a.bin', silentProgress, data.length, {
    wholeFileInWorker: true,
    lane: 'main',
    onLaneFree: () => (cut = true),
  });
  let settled = false;
  void ingest.then(() => (settled = true));
  await turns(20);
  assert.ok(cut, 'the lane heard that the file is cut while its fsyncs are held');
  assert.ok(held.calls.length > 1, `${held.calls.length} chunks landing`);
  assert.equal(settled, false, 'no manifest before the chunks have landed');
  assert.equal(repo.workerJobs.ingest ?? 0, 0, 'the file stayed on the main thread');
  held.release();
  const result = await ingest;
  assert.equal(result.size, data.length);
  const manifest = await repo.odb.readManifest(result.manifestOid);
  assert.equal(manifest.chunks.length, held.calls.length);
  const present = await repo.odb.has(
    'chunk',
    manifest.chunks.map((c) => c.oid),
  );
  assert.ok(
    present.every((p) => p),
    'every chunk is in place',
  );
});

test('a worker lane is free for the next file once the worker has cut this one, before its manifest', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mg-worker-lane-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const repo = await initRepo(dir);
  const data = randomBytes(3 * 1024 * KiB);
  await writeFile(repo.absPath('a.bin'), data);
  const ctx = repo.contentContext({ workers: true });
  t.after(() => ctx.close());
  const manifests = (): number =>
    readdirSync(join(repo.store.root, 'objects'), { recursive: true, withFileTypes: true }).filter(
      (entry) => entry.isFile(),
    ).length;
  const before = manifests();
  let manifestsWhenFree = -1;
  let unansweredWhenFree = -1;
  const result = await ingestFile(
    ctx,
    repo.absPath('a.bin'),
    'a.bin',
    silentProgress,
    data.length,
    {
      wholeFileInWorker: true,
      onLaneFree: () => {
        manifestsWhenFree = manifests();
        unansweredWhenFree = ctx.workers!.jobsInFlight;
      },
    },
  );
  assert.equal(repo.workerJobs.ingest, 1, 'the file went to a worker whole');
  assert.equal(unansweredWhenFree, 1, 'the lane was free before the worker replied');
  assert.equal(manifestsWhenFree, before, 'the lane was free before the manifest was written');
  assert.equal(manifests(), before + 1);
  assert.equal((await repo.odb.readManifest(result.manifestOid)).size, data.length);
});

test('a file on the main lane that grew since its stat frees the lane only once it is cut whole', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mg-main-grown-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const repo = await initRepo(dir);
  // Past one progress report (every 8 MiB), with a stat from when it held only 1 MiB.
  const data = randomBytes(12 * 1024 * KiB);
  await writeFile(repo.absPath('grown.bin'), data);
  const ctx = repo.contentContext({ workers: true, mainLane: true });
  t.after(() => ctx.close());
  let reported = 0;
  let reportedWhenFree = -1;
  const progress = { ...silentProgress, bytes: (n: number) => void (reported += n) };
  const result = await ingestFile(
    ctx,
    repo.absPath('grown.bin'),
    'grown.bin',
    progress,
    1024 * KiB,
    {
      wholeFileInWorker: true,
      lane: 'main',
      onLaneFree: () => (reportedWhenFree = reported),
    },
  );
  // Freed in mid-cut, the lane would start its next file in the same window at the next yield.
  assert.equal(reportedWhenFree, data.length, 'the lane was freed only after the whole file');
  assert.equal(result.size, data.length);
});
