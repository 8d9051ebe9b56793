/**
 * A multi remote stays whole across half-failed pushes: what one side lacks is written to it before
 * its ref moves (docs/backends/multi.md).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { silentProgress, type Repository } from '../../../src/repo/index.js';
import { LocalStore, MultiStore, RetryingStore, type Store } from '../../../src/store/index.js';
import { push, readMirrorLedger, repairMirror, withMirrorUpkeep } from '../../../src/sync/index.js';
import { makeCorpus } from '../../support/corpus.js';
import { RejectingStore } from '../../support/faulty-store.js';
import { MAIN, commitFiles, commitWorktree, initRepo } from '../../support/sync-fixtures.js';
import { patternBytes } from '../../support/store-contract.js';

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

/** A push as the CLI runs it to a multi remote: repair first, record after. */
function upkeepPush(m: Mirror, oid: string, ref = MAIN) {
  return withMirrorUpkeep(m.repo, 'backup', m.remote, () =>
    push(m.repo, m.remote, { oid, ref, force: false }, silentProgress),
  );
}

const chunkFile = (root: string, key: string): string =>
  path.join(root, 'chunks', key.slice(7, 9), key.slice(9));

test('a write the secondary missed is recorded in .mediagit/mirrors.json and repaired by the next push, even of another branch', async (t) => {
  const m = await mirrorSetup('ledger');
  t.after(() => rm(m.root, { recursive: true, force: true }));
  await makeCorpus(m.repo.root, 1, 'tiny');
  const v1 = await commitWorktree(m.repo, [], 'v1');
  const chunks = await keys(m.repo.store, 'chunks/');
  const victim = chunks[0]!;
  m.rejecting.rejected.add(victim);
  await assert.rejects(
    upkeepPush(m, v1),
    (err: { code?: string }) => err.code === 'E_STORE_UNAVAILABLE',
  );

  // On disk, in the documented format (docs/backends/multi.md).
  const file = JSON.parse(await readFile(m.repo.path('mirrors.json'), 'utf8')) as {
    version: number;
    remotes: Record<
      string,
      { objects: Record<string, string>; refs: string[]; updated_at: string }
    >;
  };
  assert.equal(file.version, 1);
  assert.deepEqual(file.remotes['backup']!.objects, { [victim]: 'secondary' });
  assert.deepEqual(file.remotes['backup']!.refs, []);
  assert.ok(!Number.isNaN(Date.parse(file.remotes['backup']!.updated_at)));

  // The next push publishes something else entirely; it still repairs the recorded write first.
  m.rejecting.rejected.clear();
  const other = await commitFiles(
    m.repo,
    [],
    new Map([['other.bin', patternBytes('o', 5000)]]),
    'other',
  );
  const { result, upkeep } = await upkeepPush(m, other, 'refs/heads/other');
  assert.equal(result.status, 'created');
  assert.deepEqual(upkeep.repaired?.copied, [{ key: victim, to: 'secondary' }]);
  assert.equal(upkeep.recorded, null);
  assert.deepEqual(await m.secondary.has([victim]), [true]);
  assert.equal(await readMirrorLedger(m.repo, 'backup'), null, 'nothing left recorded');
});

test('a ref the secondary did not follow is recorded, and the next push fast-forwards it once the secondary holds everything it reaches', async (t) => {
  const m = await mirrorSetup('ref');
  t.after(() => rm(m.root, { recursive: true, force: true }));
  await makeCorpus(m.repo.root, 1, 'tiny');
  const v1 = await commitWorktree(m.repo, [], 'v1');
  await upkeepPush(m, v1);
  const v1Chunks = new Set(await keys(m.secondary, 'chunks/'));
  await makeCorpus(m.repo.root, 2, 'tiny');
  const v2 = await commitWorktree(m.repo, [v1], 'v2');

  m.rejecting.rejectedRefs.add(MAIN);
  const { result, upkeep } = await upkeepPush(m, v2);
  assert.equal(result.status, 'fast-forward', 'the primary moved: the push succeeded');
  assert.deepEqual(upkeep.recorded?.refs, [MAIN]);
  assert.equal((await m.secondary.readRef(MAIN))?.oid, v1, 'the secondary lags');

  // Meanwhile the secondary lost a chunk that only v2 uses: the repair must put it back before
  // the ref moves, or the secondary would point at a commit it cannot serve.
  const onlyV2 = (await keys(m.primary, 'chunks/')).find((k) => !v1Chunks.has(k));
  assert.ok(onlyV2, 'v2 brings chunks of its own');
  await unlink(chunkFile(path.join(m.root, 'secondary'), onlyV2));
  m.rejecting.rejectedRefs.clear();
  const again = await upkeepPush(m, v2);
  assert.equal(again.result.status, 'up-to-date');
  assert.deepEqual(again.upkeep.repaired?.refsMoved, [{ name: MAIN, from: v1, to: v2 }]);
  assert.ok(
    again.upkeep.repaired?.copied.some((c) => c.key === onlyV2 && c.to === 'secondary'),
    'the lost chunk was copied first',
  );
  assert.equal((await m.secondary.readRef(MAIN))?.oid, v2);
  assert.equal(await readMirrorLedger(m.repo, 'backup'), null);
  const d = await m.multi.divergence();
  assert.deepEqual(d, {
    onlyPrimary: [],
    onlySecondary: [],
    sizeMismatches: [],
    refMismatches: [],
  });
});

test('repairMirror full: copies both ways verified by ID, replaces a damaged copy, fast-forwards a lagging ref, leaves a diverged one', async (t) => {
  const m = await mirrorSetup('full');
  t.after(() => rm(m.root, { recursive: true, force: true }));
  await makeCorpus(m.repo.root, 1, 'tiny');
  const v1 = await commitWorktree(m.repo, [], 'v1');
  await upkeepPush(m, v1);
  await makeCorpus(m.repo.root, 2, 'tiny');
  const v2 = await commitWorktree(m.repo, [v1], 'v2');
  await upkeepPush(m, v2);
  const side = await commitFiles(
    m.repo,
    [v1],
    new Map([['side.bin', patternBytes('s', 3000)]]),
    'side',
  );
  await upkeepPush(m, side, 'refs/heads/side');

  const chunks = await keys(m.primary, 'chunks/');
  const objects = await keys(m.primary, 'objects/');
  const [lostOnSecondary, lostOnPrimary, damaged] = [chunks[0]!, chunks[1]!, chunks[2]!];
  const secondaryRoot = path.join(m.root, 'secondary');
  await unlink(chunkFile(secondaryRoot, lostOnSecondary));
  await unlink(chunkFile(path.join(m.root, 'primary'), lostOnPrimary));
  const damagedFile = chunkFile(secondaryRoot, damaged);
  await rm(damagedFile, { force: true });
  await writeFile(damagedFile, Buffer.from('not the chunk'));
  // An object the primary holds damaged: a copy that does not verify must never be spread.
  const forged = `chunks/${'ab'.repeat(32)}`;
  await m.primary.put(forged, Buffer.from('forged'));
  // main lags on the secondary (fast-forwardable); side diverged there (not a fast-forward).
  assert.ok(await m.secondary.compareAndSwapRef(MAIN, await m.secondary.readRef(MAIN), v1));
  assert.ok(
    await m.secondary.compareAndSwapRef(
      'refs/heads/side',
      await m.secondary.readRef('refs/heads/side'),
      v2,
    ),
  );

  const report = (await repairMirror(m.repo, 'backup', m.remote, { full: true }))!;
  assert.deepEqual(
    report.copied.map((c) => [c.key, c.to]).sort(),
    [
      [lostOnPrimary, 'primary'],
      [lostOnSecondary, 'secondary'],
    ].sort(),
  );
  assert.deepEqual(report.replaced, [{ key: damaged, side: 'secondary' }]);
  assert.deepEqual(report.refsMoved, [{ name: MAIN, from: v1, to: v2 }]);
  assert.deepEqual(
    report.left.map((l) => l.what),
    [forged, 'refs/heads/side'],
  );
  assert.match(report.left[1]!.why, /not a fast-forward/);
  assert.deepEqual(
    await m.secondary.has([forged]),
    [false],
    'an unverifiable object is not copied',
  );
  assert.deepEqual(await keys(m.secondary, 'objects/'), objects);
  assert.equal((await m.secondary.readRef('refs/heads/side'))?.oid, v2, 'left alone');
  const d = await m.multi.divergence();
  assert.deepEqual(d.onlySecondary, []);
  assert.deepEqual(d.onlyPrimary, [forged]);
  assert.deepEqual(d.sizeMismatches, []);
  assert.deepEqual(
    d.refMismatches.map((r) => r.name),
    ['refs/heads/side'],
  );
  // What is left stays recorded for the next repair.
  assert.deepEqual((await readMirrorLedger(m.repo, 'backup'))?.objects, { [forged]: 'secondary' });
});

test('a ledger that cannot be understood never blocks a push: it counts as empty', async (t) => {
  const m = await mirrorSetup('damaged');
  t.after(() => rm(m.root, { recursive: true, force: true }));
  await makeCorpus(m.repo.root, 1, 'tiny');
  const v1 = await commitWorktree(m.repo, [], 'v1');
  for (const text of [
    '{ not json',
    JSON.stringify({
      version: 1,
      remotes: { backup: { objects: { '../escape': 'secondary' }, refs: [], updated_at: 'x' } },
    }),
  ]) {
    await writeFile(m.repo.path('mirrors.json'), text);
    assert.equal(await readMirrorLedger(m.repo, 'backup'), null);
    const { result } = await upkeepPush(m, v1);
    assert.ok(['created', 'up-to-date'].includes(result.status));
  }
  assert.equal((await m.secondary.readRef(MAIN))?.oid, v1);
});
