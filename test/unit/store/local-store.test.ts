import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { LocalStore } from '../../../src/store/index.js';
import { collectList, oidFor, storeContract } from '../../support/store-contract.js';

async function tempStore(
  options: { initialize?: boolean } = {},
): Promise<{ store: LocalStore; root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-local-store-'));
  const store = new LocalStore(root);
  if (options.initialize ?? true) await store.initialize();
  return { store, root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

storeContract('LocalStore', tempStore, { concurrentCas: true });
storeContract('LocalStore (folder never initialized)', () => tempStore({ initialize: false }), {
  concurrentCas: true,
  rounds: 3,
});

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: unknown }).code === 'EPERM';
  }
}

describe('LocalStore specifics', () => {
  test('objects are read-only files fanned out as <namespace>/ab/<62 hex>', async () => {
    const { store, root, cleanup } = await tempStore();
    try {
      for (const ns of ['chunks', 'objects']) {
        const oid = oidFor(`layout ${ns}`);
        await store.put(`${ns}/${oid}`, Buffer.from(ns));
        const file = path.join(root, ns, oid.slice(0, 2), oid.slice(2));
        assert.equal(store.pathOf(`${ns}/${oid}`), file);
        const info = await stat(file);
        assert.ok(info.isFile());
        assert.equal(
          info.mode & 0o222,
          0,
          `${ns} object must not be writable (mode ${(info.mode & 0o777).toString(8)})`,
        );
        assert.equal(await readFile(file, 'utf8'), ns);
      }
      await store.put('keys/main', Buffer.from('wrapped'));
      assert.equal(await readFile(path.join(root, 'keys', 'main'), 'utf8'), 'wrapped');
    } finally {
      await cleanup();
    }
  });

  test('temporary and stray files never show up in list()', async () => {
    const { store, root, cleanup } = await tempStore();
    try {
      const oid = oidFor('real');
      await store.put(`chunks/${oid}`, Buffer.from('real'));
      await writeFile(path.join(root, 'tmp', '.tmp-obj-123-abcdef'), 'half written');
      await writeFile(path.join(root, 'chunks', oid.slice(0, 2), '.tmp-obj-1-ff'), 'debris');
      await writeFile(path.join(root, 'chunks', oid.slice(0, 2), 'not-hex'), 'debris');
      await mkdir(path.join(root, 'chunks', 'zz'), { recursive: true });
      await writeFile(path.join(root, 'chunks', 'zz', 'a'.repeat(62)), 'debris');
      await writeFile(path.join(root, 'keys', '.tmp-keys-1-ff'), 'debris');
      assert.deepEqual(
        (await collectList(store, '')).map((k) => k.key),
        [`chunks/${oid}`],
      );
      // put leaves nothing behind in tmp/ beyond what was there.
      assert.deepEqual(await readdir(path.join(root, 'tmp')), ['.tmp-obj-123-abcdef']);
    } finally {
      await cleanup();
    }
  });

  test('a stale ref lock left by a dead process is broken automatically', async (t) => {
    const deadPid = 999_999;
    if (processAlive(deadPid)) {
      t.skip(`pid ${deadPid} happens to be alive on this machine`);
      return;
    }
    const { store, root, cleanup } = await tempStore();
    try {
      const lockPath = path.join(root, 'refs', 'heads', 'main.lock');
      await writeFile(lockPath, `${deadPid} ${os.hostname()} x\n`);
      assert.equal(await store.compareAndSwapRef('refs/heads/main', null, oidFor('A')), true);
      assert.equal((await store.readRef('refs/heads/main'))?.oid, oidFor('A'));
      await assert.rejects(stat(lockPath), { code: 'ENOENT' });
      assert.deepEqual(
        [...(await store.listRefs('refs/')).keys()],
        ['refs/heads/main'],
        'lock files are not refs',
      );
    } finally {
      await cleanup();
    }
  });

  test('a ref lock held by a live process makes CAS wait until it is released', async () => {
    const { store, root, cleanup } = await tempStore();
    try {
      const lockPath = path.join(root, 'refs', 'heads', 'main.lock');
      await writeFile(lockPath, `${process.pid} ${os.hostname()} x\n`);
      let settled = false;
      const cas = store.compareAndSwapRef('refs/heads/main', null, oidFor('A')).finally(() => {
        settled = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(settled, false, 'CAS must wait while the lock is held');
      assert.equal(await store.readRef('refs/heads/main'), null);
      await rm(lockPath);
      assert.equal(await cas, true);
      assert.equal((await store.readRef('refs/heads/main'))?.oid, oidFor('A'));
    } finally {
      await cleanup();
    }
  });

  test('a ref lock held by a live process fails CAS with E_LOCKED after the lock timeout', async (t) => {
    // LocalStore does not let callers set the lock timeout (LockFile's 10 s default applies), so
    // the clock is mocked instead of waiting 10 real seconds. This leans on LockFile measuring
    // time with Date.now() and sleeping with timers/promises' setTimeout.
    const { store, root, cleanup } = await tempStore();
    try {
      const lockPath = path.join(root, 'refs', 'heads', 'main.lock');
      await writeFile(lockPath, `${process.pid} ${os.hostname()} x\n`);
      t.mock.timers.enable({ apis: ['Date', 'setTimeout'], now: Date.now() });
      let outcome: unknown = undefined;
      let settled = false;
      const cas = store.compareAndSwapRef('refs/heads/main', null, oidFor('A')).then(
        (value) => {
          outcome = value;
        },
        (err: unknown) => {
          outcome = err;
        },
      );
      void cas.finally(() => {
        settled = true;
      });
      const started = Date.now();
      // Let the lock's file I/O run (setImmediate is real), nudging the mocked clock forward each
      // turn. Mocked time runs far ahead of the I/O, so only a lower bound on the wait is meaningful.
      for (let turn = 0; !settled && turn < 20_000; turn++) {
        t.mock.timers.tick(25);
        await new Promise((resolve) => setImmediate(resolve));
      }
      assert.equal(settled, true, 'CAS never gave up');
      const waited = Date.now() - started;
      assert.ok(waited >= 10_000, `gave up after only ${waited} mocked ms`);
      assert.equal(
        (outcome as { code?: unknown }).code,
        'E_LOCKED',
        `expected E_LOCKED, got ${String(outcome)}`,
      );
      t.mock.timers.reset();
      assert.equal(await store.readRef('refs/heads/main'), null, 'a failed CAS changes nothing');
      assert.equal(
        await readFile(lockPath, 'utf8'),
        `${process.pid} ${os.hostname()} x\n`,
        "the other holder's lock is left alone",
      );
    } finally {
      t.mock.timers.reset();
      await cleanup();
    }
  });
});

describe('LocalStore.putPartsLater (the chunk workers: fsync on the thread pool)', () => {
  /** An fsync that waits until the test lets it finish, counting the calls. */
  function heldFsync(): {
    fsyncFd: (fd: number) => Promise<void>;
    calls: number[];
    release: (err?: Error) => void;
  } {
    const calls: number[] = [];
    let settle: ((err?: Error) => void) | undefined;
    const gate = new Promise<Error | undefined>((resolve) => (settle = resolve));
    return {
      calls,
      release: (err) => settle!(err),
      fsyncFd: async (fd) => {
        calls.push(fd);
        const err = await gate;
        if (err) throw err;
      },
    };
  }

  test('an object appears only after its fsync, and counts as present (not written twice) meanwhile', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-local-later-'));
    try {
      const held = heldFsync();
      const store = new LocalStore(root, { fsyncFd: held.fsyncFd });
      await store.initialize();
      const key = `chunks/${oidFor('later')}`;
      const landing = store.putPartsLater(key, [Buffer.from('he'), Buffer.from('llo')]);
      assert.ok(landing, 'a new object is written');
      // The bytes are on disk in tmp/ already; the name appears only once fsync has returned.
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(held.calls.length, 1);
      await assert.rejects(stat(store.pathOf(key)), { code: 'ENOENT' });
      assert.equal(store.hasSync(key), true, 'on its way counts as present');
      assert.equal(store.putPartsLater(key, [Buffer.from('hello')]), null, 'no second write');
      assert.equal(held.calls.length, 1);
      held.release();
      await landing;
      assert.equal(await readFile(store.pathOf(key), 'utf8'), 'hello');
      assert.deepEqual(await readdir(path.join(root, 'tmp')), []);
      assert.equal(store.putPartsLater(key, [Buffer.from('hello')]), null, 'present once landed');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('a failed fsync rejects, leaves no object and no temporary file', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-local-later-'));
    try {
      const held = heldFsync();
      const store = new LocalStore(root, { fsyncFd: held.fsyncFd });
      await store.initialize();
      const key = `chunks/${oidFor('later fails')}`;
      const landing = store.putPartsLater(key, [Buffer.from('doomed')]);
      assert.ok(landing);
      held.release(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
      await assert.rejects(landing, { code: 'EIO' });
      await assert.rejects(stat(store.pathOf(key)), { code: 'ENOENT' });
      assert.deepEqual(await readdir(path.join(root, 'tmp')), []);
      assert.equal(store.hasSync(key), false, 'a failed write is not present');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('with fsync off, nothing is synced and the object still lands', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-local-later-'));
    try {
      const held = heldFsync();
      const store = new LocalStore(root, { fsync: false, fsyncFd: held.fsyncFd });
      await store.initialize();
      const key = `objects/${oidFor('no fsync')}`;
      await store.putPartsLater(key, [Buffer.from('quick')]);
      assert.equal(held.calls.length, 0);
      assert.equal(await readFile(store.pathOf(key), 'utf8'), 'quick');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
