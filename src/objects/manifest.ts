import { isOid, oidFromBytes, oidToBytes, type Oid } from './oid.js';

export interface ManifestChunk {
  readonly oid: Oid;
  readonly size: number;
}

/** A file's content as an ordered list of chunks. */
export interface Manifest {
  readonly size: number;
  readonly chunks: readonly ManifestChunk[];
}

const MAGIC = Buffer.from('MGMF', 'latin1');
const VERSION = 1;
const HEADER = 4 + 1 + 8 + 4;
const ENTRY = 32 + 4;

/**
 * Canonical bytes: "MGMF" | u8 version=1 | u64be total size | u32be chunk count |
 * count × (32-byte chunk OID | u32be chunk size). Sizes must add up to the total.
 */
export function encodeManifest(manifest: Manifest): Buffer {
  let sum = 0;
  const out = Buffer.allocUnsafe(HEADER + ENTRY * manifest.chunks.length);
  MAGIC.copy(out, 0);
  out.writeUInt8(VERSION, 4);
  out.writeBigUInt64BE(BigInt(manifest.size), 5);
  out.writeUInt32BE(manifest.chunks.length, 13);
  let offset = HEADER;
  for (const chunk of manifest.chunks) {
    if (!isOid(chunk.oid)) throw new TypeError(`bad chunk OID in manifest: ${chunk.oid}`);
    if (!Number.isInteger(chunk.size) || chunk.size <= 0 || chunk.size > 0xffffffff)
      throw new TypeError(`bad chunk size ${chunk.size}`);
    oidToBytes(chunk.oid).copy(out, offset);
    out.writeUInt32BE(chunk.size, offset + 32);
    offset += ENTRY;
    sum += chunk.size;
  }
  if (sum !== manifest.size)
    throw new TypeError(`manifest chunk sizes add up to ${sum}, not ${manifest.size}`);
  return out;
}

/** Parses canonical bytes; throws a plain Error describing the defect (callers wrap it with the OID). */
export function decodeManifest(bytes: Buffer): Manifest {
  if (bytes.length < HEADER || !bytes.subarray(0, 4).equals(MAGIC))
    throw new Error('not a manifest');
  if (bytes.readUInt8(4) !== VERSION)
    throw new Error(`unsupported manifest version ${bytes.readUInt8(4)}`);
  const total = bytes.readBigUInt64BE(5);
  if (total > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('manifest size out of range');
  const count = bytes.readUInt32BE(13);
  if (bytes.length !== HEADER + ENTRY * count)
    throw new Error('manifest length does not match its chunk count');
  const chunks: ManifestChunk[] = [];
  let sum = 0;
  for (let i = 0, offset = HEADER; i < count; i++, offset += ENTRY) {
    const size = bytes.readUInt32BE(offset + 32);
    if (size === 0) throw new Error('zero-size chunk in manifest');
    chunks.push({ oid: oidFromBytes(bytes.subarray(offset, offset + 32)), size });
    sum += size;
  }
  if (sum !== Number(total)) throw new Error('manifest chunk sizes do not add up to its size');
  return { size: Number(total), chunks };
}
