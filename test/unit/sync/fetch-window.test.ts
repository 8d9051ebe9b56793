/**
 * fetchObjects holds a bounded window of fetched structured objects, not the whole history: the
 * rest waits on disk in tmp/ until what it points to is stored, and nothing is left there after.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { NotFoundError } from '../../../src/errors/index.js';
import type { Oid } from '../../../src/objects/index.js';
import { silentProgress, walkReachable, type Repository } from '../../../src/repo/index.js';
import { LocalStore, objectKey, type Store } from '../../../src/store/index.js';
import { TRANSFER_CONCURRENCY, fetchObjects, push } from '../../../src/sync/index.js';
import { MAIN, commitFiles, fsckFull, initRepo } from '../../support/sync-fixtures.js';

const COMMITS = 40;
const WINDOW = { objects: 6, bytes: 1024 * 1024 };

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<{
  root: string;
  remote: LocalStore;
  src: Repository;
  tip: Oid;
}> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-fetch-window-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const remote = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await remote.initialize();
  const src = await initRepo(path.join(root, 'src'));
  let tip: Oid | null = null;
  // Each commit changes one file in one of three folders: a new commit, root tree, folder tree
  // and manifest every time, so the history has several times more objects than the window.
  for (let i = 0; i < COMMITS; i++)
    tip = await commitFiles(
      src,
      tip ? [tip] : [],
      new Map([[`shot${i % 3}/take${i}.txt`, Buffer.from(`take ${i}\n`.repeat(i + 1))]]),
      `take ${i}`,
    );
  await push(src, remote, { oid: tip!, ref: MAIN, force: false }, silentProgress);
  return { root, remote, src, tip: tip! };
}

async function structuredCount(repo: Repository, tip: Oid): Promise<number> {
  const reach = await walkReachable(repo, [{ oid: tip, kind: 'object', where: 'the tip' }]);
  return reach.commits.size + reach.trees.size + reach.manifests.size + reach.tags.size;
}

test('a long history is fetched with a bounded number of objects in memory', async (t) => {
  const { root, remote, src, tip } = await setup(t);
  const total = await structuredCount(src, tip);
  assert.ok(total >= 4 * COMMITS - 10, `history of ${total} structured objects`);

  const dst = await initRepo(path.join(root, 'dst'));
  let most = 0;
  let mostOnDisk = 0;
  const tmp = dst.path('tmp');
  await fetchObjects(dst, remote, [tip], {
    progress: silentProgress,
    window: WINDOW,
    onHeld: (held) => {
      most = Math.max(most, held);
      assert.ok(held >= 0, 'never fewer than none');
      mostOnDisk = Math.max(mostOnDisk, readdirSync(tmp).length);
    },
  });
  // The window of parked objects, plus the fetches or writes in flight.
  assert.ok(
    most <= WINDOW.objects + TRANSFER_CONCURRENCY,
    `held at most ${most} of ${total} objects`,
  );
  assert.ok(most > 0);
  await dst.updateRef(MAIN, tip, null);
  const report = await fsckFull(dst);
  assert.equal(report.ok, true, JSON.stringify(report.problems));
  assert.equal(await structuredCount(dst, tip), total);
  // What did not fit waited on disk, and is gone.
  assert.ok(
    mostOnDisk >= total - WINDOW.objects - TRANSFER_CONCURRENCY,
    `${mostOnDisk} parked on disk at most`,
  );
  assert.deepEqual(await readdir(tmp), []);
});

test('a fetch that fails midway stores nothing whose history is incomplete and leaves no parked files', async (t) => {
  const { root, remote, src, tip } = await setup(t);
  // The first commit is the last object of the history phase: everything before it was parked.
  let first: Oid = tip;
  for (;;) {
    const parents = (await src.odb.readCommit(first)).parents;
    if (parents.length === 0) break;
    first = parents[0]!;
  }
  const losing: Store = Object.create(remote, {
    get: {
      value: async (key: string) => {
        if (key === objectKey(first)) throw new NotFoundError(`${key} is gone`);
        return remote.get(key);
      },
    },
  }) as Store;
  const dst = await initRepo(path.join(root, 'dst'));
  await assert.rejects(
    fetchObjects(dst, losing, [tip], { progress: silentProgress, window: WINDOW }),
    NotFoundError,
  );
  assert.deepEqual(await readdir(dst.path('tmp')), []);
  for await (const { key } of dst.store.list('objects/'))
    assert.fail(`${key} was stored though its history never arrived`);
  // A re-run against the whole remote completes.
  await fetchObjects(dst, remote, [tip], { progress: silentProgress, window: WINDOW });
  await dst.updateRef(MAIN, tip, null);
  assert.equal((await fsckFull(dst)).ok, true);
});
