/**
 * The repository descriptor (`/info`), key files (`/keys`) and metadata (`/meta`). Key files and
 * metadata are small named blobs: a PUT creates one (201), repeats it harmlessly (200, same
 * bytes), and never silently replaces different bytes (409) — a descriptor in particular never
 * changes its encryption or chunking once pushed.
 */
import { validateChunkingParams } from '../../chunking/index.js';
import { readBinaryBody } from '../body.js';
import {
  binary,
  empty,
  getOrNull,
  json,
  parseDescriptor,
  withSignal,
  type Descriptor,
  type Endpoint,
  type RequestContext,
} from '../context.js';
import { HttpError, badRequest, notFound } from '../errors.js';
import { isLockRecordName } from '../locks.js';
import { fileNameParam } from '../names.js';

/** Key files and metadata are small; this bounds them well below object sizes. */
export const MAX_FILE_BYTES = 1024 * 1024;
const DESCRIPTOR = 'meta/repository';

/** A descriptor upload: well-formed, with chunking parameters a client could actually use. */
export function checkDescriptor(data: Buffer): Descriptor {
  const descriptor = parseDescriptor(data);
  if (descriptor === null)
    throw badRequest(
      'meta/repository must be a repository descriptor (format, version 1, chunking, encryption)',
    );
  const { min_size, avg_size, max_size } = descriptor.chunking;
  try {
    validateChunkingParams({ minSize: min_size, avgSize: avg_size, maxSize: max_size });
  } catch (err) {
    throw badRequest(`meta/repository: ${err instanceof Error ? err.message : String(err)}`);
  }
  return descriptor;
}

const infoEndpoint: Endpoint = {
  method: 'GET',
  path: '/info',
  role: 'read',
  async handle(ctx) {
    const bytes = await getOrNull(await ctx.store(), DESCRIPTOR, ctx);
    if (bytes === null) throw notFound(`repository ${ctx.repo} has nothing pushed yet`);
    const descriptor = parseDescriptor(bytes);
    if (descriptor === null)
      throw new HttpError(500, 'internal', 'the stored repository descriptor is damaged');
    return json(200, descriptor);
  },
};

const keysListEndpoint: Endpoint = {
  method: 'GET',
  path: '/keys',
  role: 'read',
  async handle(ctx) {
    const names: string[] = [];
    for await (const { key } of (await ctx.store()).list('keys/', withSignal(ctx))) {
      const name = key.slice('keys/'.length);
      if (key.startsWith('keys/') && /^[a-z0-9][a-z0-9._-]{0,127}$/.test(name)) names.push(name);
    }
    return json(200, { keys: names.sort() });
  },
};

function fileEndpoints(namespace: 'keys' | 'meta'): Endpoint[] {
  const what = namespace === 'keys' ? 'key' : 'meta';
  const keyOf = (ctx: RequestContext, writing: boolean): string => {
    const name = fileNameParam(ctx.params['name'] ?? '', what);
    if (writing && namespace === 'meta' && isLockRecordName(name))
      throw badRequest(`meta/${name} is managed by the server's lock endpoints`);
    return `${namespace}/${name}`;
  };
  return [
    {
      method: 'GET',
      path: `/${namespace}/:name`,
      role: 'read',
      async handle(ctx) {
        const key = keyOf(ctx, false);
        const data = await getOrNull(await ctx.store(), key, ctx);
        if (data === null) throw notFound(`no such ${key}`);
        ctx.services.metrics.bytesDownloaded.inc(data.length);
        return binary(data);
      },
    },
    {
      method: 'HEAD',
      path: `/${namespace}/:name`,
      role: 'read',
      async handle(ctx) {
        const key = keyOf(ctx, false);
        const [present] = await (await ctx.store()).has([key], withSignal(ctx));
        if (!present) throw notFound(`no such ${key}`);
        return empty(200);
      },
    },
    {
      method: 'PUT',
      path: `/${namespace}/:name`,
      role: 'write',
      audit: 'put',
      async handle(ctx) {
        const key = keyOf(ctx, true);
        ctx.target = key;
        // The descriptor comes first: nothing else is stored in a repository without one.
        if (key !== DESCRIPTOR) await ctx.services.repos.require(ctx);
        const data = await readBinaryBody(ctx, MAX_FILE_BYTES);
        ctx.services.metrics.bytesUploaded.inc(data.length);
        if (key === DESCRIPTOR) checkDescriptor(data);
        const store = await ctx.store();
        // Create-only on the backend: of two racing first pushes (through this server or its
        // replicas), exactly one descriptor is stored and the other request sees it as existing.
        if (await store.create(key, data, withSignal(ctx))) {
          if (key === DESCRIPTOR) ctx.services.repos.stored(ctx.repo, data);
          return json(201, { key, stored: true });
        }
        const existing = await getOrNull(store, key, ctx);
        if (existing?.equals(data)) return json(200, { key, stored: false });
        throw new HttpError(409, 'conflict', `${key} already exists with different content`);
      },
    },
    {
      method: 'DELETE',
      path: `/${namespace}/:name`,
      role: 'admin',
      audit: 'delete',
      async handle(ctx) {
        const key = keyOf(ctx, true);
        ctx.target = key;
        await (await ctx.store()).delete(key, withSignal(ctx));
        if (key === DESCRIPTOR) ctx.services.repos.forget(ctx.repo);
        return empty(204);
      },
    },
  ];
}

export const repositoryRoutes: readonly Endpoint[] = [
  infoEndpoint,
  keysListEndpoint,
  ...fileEndpoints('keys'),
  ...fileEndpoints('meta'),
];
