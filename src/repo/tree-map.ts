import type { ObjectDatabase, Oid, TreeEntry } from '../objects/index.js';

export type FileType = 'file' | 'exec';

export interface FileRecord {
  readonly type: FileType;
  /** Manifest OID. */
  readonly oid: Oid;
  readonly size: number;
}

/** A snapshot flattened to "posix/relative/path" → file. Folders are implied by paths. */
export type FileMap = Map<string, FileRecord>;

export async function flattenTree(
  odb: ObjectDatabase,
  treeOid: Oid | null,
  prefix = '',
  out: FileMap = new Map(),
): Promise<FileMap> {
  if (treeOid === null) return out;
  const entries = await odb.readTree(treeOid);
  const subtrees: Promise<FileMap>[] = [];
  for (const entry of entries) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.type === 'dir') subtrees.push(flattenTree(odb, entry.oid, path, out));
    else out.set(path, { type: entry.type, oid: entry.oid, size: entry.size });
  }
  await Promise.all(subtrees);
  return out;
}

interface DirNode {
  files: Map<string, FileRecord>;
  dirs: Map<string, DirNode>;
}

/** Writes the trees for a flat snapshot bottom-up and returns the root tree's OID. */
export async function writeTreeFromMap(
  odb: ObjectDatabase,
  files: Iterable<[string, FileRecord]>,
): Promise<Oid> {
  const root: DirNode = { files: new Map(), dirs: new Map() };
  for (const [path, record] of files) {
    const parts = path.split('/');
    let node = root;
    for (const dir of parts.slice(0, -1)) {
      let child = node.dirs.get(dir);
      if (!child) {
        child = { files: new Map(), dirs: new Map() };
        node.dirs.set(dir, child);
      }
      node = child;
    }
    node.files.set(parts[parts.length - 1]!, record);
  }
  const write = async (node: DirNode): Promise<{ oid: Oid; size: number }> => {
    const entries: TreeEntry[] = [];
    let size = 0;
    // Sibling folders are written concurrently: each tree write waits on its own fsync.
    const subtrees = await Promise.all(
      [...node.dirs].map(async ([name, child]) => ({ name, ...(await write(child)) })),
    );
    for (const sub of subtrees) {
      entries.push({ name: sub.name, type: 'dir', oid: sub.oid, size: sub.size });
      size += sub.size;
    }
    for (const [name, record] of node.files) {
      entries.push({ name, type: record.type, oid: record.oid, size: record.size });
      size += record.size;
    }
    const result = await odb.writeTree(entries);
    return { oid: result.oid, size };
  };
  return (await write(root)).oid;
}

export type ChangeStatus = 'A' | 'M' | 'D' | 'T';

export interface Change {
  readonly path: string;
  readonly status: ChangeStatus;
  readonly before: FileRecord | null;
  readonly after: FileRecord | null;
}

/** Differences between two snapshots, sorted by path. `T` is a mode-only change (exec bit). */
export function diffMaps(before: FileMap, after: FileMap): Change[] {
  const changes: Change[] = [];
  for (const [path, a] of before) {
    const b = after.get(path);
    if (!b) changes.push({ path, status: 'D', before: a, after: null });
    else if (a.oid !== b.oid) changes.push({ path, status: 'M', before: a, after: b });
    else if (a.type !== b.type) changes.push({ path, status: 'T', before: a, after: b });
  }
  for (const [path, b] of after)
    if (!before.has(path)) changes.push({ path, status: 'A', before: null, after: b });
  return changes.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}
