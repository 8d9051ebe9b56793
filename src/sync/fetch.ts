import { ObjectCorruptError } from '../errors/index.js';
import {
  decodeCommit,
  decodeManifest,
  decodeTag,
  decodeTree,
  type ObjectKind,
  type Oid,
} from '../objects/index.js';
import { STREAM_CONCURRENCY, type ProgressSink, type Repository } from '../repo/index.js';
import { chunkKey, objectKey, type Store } from '../store/index.js';
import { Semaphore, mapLimit } from '../util/limit.js';
import { expiredChunks } from './gc/expiry.js';
import { DEFAULT_PARKING_WINDOW, ParkedObjects, type ParkingWindow } from './parked.js';
import {
  BATCH_OBJECTS,
  TRANSFER_CONCURRENCY,
  canAdopt,
  copyObjects,
  missingOn,
  openFetched,
  readMany,
  transferPacing,
  type CopyOptions,
  type TransferStats,
} from './transfer.js';

/** Tips a history request names at most, either way (the server's limit). */
const HISTORY_TIPS = 1000;
/** Below this many chunks, starting worker threads costs more than it saves. */
const WORKERS_WORTH_CHUNKS = 16;

export interface FetchOptions {
  /** Only files whose repository path this accepts get their chunks fetched (clone --include). */
  readonly include?: (path: string) => boolean;
  readonly progress: ProgressSink;
  /**
   * Chunks from a folder remote are hard-linked where possible, unverified (see copyObjects);
   * false reads and verifies every one. Default true.
   */
  readonly hardlinks?: boolean;
  /**
   * How many fetched structured objects may wait in memory (DEFAULT_PARKING_WINDOW). Besides those,
   * only the ones in flight are: one batch being fetched (BATCH_OBJECTS, or fewer than the window)
   * or the remote's requests in flight (transferPacing) being fetched or stored one by one.
   */
  readonly window?: ParkingWindow;
  /** Told the number of fetched structured objects in memory each time it changes. */
  readonly onHeld?: (objects: number) => void;
  /**
   * A commit to check out as part of the fetch (clone). Its files' chunks are not fetched with
   * the rest but left to `write`, which gets the commit's root tree once every tree and manifest
   * is stored and before any commit is: the checkout fetches each chunk, verifies it once and
   * writes file and store from the same buffer (StreamingRestorer), and a clone killed meanwhile
   * holds no history yet, so a later fetch starts from it again. From a folder remote whose
   * chunks are hard-linked, they are linked as usual and `write` finds them present.
   */
  readonly checkout?: {
    readonly commit: Oid;
    write(tree: Oid): Promise<void>;
    /**
     * Told the chunks of the files the checkout writes (chunk → size, in the order the walk met
     * the files) once every other chunk is in and before the trees and manifests `write` reads are
     * stored: the caller can start the first downloads while that is done and the checkout
     * prepares. Only for a repository that holds none of them (a clone).
     */
    ahead?(chunks: ReadonlyMap<Oid, number>): void;
  };
  /**
   * A commit whose files' chunks are left out of the fetch, for the caller to bring as it writes
   * them (pull's merge, with a stream): FetchStats.left names them. Only when chunks arrive as
   * bytes; hard-linked ones come with the rest.
   */
  readonly leaveChunksOf?: Oid;
  /**
   * A fetch that brings no chunks itself (include false, the tip-only policy) and leaves its
   * caller those of leaveChunksOf's files that `include` keeps: told them (every such file's, in
   * the order the walk met them) once the trees and manifests are walked, before any is stored, so
   * the caller can start downloads while they are (pull's merge). FetchStats.left is left empty.
   */
  readonly tipChunks?: {
    readonly include: ((path: string) => boolean) | null;
    take(chunks: ReadonlyMap<Oid, number>): Promise<void>;
  };
}

/** What fetchObjects brought, and the chunks it left to the caller (FetchOptions.leaveChunksOf). */
export interface FetchStats extends TransferStats {
  /** Chunk → its size. */
  readonly left: Map<Oid, number>;
}

/** An object named by a tree, with the repository path it was first met at. */
interface PathedOid {
  readonly oid: Oid;
  readonly path: string;
}

/**
 * Brings every object reachable from `tips` (commits or annotated tags on the remote) into the
 * local store, verifying each one. Objects are stored children first — chunks, manifests, trees,
 * commits, tags — so the local invariant "an object present means everything it points to is
 * present" holds even if the fetch is interrupted; a re-run fetches only what is missing.
 *
 * Phases: the history (tags and commits), the content (trees and manifests, level by level), the
 * chunks, then the structured objects in dependency order. Structured objects wait between being
 * verified and being stored in a bounded window (ParkedObjects), so a long history costs disk in
 * the repository's tmp folder rather than memory; what stays in memory for the whole fetch is
 * OIDs (what was seen, which chunks to get, what depends on what).
 */
export async function fetchObjects(
  repo: Repository,
  remote: Store,
  tips: readonly Oid[],
  options: FetchOptions,
): Promise<FetchStats> {
  const run = new FetchRun(repo, remote, options);
  try {
    await run.askHistory(tips);
    const rootTrees = await run.fetchHistory(tips);
    const checkout = options.checkout;
    const checkoutTree = checkout ? run.rootTree(checkout.commit) : undefined;
    const leftTree = options.leaveChunksOf ? run.rootTree(options.leaveChunksOf) : undefined;
    const deferredTree = checkoutTree ?? leftTree;
    // The checked-out commit's content first, so the chunks noted then are exactly its files'.
    const ahead = checkoutTree && checkout!.ahead ? new Map<Oid, number>() : undefined;
    const tipChunks = leftTree && !checkoutTree ? options.tipChunks : undefined;
    if (tipChunks) await run.fetchContent([leftTree!], run.deferred, undefined, tipChunks.include);
    else if (deferredTree && run.streamsChunks())
      await run.fetchContent([deferredTree], run.deferred, ahead);
    await run.fetchContent(rootTrees, run.chunks);
    await run.fetchChunks();
    if (ahead && ahead.size > 0) checkout!.ahead!(ahead);
    if (tipChunks) {
      await tipChunks.take(run.deferred);
      run.deferred.clear();
    }
    await run.storeContent();
    if (checkoutTree) await checkout!.write(checkoutTree);
    await run.storeHistory();
    if (!checkoutTree) for (const [oid, size] of run.deferred) run.stats.left.set(oid, size);
    return run.stats;
  } finally {
    run.dropHistory();
    await run.parked.clear();
  }
}

class FetchRun {
  readonly stats: FetchStats = { objects: 0, bytes: 0, left: new Map() };
  readonly parked: ParkedObjects;
  private readonly window: ParkingWindow;
  private held = 0;
  private readonly seen = new Set<Oid>();
  /** The chunks the chosen files need, with their sizes (the total a progress bar shows); those left to the checkout (FetchOptions.checkout). */
  readonly chunks = new Map<Oid, number>();
  readonly deferred = new Map<Oid, number>();
  private readonly rootOf = new Map<Oid, Oid>();
  private readonly visitedTrees = new Set<Oid>();
  private readonly visitedManifests = new Set<Oid>();
  /** Fetched this run, in the order met: manifests, trees (level by level), then history. */
  private readonly manifests: Oid[] = [];
  private readonly trees: Oid[] = [];
  private readonly history: Oid[] = [];
  /** For each fetched tree, its folders; for each commit, its parents; for a tag, its object. */
  private readonly treeDeps = new Map<Oid, readonly Oid[]>();
  private readonly historyDeps = new Map<Oid, readonly Oid[]>();
  /** What the history answer brought and the walk has not taken yet (askHistory). */
  private prefetched = new Map<string, Buffer>();

  constructor(
    private readonly repo: Repository,
    private readonly remote: Store,
    private readonly options: FetchOptions,
  ) {
    this.window = options.window ?? DEFAULT_PARKING_WINDOW;
    this.parked = new ParkedObjects(repo.path('tmp'), this.window, (change) => this.hold(change));
  }

  /**
   * From a remote that answers it (docs/protocol.md "History"), the structured objects from the
   * tips down to what this repository has, in one round trip: the walk below then takes them from
   * here instead of asking level by level, verifying each as it would a fetched one, and asks
   * the remote only for what the answer left out. At most one parking window of them, so what
   * waits in memory stays within it.
   */
  async askHistory(tips: readonly Oid[]): Promise<void> {
    const history = this.remote.capabilities.negotiate?.history;
    if (!history) return;
    const want: Oid[] = [];
    for (const oid of new Set(tips)) if ((await this.repo.odb.kindOf(oid)) === null) want.push(oid);
    if (want.length === 0) return;
    const have = new Set<Oid>();
    for (const value of (await this.repo.store.listRefs('refs/')).values()) {
      if (have.size >= HISTORY_TIPS) break;
      if ((await this.repo.odb.kindOf(value.oid)) === 'commit') have.add(value.oid);
    }
    const asked = history({
      want: want.slice(0, HISTORY_TIPS),
      have: [...have],
      maxObjects: this.window.objects,
      maxBytes: this.window.bytes,
    });
    // Downloads many at once follow the answer (the objects it leaves out, a merge's chunks):
    // their connections open now, once the history request is out, so their handshakes overlap
    // its round trip and the work before the first download instead of costing a round trip then.
    this.remote.capabilities.warmConnections?.(STREAM_CONCURRENCY);
    const got = await asked;
    if (!got) return;
    this.prefetched = got;
    this.hold(got.size);
  }

  /** Lets go of what the history answer brought that the walk did not need. */
  dropHistory(): void {
    this.hold(-this.prefetched.size);
    this.prefetched.clear();
  }

  /** Tags and commits the local store lacks, wave by wave from the tips; returns their root trees. */
  async fetchHistory(tips: readonly Oid[]): Promise<Oid[]> {
    const rootTrees: Oid[] = [];
    let frontier = [...tips];
    while (frontier.length > 0) {
      const wave: Oid[] = [];
      for (const oid of frontier) {
        if (this.seen.has(oid)) continue;
        this.seen.add(oid);
        if ((await this.repo.odb.kindOf(oid)) === null) wave.push(oid);
      }
      frontier = [];
      await this.fetchEach(wave, ['commit', 'tag'], async (oid, kind, plain) => {
        this.history.push(oid);
        if (kind === 'tag') {
          const tag = decodeOrCorrupt(oid, 'tag', () => decodeTag(plain));
          this.historyDeps.set(oid, [tag.object]);
          frontier.push(tag.object);
          return;
        }
        const commit = decodeOrCorrupt(oid, 'commit', () => decodeCommit(plain));
        this.rootOf.set(oid, commit.tree);
        this.historyDeps.set(oid, commit.parents);
        rootTrees.push(commit.tree);
        frontier.push(...commit.parents);
      });
    }
    return rootTrees;
  }

  /** The root tree of a commit this run fetched. */
  rootTree(commit: Oid): Oid | undefined {
    return this.rootOf.get(commit);
  }

  /** Tells the remote which chunks are about to be read (ReadAhead: a server's presigned URLs). */
  expect(oids: Iterable<Oid>): void {
    const ahead = this.remote.capabilities.readAhead;
    if (ahead) ahead.expect([...oids].map(chunkKey));
  }

  /** Whether chunks arrive as bytes (so a checkout can take them), not hard-linked. */
  streamsChunks(): boolean {
    const copy: CopyOptions =
      this.options.hardlinks === undefined ? {} : { hardlinks: this.options.hardlinks };
    return !canAdopt(this.remote, this.repo.store, copy);
  }

  /**
   * Trees and manifests the local store lacks, level by level; notes the chunks the chosen files
   * need in `chunks`, and in `checkedOut` those of every file a checkout writes (outside the
   * sparse exclusions, whatever the content policy fetches). Trees and manifests met by an earlier
   * call are not walked again.
   */
  async fetchContent(
    rootTrees: readonly Oid[],
    chunks: Map<Oid, number>,
    checkedOut?: Map<Oid, number>,
    /** Whose files' chunks go into `chunks`, instead of the fetch's own include (tipChunks). */
    keep?: ((path: string) => boolean) | null,
  ): Promise<void> {
    const wanted =
      keep === undefined
        ? (path: string) => this.wanted(path)
        : (path: string) => !keep || keep(path);
    const { visitedTrees, visitedManifests } = this;
    let level: PathedOid[] = rootTrees.map((oid) => ({ oid, path: '' }));
    while (level.length > 0) {
      const folders: PathedOid[] = [];
      const files: PathedOid[] = [];
      const trees = level.filter((t) => !visitedTrees.has(t.oid) && visitedTrees.add(t.oid));
      await this.fetchAbsent('tree', trees, (item, plain) => {
        const entries = decodeOrCorrupt(item.oid, 'tree', () => decodeTree(plain));
        this.trees.push(item.oid);
        const dirs: Oid[] = [];
        for (const e of entries) {
          const path = item.path === '' ? e.name : `${item.path}/${e.name}`;
          if (e.type === 'dir') {
            dirs.push(e.oid);
            folders.push({ oid: e.oid, path });
          } else files.push({ oid: e.oid, path });
        }
        this.treeDeps.set(item.oid, dirs);
      });
      const manifests = files.filter(
        (f) => !visitedManifests.has(f.oid) && visitedManifests.add(f.oid),
      );
      const present = await this.fetchAbsent('manifest', manifests, (file, plain) => {
        const manifest = decodeOrCorrupt(file.oid, 'manifest', () => decodeManifest(plain));
        this.manifests.push(file.oid);
        if (wanted(file.path)) for (const c of manifest.chunks) chunks.set(c.oid, c.size);
        if (checkedOut && !this.repo.isSparseExcluded(file.path))
          for (const c of manifest.chunks) checkedOut.set(c.oid, c.size);
      });
      // A sparse clone may hold the manifest but not yet the chunks of a newly included file.
      if (this.options.include || keep !== undefined)
        await mapLimit(
          present.filter((file) => wanted(file.path)),
          TRANSFER_CONCURRENCY,
          async (file) => {
            for (const c of (await this.repo.odb.readManifest(file.oid)).chunks)
              chunks.set(c.oid, c.size);
          },
        );
      level = folders;
    }
  }

  /**
   * Chunks the local store lacks, in parallel, each verified before it is written — or, from a
   * folder remote, hard-linked unverified, to be verified by whatever reads them (checkout, fsck).
   */
  async fetchChunks(): Promise<void> {
    const local = this.repo.store;
    const missing = await skipExpired(
      this.remote,
      await missingOn(
        local,
        'chunk',
        [...this.chunks.keys()].filter((oid) => !this.deferred.has(oid)),
      ),
    );
    const copy: CopyOptions =
      this.options.hardlinks === undefined ? {} : { hardlinks: this.options.hardlinks };
    // Chunks that arrive as bytes are verified and written on the repository's chunk workers:
    // every core, and none of the decrypted or decoded copies left on this thread for the collector.
    const ctx =
      missing.length >= WORKERS_WORTH_CHUNKS && !canAdopt(this.remote, local, copy)
        ? this.repo.contentContext({ workers: true })
        : null;
    const { progress } = this.options;
    // Content size, not stored size (unknown until each arrives): the two differ only by what
    // compression saved, and a total beats the 0 B the bar showed before.
    let total = 0;
    for (const oid of missing) total += this.chunks.get(oid) ?? 0;
    progress.start('fetch', missing.length, total);
    this.expect(missing);
    try {
      await copyObjects(this.remote, local, 'chunk', missing, this.repo.odb, progress, this.stats, {
        ...copy,
        ...(ctx?.workers ? { workers: ctx.workers } : {}),
        sizeOf: (oid) => this.chunks.get(oid),
      });
    } finally {
      progress.stop();
      await ctx?.close();
    }
  }

  /** Every parked manifest and tree into the store, each after what it points to. */
  async storeContent(): Promise<void> {
    await this.storeInOrder(this.manifests, new Map());
    // Deepest levels first: a tree's folders are almost always stored by the time it is reached.
    await this.storeInOrder([...this.trees].reverse(), this.treeDeps);
  }

  /** Then the parked commits and tags, oldest first. */
  async storeHistory(): Promise<void> {
    await this.storeInOrder([...this.history].reverse(), this.historyDeps);
  }

  private wanted(path: string): boolean {
    return this.options.include ? this.options.include(path) : true;
  }

  private hold(change: number): void {
    if (change === 0) return;
    this.held += change;
    this.options.onHeld?.(this.held);
  }

  /**
   * Fetches the items whose object the local store lacks and hands each, verified, to `take`;
   * returns the items the store already has.
   */
  private async fetchAbsent<T extends PathedOid>(
    kind: 'tree' | 'manifest',
    items: readonly T[],
    take: (item: T, plain: Buffer) => void,
  ): Promise<T[]> {
    const present = await this.repo.odb.has(
      kind,
      items.map((i) => i.oid),
    );
    const byOid = new Map(items.filter((_, i) => !present[i]).map((i) => [i.oid, i]));
    await this.fetchEach([...byOid.keys()], [kind], async (oid, _kind, plain) =>
      take(byOid.get(oid)!, plain),
    );
    return items.filter((_, i) => present[i]);
  }

  /**
   * Fetches `oids` (structured objects of the `expected` kinds) a window at a time, in batches where
   * the remote takes them; each is verified, handed to `take`, and parked.
   */
  private async fetchEach(
    oids: readonly Oid[],
    expected: readonly ObjectKind[],
    take: (oid: Oid, kind: ObjectKind, plain: Buffer) => void | Promise<void>,
  ): Promise<void> {
    const step = Math.max(1, Math.min(BATCH_OBJECTS, this.window.objects));
    const prefetched = this.prefetched;
    for (let i = 0; i < oids.length; i += step) {
      const slice = oids.slice(i, i + step);
      const ask = slice.filter((oid) => !prefetched.has(objectKey(oid)));
      const batched =
        this.remote.capabilities.batch && ask.length > 1
          ? await readMany(this.remote, ask.map(objectKey))
          : null;
      this.hold(batched?.size ?? 0);
      await mapLimit(slice, transferPacing(this.remote).requests, async (oid) => {
        let stored = prefetched.get(objectKey(oid)) ?? batched?.get(objectKey(oid));
        if (stored) {
          prefetched.delete(objectKey(oid));
          batched?.delete(objectKey(oid));
        } else {
          stored = await this.remote.get(objectKey(oid));
          this.hold(1);
        }
        try {
          const got = await openFetched(oid, stored, expected, this.repo.odb);
          this.stats.objects++;
          this.stats.bytes += stored.length;
          await take(oid, got.kind, got.plain);
        } catch (err) {
          this.hold(-1);
          throw err;
        }
        await this.parked.park(oid, stored);
      });
    }
  }

  /**
   * Stores the parked objects `order` names, each once those of its `deps` parked in this run are
   * stored. At most TRANSFER_CONCURRENCY are being written at once.
   */
  private async storeInOrder(
    order: readonly Oid[],
    deps: ReadonlyMap<Oid, readonly Oid[]>,
  ): Promise<void> {
    const local = this.repo.store;
    const writing = new Semaphore(TRANSFER_CONCURRENCY);
    const stored = new Map<Oid, Promise<void>>();
    const store = (oid: Oid): Promise<void> => {
      let done = stored.get(oid);
      if (!done) {
        done = (async () => {
          // Past this await, a chain of dependencies unwinds one microtask per link instead of
          // one stack frame per link (a long history fetched newest first).
          await Promise.resolve();
          await Promise.all((deps.get(oid) ?? []).filter((d) => deps.has(d)).map(store));
          await writing.run(() =>
            this.parked.unpark(oid, (bytes) => local.put(objectKey(oid), bytes)),
          );
        })();
        stored.set(oid, done);
      }
      return done;
    };
    await mapLimit(order, TRANSFER_CONCURRENCY, store);
  }
}

/**
 * Leaves out chunks a retention policy deleted from the remote (gc --remote): the versions that
 * need them stay in history, and reading one later reports it expired. Only chunks both named in
 * an expiry record and absent are left out: one pushed again since is fetched like any other.
 */
export async function skipExpired(remote: Store, missing: Oid[]): Promise<Oid[]> {
  // Nothing to leave out: no listing of the records (a round trip on a slow link).
  if (missing.length === 0) return missing;
  const expired = await expiredChunks(remote);
  const candidates = missing.filter((oid) => expired.has(oid));
  if (candidates.length === 0) return missing;
  const gone = new Set(await missingOn(remote, 'chunk', candidates));
  return missing.filter((oid) => !gone.has(oid));
}

function decodeOrCorrupt<T>(oid: Oid, kind: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    throw new ObjectCorruptError(
      oid,
      `undecodable ${kind}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}
