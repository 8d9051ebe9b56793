/**
 * LockFile (src/util/fs.ts) never has two holders: a lock file is never taken for debris while
 * its holder may still be writing it, processes that find the same dead lock break it one at a
 * time (never removing each other's fresh lock), a release never removes another holder's lock,
 * and a lock from another host is left to a person, with the error saying whose it is.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, readdir, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { LockedError } from '../../../src/errors/index.js';
import { LockFile } from '../../../src/util/fs.js';

async function scratch(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mediagit-lockfile-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The pid of a process that has exited (and so cannot hold anything). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  const pid = child.pid!;
  await once(child, 'exit');
  return pid;
}

test('an empty lock file is never removed as debris, however old: its holder may be between create and write', async (t) => {
  const dir = await scratch(t);
  const lock = path.join(dir, 'index.lock');
  await writeFile(lock, '');
  const old = new Date(Date.now() - 60_000);
  await utimes(lock, old, old);
  await assert.rejects(LockFile.acquire(lock, { timeoutMs: 200 }), LockedError);
  assert.equal(await readFile(lock, 'utf8'), '', 'the lock file was left alone');
});

test('a lock is never seen half-written: its file holds pid, host and a token from the moment it exists', async (t) => {
  const dir = await scratch(t);
  const lock = path.join(dir, 'HEAD.lock');
  let reading = true;
  const reader = (async () => {
    while (reading) {
      const content = await readFile(lock, 'utf8').catch(() => null);
      if (content !== null) assert.match(content, /^\d+ \S+ [0-9a-f]+\n$/);
      await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  for (let i = 0; i < 200; i++) {
    const held = await LockFile.acquire(lock);
    await held.release();
  }
  reading = false;
  await reader;
  // Nothing staged is left beside the lock.
  assert.deepEqual(await readdir(dir), []);
});

test('eight processes breaking one dead lock take it one at a time, 15 rounds', async (t) => {
  const dir = await scratch(t);
  const lock = path.join(dir, 'main.lock');
  const pid = await deadPid();
  let holders = 0;
  let most = 0;
  for (let round = 0; round < 15; round++) {
    await writeFile(lock, `${pid} ${os.hostname()} deadbeef\n`);
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const held = await LockFile.acquire(lock, { timeoutMs: 60_000 });
        holders++;
        most = Math.max(most, holders);
        await sleep(2);
        holders--;
        await held.release();
      }),
    );
  }
  assert.equal(most, 1, `${most} holders at once`);
  await assert.rejects(stat(lock), { code: 'ENOENT' });
});

test('a breaker lock left by a dead breaker does not wedge the lock', async (t) => {
  const dir = await scratch(t);
  const lock = path.join(dir, 'main.lock');
  const pid = await deadPid();
  await writeFile(lock, `${pid} ${os.hostname()} aaaa\n`);
  await writeFile(path.join(dir, '.main.lock.break'), `${pid} ${os.hostname()} bbbb\n`);
  const held = await LockFile.acquire(lock, { timeoutMs: 10_000 });
  await held.release();
  assert.deepEqual(await readdir(dir), []);
});

test("release never removes another holder's lock", async (t) => {
  const dir = await scratch(t);
  const lock = path.join(dir, 'main.lock');
  const first = await LockFile.acquire(lock);
  // Someone removed the lock by hand and another process took it.
  await unlink(lock);
  const second = await LockFile.acquire(lock);
  await first.release();
  assert.equal(await readFile(lock, 'utf8'), second.contents);
  await second.release();
  await assert.rejects(stat(lock), { code: 'ENOENT' });
});

test('a lock from another host is never broken automatically; the error names the holder and how to clear it', async (t) => {
  const dir = await scratch(t);
  const lock = path.join(dir, 'main.lock');
  await writeFile(lock, `4242 render-node-7 cafe\n`);
  await assert.rejects(
    LockFile.acquire(lock, { timeoutMs: 100, what: 'ref refs/heads/main' }),
    (err: unknown) => {
      assert.ok(err instanceof LockedError);
      assert.match(err.message, /process 4242 on host render-node-7/);
      assert.match(err.hint ?? '', /no longer running on render-node-7, delete .*main\.lock/);
      return true;
    },
  );
  assert.equal(await readFile(lock, 'utf8'), '4242 render-node-7 cafe\n');
});
