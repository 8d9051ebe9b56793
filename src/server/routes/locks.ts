/**
 * Lock endpoints over locks.ts: take, list, verify (ours / theirs by the caller's identity) and
 * release — by the owner, or by an admin with `force`.
 */
import { readJsonObject } from '../body.js';
import { json, queryParam, withSignal, type Endpoint } from '../context.js';
import { HttpError, badRequest, forbidden, notFound } from '../errors.js';
import { createLock, listLocks, readLock, releaseLock } from '../locks.js';
import { lockPath, lockPathPrefix, oidParam } from '../names.js';

const createEndpoint: Endpoint = {
  method: 'POST',
  path: '/locks',
  role: 'write',
  audit: 'lock',
  async handle(ctx) {
    const body = await readJsonObject(ctx);
    const path = lockPath(body['path']);
    ctx.target = path;
    // A lock is stored too (a ref and a record): like everything else, only after the descriptor.
    await ctx.services.repos.require(ctx);
    const result = await createLock(await ctx.store(), path, ctx.identity.sub, withSignal(ctx));
    if (result.created) return json(201, { lock: result.lock });
    const holder = result.lock.owner === '' ? 'someone else' : result.lock.owner;
    throw new HttpError(409, 'lock_exists', `${path} is locked by ${holder}`, {
      lock: result.lock,
    });
  },
};

const listEndpoint: Endpoint = {
  method: 'GET',
  path: '/locks',
  role: 'read',
  async handle(ctx) {
    const prefix = lockPathPrefix(queryParam(ctx, 'path'));
    return json(200, { locks: await listLocks(await ctx.store(), prefix, withSignal(ctx)) });
  },
};

const verifyEndpoint: Endpoint = {
  method: 'POST',
  path: '/locks/verify',
  role: 'write',
  async handle(ctx) {
    await readJsonObject(ctx);
    const locks = await listLocks(await ctx.store(), '', withSignal(ctx));
    return json(200, {
      ours: locks.filter((l) => l.owner === ctx.identity.sub),
      theirs: locks.filter((l) => l.owner !== ctx.identity.sub),
    });
  },
};

const unlockEndpoint: Endpoint = {
  method: 'POST',
  path: '/locks/:id/unlock',
  role: 'write',
  audit: 'unlock',
  async handle(ctx) {
    const id = oidParam(ctx.params['id'] ?? '');
    ctx.target = id;
    const body = await readJsonObject(ctx);
    const force = body['force'] ?? false;
    if (typeof force !== 'boolean') throw badRequest('force must be true or false');
    const store = await ctx.store();
    const held = await readLock(store, id, withSignal(ctx));
    if (held === null) throw notFound(`no lock ${id}`);
    if (held.lock.path !== '') ctx.target = held.lock.path;
    if (held.lock.owner !== ctx.identity.sub) {
      if (!force)
        throw forbidden(
          `the lock is held by ${held.lock.owner === '' ? 'someone else' : held.lock.owner}; an admin can release it with force`,
        );
      if (ctx.role !== 'admin')
        throw forbidden("releasing another user's lock needs the admin role");
    }
    if (!(await releaseLock(store, held, withSignal(ctx))))
      throw new HttpError(
        409,
        'conflict',
        'the lock changed while it was being released; read it again',
      );
    return json(200, { lock: held.lock });
  },
};

export const lockRoutes: readonly Endpoint[] = [
  createEndpoint,
  listEndpoint,
  verifyEndpoint,
  unlockEndpoint,
];
