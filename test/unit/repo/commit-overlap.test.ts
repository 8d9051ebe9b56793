/**
 * commit's last writes: the ref moves first, then the index is saved while the reflog entries
 * are written (their fsyncs overlap), and all of them are done before commit returns and the
 * index lock goes.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { addPaths, commitIndex } from '../../../src/repo/index.js';
import { LockFile } from '../../../src/util/fs.js';
import { initRepo } from '../../support/sync-fixtures.js';

const lines = async (file: string): Promise<string[]> =>
  (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');

test("commit saves the index while HEAD's reflog entry is still waiting, and writes that entry before it returns", async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mediagit-commit-overlap-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const repo = await initRepo(dir);
  repo.config.set('user.name', 'Overlap Test');
  repo.config.set('user.email', 'overlap@example.com');
  await repo.config.save();
  await writeFile(repo.absPath('a.txt'), 'one\n');
  await addPaths(repo, ['']);
  const first = await commitIndex(repo, { message: 'one' });

  await writeFile(repo.absPath('a.txt'), 'two\n');
  await addPaths(repo, ['']);
  const staged = await readFile(repo.path('index'));
  // HEAD's reflog held as another live process would hold it: its entry has to wait.
  const held = await LockFile.acquire(`${repo.path('logs', 'HEAD')}.lock`, { what: 'the test' });
  let settled = false;
  const committing = commitIndex(repo, { message: 'two' }).finally(() => {
    settled = true;
  });
  committing.catch(() => undefined);
  while (!settled && (await readFile(repo.path('index'))).equals(staged)) await sleep(5);
  assert.equal(settled, false, 'the index is saved before the reflog entry is written');
  assert.equal((await lines(repo.path('logs', 'HEAD'))).length, 1);
  assert.ok(existsSync(repo.path('index.lock')), 'the index lock is held until the entry is in');

  await held.release();
  const second = await committing;
  const headLog = await lines(repo.path('logs', 'HEAD'));
  const branchLog = await lines(repo.path('logs', 'refs', 'heads', 'main'));
  assert.equal(headLog.length, 2);
  assert.equal(branchLog.length, 2);
  for (const log of [headLog, branchLog])
    assert.ok(log[1]!.startsWith(`${first.oid} ${second.oid} `), log[1]);
  assert.equal(existsSync(repo.path('index.lock')), false);
  assert.equal(await repo.readRef('refs/heads/main'), second.oid);
});
