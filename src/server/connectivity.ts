/**
 * What a ref update must prove before the ref moves (docs/server.md "Refs"): its new value is a
 * commit (or, under refs/tags/, a tag) that is in the store, and everything it leads to is too —
 * like git's receive-pack connectivity check, so no push can leave a ref every clone then fails on.
 *
 * In a plain repository the server reads what it walks: commits (tree, parents), tags (target),
 * trees (subtrees, file manifests). Manifests are only checked for presence: a manifest is stored
 * only after its chunks (routes/objects.ts). The walk is bounded: it stops at the current tips of
 * the repository's refs, which passed this check when they were set, and at objects this process
 * has already found connected (an LRU of IDs), so a push walks what it adds, not the history.
 *
 * In an encrypted repository the server can read none of this: it checks that the new value is
 * present and that its envelope says commit (or tag). Ancestry, and so fast-forwards, are
 * unknowable there (see `isAncestor`).
 */
import { decodeCommit, decodeEnvelopeHeader, decodeTag, decodeTree } from '../objects/index.js';
import type { Store } from '../store/index.js';
import { getOrNull, withSignal, type RequestContext } from './context.js';
import type { ConnectedObjects } from './connected.js';
import { HttpError, invalidObject } from './errors.js';
import { openPlain, type DecodeLimits, type VerificationMode } from './verify.js';

type Wanted = 'commit' | 'tree' | 'tag';

/** Commits an ancestry question may read before the answer is "not known to be an ancestor". */
const MAX_ANCESTRY_WALK = 100_000;
/** Manifests asked about per existence check. */
const HAS_BATCH = 1000;

export interface WalkContext {
  readonly ctx: RequestContext;
  readonly store: Store;
  readonly mode: VerificationMode;
  readonly limits: DecodeLimits;
  readonly connected: ConnectedObjects;
  /** Commits at the tips of the repository's refs now. */
  readonly tips: ReadonlySet<string>;
  /**
   * Stored bytes of objects the request carrying this update has just verified and stored (the
   * pack a push's ref update rides on): read from here instead of from storage again.
   */
  readonly landed?: ReadonlyMap<string, Buffer>;
}

/**
 * Throws 422 naming the first object that is missing, damaged or of the wrong kind on the way from
 * `next` (which `name` is about to point at). Returns the parents of every commit it read, for
 * the fast-forward question that may follow.
 */
export async function checkConnected(
  walk: WalkContext,
  name: string,
  next: string,
): Promise<Map<string, readonly string[]>> {
  const { ctx, store, connected } = walk;
  const parents = new Map<string, readonly string[]>();
  const first: Wanted[] = name.startsWith('refs/tags/') ? ['commit', 'tag'] : ['commit'];
  if (walk.mode === 'encrypted') {
    const bytes = await getOrNull(store, `objects/${next}`, ctx);
    if (bytes === null)
      throw invalidObject(next, `${name} cannot point at ${next}: no such object`);
    let kind: string;
    try {
      kind = decodeEnvelopeHeader(bytes).kind;
    } catch {
      kind = 'damaged object';
    }
    if (!(first as string[]).includes(kind))
      throw invalidObject(next, `${name} cannot point at ${next}: it is a ${kind}`);
    return parents;
  }
  const stack: { oid: string; wanted: readonly Wanted[]; from: string }[] = [
    { oid: next, wanted: first, from: name },
  ];
  const seen = new Set<string>();
  const manifests = new Map<string, string>();
  while (stack.length > 0) {
    const { oid, wanted, from } = stack.pop()!;
    if (seen.has(oid) || connected.has(ctx.repo, oid)) continue;
    if (walk.tips.has(oid)) continue;
    seen.add(oid);
    ctx.signal.throwIfAborted();
    const stored = walk.landed?.get(oid) ?? (await getOrNull(store, `objects/${oid}`, ctx));
    if (stored === null)
      throw invalidObject(oid, `${from} names ${oid}, which is not on the server`);
    let kind: string;
    let canonical: Buffer;
    try {
      ({ kind, canonical } = await openPlain(oid, stored, walk.limits));
    } catch (err) {
      throw invalidObject(oid, `${oid} (named by ${from}) is damaged: ${messageOf(err)}`);
    }
    if (!(wanted as string[]).includes(kind))
      throw invalidObject(
        oid,
        `${from} names ${oid} as a ${wanted.join(' or ')}, but it is a ${kind}`,
      );
    try {
      if (kind === 'commit') {
        const commit = decodeCommit(canonical);
        parents.set(oid, commit.parents);
        stack.push({ oid: commit.tree, wanted: ['tree'], from: `commit ${oid}` });
        for (const parent of commit.parents)
          stack.push({ oid: parent, wanted: ['commit'], from: `commit ${oid}` });
      } else if (kind === 'tag') {
        stack.push({ oid: decodeTag(canonical).object, wanted: ['commit'], from: `tag ${oid}` });
      } else {
        for (const entry of decodeTree(canonical)) {
          if (entry.type === 'dir')
            stack.push({ oid: entry.oid, wanted: ['tree'], from: `tree ${oid}` });
          else if (!connected.has(ctx.repo, entry.oid)) manifests.set(entry.oid, `tree ${oid}`);
        }
      }
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw invalidObject(oid, `${oid} (named by ${from}) does not decode: ${messageOf(err)}`);
    }
  }
  const oids = [...manifests.keys()];
  for (let i = 0; i < oids.length; i += HAS_BATCH) {
    const batch = oids.slice(i, i + HAS_BATCH);
    const present = await store.has(
      batch.map((oid) => `objects/${oid}`),
      withSignal(ctx),
    );
    const absent = batch.findIndex((_, j) => !present[j]);
    if (absent >= 0) {
      const oid = batch[absent]!;
      throw invalidObject(oid, `${manifests.get(oid)!} names ${oid}, which is not on the server`);
    }
  }
  for (const oid of seen) connected.add(ctx.repo, oid);
  for (const oid of oids) connected.add(ctx.repo, oid);
  return parents;
}

/**
 * Whether `ancestor` is reachable from `descendant` through parents (a plain repository's commits;
 * `known` holds parents already read). A walk that would read more than MAX_ANCESTRY_WALK commits
 * answers false: the update then needs the rights of a forced one.
 */
export async function isAncestor(
  walk: WalkContext,
  ancestor: string,
  descendant: string,
  known: ReadonlyMap<string, readonly string[]>,
): Promise<boolean> {
  const { ctx, store } = walk;
  const queue = [descendant];
  const seen = new Set<string>(queue);
  for (let i = 0; i < queue.length && i < MAX_ANCESTRY_WALK; i++) {
    const oid = queue[i]!;
    if (oid === ancestor) return true;
    let parents = known.get(oid);
    if (parents === undefined) {
      ctx.signal.throwIfAborted();
      const stored = await getOrNull(store, `objects/${oid}`, ctx);
      if (stored === null) continue;
      try {
        const { kind, canonical } = await openPlain(oid, stored, walk.limits);
        parents =
          kind === 'commit'
            ? decodeCommit(canonical).parents
            : kind === 'tag'
              ? [decodeTag(canonical).object]
              : [];
      } catch {
        parents = [];
      }
    }
    for (const parent of parents)
      if (!seen.has(parent)) {
        seen.add(parent);
        queue.push(parent);
      }
  }
  return false;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
