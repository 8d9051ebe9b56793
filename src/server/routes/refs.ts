/**
 * Refs: listing, and compare-and-swap through the backend's own primitive (lock + rename, S3
 * create-only ref log, Azure ETag, GCS generation), so of two racing updates — through one
 * replica or several — exactly one succeeds and the other gets 409 with the current value.
 *
 * Before the swap, an update must prove what it points at (connectivity.ts: present, the right
 * kind, everything it leads to present), must not put a ref beside one that is its prefix
 * (`refs/heads/a` and `refs/heads/a/b` cannot both exist in a folder), and — unless the caller
 * is an admin or the repository is listed in `[server] allow_force` — must be a fast-forward:
 * deleting a ref, moving a tag or rewinding a branch needs those rights.
 */
import { RefConflictError } from '../../errors/index.js';
import type { RefValue, Store } from '../../store/index.js';
import { readJsonObject } from '../body.js';
import { checkConnected, isAncestor, type WalkContext } from '../connectivity.js';
import {
  decodeLimits,
  json,
  modeOf,
  queryParam,
  withSignal,
  type Endpoint,
  type RequestContext,
} from '../context.js';
import { HttpError, badRequest, forbidden } from '../errors.js';
import { LOCK_REF_PREFIX } from '../locks.js';
import { isOid, quote, refName, refPrefix } from '../names.js';
import { gcLease } from '../gc-lease.js';

const listRefsEndpoint: Endpoint = {
  method: 'GET',
  path: '/refs',
  role: 'read',
  async handle(ctx) {
    const prefix = refPrefix(queryParam(ctx, 'prefix'));
    const refs = await (await ctx.store()).listRefs(prefix, withSignal(ctx));
    const out: Record<string, RefValue> = {};
    for (const [name, value] of [...refs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      out[name] = { oid: value.oid, version: value.version };
    return json(200, { refs: out });
  },
};

/** `{"oid","version"}` or null, from an untrusted body. */
function expectedValue(value: unknown): RefValue | null {
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value))
    throw badRequest('expected must be {"oid","version"} or null');
  const { oid, version } = value as Record<string, unknown>;
  if (!isOid(oid)) throw badRequest(`expected.oid is not an object ID: ${quote(oid)}`);
  if (typeof version !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(version))
    throw badRequest('expected.version must be the version string read from GET /refs');
  return { oid, version };
}

/** Whether the caller may delete or rewind refs here: an admin, or a repository that allows it. */
function mayForce(ctx: RequestContext): boolean {
  if (ctx.role === 'admin') return true;
  const allowed = ctx.services.config.allowForce;
  return allowed.includes('*') || allowed.includes(ctx.repo);
}

/** 409 when `name` would sit beside a ref that is its prefix, or one it is the prefix of. */
async function checkNoNesting(ctx: RequestContext, store: Store, name: string): Promise<void> {
  const parts = name.split('/');
  // refs/heads/<first> is the shortest ref name; each longer prefix could be a ref of its own.
  for (let i = 3; i < parts.length; i++) {
    const outer = parts.slice(0, i).join('/');
    if ((await store.readRef(outer, withSignal(ctx))) !== null)
      throw new HttpError(409, 'conflict', `${name} cannot be created: ${outer} exists`);
  }
  const inner = await store.listRefs(`${name}/`, withSignal(ctx));
  const first = [...inner.keys()][0];
  if (first !== undefined)
    throw new HttpError(409, 'conflict', `${name} cannot be created: ${first} exists`);
}

/** A ref update as POST /refs and a pack carrying one ask it (docs/protocol.md "Ref update"). */
export interface RefUpdateRequest {
  readonly name: string;
  readonly expected: RefValue | null;
  readonly next: string | null;
  /** Answer the gc sweeper's lease read right after a successful swap. */
  readonly gcLease: boolean;
  /** The caller asks only that the ref end at `next`: found there after a lost race, that is success. */
  readonly endAtNext: boolean;
}

/** A ref update from an untrusted JSON object. */
export function parseRefUpdate(body: Record<string, unknown>): RefUpdateRequest {
  const name = refName(body['name']);
  if (name.startsWith(LOCK_REF_PREFIX))
    throw badRequest('refs/locks/ changes only through the lock endpoints');
  if (!('expected' in body))
    throw badRequest('expected is required (null when the ref must not exist)');
  const expected = expectedValue(body['expected']);
  const next = body['next'];
  if (next !== null && !isOid(next))
    throw badRequest(`next must be an object ID or null, not ${quote(next)}`);
  return {
    name,
    expected,
    next,
    gcLease: body['gc_lease'] === true,
    endAtNext: body['end_at_next'] === true,
  };
}

/**
 * What an update of a ref to a value needs read before its walk: that the ref would not nest
 * with another (when it is created), and the tips of the branches and tags, where the walk stops.
 * Asked at once: over S3 each is a round trip of its own. A pack carrying the update starts this
 * while its records are being stored (a ref set meanwhile only makes the walk longer).
 */
export function readRefState(
  ctx: RequestContext,
  store: Store,
  update: RefUpdateRequest,
): Promise<ReadonlySet<string>> {
  return Promise.all([
    update.expected === null ? checkNoNesting(ctx, store, update.name) : undefined,
    store.listRefs('refs/heads/', withSignal(ctx)),
    store.listRefs('refs/tags/', withSignal(ctx)),
  ]).then(([, heads, tags]) => {
    const tips = new Set<string>();
    for (const value of [...heads.values(), ...tags.values()]) tips.add(value.oid);
    return tips;
  });
}

/**
 * Checks and applies a ref update: rights, what `next` leads to (connectivity.ts), fast-forward,
 * then the backend's compare-and-swap. The answer's JSON on success; 409 with the current value
 * when the ref has moved. `early`: readRefState's answer, when the caller started it already.
 */
export async function applyRefUpdate(
  ctx: RequestContext,
  update: RefUpdateRequest,
  landed?: ReadonlyMap<string, Buffer>,
  early?: Promise<ReadonlySet<string>>,
): Promise<Record<string, unknown>> {
  const { name, expected, next } = update;
  const force = mayForce(ctx);
  if (next === null && !force)
    throw forbidden(`deleting ${name} needs the admin role (or allow_force for ${ctx.repo})`);
  if (expected !== null && next !== null && name.startsWith('refs/tags/') && !force)
    throw forbidden(`moving tag ${name} needs the admin role (or allow_force for ${ctx.repo})`);
  const store = await ctx.store();
  if (next !== null) {
    const descriptor = await ctx.services.repos.require(ctx);
    const tips = await (early ?? readRefState(ctx, store, update));
    const walk: WalkContext = {
      ctx,
      store,
      mode: modeOf(descriptor),
      limits: decodeLimits(descriptor, ctx.services.config),
      connected: ctx.services.connected,
      tips,
      ...(landed !== undefined ? { landed } : {}),
    };
    const parents = await checkConnected(walk, name, next);
    // Ancestry needs the commits' content: in an encrypted repository it cannot be known.
    if (
      expected !== null &&
      expected.oid !== next &&
      !force &&
      walk.mode === 'plain' &&
      !(await isAncestor(walk, expected.oid, next, parents))
    )
      throw forbidden(
        `${name}: a non-fast-forward update needs the admin role (or allow_force for ${ctx.repo})`,
      );
  }
  let swapped: boolean;
  // A backend that confirms its write with a read (S3) says when the new value became visible:
  // the lease read from then on is as good as one after the confirmation, and goes beside it.
  let leaseRead: Promise<Awaited<ReturnType<typeof gcLease>>> | undefined;
  const onWritten = update.gcLease
    ? (): void => {
        leaseRead = gcLease(ctx, store);
        leaseRead.catch(() => undefined);
      }
    : undefined;
  try {
    swapped = await store.compareAndSwapRef(name, expected, next, {
      ...withSignal(ctx),
      ...(onWritten ? { onWritten } : {}),
    });
  } catch (err) {
    // The backend could not tell whether the update took effect (say, S3's log moved on before
    // it was confirmed): the client's answer to that is a conflict — read again and decide —
    // not a server fault to be retried blindly.
    if (!(err instanceof RefConflictError)) throw err;
    swapped = false;
  }
  const current = swapped ? null : await store.readRef(name, withSignal(ctx));
  // Read after the swap: a push compares it with the lease negotiate told it, to learn
  // whether a gc sweep ran while it uploaded (docs/remote-gc.md), without another round trip.
  if (swapped || (update.endAtNext && next !== null && current?.oid === next))
    return {
      ok: true,
      ...(update.gcLease ? { gc_lease: await (leaseRead ?? gcLease(ctx, store)) } : {}),
    };
  throw new HttpError(409, 'ref_conflict', `${name} has moved since it was read`, {
    current: current === null ? null : { oid: current.oid, version: current.version },
  });
}

const updateRefEndpoint: Endpoint = {
  method: 'POST',
  path: '/refs',
  role: 'write',
  audit: 'ref_update',
  async handle(ctx) {
    const update = parseRefUpdate(await readJsonObject(ctx));
    ctx.target = update.name;
    return json(200, await applyRefUpdate(ctx, update));
  },
};

export const refRoutes: readonly Endpoint[] = [listRefsEndpoint, updateRefEndpoint];
