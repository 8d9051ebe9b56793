import { randomBytes } from 'node:crypto';
import {
  close as closeCallback,
  closeSync,
  constants as fsConstants,
  fsync as fsyncCallback,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writevSync,
} from 'node:fs';
import { hostname } from 'node:os';
import {
  link,
  open,
  readFile,
  rename,
  unlink,
  mkdir,
  stat,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockedError } from '../errors/index.js';

export interface AtomicWriteOptions {
  /** fsync the file before the rename (and the folder after it) so a power cut cannot expose a torn file. */
  fsync?: boolean;
  /** Folder for the temporary file; must be on the same filesystem as `path`. Default: beside it. */
  tempDir?: string;
  mode?: number;
}

export function tempName(dir: string, base: string): string {
  return join(dir, `.tmp-${base}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

export interface TempWriteOptions {
  /** Folder for the temporary file; must be on the same filesystem as the target. */
  tempDir: string;
  mode: number;
  /** fsync the file before the rename. */
  fsync: boolean;
}

/**
 * The one write path every durable file takes: a fresh temporary file, filled by `write`,
 * optionally fsynced, then renamed over `path`. Readers see the old file or the whole new one;
 * on any failure the temporary file is removed and nothing at `path` changes.
 */
export async function writeThroughTemp(
  path: string,
  options: TempWriteOptions,
  write: (handle: FileHandle) => Promise<void>,
): Promise<void> {
  await commitTemp(await writeToTemp(path, options, write), path);
}

/**
 * writeThroughTemp's first half: the filled (and, if asked, fsynced) temporary file's path, for a
 * caller that puts several files in place only once every one is complete (commitTemp) or none
 * (discardTemp). Until then it counts as live: a signal removes it like one being written.
 */
export async function writeToTemp(
  path: string,
  options: TempWriteOptions,
  write: (handle: FileHandle) => Promise<void>,
): Promise<string> {
  const tmp = tempName(options.tempDir, basename(path));
  // Live before it exists: the file is on disk as soon as open's system call returns, and a
  // signal handled before open's callback runs must still find it to remove.
  liveTempFiles.add(tmp);
  let handle: FileHandle;
  try {
    handle = await open(tmp, 'wx', options.mode);
  } catch (err) {
    // The temp folder may have been removed (or never made); recreate it once.
    if (!isErrno(err, 'ENOENT')) {
      liveTempFiles.delete(tmp);
      throw err;
    }
    await mkdir(options.tempDir, { recursive: true });
    handle = await open(tmp, 'wx', options.mode).catch((again: unknown) => {
      liveTempFiles.delete(tmp);
      throw again;
    });
  }
  try {
    await write(handle);
    if (options.fsync) await handle.sync();
    await handle.close();
    return tmp;
  } catch (err) {
    await handle.close().catch(() => undefined);
    await discardTemp(tmp);
    throw err;
  }
}

/** Renames a temporary file from writeToTemp over `path`; on failure the temporary file goes. */
export async function commitTemp(tmp: string, path: string): Promise<void> {
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  } finally {
    liveTempFiles.delete(tmp);
  }
}

/**
 * writeThroughTemp that never replaces: the temporary file is hard-linked to `path`, which fails
 * with EEXIST when the name is taken, so of several creators exactly one gets true and the file
 * appears whole. Where hard links are unsupported, an exclusive create of `path` then the write
 * (the file is briefly empty there). False when `path` already existed.
 */
export async function createThroughTemp(
  path: string,
  options: TempWriteOptions,
  data: Uint8Array,
): Promise<boolean> {
  const tmp = tempName(options.tempDir, basename(path));
  await mkdir(options.tempDir, { recursive: true });
  liveTempFiles.add(tmp);
  try {
    await writeFile(tmp, data, { flag: 'wx', mode: options.mode, flush: options.fsync });
    try {
      await link(tmp, path);
    } catch (err) {
      if (isErrno(err, 'EEXIST')) return false;
      if (!LINK_UNSUPPORTED.has((err as { code?: string }).code ?? '')) throw err;
      return await createInPlace(path, options, data);
    }
    if (options.fsync) await fsyncDir(dirname(path));
    return true;
  } finally {
    liveTempFiles.delete(tmp);
    await unlink(tmp).catch(() => undefined);
  }
}

async function createInPlace(
  path: string,
  options: TempWriteOptions,
  data: Uint8Array,
): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'wx', options.mode);
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false;
    throw err;
  }
  try {
    await handle.writeFile(data);
    if (options.fsync) await handle.sync();
  } finally {
    await handle.close();
  }
  return true;
}

/** Removes a temporary file from writeToTemp that will not be put in place. */
export async function discardTemp(tmp: string): Promise<void> {
  await unlink(tmp).catch(() => undefined);
  liveTempFiles.delete(tmp);
}

/** Temporary files being written right now by writeThroughTemp, for removal on a signal. */
const liveTempFiles = new Set<string>();

/**
 * Removes every temporary file this process is still writing. Synchronous, for a signal handler
 * that is about to end the process: a 2 GiB checkout interrupted by Ctrl-C must not leave a
 * hidden 680 MiB `.tmp-…` in the working tree.
 */
export function removeLiveTempFilesSync(): void {
  for (const tmp of liveTempFiles) {
    try {
      unlinkSync(tmp);
    } catch {
      // already renamed into place or removed
    }
  }
  liveTempFiles.clear();
}

/** `.tmp-<name>-<pid>-<12 hex>`, as tempName makes them. */
const TEMP_NAME = /^\.tmp-.+-(\d+)-[0-9a-f]{12}$/;

/**
 * True for a temporary file (by its name) whose writer has died on this host: debris a later
 * command may remove. A live pid — the writer, or an unrelated process that reused the number —
 * keeps it.
 */
export function isStaleTempName(name: string): boolean {
  const match = TEMP_NAME.exec(name);
  if (!match) return false;
  const pid = Number(match[1]);
  return pid !== process.pid && pid > 0 && !processAlive(pid);
}

/**
 * writeThroughTemp for threads that may block (the chunk workers): the same temp → fsync → rename
 * sequence with synchronous calls, writing `parts` in order with writev.
 */
export function writeThroughTempSync(
  path: string,
  options: TempWriteOptions,
  parts: readonly Uint8Array[],
): void {
  const { fd, tmp } = writeTempSync(path, options, parts);
  // fd numbers are shared by every thread of the process: close exactly once, or another
  // thread's freshly opened file could be closed under it.
  let open = true;
  try {
    if (options.fsync) fsyncSync(fd);
    open = false;
    closeSync(fd);
    renameSync(tmp, path);
  } catch (err) {
    if (open) closeSync(fd);
    removeTempSync(tmp);
    throw err;
  }
}

/** How writeThroughTempLater makes a file durable: fsync(2) on libuv's thread pool by default. */
export type FsyncFd = (fd: number) => Promise<void>;

const fsyncOnPool: FsyncFd = (fd) =>
  new Promise((resolve, reject) => fsyncCallback(fd, (err) => (err ? reject(err) : resolve())));

/**
 * writeThroughTempSync that does not wait for the disk: the bytes are written to the temporary
 * file now, its fsync then runs on libuv's thread pool and the rename follows it there, so the
 * calling thread goes on cutting and compressing while the disk commits. Concurrent fsyncs also
 * share the filesystem's journal commits. The file still appears at `path` only whole and, with
 * `options.fsync`, only once durable; on failure the temporary file is removed and nothing
 * appears. Resolves once the file is in place.
 */
export function writeThroughTempLater(
  path: string,
  options: TempWriteOptions,
  parts: readonly Uint8Array[],
  fsyncFd: FsyncFd = fsyncOnPool,
): Promise<void> {
  const { fd, tmp } = writeTempSync(path, options, parts);
  const land = async (): Promise<void> => {
    let open = true;
    try {
      if (options.fsync) await fsyncFd(fd);
      open = false;
      await new Promise<void>((resolve, reject) =>
        closeCallback(fd, (err) => (err ? reject(err) : resolve())),
      );
      await rename(tmp, path);
    } catch (err) {
      if (open) closeSync(fd);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  };
  return land();
}

/** A fresh temporary file for `path` holding `parts`, still open (the caller closes `fd` once). */
function writeTempSync(
  path: string,
  options: TempWriteOptions,
  parts: readonly Uint8Array[],
): { fd: number; tmp: string } {
  const tmp = tempName(options.tempDir, basename(path));
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', options.mode);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    mkdirSync(options.tempDir, { recursive: true });
    fd = openSync(tmp, 'wx', options.mode);
  }
  try {
    const pending = parts.filter((p) => p.length > 0);
    while (pending.length > 0) {
      let written = writevSync(fd, pending);
      // A short write leaves the rest of the pieces for another round.
      while (pending.length > 0 && written >= pending[0]!.length)
        written -= pending.shift()!.length;
      if (written > 0) pending[0] = pending[0]!.subarray(written);
    }
  } catch (err) {
    closeSync(fd);
    removeTempSync(tmp);
    throw err;
  }
  return { fd, tmp };
}

function removeTempSync(tmp: string): void {
  try {
    unlinkSync(tmp);
  } catch {
    // never created or already renamed
  }
}

/** Write-then-rename of whole contents; with fsync the folder is synced too, so the rename survives a power cut. */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const fsync = options.fsync ?? true;
  await writeThroughTemp(
    path,
    { tempDir: options.tempDir ?? dirname(path), mode: options.mode ?? 0o644, fsync },
    (handle) => handle.writeFile(data),
  );
  if (fsync) await fsyncDir(dirname(path));
}

export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, fsConstants.O_RDONLY);
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return false;
    throw err;
  }
}

/** A path that is there but is not a plain file (a FIFO, socket, device, folder, or a refused symlink). */
export class NotRegularFileError extends Error {
  override readonly name = 'NotRegularFileError';
  constructor(
    readonly path: string,
    /** What it is instead: 'FIFO', 'socket', 'device', 'folder', 'symbolic link', 'file over N bytes'. */
    readonly found: string,
  ) {
    super(`${path} is a ${found}, not a regular file`);
  }
}

function fileTypeOf(info: import('node:fs').Stats): string {
  if (info.isFIFO()) return 'FIFO';
  if (info.isSocket()) return 'socket';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'device';
  if (info.isDirectory()) return 'folder';
  return 'special file';
}

export interface RegularReadOptions {
  /** Refuse a symbolic link as the last component (ELOOP from O_NOFOLLOW) instead of following it. */
  readonly noFollow?: boolean;
  /** Refuse a file larger than this without reading it. */
  readonly maxBytes?: number;
}

/**
 * readFile for folders someone else may have filled: opened non-blocking, so a FIFO planted where
 * a file belongs never parks us waiting for a writer, then checked with fstat on the same handle
 * (no race with a rename) and read only if it is a regular file. Missing files reject with
 * ENOENT as readFile does; anything else that is not a plain file with NotRegularFileError.
 */
export async function readRegularFile(
  path: string,
  options: RegularReadOptions = {},
): Promise<Buffer> {
  const flags =
    fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | (options.noFollow ? fsConstants.O_NOFOLLOW : 0);
  let handle: FileHandle;
  try {
    handle = await open(path, flags);
  } catch (err) {
    if (options.noFollow && isErrno(err, 'ELOOP'))
      throw new NotRegularFileError(path, 'symbolic link');
    throw err;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new NotRegularFileError(path, fileTypeOf(info));
    if (options.maxBytes !== undefined && info.size > options.maxBytes)
      throw new NotRegularFileError(path, `file over ${options.maxBytes} bytes`);
    // A size of 0 may be a file the kernel cannot size (procfs): readFile reads until the end.
    if (info.size === 0) return await handle.readFile();
    // The size is known: read it in one call, not readFile's second fstat and 512 KiB pieces.
    // Its own memory, as readFile gives (never a slice of the shared pool: callers may transfer it).
    const out = Buffer.allocUnsafeSlow(info.size);
    let got = 0;
    while (got < out.length) {
      const { bytesRead } = await handle.read(out, got, out.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === out.length ? out : out.subarray(0, got);
  } finally {
    await handle.close();
  }
}

/** Reads into `buffer[0, length)` from `position` on, however the kernel splits it; fewer bytes only at the end of the file. */
export function readFullySync(
  fd: number,
  buffer: Uint8Array,
  length: number,
  position: number,
): number {
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buffer, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}

export interface LockOptions {
  /** How long to wait for another process to release the lock. */
  timeoutMs?: number;
  /** What the lock protects, for the error message. */
  what?: string;
}

/** Who holds a lock, as its file says. */
interface LockHolder {
  readonly pid: number;
  readonly host: string;
}

function parseHolder(content: string): LockHolder | undefined {
  const [pidText, host, nonce] = content.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || !host || !nonce) return undefined;
  return { pid, host };
}

/**
 * An exclusive lock file holding "pid hostname random". It appears whole or not at all (written
 * under a private name, then hard-linked to its own, which fails when the name is taken), so a
 * lock file is never seen empty, and nothing is ever removed as "half-written debris" under a
 * holder that is merely slow. A lock left by a process that died on this host is broken
 * automatically, so a SIGKILLed mediagit never wedges the repository; breakers take turns under a
 * second lock, so two of them can never remove each other's fresh lock. A lock from another host
 * is never broken automatically (its process cannot be checked from here): the error names the
 * holder, and docs/format.md says how to remove it safely.
 */
export class LockFile {
  private constructor(
    readonly path: string,
    private readonly token: string,
  ) {}

  static async acquire(path: string, options: LockOptions = {}): Promise<LockFile> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const token = lockToken();
    const deadline = Date.now() + timeoutMs;
    let delay = 5;
    for (;;) {
      if (await createWhole(path, token)) return new LockFile(path, token);
      if (await breakIfStale(path)) continue;
      if (Date.now() >= deadline) throw await lockedError(path, options.what);
      await sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
  }

  /** Content written into the lock file by the holder; the lock may be renamed into place by `commitTo`. */
  get contents(): string {
    return this.token;
  }

  /**
   * Removes the lock only if it is still ours: it is first moved aside (one atomic rename), then
   * checked, and put back if it turns out to be someone else's (a lock removed by hand and taken
   * by another process meanwhile), so releasing never deletes another holder's lock.
   */
  async release(): Promise<void> {
    const aside = tempName(dirname(this.path), `${basename(this.path)}-released`);
    try {
      await rename(this.path, aside);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    try {
      const moved = await readFile(aside, 'utf8');
      if (moved !== this.token) await link(aside, this.path).catch(() => undefined);
    } finally {
      await unlink(aside).catch(() => undefined);
    }
  }
}

function lockToken(): string {
  return `${process.pid} ${hostname()} ${randomBytes(8).toString('hex')}\n`;
}

/** Creates `path` holding `content`, all at once; false when the name is taken. */
async function createWhole(path: string, content: string): Promise<boolean> {
  const staged = tempName(dirname(path), basename(path));
  await writeFile(staged, content, { flag: 'wx', mode: 0o644 });
  try {
    await link(staged, path);
    return true;
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false;
    if (!LINK_UNSUPPORTED.has((err as { code?: string }).code ?? '')) throw err;
  } finally {
    await unlink(staged).catch(() => undefined);
  }
  // A filesystem without hard links: exclusive create, then write. The file is briefly empty,
  // which breakIfStale treats as held (never as debris).
  try {
    const handle = await open(path, 'wx', 0o644);
    try {
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
    return true;
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false;
    throw err;
  }
}

const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

async function readLock(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
}

/** True when the lock is gone (or was just broken): try to take it again at once. */
async function breakIfStale(path: string): Promise<boolean> {
  const content = await readLock(path);
  if (content === null) return true;
  const holder = parseHolder(content);
  // Empty or unreadable: a holder between create and write, or foreign debris. Either way it is
  // not ours to judge; the caller waits, and the error says whose move it is.
  if (holder === undefined || holder.host !== hostname() || processAlive(holder.pid)) return false;
  return breakDead(path, content);
}

/**
 * Removes the lock judged dead (`content`) — but only while holding the breaker lock beside it, so
 * of several processes that judged the same lock dead, one removes it and the others, coming
 * after, find a different (fresh) lock or none, and leave it alone.
 */
async function breakDead(path: string, content: string): Promise<boolean> {
  const breakerPath = join(dirname(path), `.${basename(path)}.break`);
  const token = lockToken();
  if (!(await createWhole(breakerPath, token))) {
    await clearDeadBreaker(breakerPath);
    return false;
  }
  try {
    // No one else can remove or replace the lock now: its holder is dead and other breakers wait.
    if ((await readLock(path)) === content) await unlink(path).catch(() => undefined);
    return true;
  } finally {
    if ((await readLock(breakerPath)) === token) await unlink(breakerPath).catch(() => undefined);
  }
}

/**
 * A breaker lock is held for a read and an unlink; one left behind means its process died in
 * between. It is moved aside (atomic), and put back if what was moved is not the dead one.
 */
async function clearDeadBreaker(breakerPath: string): Promise<void> {
  const content = await readLock(breakerPath);
  const holder = content === null ? undefined : parseHolder(content);
  if (holder === undefined || holder.host !== hostname() || processAlive(holder.pid)) return;
  const aside = tempName(dirname(breakerPath), 'breaker');
  try {
    await rename(breakerPath, aside);
  } catch {
    return;
  }
  try {
    if ((await readLock(aside)) !== content) await link(aside, breakerPath).catch(() => undefined);
  } finally {
    await unlink(aside).catch(() => undefined);
  }
}

/** E_LOCKED naming the holder, and what to do when it is gone. */
async function lockedError(path: string, what: string | undefined): Promise<LockedError> {
  const content = await readLock(path).catch(() => null);
  const holder = content === null ? undefined : parseHolder(content);
  const by =
    holder === undefined
      ? 'another mediagit process'
      : `mediagit process ${holder.pid} on ${holder.host === hostname() ? 'this host' : `host ${holder.host}`}`;
  const hint =
    holder !== undefined && holder.host !== hostname()
      ? `wait for it to finish; if process ${holder.pid} is no longer running on ${holder.host}, delete ${path} (a lock from another host is never broken automatically)`
      : 'wait for the other command to finish; if none is running, delete the lock file';
  return new LockedError(`${what ?? 'resource'} is locked by ${by} (${path})`, { hint });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM');
  }
}

export async function withLock<T>(
  path: string,
  options: LockOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const lock = await LockFile.acquire(path, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
