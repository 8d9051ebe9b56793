/**
 * Push and clone through a remote that fails a fifth of all calls (including writes whose reply is
 * lost after they landed) and answers slowly: with retries they must still complete, and what
 * arrives must be exactly what was sent.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { silentProgress } from '../../../src/repo/index.js';
import { LocalStore, RetryingStore } from '../../../src/store/index.js';
import { push } from '../../../src/sync/index.js';
import { makeCorpus } from '../../support/corpus.js';
import { FaultyStore } from '../../support/faulty-store.js';
import {
  MAIN,
  checkoutCommit,
  cloneLibrary,
  commitWorktree,
  filesOf,
  fsckFull,
  initRepo,
} from '../../support/sync-fixtures.js';
import { assertTreesEqual, hashTree } from '../../support/tree.js';

test('push and clone through a store failing 20 % of calls with latency complete; the clone is byte-identical and fsck-clean', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-sync-faults-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const backend = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await backend.initialize();
  const faulty = new FaultyStore(backend, {
    seed: 20,
    failureRate: 0.2,
    maxLatencyMs: 3,
    failAfterWriteRate: 0.3,
  });
  const remote = new RetryingStore(faulty, { maxRetries: 40, baseDelayMs: 1, maxDelayMs: 4 });

  // v1, then v2 on top of it: the second push has to work out what the remote already holds.
  const src = await initRepo(path.join(root, 'src'));
  await makeCorpus(src.root, 1, 'tiny');
  const v1 = await commitWorktree(src, [], 'v1');
  const first = await push(src, remote, { oid: v1, ref: MAIN, force: false }, silentProgress);
  assert.equal(first.status, 'created');
  await makeCorpus(src.root, 2, 'tiny');
  const v2 = await commitWorktree(src, [v1], 'v2');
  const second = await push(src, remote, { oid: v2, ref: MAIN, force: false }, silentProgress);
  assert.equal(second.status, 'fast-forward');
  assert.ok(
    second.stats.bytes < first.stats.bytes,
    `v2 push sent ${second.stats.bytes} B, v1 push ${first.stats.bytes} B: only the difference should travel`,
  );
  assert.equal((await backend.readRef(MAIN))?.oid, v2);
  const pushFaults = faulty.totalInjected;

  // Everything on the remote is intact: no write that "failed" left a torn or wrong object.
  for await (const { key } of backend.list('')) {
    const oid = key.slice(key.indexOf('/') + 1);
    if (key.startsWith('chunks/')) await src.odb.openStored('chunk', oid, await backend.get(key));
    else if (key.startsWith('objects/'))
      assert.ok(
        (await src.odb.kindOf(oid)) !== null,
        `${key} on the remote is not an object of the source`,
      );
  }

  const { repo: clone, tip, stats } = await cloneLibrary(remote, path.join(root, 'clone'));
  assert.equal(tip, v2);
  await checkoutCommit(clone, v2);
  assertTreesEqual(
    await hashTree(clone.root),
    await hashTree(src.root),
    'clone through a faulty store',
  );
  assert.deepEqual(await filesOf(clone, v1), await filesOf(src, v1), 'v1 snapshot in the clone');
  const fsck = await fsckFull(clone);
  assert.deepEqual(fsck.problems, []);
  assert.ok(fsck.ok);
  assert.equal(fsck.counts.commits, 2);

  const cloneFaults = faulty.totalInjected - pushFaults;
  assert.ok(
    pushFaults >= 20 && cloneFaults >= 20,
    `too few faults to mean anything: push ${pushFaults}, clone ${cloneFaults}`,
  );
  t.diagnostic(
    `faults injected: push ${pushFaults} (${faulty.injected.after} after the write landed), clone ${cloneFaults}; pushed ${first.stats.objects}+${second.stats.objects} objects, cloned ${stats.objects} objects (${stats.bytes} B)`,
  );
});
