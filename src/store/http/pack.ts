/**
 * The pack format of docs/protocol.md: many small stored envelopes in one request body.
 *
 *   "MGPK" | u8 version = 1 | u32 record count
 *   count × { u8 kind (1 chunk … 5 tag) | 32-byte OID | u32 length | length bytes }
 *
 * Integers are big-endian, like the envelope header. Records carry the envelope bytes exactly as
 * stored; a pack says nothing about their validity, which the receiver checks per record.
 */
import { KIND_CODES, kindFromCode, type ObjectKind } from '../object-kinds.js';

export const PACK_MAGIC = Buffer.from('MGPK', 'latin1');
export const PACK_VERSION = 1;
export const PACK_HEADER_SIZE = 9;
export const PACK_RECORD_HEADER_SIZE = 1 + 32 + 4;

const OID_PATTERN = /^[0-9a-f]{64}$/;

export interface PackRecord {
  readonly kind: ObjectKind;
  readonly oid: string;
  readonly data: Uint8Array;
}

/** The store key a record lives under: chunks by themselves, every other kind under objects/. */
export function packRecordKey(record: Pick<PackRecord, 'kind' | 'oid'>): string {
  return `${record.kind === 'chunk' ? 'chunks' : 'objects'}/${record.oid}`;
}

/** Bytes a pack of these records occupies. */
export function packSize(records: readonly Pick<PackRecord, 'data'>[]): number {
  return records.reduce(
    (n, r) => n + PACK_RECORD_HEADER_SIZE + r.data.byteLength,
    PACK_HEADER_SIZE,
  );
}

export function encodePack(records: readonly PackRecord[]): Buffer {
  return Buffer.concat(encodePackPieces(records));
}

/**
 * A pack as the pieces a request writes one after another: the record headers (one allocation
 * for all of them) between the records' own bytes, which are not copied. Joining a pack first
 * copied every byte of a push once more on the client, and faulted in a fresh 4 MiB per pack.
 */
export function encodePackPieces(records: readonly PackRecord[]): Buffer[] {
  const headers = Buffer.allocUnsafe(PACK_HEADER_SIZE + PACK_RECORD_HEADER_SIZE * records.length);
  PACK_MAGIC.copy(headers, 0);
  headers.writeUInt8(PACK_VERSION, 4);
  headers.writeUInt32BE(records.length, 5);
  const pieces: Buffer[] = [];
  // The pack's header travels with the first record's.
  let from = 0;
  let at = PACK_HEADER_SIZE;
  for (const record of records) {
    if (!OID_PATTERN.test(record.oid))
      throw new TypeError(`pack record with an invalid OID: ${record.oid.slice(0, 80)}`);
    if (record.data.byteLength > 0xffff_ffff) throw new RangeError('pack record over 4 GiB');
    headers.writeUInt8(KIND_CODES[record.kind], at);
    headers.write(record.oid, at + 1, 32, 'hex');
    headers.writeUInt32BE(record.data.byteLength, at + 33);
    at += PACK_RECORD_HEADER_SIZE;
    pieces.push(headers.subarray(from, at));
    from = at;
    const { buffer, byteOffset, byteLength } = record.data;
    if (byteLength > 0) pieces.push(Buffer.from(buffer, byteOffset, byteLength));
  }
  if (records.length === 0) pieces.push(headers);
  return pieces;
}

/** Thrown for a pack that does not parse; the message names the defect and its offset. */
export class PackFormatError extends Error {
  override readonly name = 'PackFormatError';
}

/**
 * Parses a whole pack. Record data are views into `pack` (no copies). Any defect — bad magic,
 * unknown version or kind, a length running past the end, trailing bytes — throws PackFormatError.
 */
export function decodePack(pack: Buffer): PackRecord[] {
  return decodeRecords(pack, false);
}

/**
 * The complete records at the start of a pack that was cut off at a size limit: a record running
 * past the end is where the cut fell, not a defect, and is left out with everything after it.
 * Every other defect throws PackFormatError as in decodePack.
 */
export function decodePackPrefix(pack: Buffer): PackRecord[] {
  if (pack.length < PACK_HEADER_SIZE) return [];
  return decodeRecords(pack, true);
}

function decodeRecords(pack: Buffer, prefix: boolean): PackRecord[] {
  if (pack.length < PACK_HEADER_SIZE)
    throw new PackFormatError(`pack of ${pack.length} bytes is shorter than its header`);
  if (!pack.subarray(0, 4).equals(PACK_MAGIC)) throw new PackFormatError('bad pack magic');
  const version = pack.readUInt8(4);
  if (version !== PACK_VERSION) throw new PackFormatError(`unsupported pack version ${version}`);
  const count = pack.readUInt32BE(5);
  // Each record needs at least its header: a count the body cannot hold is a lie, not a reason to allocate.
  if (!prefix && count > (pack.length - PACK_HEADER_SIZE) / PACK_RECORD_HEADER_SIZE)
    throw new PackFormatError(`pack claims ${count} records but has ${pack.length} bytes`);
  const records: PackRecord[] = [];
  let at = PACK_HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    if (at + PACK_RECORD_HEADER_SIZE > pack.length) {
      if (prefix) return records;
      throw new PackFormatError(`record ${i} header truncated at byte ${at}`);
    }
    const code = pack.readUInt8(at);
    const kind = kindFromCode(code);
    if (kind === undefined) throw new PackFormatError(`record ${i} has unknown kind ${code}`);
    const oid = pack.toString('hex', at + 1, at + 33);
    const length = pack.readUInt32BE(at + 33);
    const start = at + PACK_RECORD_HEADER_SIZE;
    if (start + length > pack.length) {
      if (prefix) return records;
      throw new PackFormatError(`record ${i} (${oid}) runs past the end of the pack`);
    }
    records.push({ kind, oid, data: pack.subarray(start, start + length) });
    at = start + length;
  }
  if (at !== pack.length)
    throw new PackFormatError(`${pack.length - at} bytes after the last record`);
  return records;
}
