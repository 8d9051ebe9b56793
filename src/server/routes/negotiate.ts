/**
 * `POST /<repo>/negotiate` (docs/protocol.md "Negotiate"): what a push or fetch needs to know
 * before it moves anything, in one round trip instead of one per question — the refs, the
 * descriptor, the locks, the key file names, the gc sweeper's lease, and the answer to the
 * client's first existence check. Every part is read from storage as the separate endpoints read
 * it (in parallel here), so the answers are the same; the server keeps no state for it.
 */
import type { RefValue, Store } from '../../store/index.js';
import { allows } from '../auth.js';
import { readJsonObject } from '../body.js';
import { json, withSignal, type Endpoint, type RequestContext } from '../context.js';
import { badRequest } from '../errors.js';
import { listLocks } from '../locks.js';
import { refPrefix } from '../names.js';
import { MAX_BATCH, oidList, missingKeys } from './objects.js';
import { presignOffer } from './presign.js';
import { gcLease } from '../gc-lease.js';

/** The version of the answer's layout; a client reads the fields it knows. */
export const NEGOTIATE_VERSION = 1;
const KEY_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;

function flag(body: Record<string, unknown>, name: string): boolean {
  const value = body[name] ?? false;
  if (typeof value !== 'boolean') throw badRequest(`${name} must be true or false`);
  return value;
}

async function refsUnder(
  ctx: RequestContext,
  store: Store,
  prefix: string,
): Promise<Record<string, RefValue>> {
  const refs = await store.listRefs(prefix, withSignal(ctx));
  const out: Record<string, RefValue> = {};
  for (const [name, value] of [...refs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    out[name] = { oid: value.oid, version: value.version };
  return out;
}

async function keyNames(ctx: RequestContext, store: Store): Promise<string[]> {
  const names: string[] = [];
  for await (const { key } of store.list('keys/', withSignal(ctx))) {
    const name = key.slice('keys/'.length);
    if (key.startsWith('keys/') && KEY_NAME.test(name)) names.push(name);
  }
  return names.sort();
}

const negotiateEndpoint: Endpoint = {
  method: 'POST',
  path: '/negotiate',
  role: 'read',
  async handle(ctx) {
    const body = await readJsonObject(ctx);
    const prefix = body['refs'];
    if (prefix !== undefined && typeof prefix !== 'string')
      throw badRequest('refs must be a ref prefix such as "refs/"');
    const refs = prefix === undefined ? null : refPrefix(prefix);
    const check = body['check'];
    if (
      check !== undefined &&
      (typeof check !== 'object' || check === null || Array.isArray(check))
    )
      throw badRequest('check must be {"chunks":[oid…],"objects":[oid…]}');
    const asked = check as Record<string, unknown> | undefined;
    const chunks = asked ? oidList(asked['chunks'], 'check.chunks') : [];
    const objects = asked ? oidList(asked['objects'], 'check.objects') : [];
    if (chunks.length + objects.length > MAX_BATCH)
      throw badRequest(`at most ${MAX_BATCH} IDs per check`);
    const wantLocks = flag(body, 'locks');
    const wantKeys = flag(body, 'keys');
    const wantLease = flag(body, 'gc_lease');

    const store = await ctx.store();
    // Only a push asks for the lease, and its ref writes (the descriptor of a new repository, then
    // the ref) follow: a store's one-time preparation for them (S3's conditional-write probe, 33
    // requests in two round trips) starts now, beside this answer's reads and the uploads, instead
    // of in front of the first write.
    if (wantLease && allows(ctx.role, 'write')) store.capabilities.prepareRefUpdates?.();
    const keys = [
      ...new Set([...chunks.map((o) => `chunks/${o}`), ...objects.map((o) => `objects/${o}`)]),
    ];
    // The lease first: a push compares it with the lease after its ref update to learn whether a
    // sweep ran meanwhile, so it must be older than every existence the check reports.
    const lease = wantLease ? await gcLease(ctx, store) : null;
    // A repository without a descriptor holds nothing (every upload needs it first:
    // RepositoryFacts.require), so a first push's check, every object it sends, is answered
    // without asking storage about each (over S3 a LIST or HEAD round each). A descriptor this
    // process has not seen yet is read before the check rather than beside it.
    const descriptorRead = ctx.services.repos.descriptor(ctx);
    const [descriptor, refList, missing, locks, keyList, presign] = await Promise.all([
      descriptorRead,
      refs === null ? null : refsUnder(ctx, store, refs),
      keys.length === 0
        ? new Set<string>()
        : descriptorRead.then((known) =>
            known === null ? new Set(keys) : missingKeys(ctx, store, keys),
          ),
      wantLocks ? listLocks(store, '', withSignal(ctx)) : null,
      wantKeys ? keyNames(ctx, store) : null,
      // Download URLs serve reads; a push reads no chunk, and taking the offer made our client
      // load its bucket client (~90 ms of CPU) between this answer and the push's first upload.
      wantLease ? undefined : presignOffer(ctx),
    ]);
    // What the check found absent is about to be uploaded: the PUTs that follow need not look again.
    ctx.services.absent.note(ctx.repo, missing);
    const absent = (prefix: string, oids: string[]): string[] =>
      [...new Set(oids)].filter((o) => missing.has(`${prefix}/${o}`));
    return json(200, {
      version: NEGOTIATE_VERSION,
      descriptor,
      ...(refList !== null ? { refs: refList } : {}),
      ...(asked
        ? { missing: { chunks: absent('chunks', chunks), objects: absent('objects', objects) } }
        : {}),
      ...(locks !== null
        ? {
            locks: {
              ours: locks.filter((l) => l.owner === ctx.identity.sub),
              theirs: locks.filter((l) => l.owner !== ctx.identity.sub),
            },
          }
        : {}),
      ...(keyList !== null ? { keys: keyList } : {}),
      ...(lease !== null ? { gc_lease: lease } : {}),
      // Offered unasked, but not to a push (it asks for the lease): an older client ignores
      // fields it does not know.
      ...(presign !== undefined ? { presign } : {}),
      // This server takes the descriptor with a pack (header Mediagit-Descriptor): a first push
      // sends no PUT of it before its packs.
      descriptor_in_pack: true,
    });
  },
};

export const negotiateRoutes: readonly Endpoint[] = [negotiateEndpoint];
