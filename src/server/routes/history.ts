/**
 * `POST /<repo>/history` (docs/protocol.md "History"): the structured objects a fetch or clone
 * would otherwise ask for level by level — the commits and tags from the client's wants down to
 * its haves, and the trees and manifests of those commits that the haves' trees do not already
 * hold — in one pack, one round trip, however deep the history. Chunks are not in it: a client
 * chooses those once it has the trees (sparse paths, tip-only content).
 *
 * Only a plain repository's history can be read here; an encrypted one answers 409 and the client
 * walks as before. The answer is bounded (objects and bytes): what does not fit is left out, and
 * the client's own walk asks for it as it does from a server without this endpoint. Whatever the
 * pack holds, the client verifies every object against its ID, so a wrong answer costs a fetch,
 * never a wrong object.
 */
import { Readable } from 'node:stream';
import type { ObjectKind } from '../../objects/index.js';
import { decodeCommit, decodeTag, decodeTree } from '../../objects/index.js';
import type { Store } from '../../store/index.js';
import { mapLimit } from '../../util/limit.js';
import { readJsonObject } from '../body.js';
import { decodeLimits, getOrNull, modeOf, type Endpoint, type RequestContext } from '../context.js';
import { HttpError, badRequest } from '../errors.js';
import { packHeader, recordHeader } from '../pack.js';
import { openPlain, type DecodeLimits } from '../verify.js';
import { oidList } from './objects.js';

/** Tips a client names, either way: its refs, not its history. */
const MAX_TIPS = 1000;
/** What one answer carries at most; the rest is asked for the usual way. */
const MAX_OBJECTS = 100_000;
const MAX_BYTES = 48 * 1024 * 1024;
/** Reads in flight while walking (one level of the walk at a time). */
const READS = 16;

interface Walk {
  readonly ctx: RequestContext;
  readonly maxObjects: number;
  readonly maxBytes: number;
  readonly store: Store;
  readonly limits: DecodeLimits;
  /** Objects the client has, or already in the answer: not read or sent again. */
  readonly skip: Set<string>;
  readonly records: Buffer[];
  count: number;
  bytes: number;
  full: boolean;
}

/** The stored object and what it decodes to; null when absent, damaged or over the answer's bound. */
async function read(
  walk: Walk,
  oid: string,
): Promise<{ stored: Buffer; kind: ObjectKind; canonical: Buffer } | null> {
  const stored = await getOrNull(walk.store, `objects/${oid}`, walk.ctx);
  if (stored === null) return null;
  try {
    return { stored, ...(await openPlain(oid, stored, walk.limits)) };
  } catch {
    // A damaged object is the client's to find when it asks for it alone (and the server's fsck's).
    return null;
  }
}

function add(walk: Walk, kind: ObjectKind, oid: string, stored: Buffer): boolean {
  if (walk.count + 1 > walk.maxObjects || walk.bytes + stored.length > walk.maxBytes) {
    walk.full = true;
    return false;
  }
  walk.records.push(recordHeader(kind, oid, stored.length), stored);
  walk.count++;
  walk.bytes += stored.length;
  return true;
}

/**
 * The trees below `roots`, level by level, and the manifests they name; each one new to `skip`
 * goes into the answer when `send`, else is only noted (the haves' trees).
 */
async function walkTrees(walk: Walk, roots: readonly string[], send: boolean): Promise<void> {
  let level = roots.filter((oid) => !walk.skip.has(oid));
  for (const oid of level) walk.skip.add(oid);
  while (level.length > 0 && !walk.full) {
    const next: string[] = [];
    const files: string[] = [];
    const opened = await mapLimit(level, READS, (oid) => read(walk, oid));
    for (const [i, got] of opened.entries()) {
      if (got === null || got.kind !== 'tree') continue;
      if (send && !add(walk, 'tree', level[i]!, got.stored)) return;
      let entries;
      try {
        entries = decodeTree(got.canonical);
      } catch {
        continue;
      }
      for (const entry of entries) {
        if (walk.skip.has(entry.oid)) continue;
        walk.skip.add(entry.oid);
        (entry.type === 'dir' ? next : files).push(entry.oid);
      }
    }
    if (send) {
      const manifests = await mapLimit(files, READS, (oid) =>
        getOrNull(walk.store, `objects/${oid}`, walk.ctx),
      );
      for (const [i, stored] of manifests.entries())
        if (stored !== null && !add(walk, 'manifest', files[i]!, stored)) return;
    }
    level = next;
  }
}

const historyEndpoint: Endpoint = {
  method: 'POST',
  path: '/history',
  role: 'read',
  async handle(ctx) {
    const body = await readJsonObject(ctx);
    const want = [...new Set(oidList(body['want'], 'want'))];
    const have = [...new Set(oidList(body['have'], 'have'))];
    if (want.length > MAX_TIPS || have.length > MAX_TIPS)
      throw badRequest(`at most ${MAX_TIPS} IDs in want and in have`);
    const bound = (name: string, most: number): number => {
      const value = body[name] ?? most;
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
        throw badRequest(`${name} must be a positive whole number`);
      return Math.min(value, most);
    };
    const maxObjects = bound('max_objects', MAX_OBJECTS);
    const maxBytes = bound('max_bytes', MAX_BYTES);
    const descriptor = await ctx.services.repos.require(ctx);
    if (modeOf(descriptor) === 'encrypted')
      throw new HttpError(
        409,
        'conflict',
        'the server cannot read the history of an encrypted repository: fetch it object by object',
      );
    // The answer is built whole before it is sent: it counts against the bytes in flight like a
    // body, so clients asking for histories at once cannot hold more memory than their budget.
    ctx.reserveBody(maxBytes);
    const walk: Walk = {
      ctx,
      maxObjects,
      maxBytes,
      store: await ctx.store(),
      limits: decodeLimits(descriptor, ctx.services.config),
      skip: new Set(have),
      records: [],
      count: 0,
      bytes: 0,
      full: false,
    };
    // What the client has: its have commits' trees and manifests (not their history, which the
    // walk below stops at).
    const haveTrees: string[] = [];
    for (const got of await mapLimit(have, READS, (oid) => read(walk, oid)))
      if (got?.kind === 'commit') {
        try {
          haveTrees.push(decodeCommit(got.canonical).tree);
        } catch {
          // Not a commit after all: nothing known from it.
        }
      }
    await walkTrees(walk, haveTrees, false);

    // The history from the wants down to the haves, level by level.
    const roots: string[] = [];
    let level = want.filter((oid) => !walk.skip.has(oid));
    for (const oid of level) walk.skip.add(oid);
    while (level.length > 0 && !walk.full) {
      const next: string[] = [];
      const opened = await mapLimit(level, READS, (oid) => read(walk, oid));
      for (const [i, got] of opened.entries()) {
        if (got === null || (got.kind !== 'commit' && got.kind !== 'tag')) continue;
        let commit: { tree: string; parents: readonly string[] } | null;
        let named: readonly string[];
        try {
          commit = got.kind === 'commit' ? decodeCommit(got.canonical) : null;
          named = commit ? commit.parents : [decodeTag(got.canonical).object];
        } catch {
          continue;
        }
        if (!add(walk, got.kind, level[i]!, got.stored)) break;
        if (commit) roots.push(commit.tree);
        for (const oid of named)
          if (!walk.skip.has(oid)) {
            walk.skip.add(oid);
            next.push(oid);
          }
      }
      level = next;
    }
    await walkTrees(walk, roots, true);
    return {
      // Sent record by record: no second copy of the whole answer.
      status: 200,
      stream: Readable.from([packHeader(walk.count), ...walk.records]),
      headers: {
        'content-type': 'application/octet-stream',
        // Left out for the bound: the client's walk asks for the rest.
        'x-history-complete': walk.full ? 'false' : 'true',
      },
    };
  },
};

export const historyRoutes: readonly Endpoint[] = [historyEndpoint];
