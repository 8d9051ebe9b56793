/**
 * Refs: listing, and compare-and-swap through the backend's own primitive (lock + rename, S3
 * create-only ref log, Azure ETag, GCS generation), so of two racing updates — through one
 * replica or several — exactly one succeeds and the other gets 409 with the current value.
 */
import type { RefValue } from '../../store/index.js';
import { readJsonObject } from '../body.js';
import { json, queryParam, withSignal, type Endpoint } from '../context.js';
import { HttpError, badRequest } from '../errors.js';
import { LOCK_REF_PREFIX } from '../locks.js';
import { isOid, quote, refName, refPrefix } from '../names.js';

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

const updateRefEndpoint: Endpoint = {
  method: 'POST',
  path: '/refs',
  role: 'write',
  audit: 'ref_update',
  async handle(ctx) {
    const body = await readJsonObject(ctx.request, ctx.signal);
    const name = refName(body['name']);
    ctx.target = name;
    if (name.startsWith(LOCK_REF_PREFIX))
      throw badRequest('refs/locks/ changes only through the lock endpoints');
    if (!('expected' in body))
      throw badRequest('expected is required (null when the ref must not exist)');
    const expected = expectedValue(body['expected']);
    const next = body['next'];
    if (next !== null && !isOid(next))
      throw badRequest(`next must be an object ID or null, not ${quote(next)}`);
    const store = await ctx.store();
    if (await store.compareAndSwapRef(name, expected, next, withSignal(ctx)))
      return json(200, { ok: true });
    const current = await store.readRef(name, withSignal(ctx));
    throw new HttpError(409, 'ref_conflict', `${name} has moved since it was read`, {
      current: current === null ? null : { oid: current.oid, version: current.version },
    });
  },
};

export const refRoutes: readonly Endpoint[] = [listRefsEndpoint, updateRefEndpoint];
