/**
 * A remote that answers a request with some other object's bytes (a buggy cache, a mixed-up
 * proxy, an attacker) must be caught: fetch fails naming the object asked for, and nothing for it
 * — nor anything that depends on it — lands in the local store.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ObjectCorruptError } from '../../../src/errors/index.js';
import type { Oid } from '../../../src/objects/index.js';
import { silentProgress, type Repository } from '../../../src/repo/index.js';
import { LocalStore, chunkKey, objectKey } from '../../../src/store/index.js';
import { fetchObjects, push } from '../../../src/sync/index.js';
import {
  MAIN,
  SubstitutingStore,
  commitFiles,
  fsckFull,
  initRepo,
} from '../../support/sync-fixtures.js';

interface Setup {
  root: string;
  remote: LocalStore;
  src: Repository;
  tip: Oid;
}

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<Setup> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-sync-verify-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const remote = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await remote.initialize();
  const src = await initRepo(path.join(root, 'src'));
  const tip = await commitFiles(
    src,
    [],
    new Map([
      ['media/a.bin', randomBytes(600_000)],
      ['media/b.bin', randomBytes(400_000)],
      ['notes.txt', Buffer.from('hello\n')],
    ]),
    'content',
  );
  await push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress);
  return { root, remote, src, tip };
}

async function keysIn(repo: Repository, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const { key } of repo.store.list(prefix)) keys.push(key);
  return keys;
}

function corruptNaming(oid: Oid): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof ObjectCorruptError, `expected ObjectCorruptError, got ${String(err)}`);
    assert.equal(err.oid, oid);
    assert.match(err.message, new RegExp(oid));
    assert.equal(err.exitCode, 6);
    return true;
  };
}

test("a chunk answered with another chunk's bytes: fetch fails naming it, and it is never written", async (t) => {
  const { root, remote, src, tip } = await setup(t);
  const manifests = [
    ...(await src.odb.readTree(
      (await src.odb.readTree((await src.odb.readCommit(tip)).tree)).find(
        (e) => e.name === 'media',
      )!.oid,
    )),
  ];
  const aChunks = (await src.odb.readManifest(manifests.find((e) => e.name === 'a.bin')!.oid))
    .chunks;
  const bChunks = (await src.odb.readManifest(manifests.find((e) => e.name === 'b.bin')!.oid))
    .chunks;
  assert.ok(aChunks.length > 2 && bChunks.length > 0);
  const victim = aChunks[1]!.oid;
  const lying = new SubstitutingStore(remote, chunkKey(victim), chunkKey(bChunks[0]!.oid));

  const dst = await initRepo(path.join(root, 'dst'));
  await assert.rejects(
    fetchObjects(dst, lying, [tip], { progress: silentProgress }),
    corruptNaming(victim),
  );
  assert.ok(lying.served >= 1, 'the substitution was never exercised');
  assert.deepEqual(await dst.odb.has('chunk', [victim]), [false], 'the bad chunk was written');
  // Nothing that needs it exists either: no manifest, tree or commit, no ref.
  assert.deepEqual(await keysIn(dst, 'objects/'), []);
  assert.equal(await dst.odb.kindOf(tip), null);
  assert.equal((await dst.store.listRefs('refs/')).size, 0);

  // What did land is sound, and an honest remote completes the fetch from there.
  await fetchObjects(dst, remote, [tip], { progress: silentProgress });
  await dst.updateRef(MAIN, tip, null);
  assert.deepEqual((await fsckFull(dst)).problems, []);
});

test("a tree or commit answered with another object's bytes: fetch fails naming it, nothing written", async (t) => {
  const { root, remote, src, tip } = await setup(t);
  const commit = await src.odb.readCommit(tip);
  const media = (await src.odb.readTree(commit.tree)).find((e) => e.name === 'media')!;
  const cases: { label: string; victim: Oid; donor: Oid }[] = [
    { label: 'root tree served as a subtree', victim: commit.tree, donor: media.oid },
    {
      label: 'subtree served as a manifest',
      victim: media.oid,
      donor: (await src.odb.readTree(media.oid))[0]!.oid,
    },
    { label: 'commit served as its tree', victim: tip, donor: commit.tree },
  ];
  for (const [i, c] of cases.entries()) {
    const dst = await initRepo(path.join(root, `dst-${i}`));
    const lying = new SubstitutingStore(remote, objectKey(c.victim), objectKey(c.donor));
    await assert.rejects(
      fetchObjects(dst, lying, [tip], { progress: silentProgress }),
      corruptNaming(c.victim),
      c.label,
    );
    assert.ok(lying.served >= 1, `${c.label}: the substitution was never exercised`);
    assert.equal(await dst.odb.kindOf(c.victim), null, `${c.label}: the bad object was written`);
    assert.deepEqual(
      await keysIn(dst, 'objects/'),
      [],
      `${c.label}: structured objects were written`,
    );
    assert.deepEqual(
      await keysIn(dst, 'chunks/'),
      [],
      `${c.label}: chunks were written before the structure was verified`,
    );
  }
});
