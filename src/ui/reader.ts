/**
 * The read side of a repository as the web view needs it, straight from the repository's Store:
 * refs, revisions, trees one folder at a time, history a page at a time, a file's versions, what a
 * commit changed. Every object read is verified by the ObjectDatabase (hash checked), and nothing
 * here loads a whole tree or a whole history: callers ask for a page and a cursor.
 */
import { NotFoundError, ObjectMissingError } from '../errors/index.js';
import {
  ObjectDatabase,
  decodeEnvelopeHeader,
  treeNameProblem,
  type Commit,
  type Manifest,
  type Oid,
  type TreeEntry,
} from '../objects/index.js';
import { isValidRefName, objectKey, type RefValue, type Store } from '../store/index.js';
import { HttpError, badRequest, notFound } from '../server/errors.js';

const OID = /^[0-9a-f]{64}$/;
const SHORT_OID = /^[0-9a-f]{7,63}$/;
/** Largest number of changed files a commit summary diffs in full. */
export const DIFF_LIMIT = 2000;

export interface RefInfo {
  readonly name: string;
  readonly short: string;
  readonly oid: Oid;
}

export interface Resolved {
  /** What the caller asked for, as it should appear in links. */
  readonly rev: string;
  readonly commit: Oid;
}

export interface LogItem {
  readonly oid: Oid;
  readonly commit: Commit;
}

export interface Change {
  readonly path: string;
  readonly status: 'added' | 'modified' | 'deleted';
  readonly before: TreeEntry | null;
  readonly after: TreeEntry | null;
}

export interface CommitSummary {
  readonly changes: readonly Change[];
  /** True when the commit changed more than DIFF_LIMIT files and only the first ones are listed. */
  readonly truncated: boolean;
  /** Bytes of chunks in the new versions that the old versions of the changed files did not hold. */
  readonly bytesAdded: number | null;
}

export interface FileVersion {
  readonly commit: Oid;
  readonly info: Commit;
  readonly entry: TreeEntry | null;
  readonly previous: TreeEntry | null;
}

/** Splits and validates a repository-relative path; '' is the root. Refuses `..`, `.`, empty segments. */
export function pathSegments(path: string): string[] {
  if (path === '' || path === '/') return [];
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path;
  if (Buffer.byteLength(trimmed, 'utf8') > 4096) throw badRequest('path too long');
  const segments = trimmed.split('/');
  for (const segment of segments) {
    const problem = treeNameProblem(segment);
    if (problem !== null) throw badRequest(`invalid path: ${problem}`);
  }
  return segments;
}

export class RepositoryReader {
  readonly odb: ObjectDatabase;
  /** Trees and commits read during this request (one page), by OID: walks revisit them. */
  private readonly trees = new Map<Oid, Promise<TreeEntry[]>>();
  private readonly commits = new Map<Oid, Promise<Commit>>();

  constructor(
    readonly store: Store,
    private readonly signal: AbortSignal,
  ) {
    this.odb = new ObjectDatabase(store, { compressionLevel: 0 });
  }

  private opts(): { signal: AbortSignal } {
    return { signal: this.signal };
  }

  async refs(prefix: 'refs/heads/' | 'refs/tags/'): Promise<RefInfo[]> {
    const refs = await this.store.listRefs(prefix, this.opts());
    return [...refs]
      .map(([name, value]: [string, RefValue]) => ({
        name,
        short: name.slice(prefix.length),
        oid: value.oid,
      }))
      .sort((a, b) => (a.short < b.short ? -1 : a.short > b.short ? 1 : 0));
  }

  /** The default branch: main, else master, else the first branch; null when there is none. */
  async defaultBranch(): Promise<RefInfo | null> {
    const heads = await this.refs('refs/heads/');
    return (
      heads.find((r) => r.short === 'main') ??
      heads.find((r) => r.short === 'master') ??
      heads[0] ??
      null
    );
  }

  readCommit(oid: Oid): Promise<Commit> {
    let found = this.commits.get(oid);
    if (found === undefined) {
      found = this.odb.readCommit(oid);
      this.commits.set(oid, found);
    }
    return found;
  }

  readTree(oid: Oid): Promise<TreeEntry[]> {
    let found = this.trees.get(oid);
    if (found === undefined) {
      found = this.odb.readTree(oid);
      this.trees.set(oid, found);
      // A request walking a long history must not keep every tree it passed.
      if (this.trees.size > 512) this.trees.delete(this.trees.keys().next().value!);
    }
    return found;
  }

  readManifest(oid: Oid): Promise<Manifest> {
    return this.odb.readManifest(oid);
  }

  /**
   * A branch or tag name, `refs/…`, or a full or abbreviated (≥ 7 hex) commit ID. An unknown
   * revision is a 404; a malformed one a 400.
   */
  async resolve(rev: string | undefined): Promise<Resolved> {
    if (rev === undefined || rev === '') {
      const head = await this.defaultBranch();
      if (head === null) throw notFound('this repository has no branches yet');
      return { rev: head.short, commit: head.oid };
    }
    if (rev.length > 1000) throw badRequest('revision too long');
    const candidates = rev.startsWith('refs/') ? [rev] : [`refs/heads/${rev}`, `refs/tags/${rev}`];
    let wellFormed = false;
    for (const name of candidates) {
      if (!isValidRefName(name) || name.startsWith('refs/locks/')) continue;
      wellFormed = true;
      const ref = await this.store.readRef(name, this.opts());
      if (ref !== null) return { rev, commit: await this.peel(ref.oid, rev) };
    }
    if (OID.test(rev)) return { rev, commit: await this.peel(rev, rev) };
    if (SHORT_OID.test(rev)) {
      const matches: string[] = [];
      for await (const listed of this.store.list(`objects/${rev}`, this.opts())) {
        matches.push(listed.key.slice('objects/'.length));
        if (matches.length > 1) throw badRequest(`revision ${rev} is ambiguous`);
      }
      if (matches.length === 1) return { rev, commit: await this.peel(matches[0]!, rev) };
    }
    if (!wellFormed && !/^[0-9a-f]+$/.test(rev)) throw badRequest('malformed revision');
    throw notFound(`no revision ${rev} in this repository`);
  }

  /** A commit ID, or a tag object's target. */
  async peel(oid: Oid, rev: string): Promise<Oid> {
    for (let depth = 0; depth < 8; depth++) {
      let stored: Buffer;
      try {
        stored = await this.store.get(objectKey(oid), this.opts());
      } catch (err) {
        if (err instanceof NotFoundError) throw notFound(`no revision ${rev} in this repository`);
        throw err;
      }
      const kind = decodeEnvelopeHeader(stored).kind;
      if (kind === 'commit') return oid;
      if (kind !== 'tag') throw notFound(`${rev} does not name a commit`);
      oid = (await this.odb.readTag(oid)).object;
    }
    throw notFound(`${rev} does not name a commit`);
  }

  /** The entry at `segments` below the commit's root tree; null when nothing is there. */
  async entryAt(commit: Oid, segments: readonly string[]): Promise<TreeEntry | null> {
    const root = await this.readCommit(commit);
    let entry: TreeEntry = { name: '', type: 'dir', oid: root.tree, size: 0 };
    for (const name of segments) {
      if (entry.type !== 'dir') return null;
      const entries = await this.readTree(entry.oid);
      const next = findEntry(entries, name);
      if (next === undefined) return null;
      entry = next;
    }
    return entry;
  }

  /**
   * Commits reachable from `start`, newest first by committer time (git log's order), skipping
   * the first `skip`: one page of at most `limit`, and whether more follow.
   */
  async log(start: Oid, skip: number, limit: number): Promise<{ items: LogItem[]; more: boolean }> {
    const items: LogItem[] = [];
    let index = 0;
    for await (const item of this.walk(start)) {
      if (index++ < skip) continue;
      if (items.length === limit) return { items, more: true };
      items.push(item);
    }
    return { items, more: false };
  }

  /** Log order over every parent; only the frontier and the IDs seen are held. */
  async *walk(start: Oid): AsyncGenerator<LogItem> {
    const seen = new Set<Oid>([start]);
    const frontier: LogItem[] = [{ oid: start, commit: await this.readCommit(start) }];
    while (frontier.length > 0) {
      let best = 0;
      for (let i = 1; i < frontier.length; i++)
        if (frontier[i]!.commit.committer.time > frontier[best]!.commit.committer.time) best = i;
      const [item] = frontier.splice(best, 1);
      yield item!;
      for (const parent of item!.commit.parents) {
        if (seen.has(parent)) continue;
        seen.add(parent);
        try {
          frontier.push({ oid: parent, commit: await this.readCommit(parent) });
        } catch (err) {
          // A shallow or partial push: history simply ends there.
          if (!(err instanceof ObjectMissingError)) throw err;
        }
      }
    }
  }

  /** What `commit` changed against its first parent (against nothing for a root commit). */
  async summarize(commit: Commit): Promise<CommitSummary> {
    const parent = commit.parents[0];
    const before = parent === undefined ? null : (await this.readCommit(parent)).tree;
    const changes: Change[] = [];
    let truncated = false;
    await this.diffTrees(before, commit.tree, '', changes, () => {
      truncated = true;
    });
    if (truncated) return { changes, truncated, bytesAdded: null };
    const had = new Set<Oid>();
    for (const c of changes)
      if (c.before !== null && c.before.type !== 'dir')
        for (const chunk of (await this.readManifest(c.before.oid)).chunks) had.add(chunk.oid);
    let bytesAdded = 0;
    for (const c of changes) {
      if (c.after === null || c.after.type === 'dir') continue;
      for (const chunk of (await this.readManifest(c.after.oid)).chunks) {
        if (had.has(chunk.oid)) continue;
        had.add(chunk.oid);
        bytesAdded += chunk.size;
      }
    }
    return { changes, truncated, bytesAdded };
  }

  /** Files that differ between two trees, descending only into folders whose IDs differ. */
  private async diffTrees(
    a: Oid | null,
    b: Oid | null,
    prefix: string,
    out: Change[],
    overflow: () => void,
  ): Promise<void> {
    if (a === b) return;
    const left = a === null ? [] : await this.readTree(a);
    const right = b === null ? [] : await this.readTree(b);
    const names = new Map<string, [TreeEntry | null, TreeEntry | null]>();
    for (const e of left) names.set(e.name, [e, null]);
    for (const e of right) names.set(e.name, [names.get(e.name)?.[0] ?? null, e]);
    const sorted = [...names.keys()].sort();
    for (const name of sorted) {
      if (out.length >= DIFF_LIMIT) {
        overflow();
        return;
      }
      const [l, r] = names.get(name)!;
      const path = `${prefix}${name}`;
      const lDir = l?.type === 'dir' ? l : null;
      const rDir = r?.type === 'dir' ? r : null;
      if (lDir !== null || rDir !== null) {
        await this.diffTrees(lDir?.oid ?? null, rDir?.oid ?? null, `${path}/`, out, overflow);
      }
      const lFile = l !== null && l.type !== 'dir' ? l : null;
      const rFile = r !== null && r.type !== 'dir' ? r : null;
      if (lFile === null && rFile === null) continue;
      if (lFile !== null && rFile !== null && lFile.oid === rFile.oid && lFile.type === rFile.type)
        continue;
      out.push({
        path,
        status: lFile === null ? 'added' : rFile === null ? 'deleted' : 'modified',
        before: lFile,
        after: rFile,
      });
    }
  }

  /**
   * The versions of one file, newest first: commits (in log order from `start`) where the
   * file's entry differs from its first parent's. Scans at most `budget` commits after skipping
   * `skip`; returns the versions found, and where to continue (null when history ended).
   */
  async fileHistory(
    start: Oid,
    segments: readonly string[],
    skip: number,
    limit: number,
    budget: number,
  ): Promise<{ versions: FileVersion[]; next: number | null }> {
    const versions: FileVersion[] = [];
    let index = 0;
    for await (const item of this.walk(start)) {
      const position = index++;
      if (position < skip) continue;
      if (position - skip >= budget || versions.length === limit)
        return { versions, next: position };
      const entry = await this.entryAt(item.oid, segments);
      const parent = item.commit.parents[0];
      const previous = parent === undefined ? null : await this.safeEntryAt(parent, segments);
      if (sameEntry(entry, previous)) continue;
      versions.push({ commit: item.oid, info: item.commit, entry, previous });
    }
    return { versions, next: null };
  }

  private async safeEntryAt(commit: Oid, segments: readonly string[]): Promise<TreeEntry | null> {
    try {
      return await this.entryAt(commit, segments);
    } catch (err) {
      if (err instanceof ObjectMissingError) return null;
      throw err;
    }
  }
}

function sameEntry(a: TreeEntry | null, b: TreeEntry | null): boolean {
  if (a === null || b === null) return a === b;
  return a.oid === b.oid && a.type === b.type;
}

/** Binary search: tree entries are sorted by the bytes of their names. */
function findEntry(entries: readonly TreeEntry[], name: string): TreeEntry | undefined {
  const key = Buffer.from(name, 'utf8');
  let lo = 0;
  let hi = entries.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const cmp = Buffer.compare(Buffer.from(entries[mid]!.name, 'utf8'), key);
    if (cmp === 0) return entries[mid];
    if (cmp < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** The HTTP error for a path that names nothing at a revision. */
export function noSuchPath(path: string, rev: string): HttpError {
  return notFound(`no ${path} at ${rev}`);
}
