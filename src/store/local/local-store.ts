import { open, readFile, readdir, rename, stat, unlink, mkdir } from 'node:fs/promises';
import { existsSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { NotFoundError } from '../../errors/index.js';
import { LockFile, ensureDir, fsyncDir, isErrno, tempName, writeThroughTemp, writeThroughTempSync } from '../../util/fs.js';
import { assertValidKey, assertValidRefName, type ListedKey, type RefValue, type Store } from '../store.js';

export interface LocalStoreOptions {
  /** fsync every object before renaming it into place. Off trades crash durability for speed. */
  fsync?: boolean;
}

/**
 * A store in a plain folder (the repository's own `.mediagit/`, a NAS path, a `file://` remote).
 * Layout: `chunks/ab/<62 hex>`, `objects/ab/<62 hex>`, `keys/<name>`, `refs/heads/<name>`;
 * temporary files live in `tmp/` so a crash leaves debris only there, where `gc` sweeps it.
 */
export class LocalStore implements Store {
  readonly description: string;
  private readonly fsync: boolean;
  private readonly createdDirs = new Set<string>();

  constructor(readonly root: string, options: LocalStoreOptions = {}) {
    this.description = root;
    this.fsync = options.fsync ?? true;
  }

  /** Creates the folder skeleton; safe to call on an existing store. */
  async initialize(): Promise<void> {
    for (const dir of ['chunks', 'objects', 'keys', 'meta', 'refs/heads', 'refs/tags', 'tmp']) await ensureDir(join(this.root, dir));
  }

  pathOf(key: string): string {
    assertValidKey(key);
    const slash = key.indexOf('/');
    const ns = key.slice(0, slash);
    const name = key.slice(slash + 1);
    if (ns === 'chunks' || ns === 'objects') return join(this.root, ns, name.slice(0, 2), name.slice(2));
    return join(this.root, ns, name);
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.pathOf(key));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(key);
      throw err;
    }
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const path = this.pathOf(key);
    if (await fileExists(path)) return;
    const dir = dirname(path);
    if (!this.createdDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.createdDirs.add(dir);
    }
    // Temporary files live in tmp/, where a crash leaves debris that gc sweeps, never beside objects.
    await writeThroughTemp(path, { tempDir: join(this.root, 'tmp'), mode: 0o444, fsync: this.fsync }, (handle) => handle.writeFile(data));
  }

  /**
   * put for a thread that may block (the chunk workers): same layout, same temp → fsync → rename,
   * the bytes given as pieces written with one writev. False when the object was already there.
   */
  putPartsSync(key: string, parts: readonly Uint8Array[]): boolean {
    const path = this.pathOf(key);
    if (existsSync(path)) return false;
    const dir = dirname(path);
    if (!this.createdDirs.has(dir)) {
      mkdirSync(dir, { recursive: true });
      this.createdDirs.add(dir);
    }
    writeThroughTempSync(path, { tempDir: join(this.root, 'tmp'), mode: 0o444, fsync: this.fsync }, parts);
    return true;
  }

  hasSync(key: string): boolean {
    return existsSync(this.pathOf(key));
  }

  /** Stored size of one object (progress totals); rejects with NotFoundError when absent. */
  async statSize(key: string): Promise<number> {
    try {
      return (await stat(this.pathOf(key))).size;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(key);
      throw err;
    }
  }

  async has(keys: readonly string[]): Promise<boolean[]> {
    return Promise.all(keys.map((key) => fileExists(this.pathOf(key))));
  }

  async *list(prefix: string): AsyncIterable<ListedKey> {
    for await (const key of this.listKeys(prefix)) {
      const info = await stat(this.pathOf(key)).catch((err: unknown) => {
        if (isErrno(err, 'ENOENT')) return null;
        throw err;
      });
      if (info) yield { key, size: info.size };
    }
  }

  private async *listKeys(prefix: string): AsyncIterable<string> {
    for (const ns of ['chunks', 'objects', 'keys', 'meta']) {
      if (!(ns + '/').startsWith(prefix) && !prefix.startsWith(ns + '/')) continue;
      const base = join(this.root, ns);
      const fanned = ns === 'chunks' || ns === 'objects';
      for (const entry of await readdirOrEmpty(base)) {
        if (!fanned) {
          const key = `${ns}/${entry}`;
          if (key.startsWith(prefix) && !entry.startsWith('.')) yield key;
          continue;
        }
        if (!/^[0-9a-f]{2}$/.test(entry)) continue;
        if (!`${ns}/${entry}`.startsWith(prefix.slice(0, ns.length + 3))) continue;
        for (const rest of await readdirOrEmpty(join(base, entry))) {
          const key = `${ns}/${entry}${rest}`;
          if (/^[0-9a-f]{62}$/.test(rest) && key.startsWith(prefix)) yield key;
        }
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.pathOf(key));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
  }

  private refPath(name: string): string {
    assertValidRefName(name);
    return join(this.root, ...name.split('/'));
  }

  async readRef(name: string): Promise<RefValue | null> {
    let text: string;
    try {
      text = await readFile(this.refPath(name), 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'EISDIR') || isErrno(err, 'ENOTDIR')) return null;
      throw err;
    }
    const oid = text.trim();
    return { oid, version: oid };
  }

  async compareAndSwapRef(name: string, expected: RefValue | null, next: string | null): Promise<boolean> {
    const path = this.refPath(name);
    await ensureDir(dirname(path));
    const lock = await LockFile.acquire(`${path}.lock`, { what: `ref ${name}` });
    try {
      const current = await this.readRef(name);
      if ((current?.oid ?? null) !== (expected?.oid ?? null)) return false;
      if (next === null) {
        await unlink(path).catch((err: unknown) => {
          if (!isErrno(err, 'ENOENT')) throw err;
        });
        return true;
      }
      const tmp = tempName(dirname(path), 'ref');
      const handle = await open(tmp, 'wx', 0o644);
      try {
        await handle.writeFile(`${next}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, path);
      await fsyncDir(dirname(path));
      return true;
    } finally {
      await lock.release();
    }
  }

  async listRefs(prefix: string): Promise<Map<string, RefValue>> {
    const refs = new Map<string, RefValue>();
    const walk = async (dir: string, name: string): Promise<void> => {
      for (const entry of await readdirOrEmpty(dir, true)) {
        if (typeof entry === 'string' || entry.name.startsWith('.') || entry.name.endsWith('.lock')) continue;
        const child = `${name}/${entry.name}`;
        if (entry.isDirectory()) await walk(join(dir, entry.name), child);
        else if (child.startsWith(prefix)) {
          const value = await this.readRef(child);
          if (value) refs.set(child, value);
        }
      }
    };
    await walk(join(this.root, 'refs'), 'refs');
    return refs;
  }

  async close(): Promise<void> {}
}

async function fileExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]>;
async function readdirOrEmpty(dir: string, withTypes: true): Promise<import('node:fs').Dirent[]>;
async function readdirOrEmpty(dir: string, withTypes?: true): Promise<string[] | import('node:fs').Dirent[]> {
  try {
    return withTypes ? await readdir(dir, { withFileTypes: true }) : await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return [];
    throw err;
  }
}
