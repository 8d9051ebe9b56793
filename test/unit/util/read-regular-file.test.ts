/**
 * readRegularFile (src/util/fs.ts) reads every store object a push sends. It returns exactly the
 * file's bytes whatever its size, each in memory of its own, and reads a file whose size fstat
 * gave in one read system call rather than readFile's 512 KiB pieces (counted by the kernel:
 * `syscr` in /proc/self/io).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readRegularFile } from '../../../src/util/fs.js';

async function scratch(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mediagit-read-regular-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('files of every size come back whole, each in memory of its own', async (t) => {
  const dir = await scratch(t);
  for (const size of [0, 1, 300, 4096, 512 * 1024 + 1, 3 * 1024 * 1024 + 5]) {
    const file = path.join(dir, `f${size}`);
    const bytes = randomBytes(size);
    await writeFile(file, bytes);
    const got = await readRegularFile(file);
    assert.ok(got.equals(bytes), `${size} bytes`);
    // A slice of Node's shared pool would hand its neighbours' bytes to whoever transfers it.
    if (size === 0) continue;
    assert.equal(got.byteOffset, 0, `${size} bytes: not a slice of a larger buffer`);
    assert.equal(got.buffer.byteLength, size, `${size} bytes: not a slice of a larger buffer`);
  }
});

const readCalls = (): number =>
  Number(/^syscr:\s*(\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);

test('a 4 MiB file is read in one read call', { skip: !existsSync('/proc/self/io') }, async (t) => {
  const dir = await scratch(t);
  const small = path.join(dir, 'small');
  const big = path.join(dir, 'big');
  await writeFile(small, 'x');
  await writeFile(big, randomBytes(4 * 1024 * 1024));
  /** Read calls of one readRegularFile, less those of reading the counter itself. */
  const callsFor = async (file: string): Promise<number> => {
    const before = readCalls();
    await readRegularFile(file);
    return readCalls() - before;
  };
  // Fewest of a few tries: another thread of this process may read something meanwhile.
  const fewest = async (file: string): Promise<number> => {
    let least = Infinity;
    for (let i = 0; i < 5; i++) least = Math.min(least, await callsFor(file));
    return least;
  };
  const one = await fewest(small);
  const four = await fewest(big);
  assert.ok(
    four - one <= 0,
    `4 MiB took ${four - one} more read calls than 1 byte (readFile reads it in pieces)`,
  );
});
