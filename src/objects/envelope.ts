import { KIND_CODES, kindFromCode, type ObjectKind } from './kinds.js';

export const ENVELOPE_MAGIC = Buffer.from('MGOB', 'latin1');
export const ENVELOPE_VERSION = 1;
export const ENVELOPE_HEADER_SIZE = 16;
/** Cipher byte: 0 = none. Encrypted repositories use other values (docs/encryption.md). */
export const CIPHER_NONE = 0;
/** Cipher byte of objects sealed with AES-256-GCM (docs/encryption.md). */
export const CIPHER_AES_256_GCM = 1;

export interface EnvelopeHeader {
  readonly version: number;
  readonly kind: ObjectKind;
  readonly codec: number;
  readonly cipher: number;
  readonly plainLength: number;
}

/**
 * Stored form of every object: "MGOB" | u8 version=1 | u8 kind | u8 codec | u8 cipher |
 * u64be length of the object's canonical bytes | payload (those bytes after the codec).
 */
export function encodeEnvelope(
  kind: ObjectKind,
  codec: number,
  plainLength: number,
  payload: Uint8Array,
  cipher = CIPHER_NONE,
): Buffer {
  const out = Buffer.allocUnsafe(ENVELOPE_HEADER_SIZE + payload.length);
  writeEnvelopeHeader(out, kind, codec, plainLength, cipher);
  out.set(payload, ENVELOPE_HEADER_SIZE);
  return out;
}

export function writeEnvelopeHeader(
  out: Buffer,
  kind: ObjectKind,
  codec: number,
  plainLength: number,
  cipher = CIPHER_NONE,
): void {
  ENVELOPE_MAGIC.copy(out, 0);
  out.writeUInt8(ENVELOPE_VERSION, 4);
  out.writeUInt8(KIND_CODES[kind], 5);
  out.writeUInt8(codec, 6);
  out.writeUInt8(cipher, 7);
  out.writeBigUInt64BE(BigInt(plainLength), 8);
}

/** Parses the header; throws a plain Error naming the defect. */
export function decodeEnvelopeHeader(stored: Buffer): EnvelopeHeader {
  if (stored.length < ENVELOPE_HEADER_SIZE)
    throw new Error(`truncated: ${stored.length} bytes is shorter than the envelope header`);
  if (!stored.subarray(0, 4).equals(ENVELOPE_MAGIC)) throw new Error('bad envelope magic');
  const version = stored.readUInt8(4);
  if (version !== ENVELOPE_VERSION) throw new Error(`unsupported envelope version ${version}`);
  const kind = kindFromCode(stored.readUInt8(5));
  if (kind === undefined) throw new Error(`unknown object kind ${stored.readUInt8(5)}`);
  const plainLength = stored.readBigUInt64BE(8);
  if (plainLength > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('length out of range');
  return {
    version,
    kind,
    codec: stored.readUInt8(6),
    cipher: stored.readUInt8(7),
    plainLength: Number(plainLength),
  };
}
