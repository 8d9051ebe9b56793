import { constants as fsConstants, existsSync, mkdirSync } from 'node:fs';
import {
  chmod,
  copyFile,
  link,
  open,
  readdir,
  rename,
  stat,
  unlink,
  mkdir,
} from 'node:fs/promises';
import { basename, join, dirname } from 'node:path';
import { NotFoundError, ObjectCorruptError, RefCorruptError } from '../../errors/index.js';
import {
  LockFile,
  createThroughTemp,
  NotRegularFileError,
  ensureDir,
  fsyncDir,
  isErrno,
  readRegularFile,
  tempName,
  writeThroughTemp,
  writeThroughTempLater,
  writeThroughTempSync,
  type FsyncFd,
} from '../../util/fs.js';
import { mapLimit } from '../../util/limit.js';
import { throwIfAborted } from '../wrappers/operations.js';
import {
  assertCreatableKey,
  assertObjectKey,
  assertValidKey,
  assertValidRefName,
  assertValidRefTarget,
  isValidRefName,
  isValidRefTarget,
  type AdoptResult,
  type ListedKey,
  type LocalObjectFile,
  type OperationOptions,
  type PutOptions,
  type RefValue,
  type Store,
  type StoreCapabilities,
} from '../store.js';

export interface LocalStoreOptions {
  /** fsync every object before renaming it into place. Off trades crash durability for speed. */
  fsync?: boolean;
  /**
   * How `adoptFiles` hard-links a file: `fs.promises.link` unless given. Injectable so tests can
   * simulate a filesystem that refuses links (EXDEV across filesystems, EPERM, EMLINK…).
   */
  link?: (existingPath: string, newPath: string) => Promise<void>;
  /**
   * How putPartsLater makes an object durable: fsync(2) on libuv's thread pool unless given.
   * Injectable so tests can hold or fail it and see that nothing appears before it is done.
   */
  fsyncFd?: FsyncFd;
}

/** Link failures that mean "this link cannot be made here", not "something is wrong": copy instead. */
const LINK_IMPOSSIBLE = new Set(['EXDEV', 'EPERM', 'EMLINK', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);
/** A ref file is an object ID and a newline; anything much larger is not one. */
const MAX_REF_FILE_BYTES = 4096;
/** Files linked, copied or stat'ed at once (each is a libuv pool job). */
const LOCAL_FILE_CONCURRENCY = 8;

/**
 * A store in a plain folder (the repository's own `.mediagit/`, a NAS path, a `file://` remote).
 * Layout: `chunks/ab/<62 hex>`, `objects/ab/<62 hex>`, `keys/<name>`, `refs/heads/<name>`;
 * temporary files live in `tmp/` so a crash leaves debris only there, where `gc` sweeps it.
 */
export class LocalStore implements Store {
  readonly description: string;
  /** Reads are new `readFile` buffers; objects are immutable files that may be lent and linked. */
  readonly capabilities: StoreCapabilities = {
    freshBuffers: true,
    localFiles: {
      lend: (keys, options) => this.localFiles(keys, options),
      adopt: (files, options) => this.adoptFiles(files, options),
    },
  };
  private readonly fsync: boolean;
  private readonly createdDirs = new Set<string>();
  private readonly linkFile: (existingPath: string, newPath: string) => Promise<void>;
  private readonly fsyncFd: FsyncFd | undefined;
  /** Objects putPartsLater has written but not yet put in place, by final path. */
  private readonly landing = new Map<string, Promise<void>>();

  constructor(
    readonly root: string,
    options: LocalStoreOptions = {},
  ) {
    this.description = root;
    this.fsync = options.fsync ?? true;
    this.linkFile = options.link ?? link;
    this.fsyncFd = options.fsyncFd;
  }

  /** Creates the folder skeleton; safe to call on an existing store. */
  async initialize(): Promise<void> {
    for (const dir of ['chunks', 'objects', 'keys', 'meta', 'refs/heads', 'refs/tags', 'tmp'])
      await ensureDir(join(this.root, dir));
    // The 2 × 256 fan-out folders up front, as restic's init makes its 256: the first add (or a
    // clone's fetch) then creates no folders as it writes, each of which is an inode and a
    // journal entry under its parent's lock, contended by the two chunking threads. Synchronous:
    // 512 mkdirs in one folder gain nothing from libuv's pool. A repository made before this has
    // none of them, so every write still makes its folder when missing (putPartsLater and co).
    for (const ns of ['chunks', 'objects'])
      for (let i = 0; i < 256; i++) {
        const dir = join(this.root, ns, i.toString(16).padStart(2, '0'));
        mkdirSync(dir, { recursive: true });
        this.createdDirs.add(dir);
      }
  }

  pathOf(key: string): string {
    assertValidKey(key);
    const slash = key.indexOf('/');
    const ns = key.slice(0, slash);
    const name = key.slice(slash + 1);
    if (ns === 'chunks' || ns === 'objects')
      return join(this.root, ns, name.slice(0, 2), name.slice(2));
    return join(this.root, ns, name);
  }

  async get(key: string, options?: OperationOptions): Promise<Buffer> {
    throwIfAborted(options?.signal);
    try {
      return await readRegularFile(this.pathOf(key));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(key);
      if (err instanceof NotRegularFileError)
        throw new ObjectCorruptError(key, `it is a ${err.found}, not a regular file`, {
          hint: 'mediagit only writes plain files into a store; remove that entry, then run fsck',
        });
      throw err;
    }
  }

  async put(key: string, data: Uint8Array, options?: PutOptions): Promise<void> {
    const path = this.pathOf(key);
    throwIfAborted(options?.signal);
    if (options?.absent !== true && (await fileExists(path))) return;
    await this.ensureDirOnce(dirname(path));
    // Temporary files live in tmp/, where a crash leaves debris that gc sweeps, never beside objects.
    await writeThroughTemp(
      path,
      { tempDir: join(this.root, 'tmp'), mode: 0o444, fsync: this.fsync },
      (handle) => handle.writeFile(data),
    );
  }

  /** link(2) from tmp/ to the final name: EEXIST is the create-only answer (util/fs createThroughTemp). */
  async create(key: string, data: Uint8Array, options?: OperationOptions): Promise<boolean> {
    assertCreatableKey(key);
    const path = this.pathOf(key);
    throwIfAborted(options?.signal);
    await this.ensureDirOnce(dirname(path));
    return createThroughTemp(
      path,
      { tempDir: join(this.root, 'tmp'), mode: 0o444, fsync: this.fsync },
      data,
    );
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
    writeThroughTempSync(
      path,
      { tempDir: join(this.root, 'tmp'), mode: 0o444, fsync: this.fsync },
      parts,
    );
    return true;
  }

  /**
   * putPartsSync without the wait for the disk (util/fs writeThroughTempLater): the bytes are
   * written now, and the object appears at its name once its fsync (on libuv's thread pool) is
   * done. Null when the object is already here or already on its way (hasSync counts those as
   * present). The returned promise settles once it is in place; until then nothing reads it.
   * `absent`: the caller has just found hasSync(key) false, so the file system is not asked again
   * (one stat per new chunk fewer).
   */
  putPartsLater(key: string, parts: readonly Uint8Array[], absent = false): Promise<void> | null {
    const path = this.pathOf(key);
    if (this.landing.has(path) || (!absent && existsSync(path))) return null;
    const dir = dirname(path);
    if (!this.createdDirs.has(dir)) {
      mkdirSync(dir, { recursive: true });
      this.createdDirs.add(dir);
    }
    const landed = writeThroughTempLater(
      path,
      { tempDir: join(this.root, 'tmp'), mode: 0o444, fsync: this.fsync },
      parts,
      this.fsyncFd,
    ).finally(() => this.landing.delete(path));
    this.landing.set(path, landed);
    return landed;
  }

  hasSync(key: string): boolean {
    const path = this.pathOf(key);
    return this.landing.has(path) || existsSync(path);
  }

  /** The object files themselves: objects here are immutable (0444, removed only by unlink). */
  async localFiles(
    keys: readonly string[],
    options?: OperationOptions,
  ): Promise<LocalObjectFile[]> {
    for (const key of keys) assertObjectKey(key);
    throwIfAborted(options?.signal);
    return mapLimit(keys, LOCAL_FILE_CONCURRENCY, async (key) => {
      const path = this.pathOf(key);
      return { key, path, size: await this.statSize(key) };
    });
  }

  /**
   * Takes objects in from another folder without reading them: `link(2)` straight to the final
   * name, which is atomic (the name appears with the whole, already-written inode behind it) and
   * fails with EEXIST rather than replace an object already here — unlike link-to-temp + rename,
   * which replaces, and which is a silent no-op leaving the temp name behind when both names are
   * already links to one inode. Where the link is impossible, the file is copied inside the
   * kernel (copy_file_range, or a reflink with COPYFILE_FICLONE) to `tmp/`, fsynced, and renamed
   * into place like `put`. Each fan-out folder touched is fsynced once, at the end.
   *
   * A linked object is exactly as durable as the source made it (mediagit fsyncs objects before
   * they become visible unless core.fsync is off), and shares its storage: damage to the inode —
   * say, a disk error — shows in both repositories, as with git's hard-linked local clones.
   */
  async adoptFiles(
    files: readonly LocalObjectFile[],
    options?: OperationOptions,
  ): Promise<AdoptResult> {
    for (const file of files) assertObjectKey(file.key);
    throwIfAborted(options?.signal);
    const result: AdoptResult = { linked: 0, copied: 0, present: 0, bytes: 0 };
    const touched = new Set<string>();
    try {
      await mapLimit(files, LOCAL_FILE_CONCURRENCY, async (file) => {
        const how = await this.adoptOne(file);
        result[how]++;
        if (how !== 'present') {
          result.bytes += file.size;
          touched.add(dirname(this.pathOf(file.key)));
        }
      });
    } finally {
      // Even after a failure: what did land must survive a power cut as well as it would after put.
      if (this.fsync) await mapLimit([...touched], LOCAL_FILE_CONCURRENCY, (dir) => fsyncDir(dir));
    }
    return result;
  }

  private async adoptOne(file: LocalObjectFile): Promise<'linked' | 'copied' | 'present'> {
    const dest = this.pathOf(file.key);
    const dir = dirname(dest);
    await this.ensureDirOnce(dir);
    let linkError: unknown;
    try {
      await this.linkFile(file.path, dest);
      return 'linked';
    } catch (err) {
      linkError = err;
    }
    if (isErrno(linkError, 'ENOENT')) {
      // The fan-out folder may have been removed since it was made; the source may be gone.
      await mkdir(dir, { recursive: true });
      try {
        await this.linkFile(file.path, dest);
        return 'linked';
      } catch (err) {
        linkError = err;
      }
      if (isErrno(linkError, 'ENOENT')) throw new NotFoundError(file.key, { cause: linkError });
    }
    if (isErrno(linkError, 'EEXIST')) return 'present';
    const code = (linkError as { code?: unknown } | null)?.code;
    if (typeof code !== 'string' || !LINK_IMPOSSIBLE.has(code)) throw linkError;
    if (await fileExists(dest)) return 'present';
    await this.copyInto(file, dest);
    return 'copied';
  }

  /** In-kernel copy to tmp/, then like put: fsync, rename into place. Nothing is left in tmp/ on failure. */
  private async copyInto(file: LocalObjectFile, dest: string): Promise<void> {
    const tempDir = join(this.root, 'tmp');
    // The slow path anyway: one mkdir per copy, so a tmp/ removed meanwhile is simply made again.
    await mkdir(tempDir, { recursive: true });
    const tmp = tempName(tempDir, basename(dest));
    try {
      try {
        await copyFile(file.path, tmp, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
      } catch (err) {
        if (isErrno(err, 'ENOENT') && !(await fileExists(file.path)))
          throw new NotFoundError(file.key, { cause: err });
        throw err;
      }
      await chmod(tmp, 0o444);
      if (this.fsync) {
        const handle = await open(tmp, 'r');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      await rename(tmp, dest);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  private async ensureDirOnce(dir: string): Promise<void> {
    if (this.createdDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.createdDirs.add(dir);
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

  async has(keys: readonly string[], options?: OperationOptions): Promise<boolean[]> {
    for (const key of keys) assertValidKey(key);
    throwIfAborted(options?.signal);
    return Promise.all(keys.map((key) => fileExists(this.pathOf(key))));
  }

  async *list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey> {
    throwIfAborted(options?.signal);
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

  async delete(key: string, options?: OperationOptions): Promise<void> {
    assertValidKey(key);
    throwIfAborted(options?.signal);
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

  async readRef(name: string, options?: OperationOptions): Promise<RefValue | null> {
    assertValidRefName(name);
    throwIfAborted(options?.signal);
    let bytes: Buffer;
    try {
      // A symlink could make a ref anything on this machine, and a FIFO would block the read.
      bytes = await readRegularFile(this.refPath(name), {
        noFollow: true,
        maxBytes: MAX_REF_FILE_BYTES,
      });
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null;
      // A folder is where a ref's children live (refs/heads/a beside refs/heads/a/b is refused on write).
      if (err instanceof NotRegularFileError && err.found === 'folder') return null;
      if (err instanceof NotRegularFileError)
        throw new RefCorruptError(name, `it is a ${err.found}, not a regular file`);
      throw err;
    }
    const oid = bytes.toString('latin1').trim();
    if (!isValidRefTarget(oid))
      throw new RefCorruptError(
        name,
        `it holds ${bytes.length} bytes that are not an object ID (64 hex digits)`,
      );
    return { oid, version: oid };
  }

  async compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options?: OperationOptions,
  ): Promise<boolean> {
    const path = this.refPath(name);
    assertValidRefTarget(next);
    throwIfAborted(options?.signal);
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

  async listRefs(prefix: string, options?: OperationOptions): Promise<Map<string, RefValue>> {
    throwIfAborted(options?.signal);
    const refs = new Map<string, RefValue>();
    const walk = async (dir: string, name: string): Promise<void> => {
      for (const entry of await readdirOrEmpty(dir, true)) {
        if (typeof entry === 'string' || entry.name.startsWith('.') || entry.name.endsWith('.lock'))
          continue;
        const child = `${name}/${entry.name}`;
        if (entry.isDirectory()) await walk(join(dir, entry.name), child);
        // A file whose name no ref can have (refs/notes, a stray editor backup) is not a ref at all.
        else if (child.startsWith(prefix) && isValidRefName(child)) {
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
async function readdirOrEmpty(
  dir: string,
  withTypes?: true,
): Promise<string[] | import('node:fs').Dirent[]> {
  try {
    return withTypes ? await readdir(dir, { withFileTypes: true }) : await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return [];
    throw err;
  }
}
