/**
 * Each piece of work done once (docs/transfer.md): push sends our own store's objects as stored,
 * without decoding and hashing them again, and the receiving side's check is what catches an
 * object that rotted on our disk.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { ObjectCorruptError } from '../../../src/errors/index.js';
import type { Oid } from '../../../src/objects/index.js';
import {
  Repository,
  STREAM_CONCURRENCY,
  TRASH_DIR,
  WorktreeTrash,
  collectGarbage,
  commitTreeMap,
  flattenTree,
  moveWorktree,
  silentProgress,
  trashFreeing,
  worktreeState,
  writeTreeFromMap,
  type FileMap,
  type ProgressSink,
} from '../../../src/repo/index.js';
import {
  ForwardingStore,
  LocalStore,
  chunkKey,
  objectKey,
  type Passage,
  type Store,
} from '../../../src/store/index.js';
import {
  clone,
  fetchObjects,
  installChunkSource,
  openRemoteStore,
  pull,
  push,
  type CloneResult,
  type RemoteConfig,
} from '../../../src/sync/index.js';
import {
  MAIN,
  commitFiles,
  flipByte,
  fsckFull,
  initRepo,
  signature,
  storedChunks,
  writeBlob,
} from '../../support/sync-fixtures.js';

async function tempRoot(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-work-once-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  return root;
}

function corruptNaming(oid: Oid): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof ObjectCorruptError, `expected ObjectCorruptError, got ${String(err)}`);
    assert.equal(err.oid, oid);
    return true;
  };
}

test('push sends a chunk from its own store as stored: not decoded again, so a rotted payload is caught by the reader', async (t) => {
  const root = await tempRoot(t);
  const src = await initRepo(path.join(root, 'src'));
  const tip = await commitFiles(src, [], new Map([['a.bin', randomBytes(300_000)]]), 'one');
  const chunks = await storedChunks(src.store.root);
  assert.ok(chunks.length > 1);
  // A byte of the payload, past the envelope header: only decoding and hashing would notice.
  const victim = chunks[0]!;
  await flipByte(victim.file);

  const remote = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await remote.initialize();
  const outcome = await push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress, {
    hardlinks: false,
  });
  assert.equal(outcome.status, 'created');
  assert.deepEqual(await remote.has([chunkKey(victim.oid)]), [true]);

  // Whoever reads it verifies it: a fetch fails naming the chunk and never stores it.
  const dst = await initRepo(path.join(root, 'dst'));
  await assert.rejects(
    fetchObjects(dst, remote, [tip], { progress: silentProgress, hardlinks: false }),
    corruptNaming(victim.oid),
  );
  assert.deepEqual(await dst.store.has([chunkKey(victim.oid)]), [false]);
});

test('push still refuses a chunk whose stored file is truncated below its envelope', async (t) => {
  const root = await tempRoot(t);
  const src = await initRepo(path.join(root, 'src'));
  const tip = await commitFiles(src, [], new Map([['a.bin', randomBytes(200_000)]]), 'one');
  const victim = (await storedChunks(src.store.root))[0]!;
  await truncate(victim.file, 5);

  const remote = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await remote.initialize();
  await assert.rejects(
    push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress, {
      hardlinks: false,
    }),
    corruptNaming(victim.oid),
  );
  assert.deepEqual(await remote.has([chunkKey(victim.oid)]), [false]);
  assert.equal(await remote.readRef(MAIN), null);
});

/** Counts chunk reads, and how many of `watched` files existed at each. */
class ChunkReads extends ForwardingStore {
  readonly counts = new Map<string, number>();
  readonly filesDoneAtRead: number[] = [];

  constructor(
    inner: Store,
    private readonly watched: readonly string[],
  ) {
    super(inner);
  }

  protected override pass<T>(passage: Passage<T>): Promise<T> {
    if (passage.operation === 'get' && passage.target.startsWith('chunks/')) {
      this.counts.set(passage.target, (this.counts.get(passage.target) ?? 0) + 1);
      this.filesDoneAtRead.push(this.watched.filter((file) => existsSync(file)).length);
    }
    return passage.run();
  }
}

test("clone's checkout fetches each chunk once, verified once, writing files while it downloads", async (t) => {
  const root = await tempRoot(t);
  const src = await initRepo(path.join(root, 'src'));
  // More single-chunk files than the checkout writes at once, so some are fetched only after
  // others are done; one big file of many chunks; and a copy of it (its chunks fetched once).
  const files = new Map<string, Buffer>();
  const small = STREAM_CONCURRENCY + 4;
  for (let i = 0; i < small; i++)
    files.set(`f/${String(i).padStart(2, '0')}.bin`, randomBytes(2000 + i));
  const big = randomBytes(900_000);
  files.set('big.bin', big);
  files.set('copy/big.bin', big);
  const tip = await commitFiles(src, [], files, 'one');
  const remote = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await remote.initialize();
  await push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress);

  const dst = await initRepo(path.join(root, 'dst'));
  const watched = [...files.keys()].map((p) => dst.absPath(p));
  const reads = new ChunkReads(remote, watched);
  let fetchedBefore = -1;
  let commitStoredBefore: boolean | undefined;
  await fetchObjects(dst, reads, [tip], {
    progress: silentProgress,
    hardlinks: false,
    checkout: {
      commit: tip,
      write: async (tree) => {
        fetchedBefore = reads.counts.size;
        commitStoredBefore = (await dst.odb.kindOf(tip)) !== null;
        await dst.updateIndex(async (index) => {
          await moveWorktree(dst, index, new Map(), await flattenTree(dst.odb, tree), {
            force: true,
            progress: silentProgress,
            operation: 'checkout',
            stream: { get: (oid) => reads.get(chunkKey(oid)) },
          });
        });
      },
    },
  });
  assert.equal(fetchedBefore, 0, 'the checked-out commit’s chunks are left to the checkout');
  // A clone killed while it writes has no history yet: a later fetch starts over from the commit.
  assert.equal(commitStoredBefore, false);
  assert.notEqual(await dst.odb.kindOf(tip), null);
  for (const [p, data] of files) assert.deepEqual(await readFile(dst.absPath(p)), data, p);
  const remoteChunks = await storedChunks(remote.root);
  assert.equal(reads.counts.size, remoteChunks.length);
  assert.deepEqual(new Set(reads.counts.values()), new Set([1]), 'each chunk fetched once');
  // Every chunk is in the store too, and verifies: the one buffer written twice was the verified one.
  const report = await fsckFull(dst);
  assert.ok(report.ok, JSON.stringify(report.problems));
  assert.equal((await storedChunks(dst.store.root)).length, remoteChunks.length);
  assert.ok(
    Math.max(...reads.filesDoneAtRead) > 0,
    'some chunks were fetched after files were already in place',
  );
});

test("clone's streamed checkout refuses a chunk the remote answers wrongly, naming it", async (t) => {
  const root = await tempRoot(t);
  const src = await initRepo(path.join(root, 'src'));
  const tip = await commitFiles(src, [], new Map([['a.bin', randomBytes(300_000)]]), 'one');
  const remote = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await remote.initialize();
  await push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress);
  const victim = (await storedChunks(remote.root))[0]!;
  await flipByte(victim.file);

  const dst = await initRepo(path.join(root, 'dst'));
  await assert.rejects(
    fetchObjects(dst, remote, [tip], {
      progress: silentProgress,
      hardlinks: false,
      checkout: {
        commit: tip,
        write: (tree) =>
          dst.updateIndex(async (index) => {
            await moveWorktree(dst, index, new Map(), await flattenTree(dst.odb, tree), {
              force: true,
              progress: silentProgress,
              operation: 'checkout',
              stream: { get: (oid) => remote.get(chunkKey(oid)) },
            });
          }),
      },
    }),
    corruptNaming(victim.oid),
  );
  assert.deepEqual(await dst.store.has([chunkKey(victim.oid)]), [false]);
  assert.equal(existsSync(dst.absPath('a.bin')), false);
  assert.equal(await dst.odb.kindOf(tip), null);
});

test('an untracked file already holding what a checkout would write is not in its way; a different one is', async (t) => {
  const root = await tempRoot(t);
  const src = await initRepo(path.join(root, 'src'));
  const same = randomBytes(150_000);
  const tip = await commitFiles(
    src,
    [],
    new Map([
      ['same.bin', same],
      ['other.bin', randomBytes(1000)],
    ]),
    'one',
  );
  const remote = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await remote.initialize();
  await push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress);
  const dst = await initRepo(path.join(root, 'dst'));
  await fetchObjects(dst, remote, [tip], { progress: silentProgress, hardlinks: false });
  await writeFile(dst.absPath('same.bin'), same);
  await writeFile(dst.absPath('other.bin'), 'mine');
  const checkout = (): Promise<void> =>
    dst.updateIndex(async (index) => {
      await moveWorktree(
        dst,
        index,
        new Map(),
        await flattenTree(dst.odb, (await dst.odb.readCommit(tip)).tree),
        {
          force: false,
          progress: silentProgress,
          operation: 'checkout',
        },
      );
    });
  await assert.rejects(checkout(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'E_DIRTY_WORKTREE');
    assert.match(err.message, /other\.bin/);
    assert.doesNotMatch(err.message, /same\.bin/);
    return true;
  });
  await rm(dst.absPath('other.bin'));
  await checkout();
  assert.deepEqual(await readFile(dst.absPath('same.bin')), same);
  assert.equal((await dst.readIndex()).entries.size, 2);
});

/** A source with `files` committed on main and pushed to a folder remote; the remote's folder. */
async function pushedSource(root: string, files: Map<string, Buffer>): Promise<string> {
  const src = await initRepo(path.join(root, 'src'));
  const tip = await commitFiles(src, [], files, 'one');
  await src.updateRef(MAIN, tip, null);
  const remoteDir = path.join(root, 'remote.mediagit');
  const remote = new LocalStore(remoteDir, { fsync: false });
  await remote.initialize();
  await push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress);
  return remoteDir;
}

/** A default (tip-only, one copy) clone that reads every chunk as bytes, as from any remote. */
async function leanClone(root: string, remoteDir: string): Promise<CloneResult> {
  return clone({
    url: remoteDir,
    directory: path.join(root, 'lean'),
    cwd: root,
    hardlinks: false,
    historyContent: 'tip',
  });
}

test('a tip-only clone writes its checked-out chunks into the files only: nothing stored, nothing evicted', async (t) => {
  const root = await tempRoot(t);
  const files = new Map<string, Buffer>([
    ['a.bin', randomBytes(900_000)],
    ['b.bin', randomBytes(400_000)],
    ['c.txt', Buffer.from('notes\n')],
  ]);
  const remoteDir = await pushedSource(root, files);
  const result = await leanClone(root, remoteDir);
  const lean = await Repository.open(result.directory);
  for (const [p, data] of files) assert.deepEqual(await readFile(lean.absPath(p)), data, p);
  // Every chunk written to .mediagit is either still there or was evicted: both are 0.
  assert.equal(result.evicted, 0, 'no chunk was stored only to be evicted');
  assert.equal((await storedChunks(lean.store.root)).length, 0, 'the policy keeps none');
  // The files are the copy: fsck calls the chunks fetchable, and a read verifies them from there.
  const report = await fsckFull(lean);
  assert.ok(report.ok, JSON.stringify(report.problems));
  const manifest = await lean.odb.readManifest((await lean.readIndex()).entries.get('a.bin')!.oid);
  const first = manifest.chunks[0]!;
  installChunkSource(lean, root);
  assert.equal((await lean.odb.read('chunk', first.oid)).length, first.size);
});

test('a tip-only clone stores only the chunks its files share, for their later uses, then evicts them', async (t) => {
  const root = await tempRoot(t);
  const shared = randomBytes(600_000);
  const files = new Map<string, Buffer>([
    ['a.bin', shared],
    ['copy/a.bin', shared],
    ['b.bin', randomBytes(300_000)],
  ]);
  const remoteDir = await pushedSource(root, files);
  const result = await leanClone(root, remoteDir);
  const lean = await Repository.open(result.directory);
  for (const [p, data] of files) assert.deepEqual(await readFile(lean.absPath(p)), data, p);
  const sharedChunks = new Set(
    (await lean.odb.readManifest((await lean.readIndex()).entries.get('a.bin')!.oid)).chunks.map(
      (c) => c.oid,
    ),
  );
  assert.ok(sharedChunks.size > 1);
  assert.equal(result.evicted, sharedChunks.size, 'stored and evicted: the shared chunks alone');
  assert.equal((await storedChunks(lean.store.root)).length, 0);
});

interface PulledPair {
  root: string;
  src: Repository;
  remote: LocalStore;
  config: RemoteConfig;
  work: Repository;
  v1: Oid;
}

/** A full-history clone `work` of a source's v1, pushed to a folder remote. */
async function clonedPair(t: TestContext, files: Map<string, Buffer>): Promise<PulledPair> {
  const root = await tempRoot(t);
  const remoteDir = await pushedSource(root, files);
  const src = await Repository.open(path.join(root, 'src'));
  const remote = new LocalStore(remoteDir, { fsync: false });
  await clone({
    url: remoteDir,
    directory: path.join(root, 'work'),
    cwd: root,
    hardlinks: false,
    historyContent: 'all',
  });
  const work = await Repository.open(path.join(root, 'work'));
  const config: RemoteConfig = { name: 'origin', url: remoteDir, options: {} };
  return { root, src, remote, config, work, v1: (await src.readRef(MAIN))! };
}

/** Commits the tree `files` on the source's main after `v1` and pushes it to `remote`. */
async function pushTreeMap(
  src: Repository,
  remote: LocalStore,
  v1: Oid,
  files: FileMap,
): Promise<Oid> {
  const when = signature(Date.now());
  const v2 = (
    await src.odb.writeCommit({
      tree: await writeTreeFromMap(src.odb, files),
      parents: [v1],
      author: when,
      committer: when,
      message: 'two\n',
    })
  ).oid;
  await src.updateRef(MAIN, v2, v1);
  await push(src, remote, { oid: v2, ref: MAIN, force: false }, silentProgress);
  return v2;
}

/** Commits `files` on the source's main after v1 and pushes it. */
async function pushV2(pair: PulledPair, files: Map<string, Buffer>): Promise<Oid> {
  const v2 = await commitFiles(pair.src, [pair.v1], files, 'two');
  await pair.src.updateRef(MAIN, v2, pair.v1);
  await push(pair.src, pair.remote, { oid: v2, ref: MAIN, force: false }, silentProgress);
  return v2;
}

test('pull verifies each new chunk once: the merge writes file and store from the buffer it fetched', async (t) => {
  const pair = await clonedPair(
    t,
    new Map([
      ['a.bin', randomBytes(500_000)],
      ['same.bin', randomBytes(200_000)],
    ]),
  );
  const before = new Set((await storedChunks(pair.remote.root)).map((c) => c.oid));
  const v2Files = new Map([
    ['a.bin', randomBytes(700_000)],
    ['new/b.bin', randomBytes(300_000)],
  ]);
  const v2 = await pushV2(pair, v2Files);
  const added = (await storedChunks(pair.remote.root)).filter((c) => !before.has(c.oid));
  assert.ok(added.length > 4);

  const { work } = pair;
  const opened = await openRemoteStore(pair.config, pair.root);
  const reads = new ChunkReads(opened.store, []);
  const verifiedBefore = work.odb.verified.chunks;
  let storedAtMerge = -1;
  const result = await pull(
    work,
    pair.config,
    { ...opened, store: reads },
    {
      hardlinks: false,
      onFetched: () => {
        storedAtMerge = added.filter((c) => existsSync(work.store.pathOf(chunkKey(c.oid)))).length;
      },
    },
  );
  assert.deepEqual(result.merge, { kind: 'fast-forward', from: pair.v1, to: v2, filesChanged: 2 });
  t.diagnostic(
    `${added.length} new chunks: ${work.odb.verified.chunks - verifiedBefore} verifications, ${storedAtMerge} stored before the merge`,
  );
  assert.equal(storedAtMerge, 0, 'the new files’ chunks are left to the merge');
  assert.equal(
    work.odb.verified.chunks - verifiedBefore,
    added.length,
    'each new chunk decoded and hashed once, none read back from the store',
  );
  assert.deepEqual(new Set(reads.counts.values()), new Set([1]), 'each chunk fetched once');
  assert.equal(reads.counts.size, added.length);
  for (const [p, data] of v2Files) assert.deepEqual(await readFile(work.absPath(p)), data, p);
  // The store holds them too (a full-history clone keeps content), and they verify.
  for (const c of added) assert.ok(existsSync(work.store.pathOf(chunkKey(c.oid))), c.oid);
  const report = await fsckFull(work);
  assert.ok(report.ok, JSON.stringify(report.problems));
});

test('a pull whose remote answers a chunk wrongly changes no file and leaves the index as it was', async (t) => {
  const v1Files = new Map([
    ['a.bin', randomBytes(400_000)],
    ['gone.bin', randomBytes(100_000)],
  ]);
  const pair = await clonedPair(t, v1Files);
  const before = new Set((await storedChunks(pair.remote.root)).map((c) => c.oid));
  // v2 changes a.bin, adds b.bin and deletes gone.bin.
  const files = await commitTreeMap(pair.src, pair.v1);
  files.delete('gone.bin');
  files.set('a.bin', await writeBlob(pair.src, randomBytes(400_000)));
  files.set('b.bin', await writeBlob(pair.src, randomBytes(400_000)));
  await pushTreeMap(pair.src, pair.remote, pair.v1, files);
  const victim = (await storedChunks(pair.remote.root)).find((c) => !before.has(c.oid))!;
  await flipByte(victim.file);

  const { work } = pair;
  const indexBefore = [...(await work.readIndex()).entries.values()];
  await assert.rejects(
    pull(work, pair.config, await openRemoteStore(pair.config, pair.root), { hardlinks: false }),
    corruptNaming(victim.oid),
  );
  for (const [p, data] of v1Files) assert.deepEqual(await readFile(work.absPath(p)), data, p);
  assert.equal(existsSync(work.absPath('b.bin')), false);
  assert.deepEqual([...(await work.readIndex()).entries.values()], indexBefore);
  assert.deepEqual(
    (await readdir(work.root)).filter((name) => name.startsWith('.tmp-')),
    [],
    'no temporary file left',
  );
  assert.equal((await work.readHead()).oid, pair.v1);
});

/** A tip-only clone `lean` of a source's v1 and the source's v2 (from `edit`) pushed on top. */
async function leanPair(
  t: TestContext,
  v1Files: Map<string, Buffer>,
  edit: (files: FileMap, src: Repository) => Promise<void>,
): Promise<PulledPair & { added: Oid[]; v2: Oid }> {
  const root = await tempRoot(t);
  const remoteDir = await pushedSource(root, v1Files);
  await leanClone(root, remoteDir);
  const src = await Repository.open(path.join(root, 'src'));
  const remote = new LocalStore(remoteDir, { fsync: false });
  const v1 = (await src.readRef(MAIN))!;
  const before = new Set((await storedChunks(remoteDir)).map((c) => c.oid));
  const files = await commitTreeMap(src, v1);
  await edit(files, src);
  const v2 = await pushTreeMap(src, remote, v1, files);
  const added = (await storedChunks(remoteDir)).map((c) => c.oid).filter((oid) => !before.has(oid));
  return {
    root,
    src,
    remote,
    config: { name: 'origin', url: remoteDir, options: {} },
    work: await Repository.open(path.join(root, 'lean')),
    v1,
    v2,
    added,
  };
}

test('pull into a tip-only clone takes the unchanged chunks of changed files from the clean files: only new chunks are fetched and verified, none stored, only changed files replaced', async (t) => {
  const big = randomBytes(900_000);
  const moved = randomBytes(150_000);
  const edited = Buffer.from(big);
  randomBytes(2000).copy(edited, 450_000);
  const added = randomBytes(100_000);
  // v2 edits the middle of a.bin (most of its chunks stay), moves old/c.bin, adds d.bin.
  const pair = await leanPair(
    t,
    new Map([
      ['a.bin', big],
      ['same.bin', randomBytes(200_000)],
      ['old/c.bin', moved],
    ]),
    async (files, src) => {
      files.set('a.bin', await writeBlob(src, edited));
      files.set('new/c.bin', files.get('old/c.bin')!);
      files.delete('old/c.bin');
      files.set('d.bin', await writeBlob(src, added));
    },
  );
  const { work } = pair;
  const unchanged = (
    await work.odb.readManifest((await work.readIndex()).entries.get('a.bin')!.oid)
  ).chunks.length;
  assert.ok(unchanged > 8 && pair.added.length < unchanged, 'most of a.bin’s chunks stay');
  const sameBefore = await stat(work.absPath('same.bin'));
  const opened = await openRemoteStore(pair.config, pair.root);
  const reads = new ChunkReads(opened.store, []);
  const verifiedBefore = work.odb.verified.chunks;
  const result = await pull(work, pair.config, { ...opened, store: reads }, { hardlinks: false });

  assert.deepEqual(result.merge, {
    kind: 'fast-forward',
    from: pair.v1,
    to: pair.v2,
    filesChanged: 4,
  });
  t.diagnostic(
    `${pair.added.length} new chunks: ${work.odb.verified.chunks - verifiedBefore} verified, ${reads.counts.size} fetched`,
  );
  assert.equal(
    work.odb.verified.chunks - verifiedBefore,
    pair.added.length,
    'only the new chunks are decoded and hashed',
  );
  assert.deepEqual(
    [...reads.counts.keys()].sort(),
    pair.added.map(chunkKey).sort(),
    'only the new chunks are fetched',
  );
  assert.deepEqual(new Set(reads.counts.values()), new Set([1]));
  assert.deepEqual(
    await storedChunks(work.store.root),
    [],
    'one copy on disk: the files hold the chunks, new and unchanged, and the store none of them',
  );
  assert.deepEqual(await readFile(work.absPath('a.bin')), edited);
  assert.deepEqual(await readFile(work.absPath('new/c.bin')), moved);
  assert.deepEqual(await readFile(work.absPath('d.bin')), added);
  assert.equal(existsSync(work.absPath('old')), false);
  const sameAfter = await stat(work.absPath('same.bin'));
  assert.equal(sameAfter.ino, sameBefore.ino, 'an unchanged file is not touched');
  assert.equal(sameAfter.mtimeMs, sameBefore.mtimeMs);
  const index = await work.readIndex();
  for (const p of index.entries.keys())
    assert.equal(await worktreeState(work, index, p), 'clean', p);
  const report = await fsckFull(work);
  assert.ok(report.ok, JSON.stringify(report.problems));
});

test('a pull moves the old versions of the files it replaces and removes into the trash and frees them off its path; fsck calls the debris clean, gc removes it', async (t) => {
  const big = randomBytes(900_000);
  const edited = Buffer.from(big);
  randomBytes(2000).copy(edited, 450_000);
  const pair = await clonedPair(
    t,
    new Map([
      ['a.bin', big],
      ['same.bin', randomBytes(200_000)],
      ['old/gone.bin', randomBytes(150_000)],
    ]),
  );
  const files = await commitTreeMap(pair.src, pair.v1);
  files.set('a.bin', await writeBlob(pair.src, edited));
  files.delete('old/gone.bin');
  await pushTreeMap(pair.src, pair.remote, pair.v1, files);
  const { work } = pair;
  const replacedIno = (await stat(work.absPath('a.bin'))).ino;
  const removedIno = (await stat(work.absPath('old/gone.bin'))).ino;
  // The freeing is the detached process's; here it is held back to look at what it was given.
  const freed: string[] = [];
  const free = trashFreeing.free;
  trashFreeing.free = (dir) => freed.push(dir);
  t.after(() => {
    trashFreeing.free = free;
  });
  await pull(work, pair.config, await openRemoteStore(pair.config, pair.root), {
    hardlinks: false,
  });

  assert.deepEqual(await readFile(work.absPath('a.bin')), edited);
  assert.equal(existsSync(work.absPath('old')), false, 'the emptied folder goes');
  assert.equal(freed.length, 1, 'one batch handed to the freeing');
  assert.equal(path.dirname(freed[0]!), work.path(TRASH_DIR));
  const inTrash = await Promise.all(
    (await readdir(freed[0]!)).map(async (name) => (await stat(path.join(freed[0]!, name))).ino),
  );
  assert.deepEqual(
    inTrash.sort(),
    [replacedIno, removedIno].sort(),
    'the old versions were moved, not freed (nor renamed over) on the pull’s path',
  );
  const report = await fsckFull(work);
  assert.ok(report.ok, JSON.stringify(report.problems));
  assert.equal(report.counts.trashFiles, 2);
  const gc = await collectGarbage(work, { graceMs: Infinity });
  assert.equal(gc.trashFilesRemoved, 2);
  assert.equal(existsSync(work.path(TRASH_DIR)), false);
  assert.equal((await fsckFull(work)).counts.trashFiles, 0);
});

test('the trash puts the old version back when the new one cannot be renamed in, and never moves a folder', async (t) => {
  const root = await tempRoot(t);
  const repo = await initRepo(path.join(root, 'repo'));
  await writeFile(repo.absPath('f.bin'), 'old');
  await mkdir(repo.absPath('dir'));
  await writeFile(repo.absPath('dir/inside'), 'kept');
  const trash = new WorktreeTrash(repo);
  await assert.rejects(trash.replace(repo.absPath('.tmp-missing'), repo.absPath('f.bin')));
  assert.equal(await readFile(repo.absPath('f.bin'), 'utf8'), 'old');
  await writeFile(repo.absPath('.tmp-new'), 'new');
  await assert.rejects(trash.replace(repo.absPath('.tmp-new'), repo.absPath('dir')));
  assert.equal(await readFile(repo.absPath('dir/inside'), 'utf8'), 'kept');
  assert.equal(trash.moved, 1, 'only the file went to the trash (and came back)');
  // The real freeing: a detached process, which the caller does not wait for; it does finish.
  await writeFile(repo.absPath('.tmp-new'), 'new');
  await trash.replace(repo.absPath('.tmp-new'), repo.absPath('f.bin'));
  assert.equal(await readFile(repo.absPath('f.bin'), 'utf8'), 'new');
  const batches = await readdir(repo.path(TRASH_DIR));
  assert.equal(batches.length, 1);
  await trash.release();
  while (existsSync(path.join(repo.path(TRASH_DIR), batches[0]!)))
    await new Promise((resolve) => setTimeout(resolve, 20));
});

test('pull asks for the first wave of new chunks before its merge starts, and none twice', async (t) => {
  // More new chunks than one wave: an edit in a.bin and a new file of many chunks.
  const big = randomBytes(900_000);
  const edited = Buffer.from(big);
  randomBytes(2000).copy(edited, 450_000);
  const added = randomBytes(3_000_000);
  const pair = await leanPair(t, new Map([['a.bin', big]]), async (files, src) => {
    files.set('a.bin', await writeBlob(src, edited));
    files.set('d.bin', await writeBlob(src, added));
  });
  assert.ok(pair.added.length > STREAM_CONCURRENCY, `${pair.added.length} new chunks`);
  const opened = await openRemoteStore(pair.config, pair.root);
  const reads = new ChunkReads(opened.store, []);
  // What the remote had been asked for when the merge began (its progress starts before it
  // reads the clean files' manifests and asks for its first chunk).
  let askedAtMerge: number | undefined;
  const progress = (): ProgressSink => ({
    ...silentProgress,
    start: (phase) => {
      if (phase === 'merge') askedAtMerge ??= reads.counts.size;
    },
  });
  const result = await pull(
    pair.work,
    pair.config,
    { ...opened, store: reads },
    { hardlinks: false, progress },
  );

  assert.equal(result.merge?.kind, 'fast-forward');
  assert.equal(askedAtMerge, STREAM_CONCURRENCY, 'one wave asked for ahead, no more');
  assert.deepEqual([...reads.counts.keys()].sort(), pair.added.map(chunkKey).sort());
  assert.deepEqual(new Set(reads.counts.values()), new Set([1]), 'each fetched once');
  assert.deepEqual(await readFile(pair.work.absPath('a.bin')), edited);
  assert.deepEqual(await readFile(pair.work.absPath('d.bin')), added);
  const report = await fsckFull(pair.work);
  assert.ok(report.ok, JSON.stringify(report.problems));
});

test('a tip-only pull works out the checked-out files’ chunks while the remote answers, and asks for its first chunks before storing the new manifests or moving the tracking ref', async (t) => {
  const big = randomBytes(900_000);
  const edited = Buffer.from(big);
  randomBytes(2000).copy(edited, 450_000);
  const pair = await leanPair(
    t,
    new Map([
      ['a.bin', big],
      ['same.bin', randomBytes(200_000)],
    ]),
    async (files, src) => {
      files.set('a.bin', await writeBlob(src, edited));
    },
  );
  const { work } = pair;
  const events: string[] = [];
  const readIndex = work.readIndex.bind(work);
  work.readIndex = () => {
    events.push('index read');
    return readIndex();
  };
  const tracking = work.path('refs/remotes/origin/main');
  const newManifest = work.store.pathOf(
    objectKey((await commitTreeMap(pair.src, pair.v2)).get('a.bin')!.oid),
  );
  class Order extends ForwardingStore {
    protected override pass<T>(passage: Passage<T>): Promise<T> {
      if (passage.operation === 'get' && passage.target.startsWith('objects/'))
        events.push('object asked');
      if (passage.operation === 'get' && passage.target.startsWith('chunks/'))
        events.push(
          `chunk asked, tracking ref ${readFileSync(tracking, 'utf8').trim() === pair.v1 ? 'at v1' : 'moved'}, manifest ${existsSync(newManifest) ? 'stored' : 'not stored'}`,
        );
      return passage.run();
    }
  }
  const opened = await openRemoteStore(pair.config, pair.root);
  const result = await pull(
    work,
    pair.config,
    { ...opened, store: new Order(opened.store) },
    {
      hardlinks: false,
    },
  );
  assert.equal(result.merge?.kind, 'fast-forward');
  assert.deepEqual(await readFile(work.absPath('a.bin')), edited);
  assert.equal(readFileSync(tracking, 'utf8').trim(), pair.v2);
  assert.ok(events.indexOf('object asked') >= 0);
  assert.ok(
    events.indexOf('index read') >= 0 &&
      events.indexOf('index read') < events.indexOf('object asked'),
    `the index is read before the first object is asked for: ${events.join(', ')}`,
  );
  const firstChunk = events.find((e) => e.startsWith('chunk asked'));
  assert.equal(
    firstChunk,
    'chunk asked, tracking ref at v1, manifest not stored',
    events.join(', '),
  );
  assert.ok(existsSync(newManifest));
});

test('a pull into a tip-only clone that fails halfway, or meets a local edit, leaves files, index, store and HEAD as they were', async (t) => {
  const big = randomBytes(600_000);
  const edited = Buffer.from(big);
  randomBytes(1000).copy(edited, 300_000);
  const v1Files = new Map([
    ['a.bin', big],
    ['b.bin', randomBytes(200_000)],
  ]);
  const pair = await leanPair(t, v1Files, async (files, src) => {
    files.set('a.bin', await writeBlob(src, edited));
    files.delete('b.bin');
    files.set('c.bin', await writeBlob(src, randomBytes(300_000)));
  });
  const { work } = pair;
  // As the CLI does: content this clone lacks comes from its remote (or its files).
  installChunkSource(work, pair.root);
  const indexBefore = [...(await work.readIndex()).entries.values()];
  const unchanged = async (): Promise<void> => {
    for (const [p, data] of v1Files) assert.deepEqual(await readFile(work.absPath(p)), data, p);
    assert.equal(existsSync(work.absPath('c.bin')), false);
    assert.deepEqual([...(await work.readIndex()).entries.values()], indexBefore);
    assert.deepEqual(
      (await readdir(work.root)).filter((name) => name.startsWith('.tmp-')),
      [],
      'no temporary file left',
    );
    assert.equal((await work.readHead()).oid, pair.v1);
  };

  // A new chunk the remote answers wrongly: nothing is put in place.
  const victim = (await storedChunks(pair.config.url)).find((c) => c.oid === pair.added[0])!;
  const original = await readFile(victim.file);
  await flipByte(victim.file);
  await assert.rejects(
    pull(work, pair.config, await openRemoteStore(pair.config, pair.root), { hardlinks: false }),
    corruptNaming(victim.oid),
  );
  await unchanged();
  // The other new chunks were brought into the store after the failed merge (the content policy
  // of a fetch); whatever is absent is on the remote.
  const afterFailure = await fsckFull(work);
  assert.ok(afterFailure.ok, JSON.stringify(afterFailure.problems));

  // A local edit of a file the pull changes: refused before anything is written, the edit kept.
  await writeFile(victim.file, original);
  const mine = randomBytes(600_000);
  await writeFile(work.absPath('a.bin'), mine);
  await assert.rejects(
    pull(work, pair.config, await openRemoteStore(pair.config, pair.root), { hardlinks: false }),
    (err: unknown) => err instanceof Error && err.name === 'DirtyWorktreeError',
  );
  assert.deepEqual(await readFile(work.absPath('a.bin')), mine, 'the local edit survives');
  await writeFile(work.absPath('a.bin'), big);
  await unchanged();

  // Put back, the same pull goes through.
  const result = await pull(work, pair.config, await openRemoteStore(pair.config, pair.root), {
    hardlinks: false,
  });
  assert.equal(result.merge?.kind, 'fast-forward');
  assert.deepEqual(await readFile(work.absPath('a.bin')), edited);
  assert.equal(existsSync(work.absPath('b.bin')), false);
  const report = await fsckFull(work);
  assert.ok(report.ok, JSON.stringify(report.problems));
});
