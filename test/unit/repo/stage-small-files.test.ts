/**
 * How `add` spreads files between the chunk workers and the main thread: small files are stored
 * on the main thread (no worker round trip each, many at once), the rest on the workers.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import {
  addPaths,
  commitIndex,
  resetHead,
  SMALL_FILE_BYTES,
  type Repository,
} from '../../../src/repo/index.js';
import { defaultPoolSize, WORKERS_WORTH_BYTES } from '../../../src/workers/index.js';
import { initRepo } from '../../support/sync-fixtures.js';

test('add stores small files on the main thread, big ones on the workers and on the main thread, and all read back', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mediagit-stage-small-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const repo: Repository = await initRepo(dir);
  repo.config.set('user.name', 'Stage Test');
  repo.config.set('user.email', 'stage@example.com');
  await repo.config.save();

  // Two big files, each within a worker's share, so each goes to a worker whole (one job each);
  // together past the threshold that starts workers at all.
  const big = WORKERS_WORTH_BYTES / 2 + 1024 * 1024;
  const files = new Map<string, Buffer>([
    ['media/a.bin', randomBytes(big)],
    ['media/b.bin', randomBytes(big)],
    // Just past the limit: a worker's. At the limit: the main thread's.
    ['edge/over.bin', randomBytes(SMALL_FILE_BYTES + 1)],
    ['edge/at.bin', randomBytes(SMALL_FILE_BYTES)],
  ]);
  for (let i = 0; i < 30; i++)
    files.set(
      `meta/asset_${i}.json`,
      Buffer.from(`{"id": ${i}, "tags": ["${'x'.repeat(i * 7)}"]}\n`),
    );
  for (const [name, data] of files) {
    await mkdir(path.dirname(repo.absPath(name)), { recursive: true });
    await writeFile(repo.absPath(name), data);
  }

  const { summary } = await addPaths(repo, ['']);
  assert.equal(summary.staged, files.size);
  // Without the main-thread lane for small files every file was one `ingest` job: 34 here. Of the
  // three big ones, the main thread ingests the largest itself (one worker fewer is started).
  assert.deepEqual(
    repo.workerJobs,
    { ingest: 2 },
    'only big files crossed to a worker, and not the one the main thread took',
  );
  assert.equal(repo.workerThreads, Math.max(1, defaultPoolSize() - 1), 'one worker fewer');

  await commitIndex(repo, { message: 'all' });
  for (const name of files.keys()) await rm(repo.absPath(name));
  await resetHead(repo, null, 'hard');
  for (const [name, data] of files)
    assert.ok((await readFile(repo.absPath(name))).equals(data), `${name} reads back as added`);
});

test('a file too big for one lane is cut for every worker: add then starts them all', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mediagit-stage-big-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const repo: Repository = await initRepo(dir);
  repo.config.set('user.name', 'Stage Test');
  repo.config.set('user.email', 'stage@example.com');
  await repo.config.save();
  const data = randomBytes(WORKERS_WORTH_BYTES + 1024 * 1024);
  await writeFile(repo.absPath('alone.bin'), data);
  await addPaths(repo, ['']);
  // The main thread cuts the file and every worker hashes and writes its chunks.
  assert.equal(repo.workerThreads, defaultPoolSize());
  assert.equal(repo.workerJobs.ingest ?? 0, 0);
  assert.ok((repo.workerJobs.store ?? 0) > 0);
  await commitIndex(repo, { message: 'alone' });
  await rm(repo.absPath('alone.bin'));
  await resetHead(repo, null, 'hard');
  assert.ok((await readFile(repo.absPath('alone.bin'))).equals(data));
});
