/**
 * Packs (docs/protocol.md "Packs"), the server's side: decoding an uploaded pack, and writing a
 * pack as a stream of pieces so a fetch of thousands of objects never sits in memory at once.
 *
 *   "MGPK" | u8 version = 1 | u32 record count (big-endian)
 *   count × { u8 kind (1 chunk … 5 tag) | 32-byte OID | u32 length | length bytes: the stored envelope }
 */
import { KIND_CODES, kindFromCode, type ObjectKind } from '../objects/index.js';
import { badRequest } from './errors.js';

const MAGIC = Buffer.from('MGPK', 'latin1');
const VERSION = 1;
const HEADER_SIZE = 9;
const RECORD_HEADER_SIZE = 1 + 32 + 4;

export interface PackEntry {
  readonly kind: ObjectKind;
  readonly oid: string;
  /** A view into the pack body. */
  readonly data: Buffer;
}

/** Store key of a record: chunks under `chunks/`, every other kind under `objects/`. */
export function entryKey(entry: Pick<PackEntry, 'kind' | 'oid'>): string {
  return `${entry.kind === 'chunk' ? 'chunks' : 'objects'}/${entry.oid}`;
}

/** Parses a whole pack; any structural defect is a 400 naming it. */
export function decodePack(pack: Buffer): PackEntry[] {
  if (pack.length < HEADER_SIZE || !pack.subarray(0, 4).equals(MAGIC))
    throw badRequest('not a pack (bad magic or too short)');
  const version = pack.readUInt8(4);
  if (version !== VERSION) throw badRequest(`unsupported pack version ${version}`);
  const count = pack.readUInt32BE(5);
  if (count > (pack.length - HEADER_SIZE) / RECORD_HEADER_SIZE)
    throw badRequest(`the pack claims ${count} records but holds ${pack.length} bytes`);
  const entries: PackEntry[] = [];
  let at = HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    if (at + RECORD_HEADER_SIZE > pack.length) throw badRequest(`pack record ${i} is truncated`);
    const kind = kindFromCode(pack.readUInt8(at));
    if (kind === undefined)
      throw badRequest(`pack record ${i} has unknown kind ${pack.readUInt8(at)}`);
    const oid = pack.toString('hex', at + 1, at + 33);
    const length = pack.readUInt32BE(at + 33);
    const start = at + RECORD_HEADER_SIZE;
    if (start + length > pack.length)
      throw badRequest(`pack record ${i} runs past the end of the pack`);
    entries.push({ kind, oid, data: pack.subarray(start, start + length) });
    at = start + length;
  }
  if (at !== pack.length) throw badRequest(`${pack.length - at} bytes after the last pack record`);
  return entries;
}

export function packHeader(count: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE);
  MAGIC.copy(out, 0);
  out.writeUInt8(VERSION, 4);
  out.writeUInt32BE(count, 5);
  return out;
}

export function recordHeader(kind: ObjectKind, oid: string, length: number): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_SIZE);
  out.writeUInt8(KIND_CODES[kind], 0);
  out.write(oid, 1, 32, 'hex');
  out.writeUInt32BE(length, 33);
  return out;
}
