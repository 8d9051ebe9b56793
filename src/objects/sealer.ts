import { webcrypto } from 'node:crypto';
import {
  CIPHER_NONE,
  ENVELOPE_HEADER_SIZE,
  decodeEnvelopeHeader,
  encodeEnvelope,
  writeEnvelopeHeader,
} from './envelope.js';
import type { ObjectKind } from './kinds.js';
import { sha256Hex, sha256HexOfPieces, type Oid } from './oid.js';

/** A stored object's payload after authentication: still codec-encoded. */
export interface Unsealed {
  readonly codec: number;
  readonly plainLength: number;
  readonly payload: Buffer;
}

/** Unsealed, with the payload left in the consecutive pieces a cipher produced (see openPieces). */
export interface UnsealedPieces {
  readonly codec: number;
  readonly plainLength: number;
  readonly pieces: Buffer[];
}

/**
 * How objects are named and wrapped at rest. Plain repositories name objects by SHA-256 and store
 * the payload as is; encrypted ones (src/crypto) key the names and seal the payload. Everything
 * above the object database is the same for both.
 */
export interface ObjectSealer {
  readonly encrypted: boolean;
  /** Gear table for chunking; undefined = the public default table. */
  readonly gear: Uint32Array | undefined;
  oidOf(kind: ObjectKind, canonical: Uint8Array): Oid;
  /** oidOf of the concatenation of `pieces`, without joining them. */
  oidOfPieces(kind: ObjectKind, pieces: readonly Uint8Array[]): Oid;
  /** Same as oidOf, computed on the thread pool so the main thread can keep chunking. */
  oidOfAsync(kind: ObjectKind, canonical: Uint8Array): Promise<Oid>;
  seal(kind: ObjectKind, oid: Oid, codec: number, plainLength: number, payload: Buffer): Buffer;
  /** seal's bytes as pieces in order, so a writer can writev them without joining (no copy of the payload). */
  sealParts(
    kind: ObjectKind,
    oid: Oid,
    codec: number,
    plainLength: number,
    payload: Buffer,
  ): Buffer[];
  /** Authenticates and unwraps; throws a plain Error naming the defect. */
  open(kind: ObjectKind, oid: Oid, stored: Buffer): Unsealed;
  /**
   * open, with the payload as consecutive pieces: views of `stored`, or memory of the caller's own
   * to release. A raw payload can then be hashed and written (writev) without ever being joined;
   * a compressed one comes in one piece from both sealers, as zstd reads one buffer.
   */
  openPieces(kind: ObjectKind, oid: Oid, stored: Buffer): UnsealedPieces;
  /** seal, with any cipher work on the thread pool (the object database's hot path). */
  sealAsync(
    kind: ObjectKind,
    oid: Oid,
    codec: number,
    plainLength: number,
    payload: Buffer,
  ): Promise<Buffer>;
  /** open, with any cipher work on the thread pool. */
  openAsync(kind: ObjectKind, oid: Oid, stored: Buffer): Promise<Unsealed>;
}

export const plainSealer: ObjectSealer = {
  encrypted: false,
  gear: undefined,
  oidOf: (_kind, canonical) => sha256Hex(canonical),
  oidOfPieces: (_kind, pieces) => sha256HexOfPieces(pieces),
  oidOfAsync: async (_kind, canonical) =>
    Buffer.from(await webcrypto.subtle.digest('SHA-256', canonical)).toString('hex'),
  seal: (kind, _oid, codec, plainLength, payload) =>
    encodeEnvelope(kind, codec, plainLength, payload),
  sealParts: (kind, _oid, codec, plainLength, payload) => {
    const header = Buffer.allocUnsafe(ENVELOPE_HEADER_SIZE);
    writeEnvelopeHeader(header, kind, codec, plainLength);
    return [header, payload];
  },
  open: openPlain,
  openPieces: (kind, oid, stored) => {
    const { codec, plainLength, payload } = openPlain(kind, oid, stored);
    return { codec, plainLength, pieces: [payload] };
  },
  sealAsync: async (kind, _oid, codec, plainLength, payload) =>
    encodeEnvelope(kind, codec, plainLength, payload),
  openAsync: async (kind, oid, stored) => openPlain(kind, oid, stored),
};

function openPlain(kind: ObjectKind, _oid: Oid, stored: Buffer): Unsealed {
  const header = decodeEnvelopeHeader(stored);
  if (header.kind !== kind) throw new Error(`expected a ${kind}, found a ${header.kind}`);
  if (header.cipher !== CIPHER_NONE)
    throw new Error('object is encrypted but this repository has no key');
  return {
    codec: header.codec,
    plainLength: header.plainLength,
    payload: stored.subarray(ENVELOPE_HEADER_SIZE),
  };
}
