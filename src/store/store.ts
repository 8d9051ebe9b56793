/**
 * The one storage contract every backend implements (local folder today; S3, Azure, GCS, multi and
 * the mediagit HTTP client later). Cross-cutting behaviour — retries, concurrency limits, metrics —
 * wraps a Store; backends never re-implement it.
 *
 * Keys are slash-separated, lowercase, validated by `assertValidKey` before they reach a backend:
 *   chunks/<64 hex>     chunk objects (stored envelopes)
 *   objects/<64 hex>    manifests, trees, commits, tags (stored envelopes)
 *   keys/<name>         wrapped master keys (encrypted repositories)
 * Ref names are `refs/heads/<branch>` or `refs/tags/<tag>`, validated by `assertValidRefName`.
 */
export interface Store {
  /** Human-readable location for messages; never contains credentials. */
  readonly description: string;

  /** Whole object bytes. Rejects with NotFoundError when absent. */
  get(key: string, options?: OperationOptions): Promise<Buffer>;

  /**
   * Stores the bytes under the key. Atomic: a concurrent or later reader sees either nothing or
   * all of `data`, never a prefix — even if the process dies mid-call. Writing an existing key
   * with the same bytes is a no-op success (content-addressed keys make this the common case).
   */
  put(key: string, data: Uint8Array, options?: OperationOptions): Promise<void>;

  /** Existence of many keys in one call; result[i] answers keys[i]. */
  has(keys: readonly string[], options?: OperationOptions): Promise<boolean[]>;

  /** Every key starting with `prefix`, with its stored size, in no particular order. */
  list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey>;

  /** Removes the key; removing an absent key succeeds. */
  delete(key: string, options?: OperationOptions): Promise<void>;

  /** Current value of a ref, or null when it does not exist. */
  readRef(name: string, options?: OperationOptions): Promise<RefValue | null>;

  /**
   * Sets ref `name` to `next` (an OID) — or deletes it when `next` is null — only if its current
   * state still equals `expected` (null = must not exist). Returns false, changing nothing, when
   * another writer got there first. This is the only way refs change; it must be atomic across
   * processes and machines using the backend's own primitive (lock+rename, If-Match, ETag,
   * generation precondition).
   */
  compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options?: OperationOptions,
  ): Promise<boolean>;

  /** Every ref whose name starts with `prefix` (e.g. "refs/heads/"). */
  listRefs(prefix: string, options?: OperationOptions): Promise<Map<string, RefValue>>;

  close(): Promise<void>;

  /**
   * What this store can do beyond the methods above, in one place: callers ask here instead of
   * probing for methods or backend classes, and wrappers forward it (see ForwardingStore). A
   * store without optional abilities uses BASIC_CAPABILITIES. Fixed for the store's lifetime.
   */
  readonly capabilities: StoreCapabilities;
}

/** Optional abilities of a Store (restic's `Properties()`). Absent members are abilities it lacks. */
export interface StoreCapabilities {
  /**
   * True when every Buffer `get` returns is fresh memory nobody else holds (a folder store's new
   * `readFile` buffer), so a caller done with it may free it at once (releaseMemory) instead of
   * leaving MiBs of external memory to set off a collection. False: the buffer may be shared (an
   * SDK's, a cache's) and must be left alone.
   */
  readonly freshBuffers: boolean;
  /** Many objects per round trip (the mediagit HTTP client: packs). */
  readonly batch?: BatchTransfer;
  /** Objects handed over as files between stores on one machine (folder stores: hard links). */
  readonly localFiles?: LocalFileTransfer;
  /** File locks kept by the remote (a mediagit server). */
  readonly locks?: RemoteLocks;
}

/** A store with no optional abilities. */
export const BASIC_CAPABILITIES: StoreCapabilities = Object.freeze({ freshBuffers: false });

/**
 * Batching for backends where a round trip costs more than the bytes. Callers use `put`/`get`
 * when a store has no BatchTransfer; the results must be the same either way.
 */
export interface BatchTransfer {
  /** Same contract as `put` for every entry; safe to repeat whole (content-addressed keys). */
  putMany(
    entries: readonly { key: string; data: Uint8Array }[],
    options?: OperationOptions,
  ): Promise<void>;
  /** Batched `get`: the objects present, by key; absent keys are simply left out of the map. */
  getMany(keys: readonly string[], options?: OperationOptions): Promise<Map<string, Buffer>>;
}

/**
 * The local fast path between two folder stores on one machine, like `git clone /path`, which
 * hard-links objects. Callers take it only when the source can `lend` and the target can `adopt`,
 * and fall back to get/put otherwise.
 */
export interface LocalFileTransfer {
  /**
   * The source half. Names the files that hold the objects `keys` (chunks/… and objects/… only),
   * with their stored sizes, so another store can `adopt` them without the bytes passing through
   * this process. Only immutable files may be lent: an object file is written once, read-only,
   * and only ever removed by unlink (gc), never rewritten in place, which is what makes sharing
   * its inode safe. Rejects with NotFoundError naming the first absent key.
   */
  lend(keys: readonly string[], options?: OperationOptions): Promise<LocalObjectFile[]>;
  /**
   * The target half. Stores each file under its key by hard-linking it into place; where a link
   * is impossible (another filesystem, no hard-link support, the link limit), copies it inside
   * the kernel instead (a reflink where the filesystem has them). Same guarantees as `put` for
   * every entry — atomic, an existing object is never replaced — and the store's folders are
   * fsynced once per call, not per object.
   *
   * The bytes are NOT read, so NOT verified: a caller that must vouch for what it stores uses
   * get/put instead (see copyObjects). Safe to repeat whole.
   */
  adopt(files: readonly LocalObjectFile[], options?: OperationOptions): Promise<AdoptResult>;
}

/** A lock as the server describes it (docs/protocol.md "Locks"). */
export interface LockRecord {
  readonly id: string;
  readonly path: string;
  readonly owner: string;
  readonly locked_at: string;
}

export interface LockVerification {
  /** Locks held by the caller's identity. */
  readonly ours: LockRecord[];
  /** Locks held by anyone else: pushes may not change these paths. */
  readonly theirs: LockRecord[];
}

/**
 * The lock endpoints of a remote that keeps locks, one request each (no retries: sync/locks.ts
 * builds the lock client on top of this).
 */
export interface RemoteLocks {
  /** Someone else holding it → LockedError naming them. */
  createLock(path: string, options?: OperationOptions): Promise<LockRecord>;
  /** Every lock, or only those on paths under `prefix`. */
  listLocks(prefix?: string, options?: OperationOptions): Promise<LockRecord[]>;
  /** The locks split by whether the caller's identity holds them. */
  verifyLocks(options?: OperationOptions): Promise<LockVerification>;
  /**
   * Releases lock `id`. `holder` (when the caller knows it) makes a refusal without force a
   * LockedError naming who holds it; an absent lock is a NotFoundError.
   */
  unlock(
    id: string,
    force: boolean,
    options?: OperationOptions & { holder?: LockRecord },
  ): Promise<LockRecord>;
}

/**
 * Where a store that authenticates gets its bearer token, asked on first use. Injected by the
 * caller (sync/ looks in MEDIAGIT_TOKEN and the credentials file), so stores never read either.
 */
export type TokenProvider = (origin: string, repo: string) => Promise<string | undefined>;

/** An object's file, lent by `LocalFileTransfer.lend` for `LocalFileTransfer.adopt`. */
export interface LocalObjectFile {
  readonly key: string;
  /** Absolute path of an immutable, complete object file. */
  readonly path: string;
  /** Its stored size in bytes. */
  readonly size: number;
}

/** What `LocalFileTransfer.adopt` did, object by object. */
export interface AdoptResult {
  /** Objects hard-linked into place (they now share the source's inode). */
  linked: number;
  /** Objects copied in the kernel because a link was impossible. */
  copied: number;
  /** Objects the store already had; left untouched. */
  present: number;
  /** Stored bytes the store gained: the sizes of the linked and copied objects. */
  bytes: number;
}

export interface RefValue {
  /** The OID the ref points at. */
  readonly oid: string;
  /** Opaque token proving which version was read (ETag, generation, …); backends compare it in CAS. */
  readonly version: string;
}

export interface ListedKey {
  readonly key: string;
  readonly size: number;
}

export interface OperationOptions {
  signal?: AbortSignal;
}

const KEY_PATTERN = /^(chunks|objects)\/[0-9a-f]{64}$|^(keys|meta)\/[a-z0-9][a-z0-9._-]{0,127}$/;

export function isValidKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

export function assertValidKey(key: string): void {
  if (!isValidKey(key))
    throw new TypeError(`invalid store key: ${JSON.stringify(key).slice(0, 100)}`);
}

/** Content-addressed object keys (chunks/…, objects/…): immutable once written, so their files may be shared. */
export function assertObjectKey(key: string): void {
  assertValidKey(key);
  if (!key.startsWith('chunks/') && !key.startsWith('objects/'))
    throw new TypeError(`not an object key: ${JSON.stringify(key).slice(0, 100)}`);
}

/** One path segment of a branch or tag name: git's rules, simplified and stricter. */
const REF_SEGMENT = /^(?!\.)(?!.*\.\.)(?!.*\.lock$)[A-Za-z0-9._+@-]{1,200}(?<!\.)$/;

export function isValidRefName(name: string): boolean {
  const parts = name.split('/');
  if (
    parts.length < 3 ||
    parts[0] !== 'refs' ||
    (parts[1] !== 'heads' && parts[1] !== 'tags' && parts[1] !== 'remotes' && parts[1] !== 'locks')
  )
    return false;
  if (name.length > 1000) return false;
  return parts.slice(2).every((p) => REF_SEGMENT.test(p));
}

export function assertValidRefName(name: string): void {
  if (!isValidRefName(name))
    throw new TypeError(`invalid ref name: ${JSON.stringify(name).slice(0, 100)}`);
}

export function chunkKey(oid: string): string {
  return `chunks/${oid}`;
}

export function objectKey(oid: string): string {
  return `objects/${oid}`;
}
