/**
 * Chunk-size parameters and the judgement masks derived from them. The exact derivation is part of
 * the on-disk format (it decides where boundaries fall), so it is specified in docs/chunking.md and
 * must not change without a new format version.
 */

export interface ChunkingParams {
  /** No chunk except the last of a stream is shorter than this; also the number of bytes skipped unhashed at the start of each chunk. */
  minSize: number;
  /** Target size. Must be a power of two: it defines the masks. */
  avgSize: number;
  /** Hard cut: no chunk is longer than this. */
  maxSize: number;
}

export const DEFAULT_CHUNKING: ChunkingParams = Object.freeze({
  minSize: 256 * 1024,
  avgSize: 1024 * 1024,
  maxSize: 4 * 1024 * 1024,
});

/** Below this the 32-byte gear window and the bits-2 "easy" mask stop making sense. */
export const MIN_MIN_SIZE = 64;
export const MIN_AVG_SIZE = 256;
/**
 * The hash is 32 bits and the strict mask uses log2(avg)+2 of them; 2^28 keeps that at 30 bits.
 * The 1 GiB ceiling on maxSize keeps a single chunk comfortably inside one Buffer.
 */
export const MAX_AVG_SIZE = 2 ** 28;
export const MAX_MAX_SIZE = 2 ** 30;

/**
 * Normalization level (FastCDC "NC level"): the strict mask has log2(avg)+NC bits, the easy one
 * log2(avg)-NC. Level 2 is the paper's recommended trade-off between size spread and dedup ratio.
 */
export const NORMALIZATION_LEVEL = 2;

function describe(v: unknown): string {
  return typeof v === 'number' ? String(v) : `${typeof v} ${JSON.stringify(v)}`;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 2 ** 30;
}

/** Throws a plain Error describing the first problem found; returns normally when the params are usable. */
export function validateChunkingParams(p: ChunkingParams): void {
  if (typeof p !== 'object' || p === null) {
    throw new Error(
      `chunking params must be an object with minSize, avgSize and maxSize, got ${describe(p)}`,
    );
  }
  for (const key of ['minSize', 'avgSize', 'maxSize'] as const) {
    const v: unknown = p[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
      throw new Error(`chunking ${key} must be an integer number of bytes, got ${describe(v)}`);
    }
  }
  const { minSize, avgSize, maxSize } = p;
  if (minSize < MIN_MIN_SIZE) {
    throw new Error(`chunking minSize must be at least ${MIN_MIN_SIZE} bytes, got ${minSize}`);
  }
  if (!isPowerOfTwo(avgSize)) {
    throw new Error(
      `chunking avgSize must be a power of two (it defines the cut masks), got ${avgSize}`,
    );
  }
  if (avgSize < MIN_AVG_SIZE || avgSize > MAX_AVG_SIZE) {
    throw new Error(
      `chunking avgSize must be between ${MIN_AVG_SIZE} and ${MAX_AVG_SIZE} bytes, got ${avgSize}`,
    );
  }
  if (minSize >= avgSize) {
    throw new Error(`chunking minSize (${minSize}) must be smaller than avgSize (${avgSize})`);
  }
  if (avgSize >= maxSize) {
    throw new Error(`chunking avgSize (${avgSize}) must be smaller than maxSize (${maxSize})`);
  }
  if (maxSize > MAX_MAX_SIZE) {
    throw new Error(
      `chunking maxSize must be at most ${MAX_MAX_SIZE} bytes (1 GiB), got ${maxSize}`,
    );
  }
}

export interface ChunkingMasks {
  /** Strict mask, used while the chunk is no longer than avgSize. Unsigned 32-bit value. */
  maskS: number;
  /** Easy mask, used once the chunk is longer than avgSize. Unsigned 32-bit value. */
  maskL: number;
}

/**
 * The masks are the top k bits of the 32-bit hash. With h = (h << 1) + gear[b], bit j of h depends
 * only on the last j+1 bytes, so the highest bits are the ones that see the full 32-byte window;
 * taking a contiguous run from bit 31 down gives every mask the widest window available, which is
 * what FastCDC's spread-out 64-bit masks are trying to approximate.
 */
export function chunkingMasks(p: ChunkingParams): ChunkingMasks {
  validateChunkingParams(p);
  const bits = Math.log2(p.avgSize);
  return {
    maskS: topBits(bits + NORMALIZATION_LEVEL),
    maskL: topBits(bits - NORMALIZATION_LEVEL),
  };
}

function topBits(k: number): number {
  return (0xffffffff - (2 ** (32 - k) - 1)) >>> 0;
}
