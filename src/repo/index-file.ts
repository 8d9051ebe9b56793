import type { BigIntStats } from 'node:fs';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ObjectCorruptError } from '../errors/index.js';
import { isOid, type Oid } from '../objects/index.js';
import { fsyncDir, isErrno, tempName } from '../util/fs.js';
import type { FileType } from './tree-map.js';

/** One staged file: what it contains, plus the stat data that lets `status` skip reading it. */
export interface IndexEntry {
  readonly path: string;
  readonly type: FileType;
  /** Manifest OID of the staged content. */
  readonly oid: Oid;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly ino: bigint;
}

export interface ConflictSide {
  readonly type: FileType;
  readonly oid: Oid;
  readonly size: number;
}

/** A path left unmerged by `merge`; `add` or `rm` resolves it. */
export interface Conflict {
  readonly path: string;
  readonly base: ConflictSide | null;
  readonly ours: ConflictSide | null;
  readonly theirs: ConflictSide | null;
}

interface IndexJson {
  version: 1;
  entries: [string, FileType, string, number, string, string][];
  conflicts: Conflict[];
  /** See Index.tree; absent when unknown. */
  tree?: string;
}

/** The entries, noting whether any path's content (manifest or type) changed since it was reset. */
class EntryMap extends Map<string, IndexEntry> {
  contentChanged = false;

  override set(path: string, entry: IndexEntry): this {
    const before = this.get(path);
    if (before?.oid !== entry.oid || before.type !== entry.type) this.contentChanged = true;
    return super.set(path, entry);
  }

  override delete(path: string): boolean {
    const had = super.delete(path);
    if (had) this.contentChanged = true;
    return had;
  }

  override clear(): void {
    if (this.size > 0) this.contentChanged = true;
    super.clear();
  }
}

/**
 * The staging area, stored as JSON in `.mediagit/index` and replaced atomically. Callers that
 * modify it hold `.mediagit/index.lock` (Repository.updateIndex).
 */
export class Index {
  private readonly entryMap = new EntryMap();
  readonly entries: Map<string, IndexEntry> = this.entryMap;
  readonly conflicts = new Map<string, Conflict>();
  /** mtime of the index file when it was read: entries modified at or after it may be racily clean. */
  loadedMtimeNs = 0n;
  private recordedTree: Oid | null = null;

  /**
   * A tree whose files are exactly the entries (paths, types, manifests), when known: `commit`
   * records the tree it just wrote, and any change to an entry's content or any conflict forgets
   * it. `status` then knows nothing is staged without reading HEAD's tree (git's cache-tree, for
   * the whole tree only).
   */
  get tree(): Oid | null {
    return this.recordedTree !== null && !this.entryMap.contentChanged && this.conflicts.size === 0
      ? this.recordedTree
      : null;
  }

  /** Records that the entries, as they are now, are exactly `tree`'s files. */
  recordTree(tree: Oid): void {
    this.recordedTree = tree;
    this.entryMap.contentChanged = false;
  }

  static async load(path: string): Promise<Index> {
    const index = new Index();
    let text: string;
    let info: BigIntStats;
    try {
      [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path, { bigint: true })]);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return index;
      throw err;
    }
    index.loadedMtimeNs = info.mtimeNs;
    let json: IndexJson;
    try {
      json = JSON.parse(text) as IndexJson;
      if (json.version !== 1 || !Array.isArray(json.entries))
        throw new Error('unknown index version');
      for (const [p, type, oid, size, mtime, ino] of json.entries) {
        if (!isOid(oid) || (type !== 'file' && type !== 'exec')) throw new Error(`bad entry ${p}`);
        index.entries.set(p, {
          path: p,
          type,
          oid,
          size,
          mtimeNs: BigInt(mtime),
          ino: BigInt(ino),
        });
      }
      for (const c of json.conflicts ?? []) index.conflicts.set(c.path, c);
      if (json.tree !== undefined) {
        if (typeof json.tree !== 'string' || !isOid(json.tree)) throw new Error('bad tree');
        index.recordTree(json.tree);
      }
    } catch (err) {
      throw new ObjectCorruptError('index', err instanceof Error ? err.message : String(err), {
        hint: "restore it with 'mediagit reset' (keeps your files) after moving .mediagit/index aside",
      });
    }
    return index;
  }

  private serialize(): string {
    const json: IndexJson = {
      version: 1,
      entries: [...this.entries.values()]
        .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
        .map((e) => [e.path, e.type, e.oid, e.size, e.mtimeNs.toString(), e.ino.toString()]),
      conflicts: [...this.conflicts.values()],
    };
    const tree = this.tree;
    if (tree !== null) json.tree = tree;
    return JSON.stringify(json);
  }

  /**
   * Atomic replace (temp, fsync, rename). Entries whose file mtime is not older than the new index
   * file are "racily clean": the file could change again within the same timestamp tick without
   * its stat changing. Like git, such entries are smudged (mtime 0) so the next status hashes them.
   */
  async save(path: string): Promise<void> {
    const tmp = tempName(dirname(path), 'index');
    const handle = await open(tmp, 'wx', 0o644);
    try {
      await handle.writeFile(this.serialize());
      const written = (await handle.stat({ bigint: true })).mtimeNs;
      let smudged = 0;
      for (const [p, e] of this.entries) {
        if (e.mtimeNs !== 0n && e.mtimeNs >= written) {
          this.entries.set(p, { ...e, mtimeNs: 0n });
          smudged++;
        }
      }
      if (smudged > 0) {
        await handle.truncate(0);
        await handle.write(this.serialize(), 0);
      }
      await handle.sync();
    } catch (err) {
      await handle.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await handle.close();
    await rename(tmp, path);
    await fsyncDir(dirname(path));
  }

  /** True when the file's stat data proves it still holds the staged content. */
  matchesStat(entry: IndexEntry, info: BigIntStats): boolean {
    if (
      BigInt(entry.size) !== info.size ||
      entry.mtimeNs !== info.mtimeNs ||
      entry.ino !== info.ino
    )
      return false;
    if (entry.type !== modeToType(info.mode)) return false;
    // Racy clean: modified in the same instant the index was written; only the content can tell.
    return this.loadedMtimeNs === 0n || entry.mtimeNs < this.loadedMtimeNs;
  }
}

export function modeToType(mode: number | bigint): FileType {
  return (BigInt(mode) & 0o111n) !== 0n ? 'exec' : 'file';
}
