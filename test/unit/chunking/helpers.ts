/** Shared test utilities for the chunking tests (no tests here). */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chunkingMasks, type ChunkingParams } from '../../../src/chunking/index.js';

export const SMALL: ChunkingParams = Object.freeze({
  minSize: 2 * 1024,
  avgSize: 8 * 1024,
  maxSize: 32 * 1024,
});

/**
 * The xorshift32 byte stream specified in docs/chunking.md (Marsaglia 13/17/5, each state emitted
 * as 4 little-endian bytes, a trailing partial word truncated). Test vectors depend on it exactly.
 */
export function xorshift32Bytes(seed: number, length: number): Uint8Array {
  if (!Number.isInteger(seed) || seed <= 0 || seed > 0xffffffff)
    throw new Error(`xorshift32 seed must be a non-zero u32, got ${seed}`);
  const out = new Uint8Array(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
    if (i + 1 < length) out[i + 1] = (x >>> 8) & 0xff;
    if (i + 2 < length) out[i + 2] = (x >>> 16) & 0xff;
    if (i + 3 < length) out[i + 3] = x >>> 24;
  }
  return out;
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function lengths(chunks: readonly Uint8Array[]): number[] {
  return chunks.map((c) => c.length);
}

/** Exclusive end offsets of the chunks, the form chunkBoundaries returns. */
export function endsOf(chunkLengths: readonly number[]): number[] {
  let acc = 0;
  return chunkLengths.map((l) => (acc += l));
}

/** Splits data at the given (unsorted, possibly repeated) positions; empty pieces included on purpose. */
export function splitAt(data: Uint8Array, positions: readonly number[]): Uint8Array[] {
  const cuts = [...positions]
    .map((p) => Math.max(0, Math.min(data.length, p)))
    .sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let prev = 0;
  for (const c of cuts) {
    pieces.push(data.subarray(prev, c));
    prev = c;
  }
  pieces.push(data.subarray(prev));
  return pieces;
}

/** Yields each piece on a later microtask, as a real stream would, rather than synchronously. */
export async function* asAsync(pieces: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (const p of pieces) {
    await Promise.resolve();
    yield p;
  }
}

export async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const c of it) out.push(c);
  return out;
}

/**
 * A deliberately naive transcription of the cut rule in docs/chunking.md — float arithmetic, one
 * byte per step, no skipping tricks — so the optimized scanner is checked against the spec rather
 * than against itself. Returns chunk lengths.
 */
export function referenceChunkLengths(
  data: Uint8Array,
  p: ChunkingParams,
  gear: Uint32Array,
): number[] {
  const { maskS, maskL } = chunkingMasks(p);
  const TWO32 = 2 ** 32;
  const out: number[] = [];
  let start = 0;
  while (start < data.length) {
    let h = 0;
    let cut = data.length - start;
    for (let j = start; j < data.length; j++) {
      const len = j - start + 1;
      if (len > p.minSize) {
        h = (h * 2 + gear[data[j]!]!) % TWO32;
        const mask = len <= p.avgSize ? maskS : maskL;
        if ((h & mask) === 0) {
          cut = len;
          break;
        }
      }
      if (len === p.maxSize) {
        cut = len;
        break;
      }
    }
    out.push(cut);
    start += cut;
  }
  return out;
}

/** The repository root, found by walking up from this compiled file to the directory holding package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'fixtures'))) return dir;
    const up = dirname(dir);
    if (up === dir)
      throw new Error('could not find the repository root (package.json + fixtures/)');
    dir = up;
  }
}
