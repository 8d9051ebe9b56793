import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  chunkBoundaries,
  chunkingMasks,
  CutFinder,
  DEFAULT_CHUNKING,
  defaultGear,
  gearFromSeed,
  type ChunkingParams,
} from '../../../src/chunking/index.js';
import { endsOf, referenceChunkLengths, repoRoot, xorshift32Bytes } from './helpers.js';

/** Small params so that every edge (min, avg, max) is reached within a few KiB. */
const TINY: ChunkingParams = Object.freeze({ minSize: 64, avgSize: 256, maxSize: 1024 });

/** Whether `buffer` is WebAssembly memory: unlike ordinary buffers it cannot be detached. */
function isWasmMemory(buffer: Uint8Array): boolean {
  try {
    structuredClone(buffer.buffer, { transfer: [buffer.buffer as ArrayBuffer] });
    return false;
  } catch {
    return true;
  }
}

/** A CutFinder and its window (WebAssembly memory), reused across runs as a reader reuses them. */
function finderWithWindow(
  params: ChunkingParams,
  windowBytes: number,
  gear?: Uint32Array,
): { finder: CutFinder; window: Buffer } {
  const finder = new CutFinder(params, gear);
  const window = finder.window(windowBytes);
  assert.ok(window.length >= windowBytes);
  assert.ok(isWasmMemory(window), 'the window is WebAssembly memory');
  return { finder, window };
}

/**
 * The boundaries the finder finds when `data` is read into its window in reads of the given
 * sizes, the unfinished chunk moved to the front before each refill, as the add pipeline's
 * reader does. The window must be longer than maxSize.
 */
function windowedEnds(
  { finder, window }: { finder: CutFinder; window: Buffer },
  data: Uint8Array,
  reads: readonly number[],
): number[] {
  finder.reset();
  const ends: number[] = [];
  let consumed = 0;
  let base = 0;
  let start = 0;
  let scanned = 0;
  let filled = 0;
  for (let r = 0; ; r++) {
    const n = Math.min(reads[r % reads.length]!, window.length - filled, data.length - consumed);
    window.set(data.subarray(consumed, consumed + n), filled);
    consumed += n;
    filled += n;
    const view = window.subarray(0, filled);
    for (let cut = finder.find(view, start, scanned); cut >= 0;) {
      ends.push(base + cut);
      start = scanned = cut;
      cut = finder.find(view, start, scanned);
    }
    scanned = filled;
    if (n === 0) {
      if (start < filled) ends.push(base + filled);
      return ends;
    }
    window.copyWithin(0, start, filled);
    base += start;
    filled -= start;
    scanned -= start;
    start = 0;
  }
}

/** The plain JavaScript scan over an ordinary buffer: the reference the window must agree with. */
const plainEnds = (data: Uint8Array, params: ChunkingParams, gear?: Uint32Array): number[] =>
  chunkBoundaries(Buffer.from(data), params, gear);

describe('CutFinder windows in WebAssembly memory', () => {
  test('a CutFinder window is WebAssembly memory, not an ordinary buffer', () => {
    finderWithWindow(TINY, 4096);
    assert.equal(isWasmMemory(Buffer.allocUnsafeSlow(4096)), false);
  });

  test('random data, random params and read sizes: the same boundaries as the JavaScript scan and the spec', () => {
    const paramsArb: fc.Arbitrary<ChunkingParams> = fc.integer({ min: 8, max: 14 }).chain((bits) =>
      fc.record({
        minSize: fc.integer({ min: 64, max: 2 ** bits - 1 }),
        avgSize: fc.constant(2 ** bits),
        maxSize: fc.integer({ min: 2 ** bits + 1, max: 2 ** (bits + 3) }),
      }),
    );
    fc.assert(
      fc.property(
        paramsArb,
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.integer({ min: 0, max: 400_000 }),
        fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        (params, seed, length, reads, keyed) => {
          const data = xorshift32Bytes(seed, length);
          const gear = keyed ? gearFromSeed(Buffer.alloc(32, seed & 0xff)) : undefined;
          const expected = plainEnds(data, params, gear);
          const reader = finderWithWindow(params, params.maxSize + Math.max(...reads), gear);
          assert.deepEqual(windowedEnds(reader, data, reads), expected);
          assert.deepEqual(
            expected,
            endsOf(referenceChunkLengths(data, params, gear ?? defaultGear())),
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  test('default params on 24 MiB: the same boundaries as the JavaScript scan', () => {
    const data = xorshift32Bytes(2026, 24 * 1024 * 1024);
    // Zero runs make hard cuts at maxSize, both inside a read and across one.
    data.fill(0, 3_000_000, 12_000_000);
    const expected = plainEnds(data, DEFAULT_CHUNKING);
    assert.ok(expected.some((end, k) => end - (expected[k - 1] ?? 0) === DEFAULT_CHUNKING.maxSize));
    const reader = finderWithWindow(DEFAULT_CHUNKING, DEFAULT_CHUNKING.maxSize + 4 * 1024 * 1024);
    assert.deepEqual(windowedEnds(reader, data, [4 * 1024 * 1024]), expected);
    assert.deepEqual(windowedEnds(reader, data, [1_000_003, 65_536]), expected);
  });

  test('tiny inputs: every length from 0 to 3 × maxSize + 5', () => {
    const data = xorshift32Bytes(99, 3 * TINY.maxSize + 5);
    const reader = finderWithWindow(TINY, 2 * TINY.maxSize);
    for (let length = 0; length <= data.length; length++) {
      const input = data.subarray(0, length);
      assert.deepEqual(
        windowedEnds(reader, input, [TINY.maxSize]),
        plainEnds(input, TINY),
        `${length}`,
      );
    }
  });

  test('every split of the stream into two reads, and every read size, finds the same boundaries', () => {
    const data = xorshift32Bytes(7, 6 * TINY.maxSize);
    data.fill(0, 2 * TINY.maxSize, 4 * TINY.maxSize);
    const expected = plainEnds(data, TINY);
    const reader = finderWithWindow(TINY, 5 * TINY.maxSize);
    for (let split = 0; split <= data.length; split++) {
      // A first read of `split` bytes, then the rest in reads as big as the window allows.
      assert.deepEqual(
        windowedEnds(reader, data, [split || 1, 4 * TINY.maxSize]),
        expected,
        `${split}`,
      );
    }
    for (let read = 1; read <= 2 * TINY.maxSize; read++)
      assert.deepEqual(windowedEnds(reader, data, [read]), expected, `reads of ${read}`);
  });

  test('cuts at exactly minSize + 1, avgSize, avgSize + 1, maxSize - 1 and maxSize', () => {
    const { maskS, maskL } = chunkingMasks(TINY);
    const meets = (h: number, length: number): boolean =>
      (h & (length <= TINY.avgSize ? maskS : maskL)) === 0;
    // A keyed table under which zeros never cut and some byte cuts at the first hashed position
    // (true of about one seed in five), so every edge below can be built.
    const usable = (gear: Uint32Array): boolean =>
      referenceChunkLengths(new Uint8Array(2 * TINY.maxSize), TINY, gear).every(
        (l) => l === TINY.maxSize,
      ) && gear.some((g) => meets(g, TINY.minSize + 1));
    let seed = 0;
    while (!usable(gearFromSeed(Buffer.alloc(32, seed)))) seed++;
    const gear = gearFromSeed(Buffer.alloc(32, seed));
    const reader = finderWithWindow(TINY, 2 * TINY.maxSize, gear);
    const tail = xorshift32Bytes(5, 3 * TINY.maxSize);
    for (const want of [TINY.minSize + 1, TINY.avgSize, TINY.avgSize + 1, TINY.maxSize - 1]) {
      // Random unhashed bytes, zeros (no cut), then the last one or two bytes chosen to cut
      // exactly at `want` and not one byte earlier.
      const chunk = Buffer.concat([
        xorshift32Bytes(want, TINY.minSize),
        Buffer.alloc(want - TINY.minSize),
      ]);
      let h = 0;
      for (let k = TINY.minSize; k < want - 2; k++) h = ((h << 1) + gear[0]!) | 0;
      let done = false;
      for (let x = 0; x < 256 && !done; x++) {
        const h1 = ((h << 1) + gear[x]!) | 0;
        if (want > TINY.minSize + 1 && meets(h1, want - 1)) continue;
        for (let y = 0; y < 256 && !done; y++) {
          const last = want === TINY.minSize + 1 ? gear[y]! | 0 : ((h1 << 1) + gear[y]!) | 0;
          if (!meets(last, want)) continue;
          if (want > TINY.minSize + 1) chunk[want - 2] = x;
          chunk[want - 1] = y;
          done = true;
        }
      }
      assert.ok(done, `a cut at ${want} can be built`);
      const data = Buffer.concat([chunk, tail]);
      const expected = plainEnds(data, TINY, gear);
      assert.equal(expected[0], want);
      assert.deepEqual(expected, endsOf(referenceChunkLengths(data, TINY, gear)));
      for (const reads of [[TINY.maxSize], [want - 1, 7], [want], [want + 1], [1], [3]])
        assert.deepEqual(windowedEnds(reader, data, reads), expected, `${want} ${reads.join()}`);
    }
    // maxSize: zeros never meet either mask under the default table, every chunk is a hard cut.
    const zeros = new Uint8Array(5 * TINY.maxSize + 3);
    const expected = plainEnds(zeros, TINY);
    assert.deepEqual(expected, [1, 2, 3, 4, 5].map((k) => k * TINY.maxSize).concat(zeros.length));
    const plain = finderWithWindow(TINY, 2 * TINY.maxSize);
    for (const reads of [[TINY.maxSize], [TINY.maxSize - 1], [3]])
      assert.deepEqual(windowedEnds(plain, zeros, reads), expected);
  });

  test('views of an earlier window, or of any other buffer, still get the same boundaries', () => {
    const finder = new CutFinder(TINY);
    const first = finder.window(8 * TINY.maxSize);
    finder.window(8 * TINY.maxSize);
    const data = xorshift32Bytes(3, 8 * TINY.maxSize);
    first.set(data);
    const ends: number[] = [];
    for (let start = 0; start < data.length;) {
      const cut = finder.find(first, start, start);
      start = cut < 0 ? data.length : cut;
      ends.push(start);
      finder.reset();
    }
    assert.deepEqual(ends, plainEnds(data, TINY));
  });

  test('the committed module is what scripts/gen-gear-scan.mjs assembles from its listing', () => {
    execFileSync(process.execPath, [join(repoRoot(), 'scripts', 'gen-gear-scan.mjs'), '--check'], {
      stdio: 'pipe',
    });
  });
});
