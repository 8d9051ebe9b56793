import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ObjectCorruptError } from '../../../src/errors/index.js';
import { Index, type IndexEntry } from '../../../src/repo/index-file.js';

const oid = (c: string): string => c.repeat(64);
const entry = (path: string, manifest: string, extra: Partial<IndexEntry> = {}): IndexEntry => ({
  path,
  type: 'file',
  oid: manifest,
  size: 10,
  mtimeNs: 1000n,
  ino: 7n,
  ...extra,
});

async function withIndexFile(fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'mediagit-index-'));
  try {
    await fn(join(dir, 'index'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** An index whose entries are `tree`'s files, saved and read back. */
async function recorded(path: string): Promise<Index> {
  const index = new Index();
  index.entries.set('a.bin', entry('a.bin', oid('a')));
  index.entries.set('b.bin', entry('b.bin', oid('b')));
  index.recordTree(oid('f'));
  await index.save(path);
  return Index.load(path);
}

test('the recorded tree survives save and load, and stat refreshes that keep the content', async () => {
  await withIndexFile(async (path) => {
    assert.equal(new Index().tree, null, 'unknown until recorded');
    const index = await recorded(path);
    assert.equal(index.tree, oid('f'));
    index.entries.set('a.bin', entry('a.bin', oid('a'), { mtimeNs: 2000n, ino: 9n, size: 11 }));
    assert.equal(index.tree, oid('f'), 'new stat data, same manifest and type');
    await index.save(path);
    assert.equal((await Index.load(path)).tree, oid('f'));
  });
});

test('any change to a path, its manifest or its type, or a conflict, forgets the recorded tree', async () => {
  await withIndexFile(async (path) => {
    const changes: [string, (index: Index) => void][] = [
      ['new manifest', (i) => i.entries.set('a.bin', entry('a.bin', oid('c')))],
      ['now executable', (i) => i.entries.set('a.bin', entry('a.bin', oid('a'), { type: 'exec' }))],
      ['new path', (i) => i.entries.set('c.bin', entry('c.bin', oid('c')))],
      ['removed path', (i) => i.entries.delete('b.bin')],
      ['cleared', (i) => i.entries.clear()],
      [
        'conflict',
        (i) =>
          i.conflicts.set('a.bin', {
            path: 'a.bin',
            base: null,
            ours: { type: 'file', oid: oid('a'), size: 1 },
            theirs: null,
          }),
      ],
    ];
    for (const [what, change] of changes) {
      const index = await recorded(path);
      change(index);
      assert.equal(index.tree, null, what);
      await index.save(path);
      const text = await readFile(path, 'utf8');
      assert.ok(!text.includes('"tree"'), `${what}: not written`);
      assert.equal((await Index.load(path)).tree, null, `${what}: not read back`);
    }
    // Changing a path and changing it back still forgets: the map does not compare with the past.
    const index = await recorded(path);
    index.entries.set('a.bin', entry('a.bin', oid('c')));
    index.entries.set('a.bin', entry('a.bin', oid('a')));
    assert.equal(index.tree, null);
  });
});

test('a malformed recorded tree is a corrupt index, not a guess', async () => {
  await withIndexFile(async (path) => {
    await writeFile(
      path,
      JSON.stringify({ version: 1, entries: [], conflicts: [], tree: 'not-an-oid' }),
    );
    await assert.rejects(Index.load(path), (err: unknown) => err instanceof ObjectCorruptError);
  });
});
