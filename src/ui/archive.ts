/**
 * A folder at a commit as one zip or tar stream: the tree is walked one folder at a time and each
 * file's chunks are sent as they are read, so memory holds the folders on the current path, one
 * chunk, and (for zip) the central directory's few dozen bytes per file.
 *
 * Zip entries are stored (media is compressed already) with UTF-8 names, CRC-32 computed while
 * streaming and given in a data descriptor, and ZIP64 fields wherever a size, an offset or the
 * entry count needs them. Tar is POSIX ustar, with pax headers for long or non-ASCII names and
 * files of 8 GiB or more.
 */
import { crc32 } from 'node:zlib';
import type { Oid } from '../objects/index.js';
import { contentPieces } from './content.js';
import type { RepositoryReader } from './reader.js';

export type ArchiveFormat = 'zip' | 'tar';

interface FileItem {
  readonly path: string;
  readonly oid: Oid;
  readonly size: number;
  readonly executable: boolean;
}

/** Files below `tree`, depth first in name order; only the folders on the current path are held. */
async function* filesBelow(
  reader: RepositoryReader,
  tree: Oid,
  prefix: string,
): AsyncGenerator<FileItem> {
  for (const entry of await reader.readTree(tree)) {
    const path = `${prefix}${entry.name}`;
    if (entry.type === 'dir') yield* filesBelow(reader, entry.oid, `${path}/`);
    else yield { path, oid: entry.oid, size: entry.size, executable: entry.type === 'exec' };
  }
}

export function archivePieces(
  reader: RepositoryReader,
  tree: Oid,
  root: string,
  format: ArchiveFormat,
  mtime: number,
  signal: AbortSignal,
): AsyncGenerator<Buffer> {
  const files = filesBelow(reader, tree, root === '' ? '' : `${root}/`);
  return format === 'zip' ? zip(reader, files, mtime, signal) : tar(reader, files, mtime, signal);
}

async function* fileBytes(
  reader: RepositoryReader,
  file: FileItem,
  signal: AbortSignal,
): AsyncGenerator<Buffer> {
  const manifest = await reader.readManifest(file.oid);
  yield* contentPieces(reader.odb, manifest, null, { signal });
}

// ---- tar ----

const BLOCK = 512;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function tarHeader(name: string, size: number, mode: number, mtime: number, type: string): Buffer {
  const header = Buffer.alloc(BLOCK);
  header.write(name, 0, 100, 'utf8');
  header.write(octal(mode, 8), 100, 'latin1');
  header.write(octal(0, 8), 108, 'latin1');
  header.write(octal(0, 8), 116, 'latin1');
  header.write(octal(size, 12), 124, 'latin1');
  header.write(octal(mtime, 12), 136, 'latin1');
  header.write('        ', 148, 'latin1');
  header.write(type, 156, 'latin1');
  header.write('ustar\0', 257, 'latin1');
  header.write('00', 263, 'latin1');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return header;
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

function paxRecord(key: string, value: string): string {
  // The record's length counts its own decimal digits.
  const body = ` ${key}=${value}\n`;
  const base = Buffer.byteLength(body, 'utf8');
  let length = base + String(base).length;
  if (String(length).length !== String(base).length) length = base + String(length).length;
  return `${length}${body}`;
}

const USTAR_MAX_SIZE = 0o77777777777;

async function* tar(
  reader: RepositoryReader,
  files: AsyncIterable<FileItem>,
  mtime: number,
  signal: AbortSignal,
): AsyncGenerator<Buffer> {
  for await (const file of files) {
    const nameBytes = Buffer.byteLength(file.path, 'utf8');
    const plainName = nameBytes < 100 && /^[\x20-\x7e]*$/.test(file.path);
    if (!plainName || file.size > USTAR_MAX_SIZE) {
      let pax = paxRecord('path', file.path);
      if (file.size > USTAR_MAX_SIZE) pax += paxRecord('size', String(file.size));
      const body = Buffer.from(pax, 'utf8');
      yield tarHeader('PaxHeader', body.length, 0o644, mtime, 'x');
      yield body;
      yield padding(body.length);
    }
    const shortName = plainName ? file.path : file.path.replace(/[^\x20-\x7e]/g, '_').slice(-99);
    const size = file.size > USTAR_MAX_SIZE ? 0 : file.size;
    yield tarHeader(shortName, size, file.executable ? 0o755 : 0o644, mtime, '0');
    yield* fileBytes(reader, file, signal);
    yield padding(file.size);
  }
  yield Buffer.alloc(BLOCK * 2);
}

// ---- zip ----

const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;

interface Central {
  readonly name: Buffer;
  readonly crc: number;
  readonly size: number;
  readonly offset: number;
  readonly executable: boolean;
}

function dosDateTime(seconds: number): { time: number; date: number } {
  const d = new Date(seconds * 1000);
  const year = Math.min(Math.max(d.getUTCFullYear(), 1980), 2107);
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (d.getUTCSeconds() >> 1),
    date: ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

const FLAGS = 0x0808; // bit 3: sizes and CRC follow the data; bit 11: UTF-8 names

async function* zip(
  reader: RepositoryReader,
  files: AsyncIterable<FileItem>,
  mtime: number,
  signal: AbortSignal,
): AsyncGenerator<Buffer> {
  const { time, date } = dosDateTime(mtime);
  const central: Central[] = [];
  let offset = 0;
  for await (const file of files) {
    const name = Buffer.from(file.path, 'utf8');
    const big = file.size >= U32_MAX;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(big ? 45 : 20, 4);
    local.writeUInt16LE(FLAGS, 6);
    local.writeUInt16LE(0, 8);
    local.writeUInt16LE(time, 10);
    local.writeUInt16LE(date, 12);
    local.writeUInt32LE(0, 14);
    local.writeUInt32LE(big ? U32_MAX : 0, 18);
    local.writeUInt32LE(big ? U32_MAX : 0, 22);
    local.writeUInt16LE(name.length, 26);
    const extra = big ? zip64Extra([0, 0]) : Buffer.alloc(0);
    local.writeUInt16LE(extra.length, 28);
    const start = offset;
    yield local;
    yield name;
    yield extra;
    offset += local.length + name.length + extra.length;
    let crc = 0;
    for await (const piece of fileBytes(reader, file, signal)) {
      crc = crc32(piece, crc);
      offset += piece.length;
      yield piece;
    }
    const descriptor = Buffer.alloc(big ? 24 : 16);
    descriptor.writeUInt32LE(0x08074b50, 0);
    descriptor.writeUInt32LE(crc >>> 0, 4);
    if (big) {
      descriptor.writeBigUInt64LE(BigInt(file.size), 8);
      descriptor.writeBigUInt64LE(BigInt(file.size), 16);
    } else {
      descriptor.writeUInt32LE(file.size, 8);
      descriptor.writeUInt32LE(file.size, 12);
    }
    offset += descriptor.length;
    yield descriptor;
    central.push({
      name,
      crc: crc >>> 0,
      size: file.size,
      offset: start,
      executable: file.executable,
    });
  }
  const directoryStart = offset;
  for (const entry of central) {
    const bigSize = entry.size >= U32_MAX;
    const bigOffset = entry.offset >= U32_MAX;
    const fields: number[] = [];
    if (bigSize) fields.push(entry.size, entry.size);
    if (bigOffset) fields.push(entry.offset);
    const extra = fields.length > 0 ? zip64Extra(fields) : Buffer.alloc(0);
    const head = Buffer.alloc(46);
    head.writeUInt32LE(0x02014b50, 0);
    head.writeUInt16LE((3 << 8) | 45, 4);
    head.writeUInt16LE(fields.length > 0 ? 45 : 20, 6);
    head.writeUInt16LE(FLAGS, 8);
    head.writeUInt16LE(0, 10);
    head.writeUInt16LE(time, 12);
    head.writeUInt16LE(date, 14);
    head.writeUInt32LE(entry.crc, 16);
    head.writeUInt32LE(bigSize ? U32_MAX : entry.size, 20);
    head.writeUInt32LE(bigSize ? U32_MAX : entry.size, 24);
    head.writeUInt16LE(entry.name.length, 28);
    head.writeUInt16LE(extra.length, 30);
    head.writeUInt32LE(((entry.executable ? 0o100755 : 0o100644) << 16) >>> 0, 38);
    head.writeUInt32LE(bigOffset ? U32_MAX : entry.offset, 42);
    offset += head.length + entry.name.length + extra.length;
    yield Buffer.concat([head, entry.name, extra]);
  }
  const directorySize = offset - directoryStart;
  const count = central.length;
  const needs64 = count >= U16_MAX || directoryStart >= U32_MAX || directorySize >= U32_MAX;
  if (needs64) {
    const record = Buffer.alloc(56);
    record.writeUInt32LE(0x06064b50, 0);
    record.writeBigUInt64LE(44n, 4);
    record.writeUInt16LE((3 << 8) | 45, 12);
    record.writeUInt16LE(45, 14);
    record.writeBigUInt64LE(BigInt(count), 24);
    record.writeBigUInt64LE(BigInt(count), 32);
    record.writeBigUInt64LE(BigInt(directorySize), 40);
    record.writeBigUInt64LE(BigInt(directoryStart), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset), 8);
    locator.writeUInt32LE(1, 16);
    yield record;
    yield locator;
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Math.min(count, U16_MAX), 8);
  end.writeUInt16LE(Math.min(count, U16_MAX), 10);
  end.writeUInt32LE(Math.min(directorySize, U32_MAX), 12);
  end.writeUInt32LE(Math.min(directoryStart, U32_MAX), 16);
  yield end;
}

function zip64Extra(values: readonly number[]): Buffer {
  const extra = Buffer.alloc(4 + 8 * values.length);
  extra.writeUInt16LE(0x0001, 0);
  extra.writeUInt16LE(8 * values.length, 2);
  values.forEach((v, i) => extra.writeBigUInt64LE(BigInt(v), 4 + 8 * i));
  return extra;
}
