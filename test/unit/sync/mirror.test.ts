/**
 * A multi remote stays whole across half-failed pushes: what one side lacks is written to it before
 * its ref moves (docs/backends/multi.md).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { silentProgress, type Repository } from '../../../src/repo/index.js';
import { LocalStore, MultiStore, RetryingStore, type Store } from '../../../src/store/index.js';
import { push } from '../../../src/sync/index.js';
import { makeCorpus } from '../../support/corpus.js';
import { RejectingStore } from '../../support/faulty-store.js';
import { MAIN, commitWorktree, initRepo } from '../../support/sync-fixtures.js';

async function keys(store: Store, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const { key } of store.list(prefix)) out.push(key);
  return out.sort();
}

interface Mirror {
  root: string;
  repo: Repository;
  primary: LocalStore;
  secondary: LocalStore;
  rejecting: RejectingStore;
  multi: MultiStore;
  remote: RetryingStore;
}

async function mirrorSetup(label: string): Promise<Mirror> {
  const root = await mkdtemp(path.join(os.tmpdir(), `mediagit-mirror-${label}-`));
  const primary = new LocalStore(path.join(root, 'primary'), { fsync: false });
  const secondary = new LocalStore(path.join(root, 'secondary'), { fsync: false });
  await primary.initialize();
  await secondary.initialize();
  const rejecting = new RejectingStore(secondary);
  const multi = new MultiStore(primary, rejecting);
  const remote = new RetryingStore(multi, { maxRetries: 2, baseDelayMs: 1, maxDelayMs: 2 });
  const repo = await initRepo(path.join(root, 'src'));
  return { root, repo, primary, secondary, rejecting, multi, remote };
}

test('a push whose secondary rejected a chunk, then a push that succeeds: the secondary gets the chunk before its ref', async (t) => {
  const m = await mirrorSetup('push');
  t.after(() => rm(m.root, { recursive: true, force: true }));
  await makeCorpus(m.repo.root, 1, 'tiny');
  const v1 = await commitWorktree(m.repo, [], 'v1');
  const chunks = await keys(m.repo.store, 'chunks/');
  assert.ok(chunks.length > 2, `the corpus gives ${chunks.length} chunks`);
  const victim = chunks[Math.floor(chunks.length / 2)]!;
  m.rejecting.rejected.add(victim);

  await assert.rejects(
    push(m.repo, m.remote, { oid: v1, ref: MAIN, force: false }, silentProgress),
    (err: { code?: string }) => err.code === 'E_STORE_UNAVAILABLE',
  );
  assert.ok(m.rejecting.refusals > 0);
  assert.deepEqual(await m.primary.has([victim]), [true], 'the primary took the chunk');
  assert.deepEqual(await m.secondary.has([victim]), [false], 'the secondary refused it');
  assert.equal(await m.primary.readRef(MAIN), null, 'no ref moved');

  // The secondary accepts writes again: the next push must notice that it lacks the chunk.
  m.rejecting.rejected.clear();
  const second = await push(m.repo, m.remote, { oid: v1, ref: MAIN, force: false }, silentProgress);
  assert.equal(second.status, 'created');
  assert.equal((await m.secondary.readRef(MAIN))?.oid, v1);
  assert.deepEqual(await m.secondary.has([victim]), [true], 'the second push sent the chunk');
  assert.deepEqual(await keys(m.secondary, 'chunks/'), await keys(m.primary, 'chunks/'));
  assert.deepEqual(await keys(m.secondary, 'objects/'), await keys(m.primary, 'objects/'));
  const d = await m.multi.divergence();
  assert.deepEqual(d, {
    onlyPrimary: [],
    onlySecondary: [],
    sizeMismatches: [],
    refMismatches: [],
  });
});
