import { createHash } from 'node:crypto';

/** An object ID: 64 lowercase hex digits (SHA-256, or HMAC-SHA-256 in encrypted repositories). */
export type Oid = string;

const OID_PATTERN = /^[0-9a-f]{64}$/;

export function isOid(value: string): boolean {
  return OID_PATTERN.test(value);
}

export function sha256Hex(data: Uint8Array): Oid {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256HexOfPieces(pieces: readonly Uint8Array[]): Oid {
  const hash = createHash('sha256');
  for (const piece of pieces) hash.update(piece);
  return hash.digest('hex');
}

export function oidToBytes(oid: Oid): Buffer {
  return Buffer.from(oid, 'hex');
}

export function oidFromBytes(bytes: Uint8Array): Oid {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function shortOid(oid: Oid): string {
  return oid.slice(0, 12);
}
