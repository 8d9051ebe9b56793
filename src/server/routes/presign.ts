/**
 * Presigned download URLs (docs/protocol.md "Presigned URLs"): when a repository's storage is S3,
 * a reader may ask for short-lived URLs that GET chunks and objects straight from the bucket, so
 * their bytes do not pass through the server. The server still decides who may read (the URL is
 * handed out after authentication, for this repository's content-addressed keys only) and the
 * client still verifies every object by its ID, as it does what the server relays.
 */
import { unwrapStore } from '../../store/index.js';
import { S3Store } from '../../store/s3/index.js';
import { readJsonObject } from '../body.js';
import { json, type Endpoint, type RequestContext } from '../context.js';
import { badRequest } from '../errors.js';
import { quote } from '../names.js';

/** Keys one request may ask URLs for. */
export const MAX_URLS = 1000;
const CONTENT_KEY = /^(chunks|objects)\/[0-9a-f]{64}$/;

/** What this server hands out for the repository of `ctx`: nothing unless its storage is S3 itself. */
export async function presignedAccess(
  ctx: RequestContext,
): Promise<{ s3: S3Store; expiryS: number; endpoint: string | undefined } | null> {
  const settings = ctx.services.config.presign;
  if (settings === undefined || !settings.get) return null;
  // A mirror (multi storage) keeps two copies in step; handing out one side's URLs would skip that.
  const s3 = unwrapStore(await ctx.store(), S3Store);
  if (s3 === null) return null;
  return { s3, expiryS: settings.expiryS, endpoint: settings.endpoint ?? undefined };
}

/** The negotiate answer's `presign` field: what the client may ask for here, or undefined. */
export async function presignOffer(
  ctx: RequestContext,
): Promise<{ get: true; expires_in: number } | undefined> {
  const access = await presignedAccess(ctx);
  return access === null ? undefined : { get: true, expires_in: access.expiryS };
}

const urlsEndpoint: Endpoint = {
  method: 'POST',
  path: '/objects/urls',
  role: 'read',
  // Signing a URL touches no storage and each URL reads one object the client could GET from the
  // server anyway: like the transfers it replaces, it is limited by what fails, not by count.
  rateLimit: 'failure',
  async handle(ctx) {
    const access = await presignedAccess(ctx);
    // As a server without the endpoint answers (docs/protocol.md): the client relays instead.
    if (access === null) throw badRequest('this server hands out no download URLs');
    const body = await readJsonObject(ctx);
    const get = body['get'];
    if (!Array.isArray(get) || get.length === 0)
      throw badRequest('get must be a non-empty array of keys');
    if (get.length > MAX_URLS) throw badRequest(`at most ${MAX_URLS} keys per request`);
    for (const key of get)
      if (typeof key !== 'string' || !CONTENT_KEY.test(key))
        throw badRequest(
          `URLs are handed out for chunks/<oid> and objects/<oid> only, not ${quote(key)}`,
        );
    const keys = [...new Set(get as string[])];
    const signedAt = new Date();
    const urls: Record<string, string> = {};
    for (const key of keys)
      urls[key] = await access.s3.presign(
        { method: 'GET', key, expiresInS: access.expiryS, signedAt },
        access.endpoint,
      );
    return json(200, { expires_in: access.expiryS, urls });
  },
};

export const presignRoutes: readonly Endpoint[] = [urlsEndpoint];
