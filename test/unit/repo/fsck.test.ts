/**
 * checkRepository and checkRemote called directly: what each phase reports on a sound
 * repository, a damaged chunk, an unreachable leftover and a chunk missing from a remote.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { checkRepository, silentProgress, type Repository } from '../../../src/repo/index.js';
import { LocalStore } from '../../../src/store/index.js';
import { checkRemote, push } from '../../../src/sync/index.js';
import {
  MAIN,
  commitFiles,
  flipByte,
  initRepo,
  storedChunks,
  writeBlob,
} from '../../support/sync-fixtures.js';

async function setup(t: TestContext): Promise<{ root: string; repo: Repository }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-fsck-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const repo = await initRepo(path.join(root, 'repo'));
  const tip = await commitFiles(
    repo,
    [],
    new Map([
      ['media/a.bin', randomBytes(300_000)],
      ['notes.txt', Buffer.from('notes\n')],
    ]),
    'first',
  );
  await repo.updateRef(MAIN, tip, null);
  return { root, repo };
}

test('checkRepository: a sound repository, then a corrupt chunk and a leftover found by --full', async (t) => {
  const { repo } = await setup(t);
  const clean = await checkRepository(repo);
  assert.deepEqual(clean.problems, []);
  assert.deepEqual(
    [clean.counts.commits, clean.counts.trees, clean.counts.manifests, clean.counts.danglingChunks],
    [1, 2, 2, 0],
  );
  assert.equal(clean.counts.verifiedChunks, 0);

  const [victim] = await storedChunks(repo.path());
  await writeBlob(repo, Buffer.from('stored, but nothing reaches it'));
  await flipByte(victim!.file);

  // Without --full only reachability is checked: the damage inside a chunk is not seen.
  const quick = await checkRepository(repo);
  assert.deepEqual(quick.problems, []);
  assert.deepEqual([quick.counts.danglingObjects, quick.counts.danglingChunks], [1, 1]);

  const full = await checkRepository(repo, { full: true });
  assert.equal(full.counts.verifiedChunks, (await storedChunks(repo.path())).length);
  assert.equal(full.problems.length, 1);
  const [problem] = full.problems;
  assert.deepEqual(
    [problem!.kind, problem!.oid, problem!.problem],
    ['chunk', victim!.oid, 'corrupt'],
  );
  assert.match(problem!.where, /^in manifest [0-9a-f]{64} of (media\/a\.bin|notes\.txt)$/);
});

test('checkRemote reports a chunk missing from a folder remote', async (t) => {
  const { root, repo } = await setup(t);
  const remoteDir = path.join(root, 'remote');
  const remote = new LocalStore(remoteDir, { fsync: false });
  await remote.initialize();
  const tip = (await repo.readRef(MAIN))!;
  await push(repo, remote, { oid: tip, ref: MAIN, force: false }, silentProgress);

  const sound = await checkRemote(repo, remote, { full: true });
  assert.deepEqual(sound.problems, []);
  assert.deepEqual([sound.counts.commits, sound.counts.trees, sound.counts.manifests], [1, 2, 2]);

  const lost = (await storedChunks(remoteDir))[0]!;
  await unlink(lost.file);
  const damaged = await checkRemote(repo, remote);
  assert.deepEqual(damaged.problems, [
    { kind: 'chunk', oid: lost.oid, problem: 'missing from the remote' },
  ]);
});
