import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  Chunker,
  chunkBoundaries,
  chunkBuffer,
  chunkingMasks,
  chunkStream,
  CutFinder,
  DEFAULT_CHUNKING,
  defaultGear,
  gearFromSeed,
  validateChunkingParams,
  type ChunkingParams,
} from '../../../src/chunking/index.js';
import {
  asAsync,
  collect,
  endsOf,
  lengths,
  referenceChunkLengths,
  SMALL,
  splitAt,
  xorshift32Bytes,
} from './helpers.js';

/** Pseudo-random bytes with optional zero runs, so forced maxSize cuts also land near split points. */
const dataArb = fc
  .record({
    seed: fc.integer({ min: 1, max: 0xffffffff }),
    // Mostly multi-MiB inputs, with some tiny ones for the edge cases.
    length: fc.oneof(
      { arbitrary: fc.integer({ min: 1024 * 1024, max: 3 * 1024 * 1024 }), weight: 3 },
      { arbitrary: fc.integer({ min: 0, max: 70_000 }), weight: 1 },
    ),
    zeroRuns: fc.array(
      fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 100_000 })),
      { maxLength: 4 },
    ),
  })
  .map(({ seed, length, zeroRuns }) => {
    const data = xorshift32Bytes(seed, length);
    for (const [where, len] of zeroRuns) {
      const start = Math.floor(where * length);
      data.fill(0, start, Math.min(length, start + len));
    }
    return data;
  });

/** Valid but varied params around the small test sizes, including non-power-of-two min and max. */
const paramsArb: fc.Arbitrary<ChunkingParams> = fc.integer({ min: 8, max: 14 }).chain((bits) =>
  fc.record({
    minSize: fc.integer({ min: 64, max: 2 ** bits - 1 }),
    avgSize: fc.constant(2 ** bits),
    maxSize: fc.integer({ min: 2 ** bits + 1, max: 2 ** (bits + 3) }),
  }),
);

function concat(chunks: readonly Uint8Array[]): Buffer {
  return Buffer.concat(chunks);
}

describe('boundaries are independent of how the input is split', () => {
  test('random split points: Chunker.push and chunkStream match chunkBuffer on the whole', async () => {
    await fc.assert(
      fc.asyncProperty(
        dataArb,
        fc.array(fc.nat({ max: 3 * 1024 * 1024 }), { maxLength: 200 }),
        async (data, positions) => {
          const whole = lengths(chunkBuffer(data, SMALL));
          const pieces = splitAt(
            data,
            positions.map((p) => p % (data.length + 1)),
          );

          const chunker = new Chunker(SMALL);
          const pushed: Buffer[] = [];
          for (const piece of pieces) pushed.push(...chunker.push(piece));
          pushed.push(...chunker.finish());
          assert.deepEqual(lengths(pushed), whole);
          assert.ok(concat(pushed).equals(data));

          const streamed = await collect(chunkStream(asAsync(pieces), SMALL));
          assert.deepEqual(lengths(streamed), whole);
        },
      ),
      { numRuns: 40 },
    );
  });

  test('CutFinder over a sliding window (short reads, the unfinished chunk moved to the front) matches chunkBoundaries', () => {
    fc.assert(
      fc.property(
        paramsArb,
        dataArb,
        fc.array(fc.integer({ min: 1, max: 200_000 }), { minLength: 1, maxLength: 20 }),
        fc.boolean(),
        (params, data, reads, keyed) => {
          const gear = keyed ? gearFromSeed(Buffer.alloc(32, 7)) : undefined;
          const finder = new CutFinder(params, gear);
          const window = Buffer.alloc(params.maxSize + Math.max(...reads));
          const ends: number[] = [];
          let consumed = 0; // bytes of `data` moved into the window so far
          let base = 0; // file offset of window[0]
          let start = 0;
          let scanned = 0;
          let filled = 0;
          for (let r = 0; ; r++) {
            const want = Math.min(reads[r % reads.length]!, window.length - filled);
            const n = Math.min(want, data.length - consumed);
            window.set(data.subarray(consumed, consumed + n), filled);
            consumed += n;
            filled += n;
            const view = window.subarray(0, filled);
            for (
              let cut = finder.find(view, start, scanned);
              cut >= 0;
              cut = finder.find(view, start, scanned)
            ) {
              ends.push(base + cut);
              start = scanned = cut;
            }
            scanned = filled;
            if (n === 0) {
              if (start < filled) ends.push(base + filled);
              break;
            }
            window.copyWithin(0, start, filled);
            base += start;
            filled -= start;
            scanned -= start;
            start = 0;
          }
          assert.deepEqual(ends, chunkBoundaries(data, params, gear));
        },
      ),
      { numRuns: 40 },
    );
  });

  test('one-byte pushes give the same chunks as the whole buffer', () => {
    const data = xorshift32Bytes(2024, 200_000);
    data.fill(0, 50_000, 150_000); // forced cuts at maxSize while pushing a byte at a time
    const chunker = new Chunker(SMALL);
    const pushed: Buffer[] = [];
    for (let i = 0; i < data.length; i++) pushed.push(...chunker.push(data.subarray(i, i + 1)));
    pushed.push(...chunker.finish());
    assert.deepEqual(lengths(pushed), lengths(chunkBuffer(data, SMALL)));
  });

  test('varied params: streaming in random pieces matches the whole buffer', () => {
    fc.assert(
      fc.property(
        paramsArb,
        dataArb,
        fc.integer({ min: 1, max: 100_000 }),
        (params, data, pieceSize) => {
          const data2 = data.subarray(0, 400_000);
          const chunker = new Chunker(params);
          const pushed: Buffer[] = [];
          for (let off = 0; off < data2.length; off += pieceSize)
            pushed.push(...chunker.push(data2.subarray(off, off + pieceSize)));
          pushed.push(...chunker.finish());
          assert.deepEqual(lengths(pushed), lengths(chunkBuffer(data2, params)));
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('chunk sizes and content', () => {
  test('every chunk is in (min, max] except the last in [1, max]; concatenation equals the input', () => {
    fc.assert(
      fc.property(paramsArb, dataArb, (params, data) => {
        const chunks = chunkBuffer(data.subarray(0, 600_000), params);
        const input = data.subarray(0, 600_000);
        chunks.forEach((c, k) => {
          const lo = k === chunks.length - 1 ? 1 : params.minSize + 1;
          assert.ok(
            c.length >= lo && c.length <= params.maxSize,
            `chunk ${k} has length ${c.length}, params ${JSON.stringify(params)}`,
          );
        });
        assert.ok(concat(chunks).equals(input));
        assert.equal(chunks.length === 0, input.length === 0);
      }),
      { numRuns: 60 },
    );
  });

  test('optimized scanner agrees with a naive transcription of the spec', () => {
    fc.assert(
      fc.property(
        paramsArb,
        dataArb,
        fc.integer({ min: 1, max: 0xffffffff }),
        (params, data, seedWord) => {
          const input = data.subarray(0, 300_000);
          const seed = Buffer.alloc(32);
          seed.writeUInt32BE(seedWord, 0);
          for (const gear of [defaultGear(), gearFromSeed(seed)]) {
            assert.deepEqual(
              lengths(chunkBuffer(input, params, gear)),
              referenceChunkLengths(input, params, gear),
            );
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  test('chunkBoundaries returns the end offsets of chunkBuffer without copying', () => {
    const data = xorshift32Bytes(5, 500_000);
    assert.deepEqual(chunkBoundaries(data, SMALL), endsOf(lengths(chunkBuffer(data, SMALL))));
    assert.deepEqual(chunkBoundaries(new Uint8Array(0), SMALL), []);
  });

  test('sizes cluster around avgSize (normalized chunking)', () => {
    const data = xorshift32Bytes(77, 4 * 1024 * 1024);
    const sizes = lengths(chunkBuffer(data, SMALL)).slice(0, -1);
    const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
    // Cut-point skipping adds roughly minSize on top of the mask's own expectation.
    assert.ok(mean > 0.8 * SMALL.avgSize && mean < 1.6 * SMALL.avgSize, `mean chunk size ${mean}`);
  });
});

describe('small and empty inputs', () => {
  test('empty input gives zero chunks everywhere', async () => {
    assert.deepEqual(chunkBuffer(new Uint8Array(0)), []);
    const c = new Chunker();
    assert.deepEqual(c.push(new Uint8Array(0)), []);
    assert.deepEqual(c.finish(), []);
    assert.deepEqual(await collect(chunkStream(asAsync([]))), []);
    assert.deepEqual(
      await collect(chunkStream(asAsync([new Uint8Array(0), new Uint8Array(0)]))),
      [],
    );
  });

  test('input no longer than minSize is one chunk (default and small params)', async () => {
    for (const [params, len] of [
      [SMALL, 1],
      [SMALL, SMALL.minSize - 1],
      [SMALL, SMALL.minSize],
      [DEFAULT_CHUNKING, 1000],
      [DEFAULT_CHUNKING, DEFAULT_CHUNKING.minSize - 1],
    ] as const) {
      const data = xorshift32Bytes(3, len);
      const chunks = chunkBuffer(data, params);
      assert.equal(chunks.length, 1);
      assert.ok(chunks[0]!.equals(data));
      const streamed = await collect(chunkStream(asAsync(splitAt(data, [len >> 1])), params));
      assert.deepEqual(lengths(streamed), [len]);
    }
  });

  test('a file that is all zeros is cut at maxSize', () => {
    const chunks = chunkBuffer(new Uint8Array(3 * SMALL.maxSize + 5), SMALL);
    // With zeros the hash settles on a constant after 32 bytes; for the default gear that constant
    // never satisfies either mask, so only the hard cut applies.
    assert.deepEqual(lengths(chunks), [SMALL.maxSize, SMALL.maxSize, SMALL.maxSize, 5]);
  });
});

describe('gear tables', () => {
  test('default gear matches its definition: SHA-256("mediagit-gear-v1" || u8(i)), first 4 bytes BE', () => {
    const gear = defaultGear();
    assert.equal(gear.length, 256);
    for (const i of [0, 1, 127, 255]) {
      const d = createHash('sha256')
        .update(Buffer.concat([Buffer.from('mediagit-gear-v1'), Buffer.from([i])]))
        .digest();
      assert.equal(gear[i], d.readUInt32BE(0));
    }
    assert.equal(new Set(gear).size, 256, 'entries should be distinct');
  });

  test('table digests match the check values published in docs/chunking.md', () => {
    const digest = (g: Uint32Array): string => {
      const b = Buffer.alloc(1024);
      g.forEach((v, i) => b.writeUInt32BE(v, i * 4));
      return createHash('sha256').update(b).digest('hex');
    };
    assert.equal(
      digest(defaultGear()),
      'c205a396846b3d5d2f78d9db76a205a06a26077f6a74cd745449edf239597ce9',
    );
    const seed = Buffer.from(
      '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
      'hex',
    );
    assert.equal(
      digest(gearFromSeed(seed)),
      'df154792fe62c1efee36d0931774bf412e410cf0d530ed20b8ee13088e9e3e69',
    );
  });

  test('defaultGear returns a copy: mutating it does not change anyone else\u2019s boundaries', () => {
    const data = xorshift32Bytes(11, 300_000);
    const before = lengths(chunkBuffer(data, SMALL));
    defaultGear().fill(0);
    assert.deepEqual(lengths(chunkBuffer(data, SMALL)), before);
  });

  test('a gear table passed to Chunker is snapshotted at construction', () => {
    const data = xorshift32Bytes(12, 300_000);
    const gear = defaultGear();
    const chunker = new Chunker(SMALL, gear);
    gear.fill(0);
    const chunks = [...chunker.push(data), ...chunker.finish()];
    assert.deepEqual(lengths(chunks), lengths(chunkBuffer(data, SMALL)));
  });

  test('same seed gives the same boundaries; different seeds (and default) give different ones', () => {
    const data = xorshift32Bytes(0xabcdef, 1024 * 1024);
    const ends = (gear: Uint32Array | undefined): string =>
      chunkBoundaries(data, SMALL, gear).join(',');
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (a, b) => {
          fc.pre(!Buffer.from(a).equals(Buffer.from(b)));
          const ga = gearFromSeed(a);
          assert.deepEqual(ga, gearFromSeed(Uint8Array.from(a)));
          assert.equal(ends(ga), ends(gearFromSeed(Uint8Array.from(a))));
          assert.notEqual(ends(ga), ends(gearFromSeed(b)));
          assert.notEqual(ends(ga), ends(undefined));
        },
      ),
      { numRuns: 10 },
    );
  });

  test('gearFromSeed rejects seeds that are not 32 bytes', () => {
    assert.throws(() => gearFromSeed(new Uint8Array(16)), /exactly 32 bytes/);
    assert.throws(() => gearFromSeed(new Uint8Array(33)), /exactly 32 bytes/);
    assert.throws(() => gearFromSeed('x'.repeat(32) as unknown as Uint8Array), /Uint8Array/);
  });

  test('a malformed gear table is rejected', () => {
    assert.throws(() => new Chunker(SMALL, new Uint32Array(255)), /256 entries/);
    assert.throws(
      () => chunkBuffer(new Uint8Array(1), SMALL, [1, 2, 3] as unknown as Uint32Array),
      /Uint32Array/,
    );
  });
});

describe('params validation and masks', () => {
  test('defaults are valid and masks are the documented values', () => {
    validateChunkingParams(DEFAULT_CHUNKING);
    assert.deepEqual(chunkingMasks(DEFAULT_CHUNKING), { maskS: 0xfffffc00, maskL: 0xffffc000 });
    assert.deepEqual(chunkingMasks(SMALL), { maskS: 0xfffe0000, maskL: 0xffe00000 });
  });

  test('nonsense params throw plain Errors with a clear message', () => {
    const bad: [unknown, RegExp][] = [
      [null, /must be an object/],
      [{ minSize: 1024, avgSize: 4096 }, /maxSize must be an integer/],
      [{ minSize: 1.5, avgSize: 4096, maxSize: 8192 }, /minSize must be an integer/],
      [{ minSize: '1024', avgSize: 4096, maxSize: 8192 }, /minSize must be an integer/],
      [{ minSize: 1024, avgSize: 5000, maxSize: 8192 }, /power of two/],
      [
        { minSize: 4096, avgSize: 4096, maxSize: 8192 },
        /minSize \(4096\) must be smaller than avgSize/,
      ],
      [
        { minSize: 5000, avgSize: 4096, maxSize: 8192 },
        /minSize \(5000\) must be smaller than avgSize/,
      ],
      [
        { minSize: 1024, avgSize: 4096, maxSize: 4096 },
        /avgSize \(4096\) must be smaller than maxSize/,
      ],
      [{ minSize: 10, avgSize: 4096, maxSize: 8192 }, /at least 64/],
      [{ minSize: 64, avgSize: 128, maxSize: 8192 }, /between 256 and/],
      [{ minSize: 1024, avgSize: 2 ** 29, maxSize: 2 ** 30 }, /between 256 and/],
      [{ minSize: 1024, avgSize: 2 ** 28, maxSize: 2 ** 31 }, /at most/],
      [{ minSize: -1, avgSize: 4096, maxSize: 8192 }, /at least 64/],
    ];
    for (const [p, re] of bad) {
      assert.throws(
        () => validateChunkingParams(p as ChunkingParams),
        (err: unknown) => err instanceof Error && err.constructor === Error && re.test(err.message),
        `expected ${JSON.stringify(p)} to be rejected with ${re}`,
      );
      assert.throws(() => new Chunker(p as ChunkingParams), re);
    }
  });

  test('chunkStream validates params immediately, before iteration', () => {
    assert.throws(
      () => chunkStream(asAsync([]), { minSize: 1, avgSize: 3, maxSize: 2 }),
      /at least 64/,
    );
  });
});

describe('streaming behaviour', () => {
  test('Chunker does not retain the caller\u2019s buffer between pushes', () => {
    const data = xorshift32Bytes(21, 200_000);
    const expected = chunkBuffer(data, SMALL).map((c) => Buffer.from(c));
    const chunker = new Chunker(SMALL);
    const reused = new Uint8Array(1000);
    const got: Buffer[] = [];
    for (let off = 0; off < data.length; off += reused.length) {
      const piece = data.subarray(off, off + reused.length);
      reused.set(piece);
      got.push(...chunker.push(reused.subarray(0, piece.length)));
      reused.fill(0xee); // the caller scribbles over its read buffer straight away
    }
    got.push(...chunker.finish());
    assert.equal(got.length, expected.length);
    got.forEach((c, k) => assert.ok(c.equals(expected[k]!), `chunk ${k} differs`));
  });

  test('a Chunker can be reused after finish()', () => {
    const a = xorshift32Bytes(31, 100_000);
    const b = xorshift32Bytes(32, 100_000);
    const chunker = new Chunker(SMALL);
    chunker.push(a.subarray(0, 50_000));
    chunker.finish();
    const chunks = [...chunker.push(b), ...chunker.finish()];
    assert.deepEqual(lengths(chunks), lengths(chunkBuffer(b, SMALL)));
  });

  test('chunkStream over fs.createReadStream matches chunkBuffer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mediagit-chunking-'));
    try {
      const data = xorshift32Bytes(41, 2 * 1024 * 1024 + 17);
      const file = join(dir, 'blob.bin');
      writeFileSync(file, data);
      const streamed = await collect(
        chunkStream(createReadStream(file, { highWaterMark: 10_007 }), SMALL),
      );
      assert.deepEqual(lengths(streamed), lengths(chunkBuffer(data, SMALL)));
      assert.ok(Buffer.concat(streamed).equals(data));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('chunkStream rejects text chunks with a hint about encodings', async () => {
    const source = asAsync(['not bytes' as unknown as Uint8Array]);
    await assert.rejects(collect(chunkStream(source, SMALL)), /encoding/);
  });

  test('breaking out of chunkStream early closes the source', async () => {
    let closed = false;
    async function* source(): AsyncGenerator<Uint8Array> {
      try {
        for (let k = 0; ; k++) {
          await Promise.resolve();
          yield xorshift32Bytes(k + 1, 50_000);
        }
      } finally {
        closed = true;
      }
    }
    let n = 0;
    for await (const chunk of chunkStream(source(), SMALL)) {
      n += chunk.length > 0 ? 1 : 0;
      if (n === 3) break;
    }
    assert.equal(closed, true);
  });
});
