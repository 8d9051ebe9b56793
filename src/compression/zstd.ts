import {
  constants,
  zstdCompress,
  zstdCompressSync,
  zstdDecompress,
  zstdDecompressSync,
  type ZstdOptions,
} from 'node:zlib';

/** Codec byte in the stored envelope (docs/format.md). Never renumber. */
export const Codec = { raw: 0, zstd: 1 } as const;
export type CodecId = (typeof Codec)[keyof typeof Codec];

/**
 * zstd's fastest level. On the media corpus of `npm run bench` level 3 stored 1.2 % less (522 vs
 * 528 MB of 602 MiB) for a third more compression time; media repositories are dominated by
 * already-compressed or barely compressible data, so the faster level is the better default.
 * `core.compression_level` picks another per repository.
 */
export const DEFAULT_ZSTD_LEVEL = 1;
/** A chunk is stored compressed only when that saves at least this fraction. */
export const MIN_SAVINGS = 0.03;

export interface Encoded {
  readonly codec: CodecId;
  readonly payload: Buffer;
}

/**
 * zstd through node:zlib's asynchronous API, which runs on libuv's thread pool: compression of
 * several chunks proceeds on every core while the main thread keeps chunking and hashing.
 */
export function zstd(data: Uint8Array, level: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    zstdCompress(data, compressOptions(data.length, level), (err, out) =>
      err ? reject(err) : resolve(out),
    ),
  );
}

export function unzstd(data: Uint8Array, expectedLength: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    zstdDecompress(data, decompressOptions(expectedLength), (err, out) =>
      err ? reject(err) : resolve(out),
    ),
  );
}

/** Compresses unless told not to or unless it does not pay; falls back to raw per chunk. */
export async function encodePayload(
  data: Buffer,
  options: { level: number; skip: boolean },
): Promise<Encoded> {
  return worthTrying(data, options)
    ? keepIfSmaller(data, await zstd(data, options.level))
    : raw(data);
}

/** encodePayload for threads that may block (the chunk workers): same decisions, same bytes. */
export function encodePayloadSync(
  data: Buffer,
  options: { level: number; skip: boolean },
): Encoded {
  return worthTrying(data, options)
    ? keepIfSmaller(data, zstdCompressSync(data, compressOptions(data.length, options.level)))
    : raw(data);
}

function worthTrying(data: Buffer, options: { level: number; skip: boolean }): boolean {
  return !options.skip && data.length >= 64 && options.level > 0;
}

const raw = (data: Buffer): Encoded => ({ codec: Codec.raw, payload: data });

function keepIfSmaller(data: Buffer, packed: Buffer): Encoded {
  return packed.length > data.length * (1 - MIN_SAVINGS)
    ? raw(data)
    : { codec: Codec.zstd, payload: packed };
}

/**
 * One output buffer big enough for the worst case (zstd's compress bound): the whole chunk is a
 * single job; the default 16 KiB would bounce to the main thread per 16 KiB.
 */
function compressOptions(length: number, level: number): ZstdOptions {
  return {
    chunkSize: compressBound(length),
    params: { [constants.ZSTD_c_compressionLevel]: level },
  };
}

/**
 * maxOutputLength stops a crafted object from inflating without bound; an output buffer one byte
 * longer than the expected length decodes in one job (exactly that length, and node:zlib, seeing
 * it full, allocates a second one that is never used).
 */
function decompressOptions(expectedLength: number): ZstdOptions {
  const limit = Math.max(expectedLength, 1);
  return { maxOutputLength: limit, chunkSize: Math.max(limit + 1, 64) };
}

/** zstd's worst case for `length` input bytes, with slack: one output buffer, one pass. */
function compressBound(length: number): number {
  return length + (length >> 7) + 1024;
}

export async function decodePayload(
  codec: number,
  payload: Buffer,
  plainLength: number,
): Promise<Buffer> {
  if (codec === Codec.raw) return payload;
  if (codec === Codec.zstd) return unzstd(payload, plainLength);
  throw new Error(`unknown codec ${codec}`);
}

/** decodePayload for threads that may block; the same limits. */
export function decodePayloadSync(codec: number, payload: Buffer, plainLength: number): Buffer {
  if (codec === Codec.raw) return payload;
  if (codec === Codec.zstd) return zstdDecompressSync(payload, decompressOptions(plainLength));
  throw new Error(`unknown codec ${codec}`);
}
