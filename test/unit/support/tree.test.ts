import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';

import { tempDir } from '../../support/cli.js';
import { assertTreesEqual, hashTree } from '../../support/tree.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

async function put(root: string, rel: string, content: string): Promise<void> {
  const file = path.join(root, ...rel.split('/'));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
}

test('hashTree maps posix paths to sha256 and skips .mediagit and exclusions', async () => {
  const dir = await tempDir('tree');
  await put(dir, 'a.txt', 'alpha');
  await put(dir, 'sub/deep/b.bin', 'beta');
  await put(dir, 'sub/cache/x', 'ignored by path');
  await put(dir, 'other/tmp.log', 'ignored by name');
  await put(dir, '.mediagit/objects/ab', 'repository internals');
  await mkdir(path.join(dir, 'empty'));

  const hashes = await hashTree(dir, { exclude: ['sub/cache', 'tmp.log'] });
  assert.deepEqual(
    [...hashes.entries()],
    [
      ['a.txt', sha256('alpha')],
      ['sub/deep/b.bin', sha256('beta')],
    ],
  );
});

test('assertTreesEqual names missing, unexpected and changed paths', () => {
  const expected = new Map([
    ['same', '1'],
    ['changed', '2'],
    ['missing', '3'],
  ]);
  const actual = new Map([
    ['same', '1'],
    ['changed', 'x'],
    ['extra', '4'],
  ]);
  assert.doesNotThrow(() => assertTreesEqual(expected, new Map(expected)));
  assert.throws(
    () => assertTreesEqual(actual, expected, 'checkout'),
    (err: unknown) => {
      assert.ok(err instanceof assert.AssertionError);
      assert.match(err.message, /^checkout differ/);
      assert.match(err.message, /missing \(only in expected\) \(1\):\n {4}missing/);
      assert.match(err.message, /unexpected \(only in actual\) \(1\):\n {4}extra/);
      assert.match(err.message, /content differs \(1\):\n {4}changed/);
      return true;
    },
  );
});
