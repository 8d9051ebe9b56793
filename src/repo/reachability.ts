/**
 * Reachability: which objects the repository still needs. The roots are every ref, HEAD, the
 * merge/reset state files and the index; from them the walk follows tags → commits (all parents)
 * → trees → manifests → chunks, reading each structured object once (and so verifying it — the
 * object database re-hashes everything it returns). Chunks are only checked for presence, in
 * batches. Used by fsck, gc and stats, and by push/fetch to find what the other side lacks.
 */
import { ObjectCorruptError, ObjectMissingError } from '../errors/index.js';
import {
  isOid,
  shortOid,
  type Commit,
  type Manifest,
  type ObjectKind,
  type Oid,
  type Tag,
  type TreeEntry,
} from '../objects/index.js';
import { chunkKey } from '../store/index.js';
import type { Index } from './index-file.js';
import { reflogOids } from './reflog.js';
import type { Repository } from './repository.js';

/** `object`: a ref target, which may be a commit or an annotated tag (learnt by reading it). */
export type RootKind = 'object' | 'commit' | 'tag' | 'tree' | 'manifest';

export interface Root {
  readonly oid: Oid;
  readonly kind: RootKind;
  /** Where the root comes from, for messages: "refs/heads/main", "HEAD", "the index (textures/a.tif)". */
  readonly where: string;
  /** For a manifest or tree root: the repository path it stands for (index entries). */
  readonly path?: string;
}

export interface CollectRootsOptions {
  /** The index to take staged manifests from (a caller holding the index lock passes its copy). */
  index?: Index;
  /** Include the index's entries and conflicts (default true). */
  includeIndex?: boolean;
  /** Also keep what reflog entries younger than this (seconds since the epoch) name: gc's view. */
  reflogsSince?: number;
}

/**
 * Everything that keeps objects alive: every ref under refs/, HEAD (when detached it is the only
 * thing naming its commit), MERGE_HEAD, ORIG_HEAD, CHERRY_PICK_HEAD, REVERT_HEAD, REBASE_HEAD, for gc the
 * unexpired reflog entries, and the manifests staged in the index
 * (entries, and the base/ours/theirs sides of unmerged paths).
 */
export async function collectRoots(
  repo: Repository,
  options: CollectRootsOptions = {},
): Promise<Root[]> {
  const roots: Root[] = [];
  const refs = await repo.store.listRefs('refs/');
  for (const name of [...refs.keys()].sort())
    roots.push({ oid: refs.get(name)!.oid, kind: 'object', where: name });
  const head = await repo.readHead();
  if (head.oid !== null) roots.push({ oid: head.oid, kind: 'object', where: 'HEAD' });
  for (const name of [
    'MERGE_HEAD',
    'ORIG_HEAD',
    'CHERRY_PICK_HEAD',
    'REVERT_HEAD',
    'REBASE_HEAD',
  ] as const) {
    const oid = await repo.readStateOid(name);
    if (oid !== null) roots.push({ oid, kind: 'object', where: name });
  }
  if (options.reflogsSince !== undefined)
    for (const { oid, where } of await reflogOids(repo, options.reflogsSince))
      roots.push({ oid, kind: 'object', where });
  if (options.includeIndex ?? true) {
    const index = options.index ?? (await repo.readIndex());
    for (const entry of index.entries.values())
      roots.push({
        oid: entry.oid,
        kind: 'manifest',
        where: `the index (${entry.path})`,
        path: entry.path,
      });
    for (const conflict of index.conflicts.values()) {
      for (const side of ['base', 'ours', 'theirs'] as const) {
        const record = conflict[side];
        if (record)
          roots.push({
            oid: record.oid,
            kind: 'manifest',
            where: `the index (${conflict.path}, ${side} side of a conflict)`,
            path: conflict.path,
          });
      }
    }
  }
  return roots;
}

export interface ReachabilityProblem {
  readonly kind: ObjectKind;
  readonly oid: Oid;
  readonly problem: 'missing' | 'corrupt';
  /** What is wrong, e.g. "content does not match its ID". */
  readonly reason: string;
  /** Where the object was referenced from, e.g. "in manifest 1f2e… of textures/a.tif". */
  readonly where: string;
}

export interface ReachableObjects {
  readonly tags: Set<Oid>;
  readonly commits: Set<Oid>;
  readonly trees: Set<Oid>;
  readonly manifests: Set<Oid>;
  readonly chunks: Set<Oid>;
  /** Logical (uncompressed) bytes of the distinct chunks in `chunks`, each counted once. */
  chunkBytes: number;
  /** Missing or corrupt objects (only ever non-empty with `tolerant`). Their OIDs are in the sets too. */
  readonly problems: ReachabilityProblem[];
  /**
   * Chunks absent locally that the repository's content remote confirmed it holds (a lean clone
   * leaves them there): not problems, fetched on demand. In `chunks` too.
   */
  readonly remoteOnly: Set<Oid>;
  /** Chunks absent locally whose content remote could not be asked (offline): not problems either. */
  readonly unconfirmed: Set<Oid>;
  /** Chunks absent here and on the content remote because a retention policy expired them there. */
  readonly expired: Set<Oid>;
}

/** Called once per object, after it was read and verified. May be async; the walk waits for it. */
export interface ReachabilityVisitor {
  tag?(oid: Oid, tag: Tag): void | Promise<void>;
  commit?(oid: Oid, commit: Commit): void | Promise<void>;
  /** `path` is the folder's repository path ('' for a root tree) where it was first met. */
  tree?(oid: Oid, entries: readonly TreeEntry[], path: string): void | Promise<void>;
  manifest?(oid: Oid, manifest: Manifest, path: string): void | Promise<void>;
}

export interface WalkOptions {
  /** Record missing/corrupt objects in `problems` and carry on, instead of throwing the first. */
  tolerant?: boolean;
  /**
   * Commits (or tags) not to enter: typically what the other side of a push already has. The walk
   * stops there, so their history is neither read nor collected.
   */
  exclude?: ReadonlySet<Oid>;
  /**
   * With `exclude`: also leave out the trees, manifests and chunks of the excluded commits met at
   * the boundary (they are read to learn their content, but not collected). Missing boundary
   * objects are ignored: the other side has them.
   */
  excludeBoundaryContent?: boolean;
  /** 'check' (default): batch-check every chunk's presence. 'skip': only collect chunk OIDs. */
  chunks?: 'check' | 'skip';
  /** Stop below this level: 'commits' reads history only, 'trees' adds trees, 'manifests' adds manifests. */
  depth?: 'commits' | 'trees' | 'manifests' | 'chunks';
  visitor?: ReachabilityVisitor;
  /** Keys per `store.has` call. Default 512. */
  chunkBatch?: number;
  /** Trees and manifests read at once. Default 8. */
  concurrency?: number;
}

export function emptyReachable(): ReachableObjects {
  return {
    tags: new Set(),
    commits: new Set(),
    trees: new Set(),
    manifests: new Set(),
    chunks: new Set(),
    chunkBytes: 0,
    problems: [],
    remoteOnly: new Set(),
    unconfirmed: new Set(),
    expired: new Set(),
  };
}

interface HistoryItem {
  readonly oid: Oid;
  readonly kind: 'object' | 'commit' | 'tag';
  readonly where: string;
}

interface ContentItem {
  readonly kind: 'tree' | 'manifest';
  readonly oid: Oid;
  /** Repository path of the folder or file. */
  readonly path: string;
  /** "commit 1a2b3c4d5e6f" or "the index": what snapshot the path belongs to. */
  readonly origin: string;
  /** Set for roots: the full where text. */
  readonly where?: string;
}

interface PendingChunk {
  readonly oid: Oid;
  readonly manifest: Oid;
  readonly path: string;
}

const DEPTHS = ['commits', 'trees', 'manifests', 'chunks'] as const;

/** Reason text of an ObjectCorruptError without the "object <oid> is corrupt: " prefix. */
function corruptReason(err: ObjectCorruptError): string {
  const prefix = `object ${err.oid} is corrupt: `;
  return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}

/** The value, or null when the object is missing or corrupt (other failures still throw). */
async function ignoreDamage<T>(read: Promise<T>): Promise<T | null> {
  try {
    return await read;
  } catch (err) {
    if (err instanceof ObjectMissingError || err instanceof ObjectCorruptError) return null;
    throw err;
  }
}

/** Runs tasks with at most `limit` in flight; tasks may schedule more work but never wait for a slot. */
class TaskRunner {
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly limit: number) {}

  get full(): boolean {
    return this.running.size >= this.limit;
  }

  get idle(): boolean {
    return this.running.size === 0;
  }

  start(task: () => Promise<void>): void {
    const p: Promise<void> = task().then(
      () => void this.running.delete(p),
      (error: unknown) => {
        this.running.delete(p);
        this.failure ??= { error };
      },
    );
    this.running.add(p);
  }

  async waitOne(): Promise<void> {
    if (this.running.size > 0) await Promise.race(this.running);
    this.check();
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.race(this.running);
    this.check();
  }

  check(): void {
    if (this.failure) throw this.failure.error;
  }
}

/**
 * Walks everything reachable from `roots`, visiting each object once. Structured objects are read
 * (and so verified); chunks are checked for presence in batches. Memory: the OID sets, plus one
 * batch of chunks and the trees and manifests in flight.
 */
export async function walkReachable(
  repo: Repository,
  roots: readonly Root[],
  options: WalkOptions = {},
): Promise<ReachableObjects> {
  const walk = new ReachabilityWalk(repo, options);
  const { history, content } = walk.sortRoots(roots);
  const { rootTrees, boundary } = await walk.walkHistory(history);
  if (walk.depth < DEPTHS.indexOf('trees')) return walk.result;
  if (options.excludeBoundaryContent && boundary.size > 0) await walk.hideBoundary(boundary);
  await walk.walkContent([...content, ...rootTrees], true);
  await walk.flushChunks();
  return walk.result;
}

/** One walk's state; each phase of walkReachable is a method. */
class ReachabilityWalk {
  readonly result = emptyReachable();
  readonly depth: number;
  private readonly tolerant: boolean;
  private readonly exclude: ReadonlySet<Oid>;
  private readonly checkChunks: boolean;
  private readonly batchSize: number;
  private readonly visitor: ReachabilityVisitor;
  private readonly runner: TaskRunner;
  private pending: PendingChunk[] = [];
  /** Skip sets for the boundary's own content (excludeBoundaryContent); null when unused. */
  private hidden: { trees: Set<Oid>; manifests: Set<Oid>; chunks: Set<Oid> } | null = null;

  constructor(
    private readonly repo: Repository,
    options: WalkOptions,
  ) {
    this.tolerant = options.tolerant ?? false;
    this.exclude = options.exclude ?? new Set<Oid>();
    this.depth = DEPTHS.indexOf(options.depth ?? 'chunks');
    this.checkChunks = (options.chunks ?? 'check') === 'check';
    this.batchSize = Math.max(1, options.chunkBatch ?? 512);
    this.visitor = options.visitor ?? {};
    this.runner = new TaskRunner(Math.max(1, options.concurrency ?? 8));
  }

  /** Records a problem (tolerant) or throws `error`. */
  private report(problem: ReachabilityProblem, error: unknown): void {
    if (!this.tolerant) throw error;
    this.result.problems.push(problem);
  }

  /** Reads one object; on a missing or corrupt object reports it and returns null. */
  private async attempt<T>(
    kind: ObjectKind,
    oid: Oid,
    where: string,
    read: () => Promise<T>,
  ): Promise<T | null> {
    try {
      return await read();
    } catch (err) {
      if (err instanceof ObjectMissingError)
        this.report(
          { kind, oid, problem: 'missing', reason: `${kind} is missing from the store`, where },
          err,
        );
      else if (err instanceof ObjectCorruptError)
        this.report({ kind, oid, problem: 'corrupt', reason: corruptReason(err), where }, err);
      else throw err;
      return null;
    }
  }

  /** Roots split into history (refs, HEAD) and content (staged manifests); bad IDs reported. */
  sortRoots(roots: readonly Root[]): { history: HistoryItem[]; content: ContentItem[] } {
    const history: HistoryItem[] = [];
    const content: ContentItem[] = [];
    for (const root of roots) {
      if (!isOid(root.oid)) {
        const kind: ObjectKind = root.kind === 'object' ? 'commit' : root.kind;
        this.report(
          {
            kind,
            oid: root.oid,
            problem: 'corrupt',
            reason: 'not an object ID',
            where: `from ${root.where}`,
          },
          new ObjectCorruptError(root.oid, `${root.where} does not hold an object ID`),
        );
      } else if (root.kind === 'tree' || root.kind === 'manifest') {
        content.push({
          kind: root.kind,
          oid: root.oid,
          path: root.path ?? '',
          origin: root.where,
          where: `from ${root.where}`,
        });
      } else history.push({ oid: root.oid, kind: root.kind, where: `from ${root.where}` });
    }
    return { history, content };
  }

  /**
   * Tags and commits, depth-first with an explicit stack (long histories never deepen the call
   * stack). Returns the root trees met and the excluded commits the walk stopped at.
   */
  async walkHistory(
    roots: readonly HistoryItem[],
  ): Promise<{ rootTrees: ContentItem[]; boundary: Set<Oid> }> {
    const rootTrees: ContentItem[] = [];
    const boundary = new Set<Oid>();
    const stack = [...roots].reverse();
    while (stack.length > 0) {
      const item = stack.pop()!;
      if (this.exclude.has(item.oid)) {
        boundary.add(item.oid);
        continue;
      }
      if (this.result.commits.has(item.oid) || this.result.tags.has(item.oid)) continue;
      const kind = item.kind === 'object' ? await this.kindOfRef(item) : item.kind;
      if (kind === null) continue;
      if (kind === 'tag') {
        this.result.tags.add(item.oid);
        const tag = await this.attempt('tag', item.oid, item.where, () =>
          this.repo.odb.readTag(item.oid),
        );
        if (tag === null) continue;
        await this.visitor.tag?.(item.oid, tag);
        stack.push({ oid: tag.object, kind: 'commit', where: `from tag ${tag.name}` });
        continue;
      }
      this.result.commits.add(item.oid);
      const commit = await this.attempt('commit', item.oid, item.where, () =>
        this.repo.odb.readCommit(item.oid),
      );
      if (commit === null) continue;
      await this.visitor.commit?.(item.oid, commit);
      const origin = `commit ${shortOid(item.oid)}`;
      rootTrees.push({ kind: 'tree', oid: commit.tree, path: '', origin });
      for (let i = commit.parents.length - 1; i >= 0; i--)
        stack.push({ oid: commit.parents[i]!, kind: 'commit', where: `parent of ${origin}` });
    }
    return { rootTrees, boundary };
  }

  /**
   * What a ref names: a commit or a tag. Null when it is neither (reported; a missing object is
   * also recorded as a commit so it is not reported twice).
   */
  private async kindOfRef(item: HistoryItem): Promise<'commit' | 'tag' | null> {
    const found = await this.attempt('commit', item.oid, item.where, async () => {
      const k = await this.repo.odb.kindOf(item.oid);
      if (k === null) throw new ObjectMissingError(item.oid, 'commit');
      return k;
    });
    if (found === null) {
      this.result.commits.add(item.oid);
      return null;
    }
    if (found === 'commit' || found === 'tag') return found;
    this.report(
      {
        kind: found,
        oid: item.oid,
        problem: 'corrupt',
        reason: `is a ${found}, not a commit or tag`,
        where: item.where,
      },
      new ObjectCorruptError(
        item.oid,
        `${item.where.replace(/^from /, '')} points at a ${found}, not a commit or tag`,
      ),
    );
    return null;
  }

  /**
   * excludeBoundaryContent: walks the content of the commits the walk stopped at, without
   * collecting it, so the main content walk leaves out what the other side already has.
   */
  async hideBoundary(boundary: ReadonlySet<Oid>): Promise<void> {
    const { odb } = this.repo;
    this.hidden = { trees: new Set(), manifests: new Set(), chunks: new Set() };
    const starts: ContentItem[] = [];
    for (const oid of boundary) {
      let target = oid;
      if ((await ignoreDamage(odb.kindOf(oid))) === 'tag') {
        const tag = await ignoreDamage(odb.readTag(oid));
        if (!tag) continue;
        target = tag.object;
      }
      const commit = await ignoreDamage(odb.readCommit(target));
      if (commit)
        starts.push({
          kind: 'tree',
          oid: commit.tree,
          path: '',
          origin: `commit ${shortOid(target)}`,
        });
    }
    await this.walkContent(starts, false);
  }

  /** Depth-first over trees and manifests with bounded concurrency; `collect` false marks the boundary. */
  async walkContent(starts: readonly ContentItem[], collect: boolean): Promise<void> {
    const { runner, hidden } = this;
    const stack = [...starts].reverse();
    const seenTrees = collect ? this.result.trees : hidden!.trees;
    const seenManifests = collect ? this.result.manifests : hidden!.manifests;
    while (stack.length > 0 || !runner.idle) {
      runner.check();
      while (stack.length > 0 && !runner.full) {
        const item = stack.pop()!;
        const seen = item.kind === 'tree' ? seenTrees : seenManifests;
        if (seen.has(item.oid)) continue;
        if (
          collect &&
          hidden &&
          (item.kind === 'tree' ? hidden.trees : hidden.manifests).has(item.oid)
        )
          continue;
        seen.add(item.oid);
        runner.start(() =>
          item.kind === 'tree'
            ? this.visitTree(item, stack, collect)
            : this.visitManifest(item, collect),
        );
      }
      if (!runner.idle) await runner.waitOne();
    }
    await runner.drain();
  }

  private async visitTree(
    item: ContentItem,
    stack: ContentItem[],
    collect: boolean,
  ): Promise<void> {
    const { odb } = this.repo;
    const entries = collect
      ? await this.attempt('tree', item.oid, describe(item), () => odb.readTree(item.oid))
      : await ignoreDamage(odb.readTree(item.oid));
    if (entries === null) return;
    if (collect) await this.visitor.tree?.(item.oid, entries, item.path);
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i]!;
      const path = item.path === '' ? entry.name : `${item.path}/${entry.name}`;
      if (entry.type === 'dir')
        stack.push({ kind: 'tree', oid: entry.oid, path, origin: item.origin });
      else if (this.depth >= DEPTHS.indexOf('manifests'))
        stack.push({ kind: 'manifest', oid: entry.oid, path, origin: item.origin });
    }
  }

  private async visitManifest(item: ContentItem, collect: boolean): Promise<void> {
    const { odb } = this.repo;
    const manifest = collect
      ? await this.attempt('manifest', item.oid, describe(item), () => odb.readManifest(item.oid))
      : await ignoreDamage(odb.readManifest(item.oid));
    if (manifest === null) return;
    if (collect) await this.visitor.manifest?.(item.oid, manifest, item.path);
    if (this.depth < DEPTHS.indexOf('chunks')) return;
    const { result, hidden } = this;
    for (const chunk of manifest.chunks) {
      if (!collect) {
        hidden!.chunks.add(chunk.oid);
        continue;
      }
      if (result.chunks.has(chunk.oid) || hidden?.chunks.has(chunk.oid)) continue;
      result.chunks.add(chunk.oid);
      result.chunkBytes += chunk.size;
      if (!this.checkChunks) continue;
      this.pending.push({ oid: chunk.oid, manifest: item.oid, path: item.path });
      if (this.pending.length >= this.batchSize) await this.flushChunks();
    }
  }

  /** Checks the pending chunks' presence in one batch; reports the missing ones. */
  async flushChunks(): Promise<void> {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const present = await this.repo.store.has(batch.map((c) => chunkKey(c.oid)));
    const absent = batch.filter((_, i) => !present[i]);
    if (absent.length === 0) return;
    // A lean clone leaves content on the remote it came from: absent here is fine if it is there.
    const source = this.repo.odb.chunkSource;
    let remote: boolean[] | null = null;
    if (source) {
      try {
        remote = await source.has(absent.map((c) => c.oid));
      } catch {
        for (const c of absent) this.result.unconfirmed.add(c.oid);
        return;
      }
    }
    const gone = absent.filter((_, i) => remote !== null && !remote[i]).map((c) => c.oid);
    // Deleted on purpose by a retention policy (gc --remote): those versions are gone, not damaged.
    const expired =
      gone.length > 0 && source?.expired ? await source.expired(gone) : new Set<Oid>();
    absent.forEach((c, i) => {
      if (remote?.[i]) {
        this.result.remoteOnly.add(c.oid);
        return;
      }
      if (expired.has(c.oid)) {
        this.result.expired.add(c.oid);
        return;
      }
      this.report(
        {
          kind: 'chunk',
          oid: c.oid,
          problem: 'missing',
          reason: source
            ? `chunk is missing locally and from the remote '${source.remoteName}'`
            : 'chunk is missing from the store',
          where: `in manifest ${c.manifest} of ${c.path || '(unnamed file)'}`,
        },
        new ObjectMissingError(c.oid, 'chunk', {
          hint: `it belongs to ${c.path || `manifest ${c.manifest}`}; run 'mediagit fsck' to check the repository`,
        }),
      );
    });
  }
}

/** Where a tree or manifest was met, for problem reports. */
function describe(item: ContentItem): string {
  return (
    item.where ??
    (item.kind === 'tree'
      ? item.path === ''
        ? `root tree of ${item.origin}`
        : `for folder ${item.path}/ in ${item.origin}`
      : `for ${item.path} in ${item.origin}`)
  );
}
