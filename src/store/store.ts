import type { Readable } from 'node:stream';

/**
 * The one storage contract every backend implements: a folder (local), S3, Azure Blob, GCS, a
 * mirror of two stores (multi) and the mediagit HTTP client. Cross-cutting behaviour — retries,
 * concurrency limits, metrics — wraps a Store (see ForwardingStore); backends never re-implement
 * it. test/support/store-contract.ts checks every rule below against every backend and wrapper.
 *
 * Names
 *   chunks/<64 hex>     chunk objects (stored envelopes)
 *   objects/<64 hex>    manifests, trees, commits, tags (stored envelopes)
 *   keys/<name>         wrapped master keys (encrypted repositories)
 *   meta/<name>         repository metadata (descriptor, server records)
 * Ref names are `refs/{heads,tags,remotes,locks}/<name>` (`isValidRefName`). Objects and refs are
 * separate namespaces: no object call sees a ref and no ref call sees an object, and whatever a
 * backend keeps beside them (temporary files, ref logs, foreign files) is never listed.
 *
 * Arguments
 * - An invalid key, ref name or ref target (`next`) is a caller's bug: the call rejects with a
 *   TypeError — a rejection, never a synchronous throw — before anything reaches the backend,
 *   so nothing changes. In a batch (`has`, `putMany`…) one invalid key rejects the whole call.
 * - `options.signal`: a call whose signal is already aborted rejects with the signal's reason
 *   (or, where an SDK substitutes its own, an error named AbortError) and changes nothing; a
 *   call aborted mid-way rejects too, and leaves what a crash at that point would (a put lands
 *   whole or not at all, a CAS happened or not). Aborts are never retried.
 *
 * Errors (src/errors), so that retries and messages work the same for every backend
 * - NotFoundError (code E_NOT_FOUND): `get` (or `lend`) of an absent key. Nothing else reports
 *   absence as an error: `has` says false, `delete` succeeds, `readRef` says null.
 * - StoreUnavailableError: a failure worth retrying (network, timeouts, 429, 5xx), carrying
 *   `retryAfterMs` when the service said how long to wait. Backends never retry on their own
 *   (SDK retries are off): RetryingStore decides, so two layers of retries never multiply.
 * - AuthError for refused credentials, ConfigError for a bad location or option; other
 *   MediagitErrors are verdicts that a retry would not change. Messages never contain secrets.
 * - A CAS that loses is `false`, never an error.
 *
 * Concurrency: every method may be called concurrently with any other, from several processes
 * and machines at once, and must keep these rules under that load.
 */
export interface Store {
  /** Human-readable location for messages; never contains credentials. */
  readonly description: string;

  /**
   * The object's bytes, whole, exactly as stored by one `put` (never a mix of two writes).
   * Rejects with NotFoundError when absent.
   */
  get(key: string, options?: OperationOptions): Promise<Buffer>;

  /**
   * Stores `data` (only the bytes of the view, which may be empty) under the key. Atomic: a
   * concurrent or later reader sees either nothing or all of `data`, never a prefix — even if
   * the process dies mid-call. Writing a key that exists succeeds, including many writers at
   * once; the store may keep either copy, which is why callers only ever write the same bytes
   * under a key (content addressing; keys/ and meta/ files get new names rather than new
   * contents). Safe to repeat after a failure whose outcome is unknown.
   */
  put(key: string, data: Uint8Array, options?: PutOptions): Promise<void>;

  /**
   * Stores `data` under `key` only if the key does not exist yet, with the backend's own
   * create-only primitive (link(2) to the final name, If-None-Match: *, ifGenerationMatch=0):
   * of several writers racing on one absent key, exactly one gets true and the key then holds its
   * bytes; the others get false and change nothing. False also when the key existed before, with
   * whatever content (read it to see which). Atomic like `put`.
   *
   * Only for `keys/` and `meta/` (anything else is a TypeError): files whose first writer decides
   * what the repository is, like the descriptor. Objects are content-addressed and use `put`.
   * A repeat after a failure whose outcome is unknown may answer false for the caller's own write
   * that landed, so callers that must know compare the stored bytes with theirs.
   */
  create(key: string, data: Uint8Array, options?: OperationOptions): Promise<boolean>;

  /**
   * Existence of many keys in one call; result[i] answers keys[i], a key asked twice is answered
   * twice, and an empty batch is answered `[]`. True means `get` would find it.
   */
  has(keys: readonly string[], options?: OperationOptions): Promise<boolean[]>;

  /**
   * Every key whose name starts with `prefix` (a plain string prefix, not a folder: `chunks/a`
   * lists `chunks/ab…`), with its stored size in bytes, each key once, in no particular order.
   * A prefix outside the key namespaces lists nothing. The backend pages as it needs to; a
   * listing runs to the end however many pages it spans. A key present for the whole listing is
   * listed; one put or deleted meanwhile may or may not be. The consumer may stop early, and the
   * backend then releases what it held (a cursor, a connection).
   */
  list(prefix: string, options?: OperationOptions): AsyncIterable<ListedKey>;

  /** Removes the key; removing an absent key succeeds. A removed key may be written again. */
  delete(key: string, options?: OperationOptions): Promise<void>;

  /**
   * The ref's current value, or null when it does not exist — also when the name is only a
   * folder of other refs (`refs/heads/a` while `refs/heads/a/b` exists).
   */
  readRef(name: string, options?: OperationOptions): Promise<RefValue | null>;

  /**
   * Sets ref `name` to `next` — or deletes it when `next` is null — only if its current state
   * still equals `expected`. Returns true when it did, false (changing nothing) when the ref was
   * not in that state: another writer got there first.
   *
   * - `expected` null: the ref must not exist. So (null → OID) creates, and (null → null) is
   *   true exactly when the ref is absent, changing nothing.
   * - `expected` a RefValue this store returned (readRef or listRefs; the two are
   *   interchangeable): the ref must still be in the state that value was read in. Backends that
   *   version refs (ETag, generation, log entry) also refuse a value read before an A→B→A change;
   *   callers must not rely on either answer for that case.
   * - `expected` `{ oid, version: oid }` (a caller that knows only the OID, like the
   *   repository's own refs): value semantics — it matches whenever the ref holds `oid`.
   * - Any other `expected` (an OID the ref does not hold, a version the store never issued)
   *   matches nothing: false.
   * - `next` is a 64-hex lowercase OID or null; anything else is a TypeError.
   *
   * This is the only way refs change. It is atomic across processes and machines, built on the
   * backend's own primitive (lock file + rename, If-None-Match / If-Match, generation
   * preconditions, create-only log entries): of several writers racing from the same
   * `expected`, exactly one wins, and the ref then holds its `next`.
   */
  compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options?: SwapOptions,
  ): Promise<boolean>;

  /**
   * Every ref whose name starts with `prefix` (a plain string prefix, e.g. "refs/heads/"), with
   * values as good as readRef's for a CAS. Nested names (`refs/heads/feature/x`) are included.
   */
  listRefs(prefix: string, options?: OperationOptions): Promise<Map<string, RefValue>>;

  /** Releases connections and clients. Idempotent; no other call may follow it. */
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
  /** The store keeps more than one copy of each object (a multi remote's primary and secondary). */
  readonly replicas?: Replicas;
  /** Many questions in one round trip (a mediagit server's POST /negotiate). */
  readonly negotiate?: Negotiator;
  /** Objects read as streams, for passing them on without holding them whole (cloud stores). */
  readonly streaming?: StreamingRead;
  /** Told which keys are about to be read, it prepares their reads (a server's presigned URLs). */
  readonly readAhead?: ReadAhead;
  /**
   * True when compareAndSwapRef records each update's writer token (SwapOptions) and so
   * recognizes a repeat of an update that landed, even once the ref has moved on from it (S3's
   * ref log). Whoever repeats a CAS of unknown outcome asks such a store again instead of taking
   * "the ref moved" for a lost race.
   */
  readonly refWriterTokens?: boolean;
  /**
   * A hint that a ref update will follow (a push calls it before its uploads), so that a store's
   * one-time preparation for ref updates — S3's conditional-write probe — runs behind the uploads
   * rather than after them. Returns at once; never required before compareAndSwapRef or create.
   */
  readonly prepareRefUpdates?: () => void;
  /**
   * A hint that about `count` requests will soon go out at once (a pull's chunk downloads, a
   * push's packs): a store that talks over connections opens that many now, so their handshakes
   * overlap the caller's round trips and work in between instead of costing the first of those
   * requests a round trip each. Returns at once; never required.
   */
  readonly warmConnections?: (count: number) => void;
  /**
   * How a push or fetch should pace its object requests to this store, where the store knows
   * better than the transfer layer's defaults (S3: more requests in flight, its own byte budget).
   */
  readonly pacing?: TransferPacing;
}

/** What a store asks of the transfers that move objects to and from it. */
export interface TransferPacing {
  /** Object requests (get, put) in flight at once. */
  readonly requests: number;
  /**
   * Bytes of objects being moved held at once, whatever `requests` allows: many large objects
   * (multipart uploads) wait for each other instead of each holding its bytes. An object larger
   * than the whole budget moves alone.
   */
  readonly bytes: number;
}

/**
 * Presence per copy, for a store that keeps several. `has` answers "can get() return it?", which a
 * single copy satisfies; a writer that must leave every copy whole asks here instead.
 */
export interface Replicas {
  /** True only where every copy holds the key. */
  hasEverywhere(keys: readonly string[], options?: OperationOptions): Promise<boolean[]>;
}

/**
 * Asks a remote what a push or fetch needs to know before moving anything, in one round trip
 * (docs/protocol.md "Negotiate"). Read-only, so safe to repeat.
 */
export interface Negotiator {
  /** null: the remote cannot answer it (a server from before it); ask with the separate calls. */
  negotiate(request: NegotiateRequest, options?: OperationOptions): Promise<NegotiateAnswer | null>;
  /**
   * The structured objects from `want` down to `have` in one round trip (docs/protocol.md
   * "History"): commits, tags, trees and manifests, stored bytes by key (`objects/<oid>`),
   * unverified (the caller verifies each as it takes it), possibly not all of them. null: the
   * remote cannot answer it (a server from before it, an encrypted repository); walk as before.
   */
  history?(
    request: HistoryRequest,
    options?: OperationOptions,
  ): Promise<Map<string, Buffer> | null>;
}

export interface HistoryRequest {
  /** Commits or tags to fetch the history of. */
  readonly want: readonly string[];
  /** Commits the caller has: their history is not sent, nor what their trees hold. */
  readonly have: readonly string[];
  /** The most objects and stored bytes the caller takes in one answer (the server may send fewer). */
  readonly maxObjects?: number;
  readonly maxBytes?: number;
}

export interface NegotiateRequest {
  /** List the refs under this prefix (`refs/`). */
  readonly refs?: string;
  /** Existence of these keys (chunks/… and objects/… only). */
  readonly check?: readonly string[];
  /** The locks, split by the caller's identity. */
  readonly locks?: boolean;
  /** The names of the key files (keys/<name>). */
  readonly keys?: boolean;
  /** The gc sweeper's lease: its ref and the record it names. */
  readonly gcLease?: boolean;
}

export interface NegotiateAnswer {
  /** The repository descriptor (`meta/repository`) as parsed JSON, null when none was pushed. */
  readonly descriptor: unknown;
  /** As listRefs would answer, when asked. */
  readonly refs?: Map<string, RefValue>;
  /** Of the keys asked to check, those absent (every other one is present). */
  readonly missing?: ReadonlySet<string>;
  readonly locks?: LockVerification;
  readonly keys?: readonly string[];
  readonly gcLease?: GcLeaseAnswer;
  /**
   * The remote creates a missing descriptor from the one a batch carries (`PackOptions`), so a
   * first push need not write it before its first upload.
   */
  readonly descriptorInPack?: boolean;
}

/**
 * Reading an object as a stream: what a server relaying a cloud store's objects uses so that its
 * memory holds a window of each response, never the object. Only opening the read goes through
 * the wrappers (retries, limits, deadlines); a failure once bytes flow is the stream's error, and
 * the caller (who may have sent some bytes on) decides what it means.
 */
export interface StreamingRead {
  /**
   * The object's stored bytes as a stream, with their length, exactly as `get` would return them.
   * Rejects with NotFoundError when absent. The caller must read the body to its end or destroy
   * it; destroying it stops the read at the source (the connection is closed, not drained).
   */
  getStream(key: string, options?: OperationOptions): Promise<StreamedObject>;
}

/**
 * A hint, never a duty: the caller is about to `get` these keys (in any order, perhaps not all).
 * A store that must ask something per read before the read itself (a presigned URL) asks for all
 * of them at once now, instead of a round trip per read later. Returns at once; never fails.
 */
export interface ReadAhead {
  expect(keys: readonly string[]): void;
}

export interface StreamedObject {
  /** Stored length in bytes (the body ends after exactly this many). */
  readonly size: number;
  readonly body: Readable;
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
    options?: PackOptions,
  ): Promise<void>;
  /** Batched `get`: the objects present, by key; absent keys are simply left out of the map. */
  getMany(keys: readonly string[], options?: OperationOptions): Promise<Map<string, Buffer>>;
  /**
   * `putMany(entries)`, then `compareAndSwapRef` of `update` once every entry is stored, with the
   * update riding on the last request instead of a round trip of its own (a mediagit server: the
   * last pack carries it, docs/protocol.md "Pack with a ref update"). Only for a caller to whom
   * the ref at `update.next` is success whoever put it there (a push, `endAtNextIsEnough`): so
   * the whole call may be repeated after a lost answer. Resolves as compareAndSwapRef would, or
   * null when the entries were stored and the ref was not touched (a server from before it,
   * entries a pack cannot carry): the caller then updates the ref itself.
   */
  putManyThenSwap?(
    entries: readonly { key: string; data: Uint8Array }[],
    update: RefUpdate,
    options?: SwapOptions & PackOptions,
  ): Promise<boolean | null>;
}

export interface PackOptions extends OperationOptions {
  /**
   * Only to a remote whose negotiation answered `descriptorInPack`: the repository descriptor
   * (meta/repository's bytes), created create-only before any entry is stored when the remote has
   * none; the entries are refused when it holds one of another layout. A first push's batches
   * all carry it instead of writing it first.
   */
  readonly descriptor?: Uint8Array;
}

/** A ref update as `compareAndSwapRef` takes it, for calls that carry one. */
export interface RefUpdate {
  readonly name: string;
  readonly expected: RefValue | null;
  readonly next: string;
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
  /**
   * Opaque token naming the state that was read (an ETag, a generation, a log entry; the OID
   * itself for stores that compare values); backends compare it in CAS. Never parsed by callers.
   */
  readonly version: string;
}

export interface ListedKey {
  readonly key: string;
  readonly size: number;
}

export interface OperationOptions {
  signal?: AbortSignal;
}

/** Options of `put`. */
export interface PutOptions extends OperationOptions {
  /**
   * The caller has just found the key absent (a server storing what a push's check reported
   * missing), so a store that looks before it writes (a local folder) need not look again. An
   * object that arrived meanwhile is written over with the same bytes, which is harmless.
   */
  readonly absent?: boolean;
}

/** Options of `compareAndSwapRef`. */
export interface SwapOptions extends OperationOptions {
  /**
   * The caller asks only that the ref end at `next` (a push): when an attempt's answer is lost
   * and the ref is then found at `next`, that is success whoever put it there. A retrying store
   * then needs no read of the ref before the first attempt, which saves a round trip.
   */
  readonly endAtNextIsEnough?: boolean;

  /**
   * Names one logical ref update across its attempts (32 lowercase hex). Whoever repeats a CAS
   * whose outcome is unknown (RetryingStore) passes the same token each time; a backend that tags
   * what it writes with it (S3's ref-log entries) then recognizes its own landed write on the
   * repeat, even after another writer moved the ref on from it, and answers true. Backends with
   * no such record ignore it.
   */
  writerToken?: string;

  /**
   * Asks a backend that can (a mediagit server, docs/protocol.md "Ref update") to read the gc
   * sweeper's lease right after a swap that succeeded and answer it with the update, as
   * negotiate's `gcLease` answers it: told here, which saves the caller that read's round trip.
   * Any other backend leaves it uncalled, and the caller reads the lease itself.
   */
  onLeaseAfter?: (lease: GcLeaseAnswer) => void;

  /**
   * Called by a backend that confirms an update with a read after making it (S3's ref log) as
   * soon as the new value is visible to readers, before that confirmation: what the caller must
   * read after the update (a push's gc lease) can then go beside the confirming read instead of
   * after it. Called again by each later attempt that writes. Backends that do not confirm never
   * call it, and the caller reads after the swap as before.
   */
  onWritten?: () => void;
}

/** The gc sweeper's lease as a server reads it: its ref, and the record the ref names. */
export interface GcLeaseAnswer {
  readonly ref: RefValue | null;
  readonly record: Buffer | null;
}

const WRITER_TOKEN = /^[0-9a-f]{32}$/;

export function isWriterToken(token: unknown): token is string {
  return typeof token === 'string' && WRITER_TOKEN.test(token);
}

const KEY_PATTERN = /^(chunks|objects)\/[0-9a-f]{64}$|^(keys|meta)\/[a-z0-9][a-z0-9._-]{0,127}$/;

export function isValidKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

export function assertValidKey(key: string): void {
  if (!isValidKey(key))
    throw new TypeError(`invalid store key: ${JSON.stringify(key).slice(0, 100)}`);
}

/** Keys `create` accepts: the named files of keys/ and meta/, never content-addressed objects. */
export function assertCreatableKey(key: string): void {
  assertValidKey(key);
  if (!key.startsWith('keys/') && !key.startsWith('meta/'))
    throw new TypeError(`create is only for keys/ and meta/: ${JSON.stringify(key).slice(0, 100)}`);
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

const OID_PATTERN = /^[0-9a-f]{64}$/;

/** What `compareAndSwapRef` may set a ref to: an OID, or null for deleting it. */
export function isValidRefTarget(next: string | null): boolean {
  return next === null || OID_PATTERN.test(next);
}

export function assertValidRefTarget(next: string | null): void {
  if (!isValidRefTarget(next))
    throw new TypeError(`invalid ref target: ${JSON.stringify(next).slice(0, 100)}`);
}

export function chunkKey(oid: string): string {
  return `chunks/${oid}`;
}

export function objectKey(oid: string): string {
  return `objects/${oid}`;
}
