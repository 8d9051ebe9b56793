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

/** One record of a pack read as it streams in: its envelope in memory of its own. */
export interface PackRecord {
  readonly index: number;
  readonly kind: ObjectKind;
  readonly oid: string;
  /** A fresh buffer owning its memory (transferable to a worker). */
  readonly data: Buffer;
}

/**
 * Parses a pack as its bytes arrive, handing out each record once it is whole, so records can be
 * verified while the rest of the body is still on the wire. Structural defects are the same 400s
 * as decodePack's, found as soon as the bytes show them.
 */
export class PackReader {
  private header: Buffer | null = Buffer.alloc(0);
  private count = 0;
  private seen = 0;
  /** The record being filled: its header bytes, then its envelope. */
  private recordHeader = Buffer.alloc(0);
  private record: { kind: ObjectKind; oid: string; data: Buffer; filled: number } | null = null;
  private received = 0;

  /**
   * `maxLength`: the body's Content-Length, or the endpoint's limit for a chunked body. A record
   * count or record length that cannot fit is refused before memory is set aside for it.
   */
  constructor(private readonly maxLength: number) {}

  /** Bytes received so far. */
  get bytes(): number {
    return this.received;
  }

  /** The records `piece` completes, in order. */
  push(piece: Buffer): PackRecord[] {
    const out: PackRecord[] = [];
    this.received += piece.length;
    let at = 0;
    if (this.header !== null) {
      const need = HEADER_SIZE - this.header.length;
      this.header = Buffer.concat([this.header, piece.subarray(0, need)]);
      at = Math.min(need, piece.length);
      if (this.header.length < HEADER_SIZE) return out;
      this.startPack(this.header);
      this.header = null;
    }
    while (at < piece.length) {
      if (this.seen === this.count)
        throw badRequest(`${piece.length - at} bytes after the last pack record`);
      if (this.record === null) {
        const need = RECORD_HEADER_SIZE - this.recordHeader.length;
        const take = piece.subarray(at, at + need);
        this.recordHeader =
          this.recordHeader.length === 0
            ? Buffer.from(take)
            : Buffer.concat([this.recordHeader, take]);
        at += take.length;
        if (this.recordHeader.length < RECORD_HEADER_SIZE) break;
        this.startRecord(this.recordHeader, this.received - piece.length + at);
        this.recordHeader = Buffer.alloc(0);
      }
      const record = this.record!;
      const take = Math.min(record.data.length - record.filled, piece.length - at);
      piece.copy(record.data, record.filled, at, at + take);
      record.filled += take;
      at += take;
      if (record.filled === record.data.length) {
        out.push({ index: this.seen, kind: record.kind, oid: record.oid, data: record.data });
        this.seen++;
        this.record = null;
      }
    }
    return out;
  }

  /** Throws the 400 of a body that ended before the pack did. */
  finish(): void {
    if (this.header !== null) throw badRequest('not a pack (bad magic or too short)');
    if (this.seen < this.count) throw badRequest(`pack record ${this.seen} is truncated`);
  }

  private startPack(header: Buffer): void {
    if (!header.subarray(0, 4).equals(MAGIC))
      throw badRequest('not a pack (bad magic or too short)');
    const version = header.readUInt8(4);
    if (version !== VERSION) throw badRequest(`unsupported pack version ${version}`);
    this.count = header.readUInt32BE(5);
    const length = this.maxLength;
    if (this.count > (length - HEADER_SIZE) / RECORD_HEADER_SIZE)
      throw badRequest(`the pack claims ${this.count} records but holds ${length} bytes`);
  }

  /** `start`: where the record's envelope begins in the pack. */
  private startRecord(header: Buffer, start: number): void {
    const i = this.seen;
    const kind = kindFromCode(header.readUInt8(0));
    if (kind === undefined)
      throw badRequest(`pack record ${i} has unknown kind ${header.readUInt8(0)}`);
    const length = header.readUInt32BE(33);
    if (start + length > this.maxLength)
      throw badRequest(`pack record ${i} runs past the end of the pack`);
    // Memory of its own (never a slice of Node's pool), so it moves to a worker without a copy.
    this.record = {
      kind,
      oid: header.toString('hex', 1, 33),
      data: Buffer.allocUnsafeSlow(length),
      filled: 0,
    };
  }
}
