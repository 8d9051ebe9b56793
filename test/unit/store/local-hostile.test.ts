/**
 * A folder remote anyone with write access can fill: a ref that is junk, a symlink or a FIFO, and
 * a FIFO where an object belongs. Each must be a typed error naming the ref or key without its
 * content, and a FIFO must never be opened for a blocking read.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { mkdir, mkdtemp, open, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { LocalStore } from '../../../src/store/index.js';
import { oidFor } from '../../support/store-contract.js';

async function tempStore(): Promise<{
  store: LocalStore;
  root: string;
  cleanup: () => Promise<void>;
}> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-hostile-folder-'));
  const store = new LocalStore(root);
  await store.initialize();
  return { store, root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

function mkfifo(file: string): void {
  execFileSync('mkfifo', ['-m', '0644', file]);
}

/**
 * Settles `pending`, a read of the FIFO at `fifo`. Code that opened it for a blocking read is
 * stuck until a writer appears, so one is opened (non-blocking: it only succeeds once a reader is
 * there) and closed, which ends such a read with an empty file — the test then fails on what it
 * got rather than hanging. Code that never blocks has settled before any writer could open.
 */
async function settleFifoRead<T>(pending: Promise<T>, fifo: string): Promise<unknown> {
  let settled = false;
  const outcome = pending.then(
    (value) => {
      settled = true;
      return value;
    },
    (err: unknown) => {
      settled = true;
      return err;
    },
  );
  while (!settled) {
    await new Promise((resolve) => setImmediate(resolve));
    try {
      const writer = await open(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      await writer.close();
    } catch {
      // ENXIO: no reader has it open (yet, or ever).
    }
  }
  return outcome;
}

function codeOf(value: unknown): unknown {
  return (value as { code?: unknown } | null)?.code;
}

test('a junk ref file is E_REF_CORRUPT (exit 6), naming the ref but not its content', async () => {
  const { store, root, cleanup } = await tempStore();
  try {
    const secret = 'AKIA-planted-secret-text\n';
    await writeFile(path.join(root, 'refs', 'heads', 'main'), secret);
    for (const read of [
      () => store.readRef('refs/heads/main'),
      () => store.listRefs('refs/heads/'),
    ]) {
      const err = await read().then(
        () => assert.fail('a junk ref was accepted'),
        (e: unknown) => e,
      );
      assert.equal(codeOf(err), 'E_REF_CORRUPT');
      assert.equal((err as { exitCode?: unknown }).exitCode, 6);
      const message = String((err as Error).message);
      assert.match(message, /refs\/heads\/main/);
      assert.ok(!message.includes('AKIA'), `the content leaked into: ${message}`);
    }
    // A write over it is refused too, rather than silently replacing what it cannot read.
    await assert.rejects(store.compareAndSwapRef('refs/heads/main', null, oidFor('x')), {
      code: 'E_REF_CORRUPT',
    });
  } finally {
    await cleanup();
  }
});

test('a symlinked ref is refused even when its target holds a valid object ID', async () => {
  const { store, root, cleanup } = await tempStore();
  try {
    const target = path.join(root, 'elsewhere');
    await writeFile(target, `${oidFor('looks fine')}\n`);
    await symlink(target, path.join(root, 'refs', 'heads', 'main'));
    await assert.rejects(store.readRef('refs/heads/main'), (err: unknown) => {
      assert.equal(codeOf(err), 'E_REF_CORRUPT');
      assert.match(String((err as Error).message), /symbolic link/);
      return true;
    });
    await assert.rejects(store.listRefs('refs/'), { code: 'E_REF_CORRUPT' });
  } finally {
    await cleanup();
  }
});

test('a FIFO as a ref is refused without blocking', async () => {
  const { store, root, cleanup } = await tempStore();
  try {
    const fifo = path.join(root, 'refs', 'heads', 'main');
    mkfifo(fifo);
    const got = await settleFifoRead(store.readRef('refs/heads/main'), fifo);
    assert.equal(codeOf(got), 'E_REF_CORRUPT', `got ${String(got)}`);
    assert.match(String((got as Error).message), /FIFO/);
    const listed = await settleFifoRead(store.listRefs('refs/'), fifo);
    assert.equal(codeOf(listed), 'E_REF_CORRUPT', `got ${String(listed)}`);
  } finally {
    await cleanup();
  }
});

test('a FIFO where an object belongs is E_OBJECT_CORRUPT without blocking', async () => {
  const { store, root, cleanup } = await tempStore();
  try {
    const oid = oidFor('fifo object');
    await mkdir(path.join(root, 'chunks', oid.slice(0, 2)), { recursive: true });
    const fifo = path.join(root, 'chunks', oid.slice(0, 2), oid.slice(2));
    mkfifo(fifo);
    const got = await settleFifoRead(store.get(`chunks/${oid}`), fifo);
    assert.equal(codeOf(got), 'E_OBJECT_CORRUPT', `got ${String(got)}`);
    const keyFifo = path.join(root, 'keys', '0011223344556677');
    mkfifo(keyFifo);
    const key = await settleFifoRead(store.get('keys/0011223344556677'), keyFifo);
    assert.equal(codeOf(key), 'E_OBJECT_CORRUPT', `got ${String(key)}`);
  } finally {
    await cleanup();
  }
});

test('files that no ref can be named are not listed as refs, and a ref folder is no ref', async () => {
  const { store, root, cleanup } = await tempStore();
  try {
    await store.compareAndSwapRef('refs/heads/a/b', null, oidFor('b'));
    await writeFile(path.join(root, 'refs', 'stray'), 'junk');
    await writeFile(path.join(root, 'refs', 'heads', 'bad name~'), 'junk');
    assert.deepEqual([...(await store.listRefs('refs/')).keys()], ['refs/heads/a/b']);
    assert.equal(await store.readRef('refs/heads/a'), null);
  } finally {
    await cleanup();
  }
});
