import { lstat, readFile, unlink } from 'node:fs/promises';
import { dirname, join, resolve, sep, relative } from 'node:path';
import picomatch from 'picomatch';
import { DEFAULT_CHUNKING, type ChunkingParams } from '../chunking/index.js';
import { DEFAULT_ZSTD_LEVEL } from '../compression/index.js';
import {
  AlreadyExistsError,
  IdentityError,
  NotARepositoryError,
  ObjectCorruptError,
  PassphraseError,
  PathspecError,
  RefConflictError,
} from '../errors/index.js';
import {
  addKey,
  keyFileHashes,
  newMasterKey,
  unlock,
  type KeyFileHash,
  type UnlockedKey,
} from '../crypto/index.js';
import {
  EncryptedSealer,
  ObjectDatabase,
  isOid,
  plainSealer,
  type ObjectSealer,
  type Oid,
  type Signature,
} from '../objects/index.js';
import type { lookupCachedKey as lookupKey } from '../agent/index.js';
import {
  ChunkWorkerPool,
  defaultPoolSize,
  LocalChunks,
  type ChunkJobType,
} from '../workers/index.js';
import { LocalStore, isValidRefName } from '../store/index.js';
import { LockFile, ensureDir, exists, isErrno, writeFileAtomic } from '../util/fs.js';
import { Semaphore } from '../util/limit.js';
import {
  ConfigFile,
  initialConfig,
  loadGlobalConfig,
  readSettings,
  type RepoSettings,
} from './config.js';
import type { ContentContext } from './content.js';
import { Index } from './index-file.js';
import { appendReflog, deleteReflog } from './reflog.js';
import { REPO_DIR } from './worktree.js';

export const DEFAULT_BRANCH = 'main';

/** State files holding one commit ID: a merge, cherry-pick, revert or rebase step waiting for its commit; the tip before a reset. */
export type StateOidName =
  'MERGE_HEAD' | 'ORIG_HEAD' | 'CHERRY_PICK_HEAD' | 'REVERT_HEAD' | 'REBASE_HEAD';
/** Every state file under `.mediagit/` that operations in progress leave. */
export type StateName = StateOidName | 'MERGE_MSG';

export interface HeadState {
  /** The branch HEAD points at (`refs/heads/x`), or null when detached. */
  readonly ref: string | null;
  /** The commit HEAD resolves to, or null on an unborn branch. */
  readonly oid: Oid | null;
}

export interface InitOptions {
  chunking?: ChunkingParams;
  compressionLevel?: number;
  initialBranch?: string;
  /** Encrypt everything with a new master key wrapped by this passphrase. */
  encryptWith?: string;
}

/** Asked only when the repository is encrypted; the CLI reads env, a file, or the terminal. */
export type PassphraseProvider = () => Promise<string>;

export interface OpenOptions {
  passphrase?: PassphraseProvider;
  /**
   * Ask the key agent (`mediagit key cache`) before the passphrase; default true. Off for commands
   * that must prove knowledge of a passphrase, such as `key cache` itself. MEDIAGIT_AGENT=0 turns
   * the lookup off everywhere.
   */
  agent?: boolean;
}

/** How an encrypted repository's master key was obtained for this process. */
export type UnlockSource = 'agent' | 'passphrase';

/** An open repository: working tree root, `.mediagit/`, its store, settings and state files. */
export class Repository {
  readonly odb: ObjectDatabase;
  /** Jobs sent to chunk workers by this process, by type: what crossed a thread, for tests. */
  readonly workerJobs: Partial<Record<ChunkJobType, number>> = {};
  /** Chunk worker threads started by this process (each costs ~50 ms of CPU), for tests. */
  workerThreads = 0;
  private contentLimiter: Semaphore | undefined;

  private constructor(
    readonly root: string,
    readonly dir: string,
    readonly config: ConfigFile,
    readonly settings: RepoSettings,
    readonly store: LocalStore,
    sealer: ObjectSealer,
    /** The key file that unlocked an encrypted repository. */
    readonly keyId: string | null = null,
    private readonly masterKey: Buffer | null = null,
    readonly unlockedVia: UnlockSource | null = null,
  ) {
    this.odb = new ObjectDatabase(this.store, {
      compressionLevel: settings.compressionLevel,
      sealer,
    });
  }

  private sparseMatcher: ((path: string) => boolean) | null | undefined;

  /**
   * For a sparse clone (`clone --include`): which paths are materialised. Others stay tracked in
   * the index, keep their committed content in every new commit, and are never written to disk.
   * null = everything is included.
   */
  includes(): ((path: string) => boolean) | null {
    if (this.sparseMatcher !== undefined) return this.sparseMatcher;
    const patterns = this.sparsePatterns();
    this.sparseMatcher = patterns.length === 0 ? null : picomatch(patterns, { dot: true });
    return this.sparseMatcher;
  }

  /** The sparse patterns (config sparse.include, one per line); empty: everything is included. */
  sparsePatterns(): string[] {
    return String(this.config.get('sparse.include') ?? '')
      .split('\n')
      .map((p) => p.trim())
      .filter((p) => p !== '');
  }

  /** Saves new sparse patterns (null or empty: everything); only repo/sparse.ts calls this. */
  async saveSparsePatterns(patterns: readonly string[] | null): Promise<void> {
    if (patterns && patterns.length > 0) this.config.set('sparse.include', patterns.join('\n'));
    else this.config.unset('sparse.include');
    await this.config.save();
    this.sparseMatcher = undefined;
  }

  /** True when `path` is outside a sparse clone's include patterns. */
  isSparseExcluded(path: string): boolean {
    const included = this.includes();
    return included !== null && !included(path);
  }

  get encrypted(): boolean {
    return this.odb.sealer.encrypted;
  }

  /** The unlocked master key (key management only); null for plain repositories. */
  unlockedMasterKey(): Buffer | null {
    return this.masterKey;
  }

  static async discover(
    cwd: string = process.cwd(),
    options: OpenOptions = {},
  ): Promise<Repository> {
    return Repository.open(await Repository.findRoot(cwd), options);
  }

  /** The working tree root holding `.mediagit/`, searching upwards like git. */
  static async findRoot(cwd: string = process.cwd()): Promise<string> {
    let current = resolve(cwd);
    for (;;) {
      if (await exists(join(current, REPO_DIR, 'HEAD'))) return current;
      const parent = dirname(current);
      if (parent === current) throw new NotARepositoryError(resolve(cwd));
      current = parent;
    }
  }

  static async open(root: string, options: OpenOptions = {}): Promise<Repository> {
    const dir = join(root, REPO_DIR);
    const config = await ConfigFile.load(join(dir, 'config.toml'), { mustExist: true });
    const settings = readSettings(config);
    const store = new LocalStore(dir, { fsync: settings.fsync });
    if (config.get('encryption.enabled') !== true)
      return new Repository(root, dir, config, settings, store, plainSealer);
    // Loaded here: the agent's client (sockets, child processes) is for encrypted repositories only.
    const agent = await import('../agent/index.js');
    const cached =
      options.agent === false || !agent.agentLookupEnabled()
        ? null
        : await Repository.unlockFromAgent(store, agent.lookupCachedKey);
    if (cached)
      return new Repository(
        root,
        dir,
        config,
        settings,
        store,
        new EncryptedSealer(cached.master),
        cached.keyId,
        cached.master,
        'agent',
      );
    if (!options.passphrase)
      throw new PassphraseError(
        'this repository is encrypted and no passphrase source is available',
      );
    const unlocked = await unlock(store, await options.passphrase());
    return new Repository(
      root,
      dir,
      config,
      settings,
      store,
      new EncryptedSealer(unlocked.master),
      unlocked.keyId,
      unlocked.master,
      'passphrase',
    );
  }

  /** The master key from the key agent, skipping Argon2; null means "use the passphrase". */
  private static async unlockFromAgent(
    store: LocalStore,
    lookupCachedKey: typeof lookupKey,
  ): Promise<UnlockedKey | null> {
    const hashes = await keyFileHashes(store).catch(() => []);
    const cached = await lookupCachedKey(hashes.map((h) => h.sha256));
    const keyId = cached && hashes.find((h) => h.sha256 === cached.digest)?.id;
    return cached && keyId ? { master: cached.master, keyId } : null;
  }

  /** SHA-256 of each key file, without unlocking anything: what `key forget` and `key cache --status` ask the agent about. */
  static async keyFileHashes(root: string): Promise<KeyFileHash[]> {
    const dir = join(root, REPO_DIR);
    const config = await ConfigFile.load(join(dir, 'config.toml'), { mustExist: true });
    if (config.get('encryption.enabled') !== true) return [];
    return keyFileHashes(new LocalStore(dir, { fsync: false }));
  }

  /** Creates a repository; on an existing one changes nothing and reports `reinitialized`. */
  static async init(
    root: string,
    options: InitOptions = {},
  ): Promise<{ repo: Repository | null; reinitialized: boolean }> {
    const dir = join(root, REPO_DIR);
    const reinitialized = await exists(join(dir, 'HEAD'));
    if (reinitialized) return { repo: null, reinitialized };
    if (await exists(dir))
      throw new AlreadyExistsError(`${dir} exists but is not a repository`, {
        hint: 'move it away first',
      });
    const branch = options.initialBranch ?? DEFAULT_BRANCH;
    if (!isValidRefName(`refs/heads/${branch}`))
      throw new PathspecError(`invalid branch name '${branch}'`);
    await ensureDir(dir);
    const config = ConfigFile.fresh(
      join(dir, 'config.toml'),
      initialConfig(
        options.chunking ?? DEFAULT_CHUNKING,
        options.compressionLevel ?? DEFAULT_ZSTD_LEVEL,
      ),
    );
    const settings = readSettings(config);
    const store = new LocalStore(dir, { fsync: settings.fsync });
    await store.initialize();
    let repo: Repository;
    if (options.encryptWith !== undefined) {
      const master = newMasterKey();
      const key = await addKey(store, master, options.encryptWith, 'initial');
      config.set('encryption.enabled', true);
      config.set('encryption.cipher', 'aes-256-gcm');
      repo = new Repository(
        root,
        dir,
        config,
        settings,
        store,
        new EncryptedSealer(master),
        key.id,
        master,
      );
    } else repo = new Repository(root, dir, config, settings, store, plainSealer);
    await config.save();
    // HEAD last: its presence is what makes the folder a repository.
    await writeFileAtomic(join(dir, 'HEAD'), `ref: refs/heads/${branch}\n`);
    return { repo, reinitialized };
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /** Converts a user-supplied path (relative to cwd) to a repository-relative posix path. */
  toRepoPath(userPath: string, cwd: string = process.cwd()): string {
    const abs = resolve(cwd, userPath);
    const rel = relative(this.root, abs);
    if (rel === '') return '';
    if (rel.startsWith('..') || resolve(this.root, rel) !== abs)
      throw new PathspecError(`'${userPath}' is outside the repository at ${this.root}`);
    const posix = rel.split(sep).join('/');
    if (posix === REPO_DIR || posix.startsWith(`${REPO_DIR}/`))
      throw new PathspecError(
        `'${userPath}' is inside ${REPO_DIR}/, which mediagit manages itself`,
      );
    return posix;
  }

  absPath(repoPath: string): string {
    return join(this.root, ...repoPath.split('/'));
  }

  /**
   * What ingesting and hashing files needs. With `workers`, new chunks are stored by worker
   * threads (src/workers); with `mainLane` too, one worker fewer is started and the context
   * carries the same chunk store for the main thread to ingest whole files with. The caller must
   * `close()` the context when done with it.
   */
  contentContext(
    options: { workers?: boolean; mainLane?: boolean } = {},
  ): ContentContext & { close(): Promise<void> } {
    this.contentLimiter ??= new Semaphore(8);
    const gear = this.odb.sealer.gear;
    const spec = {
      root: this.store.root,
      fsync: this.settings.fsync,
      compressionLevel: this.settings.compressionLevel,
      master: this.masterKey,
      chunking: this.settings.chunking,
    };
    const mainChunks = options.workers && options.mainLane ? new LocalChunks(spec) : undefined;
    const workers = options.workers
      ? new ChunkWorkerPool(
          spec,
          mainChunks ? Math.max(1, defaultPoolSize() - 1) : undefined,
          () => this.odb.verified.chunks++,
          (type) => (this.workerJobs[type] = (this.workerJobs[type] ?? 0) + 1),
        )
      : undefined;
    this.workerThreads += workers?.size ?? 0;
    return {
      odb: this.odb,
      chunking: this.settings.chunking,
      limiter: this.contentLimiter,
      ...(gear ? { gear } : {}),
      ...(workers ? { workers } : {}),
      ...(mainChunks ? { mainChunks } : {}),
      close: async () => workers?.close(),
    };
  }

  // ---- HEAD and refs ----------------------------------------------------------------------

  async readHead(): Promise<HeadState> {
    const text = (await readFile(this.path('HEAD'), 'utf8')).trim();
    if (text.startsWith('ref: ')) {
      const ref = text.slice(5);
      if (!isValidRefName(ref))
        throw new ObjectCorruptError('HEAD', `points at an invalid ref '${ref}'`);
      return { ref, oid: await this.readRef(ref) };
    }
    if (!isOid(text)) throw new ObjectCorruptError('HEAD', 'neither a ref nor an object ID');
    return { ref: null, oid: text };
  }

  async currentBranch(): Promise<string | null> {
    const head = await this.readHead();
    return head.ref?.startsWith('refs/heads/') ? head.ref.slice('refs/heads/'.length) : null;
  }

  /**
   * Points HEAD at a branch or (detached) a commit. With `log`, HEAD's reflog records the move
   * (checkout, bisect); a plain rename of HEAD's branch passes none.
   */
  async writeHead(
    target: { ref: string } | { oid: Oid },
    log?: string,
    /** What HEAD resolves to afterwards, when the caller knows better than the ref (a branch about to be created). */
    next?: Oid | null,
  ): Promise<void> {
    const before = log === undefined ? null : await this.readHead().catch(() => null);
    const lock = await LockFile.acquire(this.path('HEAD.lock'), { what: 'HEAD' });
    try {
      await writeFileAtomic(
        this.path('HEAD'),
        'ref' in target ? `ref: ${target.ref}\n` : `${target.oid}\n`,
      );
    } finally {
      await lock.release();
    }
    if (log === undefined) return;
    const after =
      next !== undefined ? next : 'ref' in target ? await this.readRef(target.ref) : target.oid;
    await appendReflog(this, 'HEAD', before?.oid ?? null, after, log);
  }

  async readRef(name: string): Promise<Oid | null> {
    const value = await this.store.readRef(name);
    if (value && !isOid(value.oid))
      throw new ObjectCorruptError(name, 'ref does not hold an object ID');
    return value?.oid ?? null;
  }

  /**
   * Compare-and-swap of a ref; `expected` null means "must not exist yet". Branches and the stash
   * get a reflog entry saying `log` (HEAD's too when HEAD is on that branch); a deleted branch
   * loses its reflog, as in git.
   */
  async updateRef(
    name: string,
    next: Oid | null,
    expected: Oid | null,
    log: string = 'update',
    /** Also log to HEAD's reflog when HEAD is on this branch (off when HEAD's move was logged already). */
    logHead = true,
  ): Promise<void> {
    await (
      await this.moveRef(name, next, expected, log, logHead)
    ).logged;
  }

  /**
   * updateRef that returns once the ref has moved (durably), with its reflog entries still being
   * written: `logged` settles when they are. For a caller that has other writes to overlap with
   * them (commit's index); it must await `logged` before releasing what serialises it with the
   * next mover, or the next entry could land first.
   */
  async moveRef(
    name: string,
    next: Oid | null,
    expected: Oid | null,
    log: string = 'update',
    logHead = true,
  ): Promise<{ logged: Promise<void> }> {
    const ok = await this.store.compareAndSwapRef(
      name,
      expected === null ? null : { oid: expected, version: expected },
      next,
    );
    if (!ok) {
      throw new RefConflictError(`${name} was changed by another process while this command ran`, {
        hint: 'run the command again',
      });
    }
    if (next === null) {
      await deleteReflog(this, name);
      return { logged: Promise.resolve() };
    }
    const head = logHead ? await this.readHead().catch(() => null) : null;
    // The branch's log and HEAD's are separate files under separate locks, both written after
    // the ref moved: nothing orders one before the other, so their fsyncs overlap.
    const logs = [appendReflog(this, name, expected, next, log)];
    if (logHead && head?.ref === name) logs.push(appendReflog(this, 'HEAD', expected, next, log));
    const logged = settleAll(logs);
    // Marked handled now: the caller may await it only after other work, and a failure must
    // reach it there, not end the process as an unhandled rejection first.
    logged.catch(() => undefined);
    return { logged };
  }

  /** Moves whatever HEAD designates (its branch, or HEAD itself when detached) from `expected` to `next`. */
  async advanceHead(next: Oid, expected: Oid | null, log: string = 'update'): Promise<void> {
    await (
      await this.moveHead(next, expected, log)
    ).logged;
  }

  /** advanceHead returning once HEAD's target has moved, its reflog entries pending (moveRef). */
  async moveHead(
    next: Oid,
    expected: Oid | null,
    log: string = 'update',
  ): Promise<{ logged: Promise<void> }> {
    const head = await this.readHead();
    if (head.ref) return this.moveRef(head.ref, next, expected, log);
    if (head.oid !== expected)
      throw new RefConflictError('HEAD was moved by another process', {
        hint: 'run the command again',
      });
    await this.writeHead({ oid: next }, log);
    return { logged: Promise.resolve() };
  }

  // ---- index ------------------------------------------------------------------------------

  readIndex(): Promise<Index> {
    return Index.load(this.path('index'));
  }

  /** Runs `fn` on the index under `.mediagit/index.lock` and saves it if `fn` returns normally. */
  async updateIndex<T>(
    fn: (
      index: Index,
      /** Writes to finish beside the index's save (commit's reflog entries), before the lock goes. */
      alongside: (work: Promise<void>) => void,
    ) => Promise<T>,
  ): Promise<T> {
    const lock = await LockFile.acquire(this.path('index.lock'), {
      what: 'the index',
      timeoutMs: 30_000,
    });
    const pending: Promise<void>[] = [];
    try {
      const index = await this.readIndex();
      let result: T;
      try {
        result = await fn(index, (work) => pending.push(work));
      } catch (err) {
        await Promise.allSettled(pending);
        throw err;
      }
      // The index and what fn left pending are separate files, each written after whatever it
      // must follow (a reflog entry after its ref's move, the index after the commit's objects),
      // so their fsyncs overlap; all are done before the lock is released, so the next command
      // that takes it finds them in order.
      await settleAll([index.save(this.path('index')), ...pending]);
      return result;
    } finally {
      await lock.release();
    }
  }

  // ---- state files (merge in progress, previous HEAD) -------------------------------------

  async readStateOid(name: StateOidName): Promise<Oid | null> {
    try {
      const text = (await readFile(this.path(name), 'utf8')).trim();
      return isOid(text) ? text : null;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return null;
      throw err;
    }
  }

  async readStateText(name: 'MERGE_MSG'): Promise<string | null> {
    try {
      return await readFile(this.path(name), 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return null;
      throw err;
    }
  }

  async writeState(name: StateName, text: string): Promise<void> {
    await writeFileAtomic(this.path(name), text);
  }

  async clearState(...names: StateName[]): Promise<void> {
    for (const name of names)
      await unlink(this.path(name)).catch((err: unknown) => {
        if (!isErrno(err, 'ENOENT')) throw err;
      });
  }

  // ---- identity ---------------------------------------------------------------------------

  async identity(now: Date = new Date()): Promise<Signature> {
    const global = await loadGlobalConfig();
    const pick = (key: string): string | undefined => {
      const value = this.config.get(key) ?? global.get(key);
      return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
    };
    const name = process.env.MEDIAGIT_AUTHOR_NAME?.trim() || pick('user.name');
    const email = process.env.MEDIAGIT_AUTHOR_EMAIL?.trim() || pick('user.email');
    if (!name || !email) throw new IdentityError();
    const dateEnv = process.env.MEDIAGIT_AUTHOR_DATE;
    const time =
      dateEnv && /^\d+$/.test(dateEnv) ? Number(dateEnv) : Math.floor(now.getTime() / 1000);
    return { name, email, time, tzOffset: -now.getTimezoneOffset() };
  }

  async isWorktreeFileSafe(repoPath: string): Promise<boolean> {
    try {
      const info = await lstat(this.absPath(repoPath));
      return info.isFile();
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }
}

/** Waits for every promise to settle (none is left running), then rejects with the first failure. */
async function settleAll(work: readonly Promise<void>[]): Promise<void> {
  for (const outcome of await Promise.allSettled(work))
    if (outcome.status === 'rejected') throw outcome.reason;
}
