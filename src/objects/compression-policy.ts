import { Codec, isPrecompressed, zstd, zstdSync, type CodecId } from '../compression/index.js';
import type { ObjectKind } from './kinds.js';

/**
 * Which objects are stored compressed: every decision in one place, for the object database and
 * the chunk workers alike (docs/format.md, "Compression"). The codec byte in each envelope records
 * the outcome, so readers never depend on these rules and they may change at any time.
 */

/** An object is stored compressed only when that saves at least this fraction. */
export const MIN_SAVINGS = 0.03;
/** Manifests, trees, commits and tags shorter than this are stored raw. */
export const STRUCTURED_RAW_BELOW = 512;
/** Below this, zstd's frame overhead leaves nothing to save. */
const TRY_FROM_BYTES = 64;

export interface Encoded {
  readonly codec: CodecId;
  readonly payload: Buffer;
}

export interface EncodeOptions {
  /** zstd level; 0 stores everything raw (`core.compression_level`). */
  readonly level: number;
  /** Whether the caller's per-file policy already said not to try (CompressionPolicy.skip). */
  readonly skip: boolean;
}

/** Compresses unless told not to or unless it does not pay; falls back to raw per object. */
export async function encodePayload(
  kind: ObjectKind,
  data: Buffer,
  options: EncodeOptions,
): Promise<Encoded> {
  return worthTrying(kind, data, options)
    ? keepIfSmaller(data, await zstd(data, options.level))
    : raw(data);
}

/** encodePayload for threads that may block (the chunk workers): same decisions, same bytes. */
export function encodePayloadSync(kind: ObjectKind, data: Buffer, options: EncodeOptions): Encoded {
  return worthTrying(kind, data, options)
    ? keepIfSmaller(data, zstdSync(data, options.level))
    : raw(data);
}

function worthTrying(kind: ObjectKind, data: Buffer, options: EncodeOptions): boolean {
  if (options.skip || options.level <= 0 || data.length < TRY_FROM_BYTES) return false;
  return kind === 'chunk' || data.length >= STRUCTURED_RAW_BELOW;
}

const raw = (data: Buffer): Encoded => ({ codec: Codec.raw, payload: data });

function keepIfSmaller(data: Buffer, packed: Buffer): Encoded {
  return packed.length > data.length * (1 - MIN_SAVINGS)
    ? raw(data)
    : { codec: Codec.zstd, payload: packed };
}

/**
 * Per file: whether to try zstd on the next chunk. Known-compressed formats are skipped from the
 * first chunk's magic bytes or the name; otherwise, media files being homogeneous, once two chunks
 * in a row refused to compress the rest of the file will too.
 */
export class CompressionPolicy {
  private precompressed: boolean | undefined;
  private incompressibleRun = 0;

  constructor(private readonly path: string) {}

  /** Whether the chunk starting with `head` should be stored without trying zstd. */
  skip(head: Uint8Array): boolean {
    this.precompressed ??= isPrecompressed(this.path, head.subarray(0, 64));
    return this.precompressed || this.incompressibleRun >= 2;
  }

  /** What happened to a chunk zstd was tried on (ignored for chunks already stored). */
  record(outcome: { written: boolean; compressed: boolean }, skipped: boolean): void {
    if (outcome.written && !skipped)
      this.incompressibleRun = outcome.compressed ? 0 : this.incompressibleRun + 1;
  }
}
