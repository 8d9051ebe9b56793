/**
 * Checking a remote the way fsck checks the local repository: every object reachable from its
 * refs is present and verifies (read through this repository's keys), and for a multi remote the
 * primary and secondary hold the same objects and refs.
 */
import {
  decodeCommit,
  decodeEnvelopeHeader,
  decodeManifest,
  decodeTag,
  decodeTree,
  ObjectDatabase,
  type ObjectKind,
  type Oid,
} from '../objects/index.js';
import { silentProgress, type ProgressSink, type Repository } from '../repo/index.js';
import { MultiStore, unwrapStore, type Store } from '../store/index.js';
import { mapLimit } from '../util/limit.js';
import { missingOn } from './transfer.js';
import {
  DESCRIPTOR_KEY,
  envelopeMismatch,
  readDescriptor,
  type RepositoryDescriptor,
} from './descriptor.js';
import { expiredManifests } from './gc/expiry.js';

export interface RemoteProblem {
  kind: ObjectKind | 'divergence' | 'descriptor';
  /** The object's OID; for a divergence, the store key or ref name. */
  oid: string;
  problem: string;
}

export interface RemoteCounts {
  commits: number;
  trees: number;
  manifests: number;
  chunks: number;
  chunkBytes: number;
}

export interface RemoteFsckReport {
  counts: RemoteCounts;
  problems: RemoteProblem[];
}

export interface RemoteFsckOptions {
  /** Also read and verify every reachable chunk (else only check that each is there). */
  full?: boolean;
  progress?: ProgressSink;
}

const READ_CONCURRENCY = 8;

export async function checkRemote(
  repo: Repository,
  store: Store,
  options: RemoteFsckOptions = {},
): Promise<RemoteFsckReport> {
  const descriptor = await DescriptorCheck.open(store);
  const check = new RemoteCheck(repo, store, descriptor);
  const trees = await check.history();
  // Content a retention policy expired (gc --remote) is gone on purpose: not a problem.
  const expired = await expiredManifests(store);
  const manifests = await check.trees(trees);
  const chunks = await check.manifests(new Set([...manifests].filter((m) => !expired.has(m))));
  await check.chunks(chunks, options.full ?? false, options.progress ?? silentProgress);
  await check.mirrorSides();
  check.problems.push(...descriptor.problems(check.counts.commits > 0));
  return { counts: check.counts, problems: check.problems };
}

/**
 * The descriptor against the objects fsck reads: each envelope's cipher byte must be the one the
 * descriptor promises (plain objects under an encrypted descriptor are what a lost first-push
 * race used to leave, and what a clone would then misread). One problem names the count and the
 * first offender, not thousands of lines.
 */
class DescriptorCheck {
  private mismatches = 0;
  private first: { key: string; problem: string } | null = null;

  private constructor(private readonly descriptor: RepositoryDescriptor | null) {}

  static async open(store: Store): Promise<DescriptorCheck> {
    return new DescriptorCheck(await readDescriptor(store));
  }

  note(key: string, stored: Buffer): void {
    if (this.descriptor === null) return;
    const problem = envelopeMismatch(this.descriptor, stored);
    if (problem === null) return;
    this.mismatches++;
    this.first ??= { key, problem };
  }

  problems(hasHistory: boolean): RemoteProblem[] {
    if (this.descriptor === null)
      return hasHistory
        ? [
            {
              kind: 'descriptor',
              oid: DESCRIPTOR_KEY,
              problem: 'missing, but the remote has history',
            },
          ]
        : [];
    if (this.first === null) return [];
    const others = this.mismatches - 1;
    return [
      {
        kind: 'descriptor',
        oid: DESCRIPTOR_KEY,
        problem: `disagrees with the objects: ${this.first.key} ${this.first.problem}${others > 0 ? ` (and ${others} more)` : ''}`,
      },
    ];
  }
}

/** The phases of checkRemote, each reading what the one before found. */
class RemoteCheck {
  readonly problems: RemoteProblem[] = [];
  readonly counts: RemoteCounts = { commits: 0, trees: 0, manifests: 0, chunks: 0, chunkBytes: 0 };

  constructor(
    private readonly repo: Repository,
    private readonly store: Store,
    private readonly descriptor: DescriptorCheck,
  ) {}

  /** An object's verified plaintext, or null after recording why it could not be had. */
  private async read(kind: ObjectKind, oid: Oid): Promise<Buffer | null> {
    try {
      const key = ObjectDatabase.keyFor(kind, oid);
      const stored = await this.store.get(key);
      this.descriptor.note(key, stored);
      return await this.repo.odb.openStored(kind, oid, stored);
    } catch (err) {
      this.problems.push({ kind, oid, problem: err instanceof Error ? err.message : String(err) });
      return null;
    }
  }

  /** Commits and tags reachable from the remote's refs; returns their root trees. */
  async history(): Promise<Oid[]> {
    const refs = await this.store.listRefs('refs/');
    const seen = new Set<Oid>();
    // Lock refs (and the gc sweeper lease) point at records, not at commits.
    const stack = [...refs]
      .filter(([name]) => !name.startsWith('refs/locks/'))
      .map(([, v]) => v.oid);
    const trees: Oid[] = [];
    while (stack.length > 0) {
      const oid = stack.pop()!;
      if (seen.has(oid)) continue;
      seen.add(oid);
      let kind: ObjectKind = 'commit';
      try {
        kind = decodeEnvelopeHeader(await this.store.get(`objects/${oid}`)).kind;
      } catch {
        // read() below reports the object as missing or corrupt.
      }
      const plain = await this.read(kind === 'tag' ? 'tag' : 'commit', oid);
      if (!plain) continue;
      if (kind === 'tag') stack.push(decodeTag(plain).object);
      else {
        const commit = decodeCommit(plain);
        this.counts.commits++;
        trees.push(commit.tree);
        stack.push(...commit.parents);
      }
    }
    return trees;
  }

  /** Every tree under the roots, level by level; returns the manifests they name. */
  async trees(roots: readonly Oid[]): Promise<Set<Oid>> {
    const seen = new Set<Oid>();
    const manifests = new Set<Oid>();
    let level = [...roots];
    while (level.length > 0) {
      const next: Oid[] = [];
      await mapLimit(
        level.filter((t) => !seen.has(t) && seen.add(t)),
        READ_CONCURRENCY,
        async (oid) => {
          const plain = await this.read('tree', oid);
          if (!plain) return;
          this.counts.trees++;
          for (const e of decodeTree(plain)) {
            if (e.type === 'dir') next.push(e.oid);
            else manifests.add(e.oid);
          }
        },
      );
      level = next;
    }
    return manifests;
  }

  /** Reads the manifests; returns their chunks with sizes. */
  async manifests(oids: ReadonlySet<Oid>): Promise<Map<Oid, number>> {
    const chunks = new Map<Oid, number>();
    await mapLimit([...oids], READ_CONCURRENCY, async (oid) => {
      const plain = await this.read('manifest', oid);
      if (!plain) return;
      this.counts.manifests++;
      for (const c of decodeManifest(plain).chunks) chunks.set(c.oid, c.size);
    });
    this.counts.chunks = chunks.size;
    for (const size of chunks.values()) this.counts.chunkBytes += size;
    return chunks;
  }

  /** Every chunk is there; with `full`, each is also read and verified. */
  async chunks(
    chunks: ReadonlyMap<Oid, number>,
    full: boolean,
    progress: ProgressSink,
  ): Promise<void> {
    for (const oid of await missingOn(this.store, 'chunk', chunks.keys()))
      this.problems.push({ kind: 'chunk', oid, problem: 'missing from the remote' });
    if (!full) return;
    progress.start('fsck', chunks.size, this.counts.chunkBytes);
    await mapLimit([...chunks.keys()], READ_CONCURRENCY, async (oid) => {
      const plain = await this.read('chunk', oid);
      if (plain) progress.bytes(plain.length);
      progress.fileDone();
    });
    progress.stop();
  }

  /** For a multi remote: what the primary and the secondary disagree on. */
  async mirrorSides(): Promise<void> {
    const mirror = unwrapStore(this.store, MultiStore);
    if (!mirror) return;
    const d = await mirror.divergence();
    const diverged = (oid: string, problem: string): void => {
      this.problems.push({ kind: 'divergence', oid, problem });
    };
    for (const key of d.onlyPrimary) diverged(key, 'only on the primary');
    for (const key of d.onlySecondary) diverged(key, 'only on the secondary');
    for (const m of d.sizeMismatches) diverged(m.key, 'different sizes on primary and secondary');
    for (const m of d.refMismatches)
      diverged(
        m.name,
        `ref differs: primary ${m.primary ?? '(none)'}, secondary ${m.secondary ?? '(none)'}`,
      );
  }
}
