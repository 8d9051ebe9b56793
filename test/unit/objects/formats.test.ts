import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  decodeCommit,
  decodeEnvelopeHeader,
  decodeManifest,
  decodeTree,
  encodeCommit,
  encodeManifest,
  encodeTree,
  treeNameProblem,
  type TreeEntry,
} from '../../../src/objects/index.js';

const oid = fc.stringMatching(/^[0-9a-f]{64}$/);
const safeName = fc
  .string({ minLength: 1, maxLength: 40 })
  .filter((n) => treeNameProblem(n) === null);

test('unsafe tree names are refused', () => {
  for (const name of [
    '',
    '.',
    '..',
    'a/b',
    'a\\b',
    'nul\0byte',
    'C:',
    'x:y',
    '.mediagit',
    '.MediaGit',
    '.mediagit.',
    '.mediagit ',
    'tab\there',
    'x'.repeat(256),
  ]) {
    assert.notEqual(treeNameProblem(name), null, JSON.stringify(name));
  }
  for (const name of [
    'a',
    '..a',
    'a..',
    '.hidden',
    'héros.wav',
    'with space',
    '.mediagitignore',
    'x'.repeat(255),
  ]) {
    assert.equal(treeNameProblem(name), null, JSON.stringify(name));
  }
});

test('encodeTree refuses unsafe names and duplicates', () => {
  const e = (name: string): TreeEntry => ({ name, type: 'file', oid: 'a'.repeat(64), size: 1 });
  for (const bad of ['../x', 'a/b', '.mediagit', 'a\0b']) assert.throws(() => encodeTree([e(bad)]));
  assert.throws(() => encodeTree([e('same'), e('same')]));
});

test('decodeTree refuses crafted trees with unsafe names, bad order or trailing bytes', () => {
  const craft = (names: string[]): Buffer => {
    const parts: Buffer[] = [Buffer.from('MGTR'), Buffer.from([1]), Buffer.alloc(4)];
    parts[2]!.writeUInt32BE(names.length);
    for (const name of names) {
      const n = Buffer.from(name, 'utf8');
      const head = Buffer.alloc(3);
      head.writeUInt8(1, 0);
      head.writeUInt16BE(n.length, 1);
      parts.push(head, n, Buffer.alloc(40, 0xab).fill(0, 32));
    }
    return Buffer.concat(parts);
  };
  assert.doesNotThrow(() => decodeTree(craft(['a', 'b'])));
  for (const names of [
    ['../x'],
    ['a/b'],
    ['.mediagit'],
    ['a\0b'],
    ['..'],
    ['b', 'a'],
    ['a', 'a'],
  ]) {
    assert.throws(() => decodeTree(craft(names)), Error, JSON.stringify(names));
  }
  assert.throws(() => decodeTree(Buffer.concat([craft(['a']), Buffer.from([0])])));
  assert.throws(() => decodeTree(craft(['a']).subarray(0, 20)));
});

test('manifest round trip (property)', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record(
          { oid, size: fc.integer({ min: 1, max: 2 ** 32 - 1 }) },
          { noNullPrototype: true },
        ),
        { maxLength: 50 },
      ),
      (chunks) => {
        const manifest = { size: chunks.reduce((n, c) => n + c.size, 0), chunks };
        const bytes = encodeManifest(manifest);
        assert.deepEqual(decodeManifest(bytes), manifest);
      },
    ),
  );
});

test('manifest decoder refuses inconsistent totals and truncation', () => {
  const bytes = encodeManifest({ size: 10, chunks: [{ oid: 'a'.repeat(64), size: 10 }] });
  const wrongTotal = Buffer.from(bytes);
  wrongTotal.writeBigUInt64BE(11n, 5);
  assert.throws(() => decodeManifest(wrongTotal));
  assert.throws(() => decodeManifest(bytes.subarray(0, bytes.length - 1)));
  assert.throws(() => encodeManifest({ size: 9, chunks: [{ oid: 'a'.repeat(64), size: 10 }] }));
});

test('tree round trip is canonical whatever the input order (property)', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(
        fc.record({
          name: safeName,
          type: fc.constantFrom('file' as const, 'exec' as const, 'dir' as const),
          oid,
          size: fc.nat(),
        }),
        { selector: (e) => e.name, maxLength: 30 },
      ),
      (entries) => {
        const bytes = encodeTree(entries);
        const decoded = decodeTree(bytes);
        assert.deepEqual(encodeTree([...entries].reverse()), bytes);
        assert.deepEqual(encodeTree(decoded), bytes);
        assert.equal(decoded.length, entries.length);
      },
    ),
  );
});

test('commit round trip (property) and non-canonical commits are refused', () => {
  const sigArb = fc.record(
    {
      name: fc
        .string({ maxLength: 20 })
        .filter((s) => !/[<>\n\0]/.test(s) && s.trim() === s && s.length > 0),
      email: fc.string({ maxLength: 20 }).filter((s) => !/[<>\n\0\s]/.test(s)),
      time: fc.integer({ min: 0, max: 2 ** 40 }),
      tzOffset: fc.integer({ min: -720, max: 840 }),
    },
    { noNullPrototype: true },
  );
  fc.assert(
    fc.property(
      oid,
      fc.array(oid, { maxLength: 3 }),
      sigArb,
      sigArb,
      fc.string(),
      (tree, parents, author, committer, message) => {
        const commit = { tree, parents, author, committer, message };
        assert.deepEqual(decodeCommit(encodeCommit(commit)), commit);
      },
    ),
  );
  const good = encodeCommit({
    tree: 'a'.repeat(64),
    parents: [],
    author: { name: 'A', email: 'a@b', time: 1, tzOffset: 0 },
    committer: { name: 'A', email: 'a@b', time: 1, tzOffset: 0 },
    message: 'm\n',
  });
  assert.throws(() => decodeCommit(Buffer.from(good.toString().replace('+0000', '+00:00'))));
  assert.throws(() => decodeCommit(Buffer.from('tree ' + 'a'.repeat(64) + '\nbogus x\n\nm')));
});

test('envelope header refuses truncation, bad magic and unknown kinds', () => {
  assert.throws(() => decodeEnvelopeHeader(Buffer.alloc(10)), /truncated/);
  const header = Buffer.alloc(16);
  Buffer.from('MGOB').copy(header);
  header[4] = 1;
  header[5] = 1;
  assert.doesNotThrow(() => decodeEnvelopeHeader(header));
  header[5] = 99;
  assert.throws(() => decodeEnvelopeHeader(header), /kind/);
  header[5] = 1;
  header[0] = 0;
  assert.throws(() => decodeEnvelopeHeader(header), /magic/);
});
