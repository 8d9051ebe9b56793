import type { ZstdOptions } from 'node:zlib';

/**
 * node:zlib, taken at the first compression or decompression rather than imported: loading it
 * costs ~1-4 ms of CPU, which a command that neither compresses nor decodes (a status) need not pay.
 */
const zlib = (): typeof import('node:zlib') => process.getBuiltinModule('node:zlib');

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

/**
 * zstd through node:zlib's asynchronous API, which runs on libuv's thread pool: compression of
 * several chunks proceeds on every core while the main thread keeps chunking and hashing.
 */
export function zstd(data: Uint8Array, level: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    zlib().zstdCompress(data, compressOptions(data.length, level), (err, out) =>
      err ? reject(err) : resolve(out),
    ),
  );
}

/** zstd for threads that may block (the chunk workers): the same frame parameters. */
export function zstdSync(data: Uint8Array, level: number): Buffer {
  return zlib().zstdCompressSync(data, compressOptions(data.length, level));
}

/** Decodes one zstd frame; bytes after it are refused (see decodePayload). */
export async function unzstd(data: Uint8Array, expectedLength: number): Promise<Buffer> {
  checkSingleFrame(data);
  return new Promise((resolve, reject) =>
    zlib().zstdDecompress(data, decompressOptions(expectedLength), (err, out) =>
      err ? reject(err) : resolve(out),
    ),
  );
}

/**
 * One output buffer big enough for the worst case (zstd's compress bound): the whole chunk is a
 * single job; the default 16 KiB would bounce to the main thread per 16 KiB.
 */
function compressOptions(length: number, level: number): ZstdOptions {
  return {
    chunkSize: compressBound(length),
    params: { [zlib().constants.ZSTD_c_compressionLevel]: level },
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

/**
 * Decodes a stored payload. A zstd payload must be exactly one frame: node:zlib decodes the first
 * frame and ignores whatever follows it, so bytes appended to a stored object (hidden data, or
 * padding to make a store hold more than it verified) would otherwise pass every check.
 */
export async function decodePayload(
  codec: number,
  payload: Buffer,
  plainLength: number,
): Promise<Buffer> {
  if (codec === Codec.raw) return payload;
  if (codec === Codec.zstd) return unzstd(payload, plainLength);
  throw new Error(`unknown codec ${codec}`);
}

/** decodePayload for threads that may block; the same limits and checks. */
export function decodePayloadSync(codec: number, payload: Buffer, plainLength: number): Buffer {
  if (codec === Codec.raw) return payload;
  if (codec === Codec.zstd) {
    checkSingleFrame(payload);
    return zlib().zstdDecompressSync(payload, decompressOptions(plainLength));
  }
  throw new Error(`unknown codec ${codec}`);
}

const ZSTD_MAGIC = 0xfd2fb528;
const BLOCK_HEADER = 3;
const CHECKSUM = 4;

/** Throws unless `data` is one zstd frame and nothing else. */
function checkSingleFrame(data: Uint8Array): void {
  const length = zstdFrameLength(data);
  if (length !== data.length)
    throw new Error(
      `${data.length - length} bytes after the zstd frame (a payload is exactly one frame)`,
    );
}

/**
 * The length of the zstd frame at the start of `data` (RFC 8878, section 3.1.1), found from the
 * frame header and the block headers alone: nothing is decompressed. Throws when `data` does not
 * start with a whole standard frame (skippable frames included: a writer of ours never makes one).
 */
export function zstdFrameLength(data: Uint8Array): number {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const need = (end: number): void => {
    if (end > data.length) throw new Error('truncated zstd frame');
  };
  need(5);
  if (view.getUint32(0, true) !== ZSTD_MAGIC) throw new Error('not a zstd frame');
  const descriptor = data[4]!;
  if (descriptor & 0x08) throw new Error('zstd frame header has its reserved bit set');
  const singleSegment = (descriptor >> 5) & 1;
  const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6]!;
  const dictionaryBytes = [0, 1, 2, 4][descriptor & 0x03]!;
  let at = 5 + (singleSegment ? 0 : 1) + dictionaryBytes + contentSizeBytes;
  for (;;) {
    need(at + BLOCK_HEADER);
    const header = data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16);
    const type = (header >> 1) & 0x03;
    if (type === 3) throw new Error('zstd block of the reserved type');
    // A run-length block stores its one byte however long the run; raw and compressed blocks
    // store `size` bytes.
    at += BLOCK_HEADER + (type === 1 ? 1 : header >>> 3);
    need(at);
    if (header & 1) break;
  }
  if (descriptor & 0x04) at += CHECKSUM;
  need(at);
  return at;
}
