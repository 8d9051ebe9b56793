/**
 * The mark phase of `gc --remote`: everything the remote's refs reach, read from the remote
 * itself (through this repository's keys, so every object is verified), with the retention
 * policy deciding which file versions keep their content.
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
  type TreeEntry,
} from '../../objects/index.js';
import type { RefValue, Store } from '../../store/index.js';
import { mapLimit } from '../../util/limit.js';
import { keepsEverything, type RetentionPolicy } from './policy.js';

export interface MarkResult {
  /** The refs the mark started from (lock refs left out: they point at records, not objects). */
  readonly refs: Map<string, RefValue>;
  /** Keys (objects/…, chunks/…) that must stay. */
  readonly keep: Set<string>;
  /** Chunk keys reachable only through versions the policy expires. */
  readonly expiredChunks: Set<string>;
  /** Manifests whose content the policy expires, with one path each for messages. */
  readonly expiredManifests: Map<Oid, string>;
}

/**
 * What the mark reads objects with: a repository's object database (verified, decrypted), or on a
 * mediagit server the plain-repository opener (the server holds no keys).
 */
export interface ObjectOpener {
  readonly odb: {
    openStored(kind: ObjectKind, oid: Oid, stored: Buffer): Promise<Buffer>;
  };
}

interface CommitInfo {
  readonly tree: Oid;
  readonly parents: readonly Oid[];
  /** Committer time, seconds. */
  readonly time: number;
}

export async function markRemote(
  repo: ObjectOpener,
  store: Store,
  policy: RetentionPolicy,
  now: number,
): Promise<MarkResult> {
  const refs = new Map(
    [...(await store.listRefs('refs/'))].filter(([name]) => !name.startsWith('refs/locks/')),
  );
  const keep = new Set<string>();
  const read = async (kind: ObjectKind, oid: Oid): Promise<Buffer> => {
    const key = ObjectDatabase.keyFor(kind, oid);
    keep.add(key);
    return repo.odb.openStored(kind, oid, await store.get(key));
  };

  // History: every commit and tag; `whole` are the commits kept whole (branch tips, tagged commits).
  const commits = new Map<Oid, CommitInfo>();
  const whole = new Set<Oid>();
  const tips = new Map<string, Oid>();
  const peel = async (oid: Oid): Promise<Oid> => {
    const kind = decodeEnvelopeHeader(await store.get(`objects/${oid}`)).kind;
    if (kind !== 'tag') return oid;
    return peel(decodeTag(await read('tag', oid)).object);
  };
  for (const [name, value] of refs) {
    const commit = await peel(value.oid);
    whole.add(commit);
    if (!name.startsWith('refs/tags/')) tips.set(name, commit);
  }
  const stack = [...whole];
  while (stack.length > 0) {
    const oid = stack.pop()!;
    if (commits.has(oid)) continue;
    const c = decodeCommit(await read('commit', oid));
    commits.set(oid, { tree: c.tree, parents: c.parents, time: c.committer.time });
    stack.push(...c.parents);
  }

  // Trees, read once each.
  const trees = new Map<Oid, readonly TreeEntry[]>();
  let level = [...new Set([...commits.values()].map((c) => c.tree))];
  while (level.length > 0) {
    const next = new Set<Oid>();
    await mapLimit(level, 8, async (oid) => {
      const entries = decodeTree(await read('tree', oid));
      trees.set(oid, entries);
      for (const e of entries) if (e.type === 'dir' && !trees.has(e.oid)) next.add(e.oid);
    });
    level = [...next].filter((t) => !trees.has(t));
  }
  const files = (tree: Oid, prefix = '', out: [string, Oid][] = []): [string, Oid][] => {
    for (const e of trees.get(tree) ?? []) {
      const path = prefix + e.name;
      if (e.type === 'dir') files(e.oid, `${path}/`, out);
      else out.push([path, e.oid]);
    }
    return out;
  };

  // Which manifests keep their content.
  const allManifests = new Map<Oid, string>();
  for (const tree of trees.keys())
    for (const e of trees.get(tree)!) if (e.type !== 'dir') allManifests.set(e.oid, e.name);
  const live = new Set<Oid>();
  if (keepsEverything(policy)) for (const m of allManifests.keys()) live.add(m);
  else {
    for (const c of whole) for (const [, m] of files(commits.get(c)!.tree)) live.add(m);
    const cutoff = policy.olderThanMs === undefined ? -Infinity : now - policy.olderThanMs;
    for (const tip of new Set(tips.values())) {
      // Newest first, so the n-th distinct manifest met for a path is its n-th newest version.
      const order = history(commits, tip).sort(
        (a, b) => commits.get(b)!.time - commits.get(a)!.time,
      );
      const versions = new Map<string, Set<Oid>>();
      for (const oid of order) {
        const recent = commits.get(oid)!.time * 1000 >= cutoff;
        for (const [path, m] of files(commits.get(oid)!.tree)) {
          const rule = policy.keep.find((r) => r.matches(path));
          let seen = versions.get(path);
          if (!seen) versions.set(path, (seen = new Set()));
          seen.add(m);
          const withinCount = rule === undefined || [...seen].indexOf(m) < rule.versions;
          if (recent && withinCount) live.add(m);
        }
      }
    }
  }
  const expiredManifests = new Map<Oid, string>();
  for (const [m, name] of allManifests) if (!live.has(m)) expiredManifests.set(m, name);

  const expiredChunks = new Set<string>();
  await mapLimit([...allManifests.keys()], 8, async (oid) => {
    const manifest = decodeManifest(await read('manifest', oid));
    const target = live.has(oid) ? keep : expiredChunks;
    for (const c of manifest.chunks) target.add(`chunks/${c.oid}`);
  });
  for (const key of keep) expiredChunks.delete(key);
  return { refs, keep, expiredChunks, expiredManifests };
}

/** Every commit reachable from `tip` (all parents), once each. */
function history(commits: ReadonlyMap<Oid, CommitInfo>, tip: Oid): Oid[] {
  const seen = new Set<Oid>();
  const stack = [tip];
  while (stack.length > 0) {
    const oid = stack.pop()!;
    if (seen.has(oid)) continue;
    seen.add(oid);
    stack.push(...(commits.get(oid)?.parents ?? []));
  }
  return [...seen];
}
