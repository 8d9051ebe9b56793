import { Codec, decodePayload, decodePayloadSync } from '../compression/index.js';
import { ObjectCorruptError } from '../errors/index.js';
import { joinReleasing, releaseMemory } from '../util/memory.js';
import { encodePayload, encodePayloadSync } from './compression-policy.js';
import { EncryptedSealer } from './encrypted-sealer.js';
import type { ObjectKind } from './kinds.js';
import type { Oid } from './oid.js';
import { plainSealer, type ObjectSealer } from './sealer.js';

/** Below this size a thread-pool round trip costs more than hashing in place. */
const ASYNC_HASH_MIN = 64 * 1024;

/** The sealer of a repository: keyed and encrypting given its unlocked master key, plain without. */
export function sealerFor(master: Uint8Array | null): ObjectSealer {
  return master ? new EncryptedSealer(master) : plainSealer;
}

/** An object sealed for a writer that writes pieces (writev) rather than one joined buffer. */
export interface SealedParts {
  /** The stored bytes, in order. */
  readonly parts: Buffer[];
  /** What the codec produced: the canonical bytes themselves when raw, else zstd's own output. */
  readonly payload: Buffer;
  readonly compressed: boolean;
}

/**
 * The one path between an object's canonical bytes and its stored bytes: the compression policy,
 * the codec, and the repository's sealer (plain envelope, or AES-256-GCM) on the way in; opening,
 * decoding, the length check and the ID check on the way out. The object database runs it on the
 * main thread (cipher and zstd work on the thread pool); the chunk workers run the synchronous
 * twins. Both produce and accept the same bytes.
 */
export class ObjectSealing {
  constructor(
    readonly sealer: ObjectSealer,
    readonly compressionLevel: number,
  ) {}

  /**
   * The stored bytes of `plain`, named `oid`. `skipCompression` is the per-file policy's verdict
   * (CompressionPolicy); the rest of the policy (sizes, savings, the level) applies here.
   */
  async seal(
    kind: ObjectKind,
    oid: Oid,
    plain: Buffer,
    skipCompression = false,
  ): Promise<{ stored: Buffer; compressed: boolean }> {
    const encoded = await encodePayload(kind, plain, {
      level: this.compressionLevel,
      skip: skipCompression,
    });
    const stored = await this.sealer.sealAsync(
      kind,
      oid,
      encoded.codec,
      plain.length,
      encoded.payload,
    );
    return { stored, compressed: encoded.codec !== Codec.raw };
  }

  /** seal for threads that may block, as pieces a writer can writev without joining. */
  sealSync(kind: ObjectKind, oid: Oid, plain: Buffer, skipCompression = false): SealedParts {
    const encoded = encodePayloadSync(kind, plain, {
      level: this.compressionLevel,
      skip: skipCompression,
    });
    return {
      parts: this.sealer.sealParts(kind, oid, encoded.codec, plain.length, encoded.payload),
      payload: encoded.payload,
      compressed: encoded.codec !== Codec.raw,
    };
  }

  /** Authenticates, decodes and re-hashes stored bytes; ObjectCorruptError naming `oid` on any defect. */
  async open(kind: ObjectKind, oid: Oid, stored: Buffer): Promise<Buffer> {
    let plain: Buffer;
    try {
      const opened = await this.sealer.openAsync(kind, oid, stored);
      plain = await decodePayload(opened.codec, opened.payload, opened.plainLength);
      checkLength(plain.length, opened.plainLength);
    } catch (err) {
      throw corrupt(oid, err);
    }
    // Hashing on the thread pool: checkout, push and clone verify every chunk, on every core.
    const actual =
      plain.length >= ASYNC_HASH_MIN
        ? await this.sealer.oidOfAsync(kind, plain)
        : this.sealer.oidOf(kind, plain);
    if (actual !== oid) throw new ObjectCorruptError(oid, 'content does not match its ID');
    return plain;
  }

  /**
   * open for threads that may block: the same checks, synchronously. The canonical bytes come
   * back as consecutive pieces, so an encrypted raw chunk goes from the cipher to its hash and to
   * its file without being joined. A piece is a view of `stored` or memory of the caller's own to
   * release.
   */
  openSync(kind: ObjectKind, oid: Oid, stored: Buffer): Buffer[] {
    let pieces: Buffer[];
    try {
      const opened = this.sealer.openPieces(kind, oid, stored);
      if (opened.codec === Codec.raw) pieces = opened.pieces;
      else {
        // zstd reads one buffer; both sealers give a compressed payload in one piece already.
        const payload = joinReleasing(opened.pieces);
        pieces = [decodePayloadSync(opened.codec, payload, opened.plainLength)];
        if (payload.buffer !== stored.buffer) releaseMemory(payload);
      }
      checkLength(
        pieces.reduce((sum, piece) => sum + piece.length, 0),
        opened.plainLength,
      );
    } catch (err) {
      throw corrupt(oid, err);
    }
    if (this.sealer.oidOfPieces(kind, pieces) !== oid)
      throw new ObjectCorruptError(oid, 'content does not match its ID');
    return pieces;
  }
}

function checkLength(decoded: number, expected: number): void {
  if (decoded !== expected) throw new Error(`decoded ${decoded} bytes, header says ${expected}`);
}

function corrupt(oid: Oid, err: unknown): ObjectCorruptError {
  return new ObjectCorruptError(oid, err instanceof Error ? err.message : String(err), {
    cause: err,
  });
}
