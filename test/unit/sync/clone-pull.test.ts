/**
 * clone, fetchRefs and pull called directly, between repositories and a folder remote in a
 * temporary folder: no CLI. Includes a clone interrupted by a signal and one that fails midway,
 * both of which must leave nothing behind.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import type { Oid } from '../../../src/objects/index.js';
import { Repository, silentProgress, type ProgressSink } from '../../../src/repo/index.js';
import { LocalStore } from '../../../src/store/index.js';
import {
  canonicalRemoteUrl,
  clone,
  defaultCloneDirectory,
  fetchRefs,
  openRemoteStore,
  pull,
  push,
  pushRefs,
  type RemoteConfig,
} from '../../../src/sync/index.js';
import {
  MAIN,
  commitFiles,
  flipByte,
  initRepo,
  storedChunks,
} from '../../support/sync-fixtures.js';

interface Setup {
  root: string;
  src: Repository;
  remoteDir: string;
  remote: LocalStore;
  tip: Oid;
}

const BIG = randomBytes(400_000);

async function setup(t: TestContext): Promise<Setup> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-clone-pull-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const src = await initRepo(path.join(root, 'src'));
  const tip = await commitFiles(
    src,
    [],
    new Map([
      ['media/big.bin', BIG],
      ['notes.txt', Buffer.from('v1\n')],
    ]),
    'v1',
  );
  await src.updateRef(MAIN, tip, null);
  const remoteDir = path.join(root, 'remote.mediagit');
  const remote = new LocalStore(remoteDir, { fsync: false });
  await remote.initialize();
  await push(src, remote, { oid: tip, ref: MAIN, force: false }, silentProgress);
  return { root, src, remoteDir, remote, tip };
}

test('clone makes a repository with the remote configured, the branch checked out', async (t) => {
  const { root, remoteDir, tip } = await setup(t);
  const directory = path.join(root, defaultCloneDirectory(remoteDir));
  assert.equal(path.basename(directory), 'remote');
  let opened: Repository | null = null;
  const result = await clone({
    url: canonicalRemoteUrl(remoteDir, root),
    directory,
    cwd: root,
    onOpened: (repo) => (opened = repo),
  });
  assert.equal(result.branch, 'main');
  assert.equal(result.directory, directory);
  assert.ok(result.fetched.objects > 0);
  assert.deepEqual(result.fetched.updated, [
    { ref: 'refs/remotes/origin/main', old: null, new: tip },
  ]);
  assert.ok(opened !== null);

  const repo = await Repository.open(directory);
  assert.equal(repo.config.get('remote.origin.url'), remoteDir);
  assert.equal((await repo.readHead()).oid, tip);
  assert.deepEqual(await readFile(path.join(directory, 'media/big.bin')), BIG);
  assert.equal(await readFile(path.join(directory, 'notes.txt'), 'utf8'), 'v1\n');
  assert.equal((await repo.readIndex()).entries.size, 2);
});

test('clone refuses a non-empty destination and an unknown branch, touching nothing', async (t) => {
  const { root, remoteDir } = await setup(t);
  const busy = path.join(root, 'busy');
  await mkdir(busy);
  await writeFile(path.join(busy, 'keep.txt'), 'mine');
  await assert.rejects(clone({ url: remoteDir, directory: busy }), { code: 'E_ALREADY_EXISTS' });
  assert.deepEqual(await readdir(busy), ['keep.txt']);

  const fresh = path.join(root, 'fresh');
  await assert.rejects(clone({ url: remoteDir, directory: fresh, branch: 'nope' }), {
    code: 'E_USAGE',
  });
  await assert.rejects(readdir(fresh), { code: 'ENOENT' });
  await assert.rejects(clone({ url: path.join(root, 'nothing'), directory: fresh }), {
    code: 'E_NOT_FOUND',
  });
});

test('a clone that fails while fetching removes what it wrote', async (t) => {
  const { root, remoteDir } = await setup(t);
  const chunk = (await storedChunks(remoteDir))[0]!;
  await flipByte(chunk.file);
  // An empty folder given by the user stays; only what the clone wrote in it goes.
  const directory = path.join(root, 'empty');
  await mkdir(directory);
  await assert.rejects(clone({ url: remoteDir, directory, hardlinks: false }), {
    code: 'E_OBJECT_CORRUPT',
  });
  assert.deepEqual(await readdir(directory), []);
});

test('clone progress announces the bytes to receive, not 0 B', async (t) => {
  const { root, remoteDir } = await setup(t);
  const starts: { phase: string; files: number; bytes: number }[] = [];
  let received = 0;
  await clone({
    url: remoteDir,
    directory: path.join(root, 'watched'),
    hardlinks: false,
    progress: (): ProgressSink => ({
      start: (phase, files, bytes) => void starts.push({ phase, files, bytes }),
      bytes: (n) => void (received += n),
      fileDone: () => {},
      stop: () => {},
    }),
  });
  // The checked-out files' chunks arrive while the checkout writes them (docs/transfer.md): the
  // phase that receives them announces their content size, and no phase with work claims 0 B.
  const receiving = starts.find((s) => s.bytes > 0);
  assert.ok(receiving, `phases: ${JSON.stringify(starts)}`);
  assert.equal(receiving.bytes, BIG.length + 'v1\n'.length);
  assert.ok(receiving.files >= 2);
  assert.deepEqual(
    starts.filter((s) => s.files > 0 && s.bytes === 0),
    [],
  );
  assert.ok(received > 0);
});

test('a signal during a clone removes the new folder, then hands over to exit', async (t) => {
  const { root, remoteDir } = await setup(t);
  const directory = path.join(root, 'interrupted');
  const listeners = process.listenerCount('SIGINT');
  const notices: string[] = [];
  let exitedWith: NodeJS.Signals | null = null;
  let fired = false;
  await assert.rejects(
    clone({
      url: remoteDir,
      directory,
      // The first phase starting is a moment when the folder exists and is being filled.
      progress: (): ProgressSink => {
        if (!fired) {
          fired = true;
          process.emit('SIGINT', 'SIGINT');
        }
        return silentProgress;
      },
      onInterrupted: (signal, removing) => notices.push(`${signal} ${removing}`),
      exit: (signal) => {
        exitedWith = signal;
        // A real exit never returns; in a test, stop the clone instead.
        throw new Error('exited');
      },
    }),
    /exited/,
  );
  assert.equal(exitedWith, 'SIGINT');
  assert.deepEqual(notices, [`SIGINT ${directory}`]);
  await assert.rejects(readdir(directory), { code: 'ENOENT' });
  assert.equal(process.listenerCount('SIGINT'), listeners);
});

test('pull fetches and fast-forwards; fetchRefs prunes branches the remote dropped', async (t) => {
  const { root, src, remoteDir, remote, tip } = await setup(t);
  const directory = path.join(root, 'work');
  await clone({ url: remoteDir, directory });
  const work = await Repository.open(directory);
  const config: RemoteConfig = { name: 'origin', url: remoteDir, options: {} };

  const v2 = await commitFiles(src, [tip], new Map([['notes.txt', Buffer.from('v2\n')]]), 'v2');
  await src.updateRef(MAIN, v2, tip);
  await push(src, remote, { oid: v2, ref: MAIN, force: false }, silentProgress);
  await push(src, remote, { oid: v2, ref: 'refs/heads/topic', force: false }, silentProgress);

  const fetchedSeen: string[] = [];
  const result = await pull(work, config, await openRemoteStore(config, root), {
    onFetched: (report) => fetchedSeen.push(...report.updated.map((u) => u.ref)),
  });
  assert.deepEqual(fetchedSeen.sort(), ['refs/remotes/origin/main', 'refs/remotes/origin/topic']);
  assert.deepEqual(result.merge, { kind: 'fast-forward', from: tip, to: v2, filesChanged: 1 });
  assert.equal(await readFile(path.join(directory, 'notes.txt'), 'utf8'), 'v2\n');

  const again = await pull(work, config, await openRemoteStore(config, root));
  assert.deepEqual(again.merge, { kind: 'up-to-date' });
  assert.deepEqual(again.fetched.updated, []);

  const topic = await remote.readRef('refs/heads/topic');
  assert.ok(await remote.compareAndSwapRef('refs/heads/topic', topic, null));
  const kept = await fetchRefs(work, config, await openRemoteStore(config, root));
  assert.deepEqual(kept.updated, []);
  const pruned = await fetchRefs(work, config, await openRemoteStore(config, root), {
    prune: true,
  });
  assert.deepEqual(pruned.updated, [{ ref: 'refs/remotes/origin/topic', old: v2, new: null }]);
  assert.equal(await work.readRef('refs/remotes/origin/topic'), null);
});

test('pull refuses a branch the remote does not have', async (t) => {
  const { root, remoteDir } = await setup(t);
  const directory = path.join(root, 'work');
  await clone({ url: remoteDir, directory });
  const work = await Repository.open(directory);
  const config: RemoteConfig = { name: 'origin', url: remoteDir, options: {} };
  await assert.rejects(
    pull(work, config, await openRemoteStore(config, root), { branch: 'missing' }),
    { code: 'E_USAGE' },
  );
});

test('pushRefs pushes the current branch or named refspecs and moves the tracking branch', async (t) => {
  const { root, remoteDir, remote, tip } = await setup(t);
  const directory = path.join(root, 'work');
  await clone({ url: remoteDir, directory });
  const work = await Repository.open(directory);
  const config: RemoteConfig = { name: 'origin', url: remoteDir, options: {} };
  const next = await commitFiles(work, [tip], new Map([['new.txt', Buffer.from('new\n')]]), 'next');
  await work.updateRef(MAIN, next, tip);

  const [pushed] = await pushRefs(work, config, await openRemoteStore(config, root), []);
  assert.deepEqual(
    [pushed!.ref, pushed!.status, pushed!.old, pushed!.new],
    [MAIN, 'fast-forward', tip, next],
  );
  assert.equal((await remote.readRef(MAIN))?.oid, next);
  assert.equal(await work.readRef('refs/remotes/origin/main'), next);

  const [review] = await pushRefs(work, config, await openRemoteStore(config, root), [
    'main:review/next',
  ]);
  assert.deepEqual([review!.ref, review!.status], ['refs/heads/review/next', 'created']);
  assert.equal(await work.readRef('refs/remotes/origin/review/next'), next);

  await assert.rejects(pushRefs(work, config, await openRemoteStore(config, root), ['nope']), {
    code: 'E_USAGE',
  });
});
