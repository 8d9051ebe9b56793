/**
 * The local fast path of LocalStore (capabilities.localFiles: lend / adopt): objects taken in from another
 * folder by hard link, or by an in-kernel copy where a link is impossible — simulated here with
 * the store's injectable `link`, never by mocking the filesystem — plus the wrappers forwarding it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { NotFoundError } from '../../../src/errors/index.js';
import {
  BASIC_CAPABILITIES,
  ConcurrencyLimitedStore,
  LocalStore,
  MeteredStore,
  RetryingStore,
  openStore,
  type LocalStoreOptions,
  type Store,
} from '../../../src/store/index.js';
import { oidFor } from '../../support/store-contract.js';

async function tempRoot(t: TestContext): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-local-links-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  return root;
}

/** A source store holding `count` chunks and one structured object, and an empty target beside it. */
async function pair(
  t: TestContext,
  targetOptions: LocalStoreOptions = {},
  initializeTarget = true,
): Promise<{ root: string; source: LocalStore; target: LocalStore; keys: string[] }> {
  const root = await tempRoot(t);
  const source = new LocalStore(path.join(root, 'source'), { fsync: false });
  await source.initialize();
  const target = new LocalStore(path.join(root, 'target'), targetOptions);
  if (initializeTarget) await target.initialize();
  const keys: string[] = [];
  for (let i = 0; i < 12; i++) {
    const key = `chunks/${oidFor(`chunk ${i}`)}`;
    await source.put(key, Buffer.from(`chunk body ${i} `.repeat(i + 1)));
    keys.push(key);
  }
  const tree = `objects/${oidFor('a tree')}`;
  await source.put(tree, Buffer.from('tree body'));
  keys.push(tree);
  return { root, source, target, keys };
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated link failure`), { code });
}

const failingLink = (code: string) => async (): Promise<void> => {
  throw errno(code);
};

describe('LocalStore.adoptFiles', () => {
  test('links every object into place: same inode, read-only, counted, fan-out folders made on demand', async (t) => {
    // Never initialized: not even chunks/ exists, let alone chunks/ab/.
    const { source, target, keys } = await pair(t, {}, false);
    const files = await source.localFiles(keys);
    assert.deepEqual(
      files.map((f) => f.key),
      keys,
    );
    const result = await target.adoptFiles(files);
    const total = files.reduce((n, f) => n + f.size, 0);
    assert.deepEqual(result, { linked: keys.length, copied: 0, present: 0, bytes: total });
    for (const key of keys) {
      const [a, b] = await Promise.all([stat(source.pathOf(key)), stat(target.pathOf(key))]);
      assert.equal(b.ino, a.ino, `${key} is not the source's inode`);
      assert.equal(b.nlink, 2);
      assert.equal(b.mode & 0o222, 0, `${key} is writable`);
      assert.deepEqual(await target.get(key), await source.get(key));
    }
    assert.deepEqual(
      await readdir(path.join(target.root, 'tmp')).catch(() => []),
      [],
      'a link left something in tmp/',
    );
    // Again: nothing to do, nothing counted.
    assert.deepEqual(await target.adoptFiles(files), {
      linked: 0,
      copied: 0,
      present: keys.length,
      bytes: 0,
    });
  });

  test('an object already in the target is never replaced', async (t) => {
    const { source, target, keys } = await pair(t);
    const key = keys[3]!;
    await target.put(key, await source.get(key));
    const before = await stat(target.pathOf(key));
    const result = await target.adoptFiles(await source.localFiles([key]));
    assert.deepEqual(result, { linked: 0, copied: 0, present: 1, bytes: 0 });
    const after = await stat(target.pathOf(key));
    assert.equal(after.ino, before.ino, 'the existing object was replaced');
    assert.notEqual(after.ino, (await stat(source.pathOf(key))).ino);
  });

  for (const code of ['EXDEV', 'EPERM', 'EMLINK']) {
    test(`link refused with ${code} (another filesystem, no hard links, link limit): copied instead (fsync on), its own inode, nothing left in tmp/`, async (t) => {
      let attempts = 0;
      const { source, target, keys } = await pair(t, {
        fsync: true,
        link: async () => {
          attempts++;
          throw errno(code);
        },
      });
      const files = await source.localFiles(keys);
      const result = await target.adoptFiles(files);
      assert.equal(attempts, keys.length, 'the fallback is decided object by object');
      assert.deepEqual(result, {
        linked: 0,
        copied: keys.length,
        present: 0,
        bytes: files.reduce((n, f) => n + f.size, 0),
      });
      for (const key of keys) {
        const [a, b] = await Promise.all([stat(source.pathOf(key)), stat(target.pathOf(key))]);
        assert.notEqual(b.ino, a.ino, `${key} shares the source's inode`);
        assert.equal(a.nlink, 1);
        assert.equal(b.mode & 0o777, 0o444);
        assert.deepEqual(await readFile(target.pathOf(key)), await readFile(source.pathOf(key)));
      }
      assert.deepEqual(await readdir(path.join(target.root, 'tmp')), []);
    });
  }

  test('links where it can, copies where it cannot, within one batch', async (t) => {
    let n = 0;
    const { source, target, keys } = await pair(t, {
      link: async (from, to) => {
        if (n++ % 2 === 0) throw errno('EXDEV');
        const { link } = await import('node:fs/promises');
        await link(from, to);
      },
    });
    const result = await target.adoptFiles(await source.localFiles(keys));
    assert.equal(result.linked + result.copied, keys.length);
    assert.ok(result.linked > 0 && result.copied > 0, JSON.stringify(result));
    for (const key of keys) assert.deepEqual(await target.get(key), await source.get(key));
  });

  test('any other link failure is an error, not a silent copy', async (t) => {
    const { source, target, keys } = await pair(t, { link: failingLink('EACCES') });
    await assert.rejects(
      target.adoptFiles(await source.localFiles(keys.slice(0, 2))),
      (err: NodeJS.ErrnoException) => err.code === 'EACCES',
    );
    assert.deepEqual(await target.has(keys.slice(0, 2)), [false, false]);
  });

  test('a source object that vanished is NotFound naming it, on the link path and the copy path', async (t) => {
    const { source, target, keys } = await pair(t);
    const files = await source.localFiles(keys.slice(0, 3));
    await source.delete(keys[1]!);
    await assert.rejects(
      target.adoptFiles(files),
      (err) => err instanceof NotFoundError && err.key === keys[1],
    );
    await assert.rejects(
      source.localFiles([keys[1]!]),
      (err) => err instanceof NotFoundError && err.key === keys[1],
    );

    const copying = new LocalStore(path.join(path.dirname(target.root), 'copying'), {
      link: failingLink('EXDEV'),
    });
    await assert.rejects(
      copying.adoptFiles(files),
      (err) => err instanceof NotFoundError && err.key === keys[1],
    );
    assert.deepEqual(
      await readdir(path.join(copying.root, 'tmp')),
      [],
      'a failed copy left its temporary file',
    );
  });

  test('only content-addressed objects can be lent or adopted', async (t) => {
    const { source, target } = await pair(t);
    await source.put('keys/main', Buffer.from('wrapped key'));
    await assert.rejects(source.localFiles(['keys/main']), TypeError);
    await assert.rejects(
      target.adoptFiles([{ key: 'keys/main', path: source.pathOf('keys/main'), size: 11 }]),
      TypeError,
    );
    await assert.rejects(
      target.adoptFiles([{ key: 'chunks/../x', path: '/etc/passwd', size: 1 }]),
      TypeError,
    );
  });

  test('deleting an object in one store (gc) leaves the other store its copy', async (t) => {
    const { source, target, keys } = await pair(t);
    await target.adoptFiles(await source.localFiles(keys));
    const key = keys[5]!;
    const body = await source.get(key);
    await source.delete(key);
    assert.deepEqual(await source.has([key]), [false]);
    assert.deepEqual(await target.get(key), body);
    assert.equal((await stat(target.pathOf(key))).nlink, 1);
    await target.delete(keys[6]!);
    assert.deepEqual(await source.get(keys[6]!), await readFile(source.pathOf(keys[6]!)));
    assert.equal((await stat(source.pathOf(keys[6]!))).nlink, 1);
  });
});

describe('wrappers and the local fast path', () => {
  test('retry, limit and metrics forward it when the inner store has it; the meter counts the bytes', async (t) => {
    const { source, target, keys } = await pair(t);
    const meteredSource = new MeteredStore(source);
    const meteredTarget = new MeteredStore(target);
    const wrap = (s: Store): Store =>
      new RetryingStore(new ConcurrencyLimitedStore(s), { maxRetries: 1 });
    const from = wrap(meteredSource);
    const to = wrap(meteredTarget);
    const lending = from.capabilities.localFiles;
    const adopting = to.capabilities.localFiles;
    assert.ok(lending && adopting);
    const files = await lending.lend(keys);
    const total = files.reduce((n, f) => n + f.size, 0);
    const result = await adopting.adopt(files);
    assert.equal(result.linked, keys.length);
    assert.equal(meteredSource.snapshot().totals.bytesRead, total, 'lent bytes count as received');
    assert.equal(
      meteredTarget.snapshot().totals.bytesWritten,
      total,
      'adopted bytes count as sent',
    );
    await adopting.adopt(files);
    assert.equal(
      meteredTarget.snapshot().totals.bytesWritten,
      total,
      'objects already present cost nothing',
    );
    await assert.rejects(
      adopting.adopt([{ key: 'meta/x', path: files[0]!.path, size: 1 }]),
      TypeError,
    );
  });

  test('a wrapper over a store without it does not grow one; openStore of a folder has it', async (t) => {
    const root = await tempRoot(t);
    const plain: Store = {
      description: 'plain',
      capabilities: BASIC_CAPABILITIES,
      get: () => Promise.reject(new Error('unused')),
      put: () => Promise.resolve(),
      create: () => Promise.resolve(false),
      has: (keys) => Promise.resolve(keys.map(() => false)),
      // eslint-disable-next-line require-yield
      list: async function* () {
        return;
      },
      delete: () => Promise.resolve(),
      readRef: () => Promise.resolve(null),
      compareAndSwapRef: () => Promise.resolve(false),
      listRefs: () => Promise.resolve(new Map()),
      close: () => Promise.resolve(),
    };
    const wrapped = new RetryingStore(new ConcurrencyLimitedStore(new MeteredStore(plain)));
    assert.equal(wrapped.capabilities.localFiles, undefined);
    const opened = await openStore(path.join(root, 'remote'));
    assert.ok(opened.store.capabilities.localFiles);
  });
});
