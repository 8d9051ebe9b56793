/**
 * Helpers for the push/fetch/clone tests: small chunking parameters, measuring a remote folder,
 * killing a CLI run midway, damaging a stored file, and — for library-level tests — building
 * repositories, commits and clones in-process without the CLI.
 */
import { spawn } from 'node:child_process';
import { chmod, lstat, open, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chunkBuffer, type ChunkingParams } from '../../src/chunking/index.js';
import type { CommandIo } from '../../src/commands/context.js';
import { runFsck } from '../../src/commands/fsck.js';
import { isMediagitError } from '../../src/errors/index.js';
import type { Oid, Signature } from '../../src/objects/index.js';
import {
  Repository,
  commitTreeMap,
  flattenTree,
  ingestFile,
  moveWorktree,
  silentProgress,
  writeTreeFromMap,
  type FileMap,
  type FileRecord,
  type FsckCounts,
  type FsckProblem,
} from '../../src/repo/index.js';
import {
  BASIC_CAPABILITIES,
  type ListedKey,
  type OperationOptions,
  type RefValue,
  type Store,
} from '../../src/store/index.js';
import { fetchObjects, readDescriptor, type TransferStats } from '../../src/sync/index.js';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { CLI_PATH, cliEnv, mg, runCli } from './cli.js';
import { makeCorpus } from './corpus.js';

// ---- shared parameters -------------------------------------------------------------------

export const SMALL_CHUNKING: ChunkingParams = Object.freeze({
  minSize: 16 * 1024,
  avgSize: 64 * 1024,
  maxSize: 256 * 1024,
});
/** `init` arguments giving SMALL_CHUNKING: many chunks even in the small corpus. */
export const SMALL_CHUNK_ARGS: readonly string[] = [
  '--chunk-min',
  '16K',
  '--chunk-avg',
  '64K',
  '--chunk-max',
  '256K',
];
/**
 * A working repository `src` with small chunking and `versions` commits of two random files
 * (a.raw 300 kB, b.raw 200 kB, new bytes each version), pushed to a bare folder remote `origin`.
 */
export async function pushedVersions(
  work: string,
  versions: number,
): Promise<{ src: string; remote: string }> {
  const src = path.join(work, 'src');
  const remote = path.join(work, 'remote.mediagit');
  await mkdir(src);
  await mg(src, 'init', '-q', ...SMALL_CHUNK_ARGS);
  await mg(src, 'remote', 'add', 'origin', remote);
  await mg(src, 'init', '-q', '--bare', remote);
  for (let v = 1; v <= versions; v++) {
    await writeFile(path.join(src, 'a.raw'), randomBytes(300_000));
    await writeFile(path.join(src, 'b.raw'), randomBytes(200_000));
    await mg(src, 'add', '.');
    await mg(src, 'commit', '-q', '-m', `v${v}`);
  }
  await mg(src, 'push', '-q', 'origin', 'main');
  return { src, remote };
}

/**
 * A working repository `work/repo` (the tiny corpus, committed once) with a multi remote `backup`
 * over `primary` and `secondary`; `options` are further `-o key=value` arguments.
 */
export async function repoWithMirror(
  work: string,
  primary: string,
  secondary: string,
  options: readonly string[] = [],
): Promise<string> {
  const repo = path.join(work, 'repo');
  await makeCorpus(repo, 1, 'tiny');
  await runCli(['init', '-q'], { cwd: repo });
  await runCli(['add', '.'], { cwd: repo });
  await runCli(['commit', '-q', '-m', 'v1'], { cwd: repo });
  const args = ['-o', `primary=${primary}`, '-o', `secondary=${secondary}`, ...options];
  await runCli(['remote', 'add', 'backup', 'multi:', ...args], { cwd: repo });
  return repo;
}

export const MAIN = 'refs/heads/main';

// ---- files on disk -----------------------------------------------------------------------

export interface FolderSize {
  files: number;
  bytes: number;
}

/** Count and total size of every regular file under `dir` (recursively, nothing excluded); zero when it does not exist. */
export async function folderSize(dir: string): Promise<FolderSize> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return { files: 0, bytes: 0 };
    throw err;
  }
  let files = 0;
  let bytes = 0;
  for (const e of entries) {
    if (!e.isFile()) continue;
    files++;
    bytes += (await lstat(path.join(e.parentPath, e.name))).size;
  }
  return { files, bytes };
}

/** Every regular file under `dir`, as absolute paths, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

/** Stored chunk files of a local-folder store (`<root>/chunks/ab/<62 hex>`), as OID and path. */
export async function storedChunks(storeRoot: string): Promise<{ oid: Oid; file: string }[]> {
  const out: { oid: Oid; file: string }[] = [];
  for (const file of await listFiles(path.join(storeRoot, 'chunks')).catch(() => [] as string[])) {
    const oid = `${path.basename(path.dirname(file))}${path.basename(file)}`;
    if (/^[0-9a-f]{64}$/.test(oid)) out.push({ oid, file });
  }
  return out;
}

/** The OID a local-folder store's ref file holds, or null when the ref does not exist. */
export async function readRefFile(storeRoot: string, ref = MAIN): Promise<Oid | null> {
  try {
    return (await readFile(path.join(storeRoot, ...ref.split('/')), 'utf8')).trim();
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw err;
  }
}

/** Inverts every bit of one byte in the middle of `file` (stored objects are read-only, so it is made writable first). */
export async function flipByte(file: string, at?: number): Promise<void> {
  await chmod(file, 0o644);
  const fh = await open(file, 'r+');
  try {
    const { size } = await fh.stat();
    const offset = at ?? Math.floor(size / 2);
    const one = Buffer.alloc(1);
    await fh.read(one, 0, 1, offset);
    one[0] = one[0]! ^ 0xff;
    await fh.write(one, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

/** True when some file under `dir` contains `needle` anywhere in its bytes. */
export async function folderContains(dir: string, needle: Buffer): Promise<string | null> {
  for (const file of await listFiles(dir)) if ((await readFile(file)).includes(needle)) return file;
  return null;
}

// ---- killing a CLI run midway --------------------------------------------------------------

export type KillOutcome = 'killed' | 'finished';

/**
 * Starts the CLI and SIGKILLs it after `delayMs` if it is still running (the approach of
 * crash.test.ts). 'finished' means it exited on its own before the timer fired.
 */
export async function killAfter(
  args: string[],
  cwd: string,
  delayMs: number,
  env: Record<string, string | undefined> = {},
): Promise<KillOutcome> {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd,
    env: cliEnv(env),
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const outcome = await Promise.race([
    exited.then(() => 'finished' as const),
    sleep(delayMs).then(() => 'timer' as const),
  ]);
  if (outcome === 'finished') return 'finished';
  child.kill('SIGKILL');
  await exited;
  return 'killed';
}

/**
 * Runs the CLI and SIGKILLs it the moment `midway` says the command has started changing things
 * (polled every few milliseconds), so the kill lands inside the operation rather than before it
 * starts or after it ends: 'killed' means `midway` held while the command was still running.
 */
export async function killWhen(
  args: string[],
  cwd: string,
  midway: (progress: { stdoutBytes: number }) => Promise<boolean>,
  env: Record<string, string | undefined> = {},
): Promise<KillOutcome> {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd,
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const progress = { stdoutBytes: 0 };
  child.stdout.on('data', (b: Buffer) => (progress.stdoutBytes += b.length));
  let done = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      done = true;
      resolve();
    }),
  );
  while (!done) {
    if (await midway(progress)) {
      if (done) break;
      child.kill('SIGKILL');
      await exited;
      return 'killed';
    }
    await sleep(3);
  }
  await exited;
  return 'finished';
}

// ---- error output ------------------------------------------------------------------------

/** Lines of CLI stderr that are not blank. */
export function stderrLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '');
}

// ---- library-level repositories --------------------------------------------------------------

/** A CommandIo for calling command functions in-process; output is collected, never printed. */
export function captureIo(cwd: string): CommandIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    cwd,
    stdout,
    stderr,
    out: (line) => stdout.push(line),
    err: (line) => stderr.push(line),
    writeRaw: async () => {},
    progress: () => silentProgress,
    passphrase: () => Promise.reject(new Error('no passphrase in tests')),
    promptSecret: () => Promise.reject(new Error('no terminal in tests')),
    exit: (code) => {
      throw new Error(`exit ${code} in a test`);
    },
  };
}

/** A new plain repository with SMALL_CHUNKING (or the given parameters) and fsync off, for speed. */
export async function initRepo(
  dir: string,
  chunking: ChunkingParams = SMALL_CHUNKING,
): Promise<Repository> {
  await Repository.init(dir, { chunking });
  const fresh = await Repository.open(dir);
  fresh.config.set('core.fsync', false);
  await fresh.config.save();
  return Repository.open(dir);
}

export function signature(time: number): Signature {
  return { name: 'Sync Test', email: 'sync@example.com', time, tzOffset: 0 };
}

/** Stores `data` as a file (chunks cut with the repository's parameters, then a manifest). */
export async function writeBlob(repo: Repository, data: Buffer): Promise<FileRecord> {
  const chunks = chunkBuffer(data, repo.settings.chunking, repo.odb.sealer.gear);
  const refs: { oid: Oid; size: number }[] = [];
  for (const chunk of chunks)
    refs.push({
      oid: (await repo.odb.putChunk(chunk, { skipCompression: false })).oid,
      size: chunk.length,
    });
  const manifest = await repo.odb.writeManifest({ size: data.length, chunks: refs });
  return { type: 'file', oid: manifest.oid, size: data.length };
}

let clock = 1_700_000_000;

/**
 * Writes a commit whose tree is the union of the parents' trees (first parent wins on a clash)
 * plus `files`, without touching the working tree or the index. Returns its OID.
 */
export async function commitFiles(
  repo: Repository,
  parents: readonly Oid[],
  files: ReadonlyMap<string, Buffer>,
  message: string,
): Promise<Oid> {
  const map: FileMap = new Map();
  for (const parent of [...parents].reverse())
    for (const [p, rec] of await commitTreeMap(repo, parent)) map.set(p, rec);
  for (const [p, data] of files) map.set(p, await writeBlob(repo, data));
  const tree = await writeTreeFromMap(repo.odb, map);
  const when = signature(clock++);
  return (
    await repo.odb.writeCommit({
      tree,
      parents: [...parents],
      author: when,
      committer: when,
      message: `${message}\n`,
    })
  ).oid;
}

/** Commits every file of the working tree (what `add . && commit` would record), on top of `parents`. */
export async function commitWorktree(
  repo: Repository,
  parents: readonly Oid[],
  message: string,
): Promise<Oid> {
  const ctx = repo.contentContext();
  const map: FileMap = new Map();
  const entries = await readdir(repo.root, { withFileTypes: true, recursive: true });
  for (const e of entries) {
    if (!e.isFile()) continue;
    const abs = path.join(e.parentPath, e.name);
    const rel = path.relative(repo.root, abs).split(path.sep).join('/');
    if (rel === '.mediagit' || rel.startsWith('.mediagit/')) continue;
    const ingested = await ingestFile(ctx, abs, rel, silentProgress);
    map.set(rel, { type: 'file', oid: ingested.manifestOid, size: ingested.size });
  }
  const tree = await writeTreeFromMap(repo.odb, map);
  const when = signature(clock++);
  return (
    await repo.odb.writeCommit({
      tree,
      parents: [...parents],
      author: when,
      committer: when,
      message: `${message}\n`,
    })
  ).oid;
}

/** Every file path of a commit's snapshot. */
export async function filesOf(repo: Repository, commit: Oid): Promise<FileMap> {
  return flattenTree(repo.odb, (await repo.odb.readCommit(commit)).tree);
}

/**
 * What `clone` does, in-process: a repository with the remote's chunking, every object reachable
 * from the remote's main branch fetched, and `main` set to it (the working tree is not written;
 * see checkoutCommit).
 */
export async function cloneLibrary(
  remote: Store,
  dir: string,
): Promise<{ repo: Repository; tip: Oid | null; stats: TransferStats }> {
  const descriptor = await readDescriptor(remote);
  if (!descriptor) throw new Error(`no repository at ${remote.description}`);
  const repo = await initRepo(dir, {
    minSize: descriptor.chunking.min_size,
    avgSize: descriptor.chunking.avg_size,
    maxSize: descriptor.chunking.max_size,
  });
  const tip = (await remote.readRef(MAIN))?.oid ?? null;
  const stats =
    tip === null
      ? { objects: 0, bytes: 0 }
      : await fetchObjects(repo, remote, [tip], { progress: silentProgress });
  if (tip !== null) await repo.updateRef(MAIN, tip, null);
  return { repo, tip, stats };
}

/** Writes `commit`'s files into the working tree and index (what clone's checkout does). */
export async function checkoutCommit(repo: Repository, commit: Oid): Promise<void> {
  await repo.updateIndex(async (index) => {
    await moveWorktree(repo, index, new Map(), await commitTreeMap(repo, commit), {
      force: true,
      progress: silentProgress,
      operation: 'checkout',
    });
  });
}

export interface FsckReport {
  ok: boolean;
  counts: FsckCounts;
  problems: FsckProblem[];
}

/** `fsck --full --json`, in-process. Resolves with the report whether or not it found problems. */
export async function fsckFull(repo: Repository): Promise<FsckReport> {
  const io = captureIo(repo.root);
  try {
    await runFsck(io, { full: true, json: true });
  } catch (err) {
    if (!isMediagitError(err) || io.stdout.length === 0) throw err;
  }
  return JSON.parse(io.stdout.join('\n')) as FsckReport;
}

// ---- store wrappers ------------------------------------------------------------------------

/**
 * A remote that serves the wrong bytes for one key: `get(victim)` returns what is stored under
 * `donor` (a valid object, just not the one asked for). Everything else passes through.
 */
export class SubstitutingStore implements Store {
  readonly description: string;
  /** None of the inner store's: a batch or a hard link would bypass the substitution. */
  readonly capabilities = BASIC_CAPABILITIES;
  served = 0;

  constructor(
    readonly inner: Store,
    readonly victim: string,
    readonly donor: string,
  ) {
    this.description = `substituting(${inner.description})`;
  }

  async get(key: string, options?: OperationOptions): Promise<Buffer> {
    if (key !== this.victim) return this.inner.get(key, options);
    this.served++;
    return this.inner.get(this.donor, options);
  }
  put(key: string, data: Uint8Array, options?: OperationOptions): Promise<void> {
    return this.inner.put(key, data, options);
  }
  create(key: string, data: Uint8Array, options?: OperationOptions): Promise<boolean> {
    return this.inner.create(key, data, options);
  }
  has(keys: readonly string[], options?: OperationOptions): Promise<boolean[]> {
    return this.inner.has(keys, options);
  }
  list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey> {
    return this.inner.list(prefix, options);
  }
  delete(key: string, options?: OperationOptions): Promise<void> {
    return this.inner.delete(key, options);
  }
  readRef(name: string, options?: OperationOptions): Promise<RefValue | null> {
    return this.inner.readRef(name, options);
  }
  compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options?: OperationOptions,
  ): Promise<boolean> {
    return this.inner.compareAndSwapRef(name, expected, next, options);
  }
  listRefs(prefix: string, options?: OperationOptions): Promise<Map<string, RefValue>> {
    return this.inner.listRefs(prefix, options);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
