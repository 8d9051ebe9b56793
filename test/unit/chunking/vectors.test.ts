import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Chunker } from '../../../src/chunking/index.js';
import { lengths, sha256Hex } from './helpers.js';
import {
  computeVector,
  makeGear,
  makeInput,
  vectorFilePath,
  VECTOR_SPECS,
  type VectorFile,
} from './vectors.js';

const committed = JSON.parse(readFileSync(vectorFilePath(), 'utf8')) as VectorFile;

test('committed vector file covers exactly the specified vectors', () => {
  assert.deepEqual(
    committed.vectors.map((v) => v.name),
    VECTOR_SPECS.map((s) => s.name),
  );
});

for (const expected of committed.vectors) {
  test(`vector ${expected.name}: recomputed boundaries and hashes match the committed JSON`, () => {
    assert.deepEqual(computeVector(expected), expected);
  });

  test(`vector ${expected.name}: streaming in odd-sized pushes gives the same chunks`, () => {
    const data = makeInput(expected.input);
    const chunker = new Chunker(expected.params, makeGear(expected.gear));
    const chunks: Buffer[] = [];
    // 4099 and 1 byte alternate so pieces straddle minSize, avgSize and maxSize offsets.
    for (let off = 0, k = 0; off < data.length; k++) {
      const size = k % 3 === 2 ? 1 : 4099;
      chunks.push(...chunker.push(data.subarray(off, off + size)));
      off += size;
    }
    chunks.push(...chunker.finish());
    assert.deepEqual(
      lengths(chunks),
      expected.chunks.map((c) => c.length),
    );
    assert.deepEqual(
      chunks.map(sha256Hex),
      expected.chunks.map((c) => c.sha256),
    );
  });
}

test('vector sanity: the default-params vectors exercise several chunks', () => {
  const v = committed.vectors.find((x) => x.name === 'random-12MiB-default-params');
  assert.ok(
    v !== undefined && v.chunks.length >= 5,
    'expected at least 5 chunks in 12 MiB with 1 MiB average',
  );
});
