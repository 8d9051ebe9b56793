import { treeNameProblem } from './names.js';
import { isOid, oidFromBytes, oidToBytes, type Oid } from './oid.js';

export type EntryType = 'file' | 'exec' | 'dir';

export interface TreeEntry {
  readonly name: string;
  readonly type: EntryType;
  /** Manifest OID for files, tree OID for folders. */
  readonly oid: Oid;
  /** Logical bytes: the file's size, or the sum over a folder's files. */
  readonly size: number;
}

const MAGIC = Buffer.from('MGTR', 'latin1');
const VERSION = 1;
const TYPE_CODES: Readonly<Record<EntryType, number>> = { file: 1, exec: 2, dir: 3 };
const TYPES_BY_CODE: readonly (EntryType | undefined)[] = [undefined, 'file', 'exec', 'dir'];

export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Canonical bytes: "MGTR" | u8 version=1 | u32be count | count × (u8 type | u16be name length |
 * UTF-8 name | 32-byte OID | u64be size), entries in strictly ascending byte order of name.
 */
export function encodeTree(entries: readonly TreeEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => compareNames(a.name, b.name));
  const parts: Buffer[] = [];
  const header = Buffer.alloc(9);
  MAGIC.copy(header, 0);
  header.writeUInt8(VERSION, 4);
  header.writeUInt32BE(sorted.length, 5);
  parts.push(header);
  let previous: string | undefined;
  for (const entry of sorted) {
    const problem = treeNameProblem(entry.name);
    if (problem !== null) throw new Error(`unsafe name ${JSON.stringify(entry.name)}: ${problem}`);
    if (previous === entry.name) throw new Error(`duplicate name in tree: ${entry.name}`);
    previous = entry.name;
    if (!isOid(entry.oid)) throw new Error(`bad OID for ${entry.name}`);
    if (!Number.isSafeInteger(entry.size) || entry.size < 0)
      throw new Error(`bad size for ${entry.name}`);
    const name = Buffer.from(entry.name, 'utf8');
    const fixed = Buffer.alloc(3);
    fixed.writeUInt8(TYPE_CODES[entry.type], 0);
    fixed.writeUInt16BE(name.length, 1);
    const tail = Buffer.alloc(40);
    oidToBytes(entry.oid).copy(tail, 0);
    tail.writeBigUInt64BE(BigInt(entry.size), 32);
    parts.push(fixed, name, tail);
  }
  return Buffer.concat(parts);
}

/** Parses and validates canonical bytes: unsafe names, bad order or duplicates are defects. */
export function decodeTree(bytes: Buffer): TreeEntry[] {
  if (bytes.length < 9 || !bytes.subarray(0, 4).equals(MAGIC)) throw new Error('not a tree');
  if (bytes.readUInt8(4) !== VERSION)
    throw new Error(`unsupported tree version ${bytes.readUInt8(4)}`);
  const count = bytes.readUInt32BE(5);
  const entries: TreeEntry[] = [];
  let offset = 9;
  let previous: Buffer | undefined;
  for (let i = 0; i < count; i++) {
    if (offset + 3 > bytes.length) throw new Error('tree is truncated');
    const type = TYPES_BY_CODE[bytes.readUInt8(offset)];
    if (type === undefined) throw new Error(`unknown entry type ${bytes.readUInt8(offset)}`);
    const nameLength = bytes.readUInt16BE(offset + 1);
    offset += 3;
    if (offset + nameLength + 40 > bytes.length) throw new Error('tree is truncated');
    const nameBytes = bytes.subarray(offset, offset + nameLength);
    const name = nameBytes.toString('utf8');
    if (!Buffer.from(name, 'utf8').equals(nameBytes))
      throw new Error('tree entry name is not valid UTF-8');
    const problem = treeNameProblem(name);
    if (problem !== null) throw new Error(`unsafe name ${JSON.stringify(name)}: ${problem}`);
    if (previous && Buffer.compare(previous, nameBytes) >= 0)
      throw new Error('tree entries are not in strictly ascending order');
    previous = nameBytes;
    offset += nameLength;
    const oid = oidFromBytes(bytes.subarray(offset, offset + 32));
    const size = bytes.readBigUInt64BE(offset + 32);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('tree entry size out of range');
    offset += 40;
    entries.push({ name, type, oid, size: Number(size) });
  }
  if (offset !== bytes.length) throw new Error('trailing bytes after tree entries');
  return entries;
}
