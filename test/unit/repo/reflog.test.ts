/**
 * Reflog files: git's line format, appends that never interleave or get lost when many movers
 * and a rewriting gc run at once, and selectors resolved from them.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  appendReflog,
  expireReflogs,
  readReflog,
  resolveCommit,
  rewriteReflog,
  type Repository,
} from '../../../src/repo/index.js';
import { MAIN, commitFiles, initRepo } from '../../support/sync-fixtures.js';

async function setup(t: TestContext): Promise<Repository> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-reflog-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  process.env.MEDIAGIT_AUTHOR_NAME ??= 'Test';
  process.env.MEDIAGIT_AUTHOR_EMAIL ??= 'test@example.com';
  return initRepo(path.join(root, 'repo'));
}

test('lines are in git format: old new who time tz<TAB>message', async (t) => {
  const repo = await setup(t);
  const a = await commitFiles(repo, [], new Map([['a', Buffer.from('1')]]), 'one');
  await repo.updateRef(MAIN, a, null, 'commit (initial): one');
  const text = await readFile(repo.path('logs', 'refs', 'heads', 'main'), 'utf8');
  assert.match(
    text,
    new RegExp(`^0{64} ${a} [^<]+ <[^>]+> \\d+ [+-]\\d{4}\\tcommit \\(initial\\): one\\n$`),
  );
  // HEAD is on main, so HEAD's log has the same move.
  assert.equal((await readReflog(repo, 'HEAD'))[0]?.new, a);
  assert.equal(await resolveCommit(repo, 'HEAD@{0}'), a);
  assert.equal(await resolveCommit(repo, 'main@{0}'), a);
  assert.equal(await resolveCommit(repo, '@{0}'), a);
});

test('concurrent appends and a concurrent rewrite lose no line and tear none', async (t) => {
  const repo = await setup(t);
  const a = await commitFiles(repo, [], new Map([['a', Buffer.from('1')]]), 'one');
  const writers = Array.from({ length: 40 }, (_, i) =>
    appendReflog(repo, MAIN, null, a, `move ${i} ${'x'.repeat(2000)}`),
  );
  // A rewrite that keeps everything (as gc's expiry does for young entries) races the appends.
  const rewrite = rewriteReflog(repo, MAIN, (entries) => entries);
  await Promise.all([...writers, rewrite]);
  const entries = await readReflog(repo, MAIN);
  assert.equal(entries.length, 40);
  assert.deepEqual(
    entries.map((e) => Number(/^move (\d+)/.exec(e.message)?.[1])).sort((x, y) => x - y),
    Array.from({ length: 40 }, (_, i) => i),
  );
  const lines = (await readFile(repo.path('logs', 'refs', 'heads', 'main'), 'utf8')).split('\n');
  assert.equal(lines.filter((l) => l !== '').length, 40, 'every line parses: none torn');
});

test('expiry drops old entries but never the stash list', async (t) => {
  const repo = await setup(t);
  const a = await commitFiles(repo, [], new Map([['a', Buffer.from('1')]]), 'one');
  await appendReflog(repo, MAIN, null, a, 'old move');
  await appendReflog(repo, 'refs/stash', null, a, 'WIP on main');
  const removed = await expireReflogs(repo, Math.floor(Date.now() / 1000) + 10);
  assert.equal(removed, 1);
  assert.deepEqual(await readReflog(repo, MAIN), []);
  assert.equal((await readReflog(repo, 'refs/stash')).length, 1);
});
