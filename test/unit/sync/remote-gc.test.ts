/**
 * gc --remote on a folder remote, in-process: retention by version count, the grace period, the
 * sweeper lease, and pushes racing a sweep that deletes the very chunks they reuse.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ExpiredError, LockedError, UsageError } from '../../../src/errors/index.js';
import { decodeManifest, type Oid } from '../../../src/objects/index.js';
import { Repository, ensureManifestChunks, silentProgress } from '../../../src/repo/index.js';
import { LocalStore, type Store } from '../../../src/store/index.js';
import {
  checkRemote,
  clone,
  collectRemoteGarbage,
  expiryOf,
  installChunkSource,
  KEEP_EVERYTHING,
  parseDuration,
  parsePolicy,
  push,
  SweepLease,
} from '../../../src/sync/index.js';
import { assertComplete, raceRounds } from '../../support/gc-race.js';
import { MAIN, commitFiles, filesOf, initRepo } from '../../support/sync-fixtures.js';

async function setup(t: { after(fn: () => Promise<void>): void }): Promise<{
  root: string;
  remote: LocalStore;
  repo: Repository;
}> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-remote-gc-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const remote = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await remote.initialize();
  const repo = await initRepo(path.join(root, 'local'));
  return { root, remote, repo };
}

async function remoteKeys(store: Store): Promise<Map<string, number>> {
  const keys = new Map<string, number>();
  for (const prefix of ['objects/', 'chunks/'])
    for await (const { key, size } of store.list(prefix)) keys.set(key, size);
  return keys;
}

async function chunksOf(repo: Repository, manifest: Oid): Promise<Set<string>> {
  const m = decodeManifest(await repo.odb.read('manifest', manifest));
  return new Set(m.chunks.map((c) => `chunks/${c.oid}`));
}

test('policy parsing: durations, keep rules and globs; bad input is a usage error', () => {
  assert.equal(parseDuration('0', '--grace'), 0);
  assert.equal(parseDuration('180d', '--older-than'), 180 * 86_400_000);
  assert.equal(parseDuration('24h', '--grace'), 86_400_000);
  assert.equal(parseDuration('2w', '--grace'), 14 * 86_400_000);
  for (const bad of ['', '5', '1y', '-1d', 'soon'])
    assert.throws(() => parseDuration(bad, '--grace'), UsageError);
  const policy = parsePolicy(['renders/**=3', '*.psd=1'], '30d');
  assert.equal(policy.olderThanMs, 30 * 86_400_000);
  const [renders, psd] = policy.keep;
  assert.equal(renders!.versions, 3);
  assert.ok(renders!.matches('renders/a.exr'));
  assert.ok(renders!.matches('renders/shot1/a.exr'));
  assert.ok(!renders!.matches('textures/renders/a.exr'));
  assert.ok(psd!.matches('cover.psd'));
  assert.ok(!psd!.matches('art/cover.psd'));
  for (const bad of ['renders/**', 'renders/**=0', '=3', 'a=x'])
    assert.throws(() => parsePolicy([bad]), UsageError);
});

test("5 versions, --keep 'renders/**=2' --grace 0: exactly the chunks unique to versions 1-3 go, and only those bytes", async (t) => {
  const { root, remote, repo } = await setup(t);
  const shared = randomBytes(40_000);
  const versions: Buffer[] = [];
  let tip: Oid | null = null;
  const commits: Oid[] = [];
  for (let v = 1; v <= 5; v++) {
    // Each version keeps a shared prefix (chunks reused by every version) and adds its own part.
    versions.push(Buffer.concat([shared, randomBytes(30_000)]));
    const files = new Map([
      ['renders/shot.exr', versions[v - 1]!],
      ['notes.txt', Buffer.from(`version ${v}\n`)],
    ]);
    tip = await commitFiles(repo, tip ? [tip] : [], files, `v${v}`);
    commits.push(tip);
    await push(repo, remote, { oid: tip, ref: MAIN, force: false }, silentProgress);
  }
  const manifests = await Promise.all(
    commits.map(async (c) => (await filesOf(repo, c)).get('renders/shot.exr')!.oid),
  );
  const kept = new Set<string>();
  for (const m of manifests.slice(3)) for (const k of await chunksOf(repo, m)) kept.add(k);
  const expected = new Set<string>();
  for (const m of manifests.slice(0, 3))
    for (const k of await chunksOf(repo, m)) if (!kept.has(k)) expected.add(k);
  assert.ok(expected.size >= 3, 'each old version has chunks of its own');

  const policy = parsePolicy(['renders/**=2']);
  const before = await remoteKeys(remote);
  const dry = await collectRemoteGarbage(repo, remote, { policy, graceMs: 0, dryRun: true });
  assert.deepEqual(new Set(dry.keys.map((k) => k.key)), expected);
  assert.ok(dry.keys.every((k) => k.reason === 'expired'));
  assert.equal(dry.deleted.expired.count, expected.size);
  assert.equal(dry.deleted.unreachable.count, 0);
  const expectedBytes = [...expected].reduce((n, k) => n + before.get(k)!, 0);
  assert.equal(dry.deleted.expired.bytes, expectedBytes);
  assert.deepEqual(await remoteKeys(remote), before, 'a dry run deletes nothing');

  const real = await collectRemoteGarbage(repo, remote, { policy, graceMs: 0 });
  assert.equal(real.freedBytes, expectedBytes);
  const after = await remoteKeys(remote);
  const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  assert.equal(sum(before) - sum(after), expectedBytes, 'measured on the remote');
  for (const k of expected) assert.ok(!after.has(k));
  // The tip and the version before it are whole; every manifest (even expired ones) stays.
  await assertComplete(repo, remote, commits[4]!);
  await assertComplete(repo, remote, commits[3]!);
  for (const m of manifests) assert.ok(after.has(`objects/${m}`));
  const when = await expiryOf(remote, manifests[0]!);
  assert.ok(when !== null, 'the expired manifest has a record');
  const err = new ExpiredError('renders/shot.exr', when);
  assert.match(err.message, /expired by retention policy on \d{4}-\d{2}-\d{2}/);
  assert.equal(err.code, 'E_EXPIRED');
  assert.equal(await expiryOf(remote, manifests[4]!), null);

  // fsck of the remote is clean: expired content is not a problem, everything else is there.
  assert.deepEqual((await checkRemote(repo, remote, { full: true })).problems, []);
  // A second run finds nothing more: the sweep converged.
  const again = await collectRemoteGarbage(repo, remote, { policy, graceMs: 0 });
  assert.equal(again.keys.length, 0);

  // A fresh clone skips the expired chunks, checks out the tip byte-identical, and reading an
  // expired version says so (with the date), never "missing" or "corrupt".
  const cloned = await clone({ url: path.join(root, 'remote'), directory: path.join(root, 'c') });
  assert.equal(cloned.branch, 'main');
  assert.deepEqual(
    await readFile(path.join(root, 'c', 'renders', 'shot.exr')),
    versions[4],
    'the tip is byte-identical',
  );
  const copy = await Repository.open(path.join(root, 'c'));
  installChunkSource(copy, root);
  for (const [v, m] of manifests.entries()) {
    const read = ensureManifestChunks(copy.odb, await copy.odb.readManifest(m), 'renders/shot.exr');
    if (v >= 3) await read;
    else
      await assert.rejects(read, (err: unknown) => {
        assert.ok(err instanceof ExpiredError, String(err));
        assert.equal(err.exitCode, 18);
        assert.equal(
          err.message,
          `renders/shot.exr expired by retention policy on ${when.slice(0, 10)}`,
        );
        return true;
      });
  }

  // A sparse clone that fetched no renders: the kept versions are merely not fetched (they come
  // on demand), the expired ones are expired — two different answers, never confused.
  const sparse = await clone({
    url: path.join(root, 'remote'),
    directory: path.join(root, 's'),
    include: ['notes.txt'],
  });
  assert.equal(sparse.branch, 'main');
  const lean = await Repository.open(path.join(root, 's'));
  const source = installChunkSource(lean, root)!;
  for (const [v, m] of manifests.entries()) {
    const manifest = await lean.odb.readManifest(m);
    const read = ensureManifestChunks(lean.odb, manifest, 'renders/shot.exr');
    if (v < 3) await assert.rejects(read, ExpiredError);
    else {
      await read;
      assert.equal(
        Buffer.concat(
          await Promise.all(manifest.chunks.map((c) => lean.odb.read('chunk', c.oid))),
        ).equals(versions[v]!),
        true,
        `version ${v + 1} fetched on demand`,
      );
    }
  }
  assert.ok(source.stats.objects > 0, 'the kept versions came from the remote on demand');
});

test('grace period: what a sweep finds unreachable is only deleted by a sweep at least --grace later', async (t) => {
  const { remote, repo } = await setup(t);
  const base = await commitFiles(repo, [], new Map([['a.bin', randomBytes(20_000)]]), 'base');
  await push(repo, remote, { oid: base, ref: MAIN, force: false }, silentProgress);
  const side = await commitFiles(repo, [base], new Map([['b.bin', randomBytes(20_000)]]), 'side');
  await push(repo, remote, { oid: side, ref: 'refs/heads/side', force: false }, silentProgress);
  const sideRef = await remote.readRef('refs/heads/side');
  assert.ok(await remote.compareAndSwapRef('refs/heads/side', sideRef, null));
  const before = await remoteKeys(remote);

  const graceMs = 300;
  const first = await collectRemoteGarbage(repo, remote, { policy: KEEP_EVERYTHING, graceMs });
  assert.equal(first.keys.length, 0);
  assert.ok(first.deferred.count >= 3, 'commit, tree, manifest and chunks of the side branch');
  assert.deepEqual(await remoteKeys(remote), before);
  await new Promise((resolve) => setTimeout(resolve, graceMs + 50));
  const second = await collectRemoteGarbage(repo, remote, { policy: KEEP_EVERYTHING, graceMs });
  assert.equal(second.deleted.unreachable.count, first.deferred.count);
  assert.ok(second.keys.every((k) => k.reason === 'unreachable'));
  await assertComplete(repo, remote, base);
});

test('one sweeper at a time: a second is refused with E_LOCKED while the lease runs, and takes over a dead one after it', async (t) => {
  const { remote } = await setup(t);
  const lease = await SweepLease.acquire(remote, 60_000);
  await assert.rejects(SweepLease.acquire(remote, 60_000), LockedError);
  await lease.release();
  const again = await SweepLease.acquire(remote, 1);
  await new Promise((resolve) => setTimeout(resolve, 10));
  // The first holder "died" (its 1 ms lease ran out): the next sweeper takes over, the old one may not renew.
  const taker = await SweepLease.acquire(remote, 60_000);
  await assert.rejects(
    (async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await again.renew();
    })(),
    LockedError,
  );
  await taker.release();
});

test('race: 4 clients pushing reused chunks while a sweep deletes them, 10 rounds: every acknowledged push is complete', async (t) => {
  const { root, remote } = await setup(t);
  const { acknowledged, broken } = await raceRounds({
    remote,
    root,
    rounds: 10,
    sweepGuard: true,
    graceMs: 0,
  });
  assert.equal(acknowledged, 40);
  assert.equal(broken, 0);
});

test('race, safety switched off (test hook): the same schedule loses chunks, so the test above has teeth', async (t) => {
  const { root, remote } = await setup(t);
  const { broken } = await raceRounds({ remote, root, rounds: 1, sweepGuard: false, graceMs: 0 });
  assert.ok(broken > 0);
});
