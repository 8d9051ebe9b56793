/**
 * Keeping a multi remote whole after writes that reached one side only (docs/backends/multi.md,
 * "When one side misses a write"): what the MultiStore saw fail is recorded in the local
 * repository (`.mediagit/mirrors.json`), and repaired by the next push to that remote or by
 * `fsck --remote <name> --repair`. A repair copies what one side lacks from the other, verified by
 * ID, and moves a lagging secondary ref only by fast-forward, once every object it reaches is there.
 */
import { readFile } from 'node:fs/promises';
import { NotFoundError } from '../errors/index.js';
import {
  decodeCommit,
  decodeEnvelopeHeader,
  decodeTag,
  ObjectDatabase,
  type ObjectKind,
  type Oid,
} from '../objects/index.js';
import { isAncestor, walkReachable, type Repository } from '../repo/index.js';
import {
  isValidKey,
  MultiStore,
  RetryingStore,
  unwrapStore,
  type MirrorSide,
  type RefValue,
  type Store,
} from '../store/index.js';
import { isErrno, withLock, writeFileAtomic } from '../util/fs.js';
import { mapLimit } from '../util/limit.js';

/** What one remote's sides were last seen to lack. */
export interface MirrorLedgerEntry {
  /** Object keys one side lacks: key → the side lacking it. */
  readonly objects: Readonly<Record<string, MirrorSide>>;
  /** Refs the secondary did not follow. */
  readonly refs: readonly string[];
  /** When this entry last changed (ISO 8601). */
  readonly updated_at: string;
}

/** `.mediagit/mirrors.json`. */
interface LedgerFile {
  readonly version: 1;
  readonly remotes: Record<string, MirrorLedgerEntry>;
}

const LEDGER = 'mirrors.json';
const COPY_CONCURRENCY = 8;
const HAS_BATCH = 512;

const isNotFoundError = (err: unknown): boolean =>
  err instanceof NotFoundError ||
  (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'E_NOT_FOUND');

const isSide = (v: unknown): v is MirrorSide => v === 'primary' || v === 'secondary';

function validEntry(v: unknown): v is MirrorLedgerEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Partial<MirrorLedgerEntry>;
  return (
    typeof e.updated_at === 'string' &&
    Array.isArray(e.refs) &&
    e.refs.every((r) => typeof r === 'string') &&
    typeof e.objects === 'object' &&
    e.objects !== null &&
    Object.entries(e.objects).every(([key, side]) => isValidKey(key) && isSide(side))
  );
}

/**
 * The recorded state. A file that cannot be understood counts as empty: it only ever names work
 * for a repair, and `fsck --remote --repair` finds everything by comparing both sides anyway.
 */
async function readLedger(repo: Repository): Promise<LedgerFile> {
  let text: string;
  try {
    text = await readFile(repo.path(LEDGER), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { version: 1, remotes: {} };
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<LedgerFile>;
    const remotes: Record<string, MirrorLedgerEntry> = {};
    if (parsed.version === 1 && typeof parsed.remotes === 'object' && parsed.remotes !== null)
      for (const [name, entry] of Object.entries(parsed.remotes))
        if (validEntry(entry)) remotes[name] = entry;
    return { version: 1, remotes };
  } catch {
    return { version: 1, remotes: {} };
  }
}

/** The entry recorded for `remote`, or null when nothing is. */
export async function readMirrorLedger(
  repo: Repository,
  remote: string,
): Promise<MirrorLedgerEntry | null> {
  return (await readLedger(repo)).remotes[remote] ?? null;
}

/** Read-modify-write of one remote's entry, under a lock so that two pushes do not lose each other's. */
async function updateLedger(
  repo: Repository,
  remote: string,
  change: (entry: MirrorLedgerEntry | null) => MirrorLedgerEntry | null,
): Promise<MirrorLedgerEntry | null> {
  return withLock(repo.path('mirrors.lock'), { what: 'the mirror ledger' }, async () => {
    const ledger = await readLedger(repo);
    const before = ledger.remotes[remote] ?? null;
    const after = change(before);
    if (before === null && after === null) return null;
    const remotes = { ...ledger.remotes };
    if (after === null) delete remotes[remote];
    else remotes[remote] = after;
    const file: LedgerFile = { version: 1, remotes };
    await writeFileAtomic(repo.path(LEDGER), `${JSON.stringify(file, null, 2)}\n`, {
      fsync: repo.settings.fsync,
    });
    return after;
  });
}

const isEmpty = (e: MirrorLedgerEntry): boolean =>
  e.refs.length === 0 && Object.keys(e.objects).length === 0;

/**
 * Adds what the store's MultiStore saw reach one side only (object writes, read repairs, refs the
 * secondary did not follow) to the remote's entry. Returns the entry as it now stands, or null
 * when the remote is not a multi remote or nothing is recorded for it.
 */
export async function recordMirrorFailures(
  repo: Repository,
  remote: string,
  store: Store,
): Promise<MirrorLedgerEntry | null> {
  const multi = unwrapStore(store, MultiStore);
  if (!multi) return null;
  const failures = multi.takeFailures();
  if (failures.objects.size === 0 && failures.refs.size === 0)
    return readMirrorLedger(repo, remote);
  return updateLedger(repo, remote, (entry) => ({
    objects: { ...entry?.objects, ...Object.fromEntries(failures.objects) },
    refs: [...new Set([...(entry?.refs ?? []), ...failures.refs.keys()])].sort(),
    updated_at: new Date().toISOString(),
  }));
}

/** One thing a repair did not do, and why. */
export interface MirrorLeftAlone {
  /** A store key or a ref name. */
  readonly what: string;
  readonly why: string;
}

export interface MirrorRepairReport {
  /** Objects copied to the side that lacked them. */
  readonly copied: { key: string; to: MirrorSide }[];
  /** Damaged copies (same key, bytes that do not verify) replaced from the other side. */
  readonly replaced: { key: string; side: MirrorSide }[];
  /** Secondary refs moved forward to the primary's value. */
  readonly refsMoved: { name: string; from: Oid | null; to: Oid }[];
  readonly left: MirrorLeftAlone[];
}

export interface MirrorRepairOptions {
  /**
   * true: compare both sides in full (two complete listings), as `fsck --remote --repair` does.
   * false: only what the ledger names and the refs (one listing of each side's refs), as a push does.
   */
  readonly full: boolean;
}

const other = (side: MirrorSide): MirrorSide => (side === 'primary' ? 'secondary' : 'primary');

/** Which object a key names, for verification; null for keys that are not content-addressed. */
function objectOf(key: string): { oid: Oid; chunk: boolean } | null {
  const m = /^(chunks|objects)\/([0-9a-f]{64})$/.exec(key);
  return m ? { oid: m[2]!, chunk: m[1] === 'chunks' } : null;
}

/**
 * Repairs `store`'s mirror, if it is a multi remote (null otherwise). Each side is reached through
 * its own retries. Objects are verified against their ID with this repository's keys before they
 * are written; a ref moves on the secondary only by fast-forward and only after every object it
 * reaches is on the secondary. Updates the remote's ledger entry to what is still left.
 */
export async function repairMirror(
  repo: Repository,
  remote: string,
  store: Store,
  options: MirrorRepairOptions,
): Promise<MirrorRepairReport | null> {
  const multi = unwrapStore(store, MultiStore);
  if (!multi) return null;
  const repair = new MirrorRepair(repo, remote, multi);
  const recorded = await readMirrorLedger(repo, remote);
  if (options.full) await repair.wholeSides();
  else if (recorded) await repair.recordedObjects(recorded);
  await repair.refs(options.full);
  const report = repair.report;
  const leftObjects = Object.fromEntries(
    report.left.flatMap((l) => {
      const side = repair.lacking.get(l.what);
      return side ? [[l.what, side] as const] : [];
    }),
  );
  const leftRefs = report.left.filter((l) => l.what.startsWith('refs/')).map((l) => l.what);
  // Keys another push recorded while this repair ran are kept; refs were compared in full here.
  const handled = new Set(Object.keys(recorded?.objects ?? {}));
  await updateLedger(repo, remote, (current) => {
    const kept = options.full
      ? {}
      : Object.fromEntries(
          Object.entries(current?.objects ?? {}).filter(([key]) => !handled.has(key)),
        );
    const entry: MirrorLedgerEntry = {
      objects: { ...kept, ...leftObjects },
      refs: leftRefs.sort(),
      updated_at: new Date().toISOString(),
    };
    return isEmpty(entry) ? null : entry;
  });
  return report;
}

/** The steps of repairMirror, sharing the two sides and the report. */
class MirrorRepair {
  readonly report: MirrorRepairReport = { copied: [], replaced: [], refsMoved: [], left: [] };
  /** Keys a repair could not fix, with the side still lacking them. */
  readonly lacking = new Map<string, MirrorSide>();
  private readonly sides: Record<MirrorSide, Store>;

  constructor(
    private readonly repo: Repository,
    private readonly remote: string,
    private readonly multi: MultiStore,
  ) {
    this.sides = {
      primary: new RetryingStore(multi.primary),
      secondary: new RetryingStore(multi.secondary),
    };
  }

  /** `fsck --remote --repair`: every key one side lacks, and every copy that differs in size. */
  async wholeSides(): Promise<void> {
    const d = await this.multi.divergence();
    await mapLimit(
      [
        ...d.onlyPrimary.map((key) => [key, 'secondary'] as const),
        ...d.onlySecondary.map((key) => [key, 'primary'] as const),
      ],
      COPY_CONCURRENCY,
      ([key, to]) => this.copy(key, to),
    );
    for (const m of d.sizeMismatches) await this.replaceDamaged(m.key);
  }

  /** A push: the keys the ledger names, where a side still lacks them. */
  async recordedObjects(entry: MirrorLedgerEntry): Promise<void> {
    const keys = Object.keys(entry.objects);
    for (let i = 0; i < keys.length; i += HAS_BATCH) {
      const batch = keys.slice(i, i + HAS_BATCH);
      const [p, s] = await Promise.all([
        this.sides.primary.has(batch),
        this.sides.secondary.has(batch),
      ]);
      const work: [string, MirrorSide][] = [];
      batch.forEach((key, j) => {
        // Gone from both sides: nothing to copy (the write it came from never became reachable).
        if (p[j] && !s[j]) work.push([key, 'secondary']);
        else if (s[j] && !p[j]) work.push([key, 'primary']);
      });
      await mapLimit(work, COPY_CONCURRENCY, ([key, to]) => this.copy(key, to));
    }
  }

  /** Bytes that verify as the object `key` names (non-object keys: any bytes), else why not. */
  private async verify(key: string, data: Buffer): Promise<string | null> {
    const object = objectOf(key);
    if (!object) return null;
    try {
      let kind: ObjectKind = 'chunk';
      if (!object.chunk) kind = decodeEnvelopeHeader(data).kind;
      await this.repo.odb.openStored(kind, object.oid, data);
      return null;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  }

  /** Copies `key` to the side `to` from the other, verified first. */
  private async copy(key: string, to: MirrorSide): Promise<void> {
    const from = other(to);
    let data: Buffer;
    try {
      data = await this.sides[from].get(key);
    } catch (err) {
      if (!isNotFoundError(err)) throw err;
      return; // deleted meanwhile (gc): nothing to copy
    }
    const bad = await this.verify(key, data);
    if (bad !== null) {
      this.leave(key, to, `the ${from}'s copy does not verify (${bad}); not copied`);
      return;
    }
    await this.sides[to].put(key, data);
    this.report.copied.push({ key, to });
  }

  /** Same key, different sizes: the copy that verifies replaces the one that does not. */
  private async replaceDamaged(key: string): Promise<void> {
    const [p, s] = await Promise.all([this.sides.primary.get(key), this.sides.secondary.get(key)]);
    const [pBad, sBad] = [await this.verify(key, p), await this.verify(key, s)];
    const damaged: MirrorSide | null =
      pBad !== null && sBad === null
        ? 'primary'
        : sBad !== null && pBad === null
          ? 'secondary'
          : null;
    if (!damaged) {
      this.report.left.push({
        what: key,
        why:
          pBad === null
            ? 'both copies verify but differ in size; left alone'
            : 'neither copy verifies; restore it from a clone that has it',
      });
      return;
    }
    // put never replaces an existing object, so the damaged one goes first.
    await this.sides[damaged].delete(key);
    await this.sides[damaged].put(key, damaged === 'primary' ? s : p);
    this.report.replaced.push({ key, side: damaged });
  }

  private leave(key: string, side: MirrorSide, why: string): void {
    this.lacking.set(key, side);
    this.report.left.push({ what: key, why });
  }

  /**
   * Secondary branches and tags that differ from the primary's. A branch whose secondary value is
   * an ancestor of the primary's (or absent) is fast-forwarded once its objects are all on the
   * secondary; a tag is only ever created there. Anything else is left, with the reason.
   */
  async refs(full: boolean): Promise<void> {
    const [pRefs, sRefs] = await Promise.all([
      this.sides.primary.listRefs('refs/'),
      this.sides.secondary.listRefs('refs/'),
    ]);
    const names = [...new Set([...pRefs.keys(), ...sRefs.keys()])].sort();
    for (const name of names) {
      const p = pRefs.get(name) ?? null;
      const s = sRefs.get(name) ?? null;
      if (p?.oid === s?.oid) continue;
      const why = await this.refBlocker(name, p, s, full);
      if (why !== null) {
        this.report.left.push({ what: name, why });
        continue;
      }
      if (await this.sides.secondary.compareAndSwapRef(name, s, p!.oid))
        this.report.refsMoved.push({ name, from: s?.oid ?? null, to: p!.oid });
      else
        this.report.left.push({ what: name, why: 'moved on the secondary meanwhile; run again' });
    }
  }

  /** Why the secondary's `name` may not move to the primary's value yet, or null when it may. */
  private async refBlocker(
    name: string,
    p: RefValue | null,
    s: RefValue | null,
    full: boolean,
  ): Promise<string | null> {
    const branch = name.startsWith('refs/heads/');
    if (!branch && !name.startsWith('refs/tags/'))
      return 'not a branch or tag; left to the command that keeps it';
    if (p === null) return 'deleted on the primary only; delete it on the secondary by hand';
    if (s !== null && !branch) return `tag differs: primary ${p.oid}, secondary ${s.oid}`;
    if (s !== null && !(await this.descends(p.oid, s.oid)))
      return `not a fast-forward: the secondary's ${s.oid} is not an ancestor of the primary's ${p.oid}`;
    if ((await this.repo.odb.kindOf(p.oid)) !== null)
      return this.fillSecondary(name, p.oid, s?.oid ?? null);
    if (!full)
      return `this repository does not have ${p.oid}; run 'mediagit fsck --remote ${this.remote} --repair'`;
    // A full repair has just made both sides hold the same keys, save what it had to leave.
    const unfixed = [...this.lacking].find(([, side]) => side === 'secondary');
    return unfixed ? `the secondary still lacks ${unfixed[0]}` : null;
  }

  /**
   * Copies to the secondary whatever `tip` reaches beyond `base` that it lacks (read from this
   * repository's history); why the ref may not move yet, or null.
   */
  private async fillSecondary(name: string, tip: Oid, base: Oid | null): Promise<string | null> {
    const odb = this.repo.odb;
    // What the secondary's old value reaches is there already (the invariant this keeps).
    const known = base !== null && (await odb.kindOf(base)) !== null;
    const want = await walkReachable(this.repo, [{ oid: tip, kind: 'object', where: name }], {
      exclude: new Set(known ? [base] : []),
      excludeBoundaryContent: true,
      chunks: 'skip',
    });
    const kinds: [ObjectKind, Set<Oid>][] = [
      ['chunk', want.chunks],
      ['manifest', want.manifests],
      ['tree', want.trees],
      ['commit', want.commits],
      ['tag', want.tags],
    ];
    for (const [kind, oids] of kinds) {
      const keys = [...oids].map((oid) => ObjectDatabase.keyFor(kind, oid));
      for (let i = 0; i < keys.length; i += HAS_BATCH) {
        const batch = keys.slice(i, i + HAS_BATCH);
        const present = await this.sides.secondary.has(batch);
        const missing = batch.filter((_, j) => !present[j]);
        const copied = await mapLimit(missing, COPY_CONCURRENCY, (key) =>
          this.copyFromAnywhere(key),
        );
        const unfixed = missing.find((_, j) => !copied[j]);
        if (unfixed !== undefined) return `the secondary still lacks ${unfixed}`;
      }
    }
    return null;
  }

  /** An object the secondary lacks: from the primary, else from this repository; verified either way. */
  private async copyFromAnywhere(key: string): Promise<boolean> {
    for (const source of [this.sides.primary, this.repo.store]) {
      let data: Buffer;
      try {
        data = await source.get(key);
      } catch (err) {
        if (isNotFoundError(err)) continue;
        throw err;
      }
      const bad = await this.verify(key, data);
      if (bad !== null) continue;
      await this.sides.secondary.put(key, data);
      this.report.copied.push({ key, to: 'secondary' });
      return true;
    }
    this.leave(key, 'secondary', 'no verified copy on the primary or in this repository');
    return false;
  }

  /** Whether `ancestor` is in `tip`'s history: from this repository when it has both, else read from the remote. */
  private async descends(tip: Oid, ancestor: Oid): Promise<boolean> {
    const odb = this.repo.odb;
    if ((await odb.kindOf(tip)) !== null && (await odb.kindOf(ancestor)) !== null)
      return isAncestor(this.repo, ancestor, tip);
    const seen = new Set<Oid>();
    const stack = [tip];
    while (stack.length > 0) {
      const oid = stack.pop()!;
      if (oid === ancestor) return true;
      if (seen.has(oid)) continue;
      seen.add(oid);
      let stored: Buffer;
      try {
        stored = await this.sides.primary.get(ObjectDatabase.keyFor('commit', oid));
      } catch (err) {
        if (isNotFoundError(err)) continue;
        throw err;
      }
      const kind = decodeEnvelopeHeader(stored).kind;
      const plain = await odb.openStored(kind === 'tag' ? 'tag' : 'commit', oid, stored);
      if (kind === 'tag') stack.push(decodeTag(plain).object);
      else stack.push(...decodeCommit(plain).parents);
    }
    return false;
  }
}

export interface MirrorUpkeep {
  /** What the repair before the push did (null: not a multi remote). */
  readonly repaired: MirrorRepairReport | null;
  /** What is recorded as missed after the push (null: nothing). */
  readonly recorded: MirrorLedgerEntry | null;
}

/**
 * Runs a push to `store` with its mirror kept whole: first what earlier pushes left on one side
 * only is repaired (the ledger's objects, and secondary refs that lag), then the push runs, then
 * whatever it wrote to one side only is recorded — also when it failed, which is when it matters.
 * A remote that is not a multi remote just runs the push.
 */
export async function withMirrorUpkeep<T>(
  repo: Repository,
  remote: string,
  store: Store,
  push: () => Promise<T>,
): Promise<{ result: T; upkeep: MirrorUpkeep }> {
  if (!unwrapStore(store, MultiStore))
    return { result: await push(), upkeep: { repaired: null, recorded: null } };
  const repaired = await repairMirror(repo, remote, store, { full: false });
  let result: T;
  try {
    result = await push();
  } catch (err) {
    // Recorded before the push's error propagates; a failure to record must not hide that error.
    await recordMirrorFailures(repo, remote, store).catch(() => null);
    throw err;
  }
  const recorded = await recordMirrorFailures(repo, remote, store);
  return { result, upkeep: { repaired, recorded } };
}
