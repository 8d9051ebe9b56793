/**
 * What a repository endpoint is given and what it returns. app.ts authenticates, validates the
 * repository name, checks the role and the rate limit, then calls `handle` with a RequestContext;
 * handlers validate their own parameters first thing, before they touch `store()`.
 */
import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { NotFoundError } from '../errors/index.js';
import type { Store, StreamedObject, StreamingRead } from '../store/index.js';
import type { AuditEventName, AuditLog } from './audit.js';
import type { Identity, Role } from './auth.js';
import type { BodySource } from './body.js';
import type { ConnectedObjects } from './connected.js';
import type { RecentlyAbsent } from './recently-absent.js';
import type { ServerConfig } from './config.js';
import { HttpError, badRequest } from './errors.js';
import type { ServerMetrics } from './metrics.js';
import type { RepositoryStorage } from './storage.js';
import type { UploadVerifier } from './verifier.js';
import type { DecodeLimits, VerificationMode } from './verify.js';

export interface Services {
  readonly config: ServerConfig;
  readonly storage: RepositoryStorage;
  readonly metrics: ServerMetrics;
  readonly audit: AuditLog;
  readonly repos: RepositoryFacts;
  readonly connected: ConnectedObjects;
  /** What the last existence checks found absent, sparing a look before the uploads that follow. */
  readonly absent: RecentlyAbsent;
  /** Decodes and hashes uploads on worker threads (verifier.ts). */
  readonly verifier: UploadVerifier;
}

export interface RequestContext extends BodySource {
  readonly request: FastifyRequest;
  readonly services: Services;
  readonly repo: string;
  readonly identity: Identity;
  readonly role: Role;
  readonly ip: string;
  /** Route parameters after the repository (`oid`, `name`, `id`), not yet validated. */
  readonly params: Readonly<Record<string, string>>;
  /** Aborted at the request timeout and when the client goes away; pass it to every store call. */
  readonly signal: AbortSignal;
  store(): Promise<Store>;
  /** What an audited endpoint wrote (a key, a ref, a lock path), for its audit line. */
  target: string | null;
  /** A ref the request also updated (a pack carrying a ref update): a `ref_update` line of its own. */
  refUpdated: string | null;
  /** Reserves bytes in flight until the request ends (429/503 when over budget). */
  reserveBody(bytes: number): void;
  readonly bodyIdleTimeoutMs: number;
}

export type EndpointResult =
  | {
      readonly status: number;
      readonly json: unknown;
      readonly headers?: Readonly<Record<string, string>>;
    }
  | {
      readonly status: number;
      readonly binary: Buffer;
      readonly headers?: Readonly<Record<string, string>>;
    }
  | {
      readonly status: number;
      readonly stream: Readable;
      readonly headers?: Readonly<Record<string, string>>;
    }
  | {
      readonly status: number;
      readonly empty: true;
      readonly headers?: Readonly<Record<string, string>>;
    };

export interface Endpoint {
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
  /** Path after `/<repo>`, in fastify syntax (`/chunks/:oid`). */
  readonly path: string;
  readonly role: Role;
  /** Writes are audited under this event name, whatever their outcome. */
  readonly audit?: AuditEventName;
  /**
   * What the rate limit counts: every request (the default), or only those that fail. Transfers
   * of content by its ID (verified on upload, or served as stored) are limited by bandwidth and
   * the in-flight budget, not by their number, so a client moving many small chunks is not held
   * to requests per second; one that fails (garbage uploads, probing for absent objects) pays as
   * before, and an emptied bucket refuses it all the same.
   */
  readonly rateLimit?: 'request' | 'failure';
  handle(ctx: RequestContext): Promise<EndpointResult>;
}

export const json = (
  status: number,
  value: unknown,
  headers?: Record<string, string>,
): EndpointResult => (headers ? { status, json: value, headers } : { status, json: value });
export const binary = (data: Buffer): EndpointResult => ({ status: 200, binary: data });
export const empty = (status: number, headers?: Record<string, string>): EndpointResult =>
  headers ? { status, empty: true, headers } : { status, empty: true };

/** One query parameter as a string; repeated parameters are a 400. */
export function queryParam(ctx: RequestContext, name: string): string | undefined {
  const value = (ctx.request.query as Record<string, unknown> | undefined)?.[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badRequest(`query parameter ${name} must be given once`);
  return value;
}

/** Store options carrying the request's abort signal. */
export const withSignal = (ctx: RequestContext): { signal: AbortSignal } => ({
  signal: ctx.signal,
});

/** `store.get`, with absence as null. */
/**
 * A stored object's stream as a response body: its length declared, and the read from storage
 * stopped (the body destroyed) the moment the request is abandoned.
 */
export function streamed(ctx: RequestContext, opened: StreamedObject): EndpointResult {
  const stop = (): void => {
    opened.body.destroy();
  };
  if (ctx.signal.aborted) stop();
  else {
    ctx.signal.addEventListener('abort', stop, { once: true });
    opened.body.once('close', () => ctx.signal.removeEventListener('abort', stop));
  }
  return {
    status: 200,
    stream: opened.body,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(opened.size) },
  };
}

/** `key` opened as a stream, or null when absent. */
export async function streamOrNull(
  streaming: StreamingRead,
  key: string,
  ctx: RequestContext,
): Promise<StreamedObject | null> {
  try {
    return await streaming.getStream(key, withSignal(ctx));
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
}

export async function getOrNull(
  store: Store,
  key: string,
  ctx: RequestContext,
): Promise<Buffer | null> {
  try {
    return await store.get(key, withSignal(ctx));
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
}

/**
 * Each repository's descriptor, remembered once seen: the one fact the server keeps between
 * requests, because a descriptor is create-only (the server refuses to replace it with one that
 * differs). It says how uploads are verified (plain or encrypted) and how large a chunk may be.
 */
export class RepositoryFacts {
  private readonly known = new Map<string, Descriptor>();
  /** Descriptors being created from a pack's offer (`offered`), by repository. */
  private readonly creating = new Map<
    string,
    { readonly descriptor: Descriptor; readonly done: Promise<void> }
  >();

  /** The repository's descriptor, or null while nothing has been pushed. */
  async descriptor(ctx: RequestContext): Promise<Descriptor | null> {
    const cached = this.known.get(ctx.repo);
    if (cached !== undefined) return cached;
    const bytes = await getOrNull(await ctx.store(), 'meta/repository', ctx);
    if (bytes === null) return null;
    const descriptor = parseDescriptor(bytes);
    if (descriptor === null)
      throw new HttpError(500, 'internal', 'the stored repository descriptor is damaged');
    this.keep(ctx.repo, descriptor);
    return descriptor;
  }

  /**
   * The descriptor this process has just stored (create-only, so it stays as written until an
   * admin deletes it): the first push's first pack then needs no read of it.
   */
  stored(repo: string, bytes: Buffer): void {
    const descriptor = parseDescriptor(bytes);
    if (descriptor !== null) this.keep(repo, descriptor);
  }

  private keep(repo: string, descriptor: Descriptor): void {
    if (this.known.size >= MAX_REMEMBERED) this.known.delete(this.known.keys().next().value!);
    this.known.set(repo, descriptor);
  }

  /**
   * The descriptor, which must exist before anything else is stored: without it the server could
   * not tell how to verify an upload, and whatever it took would be what a victim's later push
   * skips as already there.
   */
  async require(ctx: RequestContext): Promise<Descriptor> {
    const descriptor = await this.descriptor(ctx);
    if (descriptor === null)
      throw new HttpError(
        409,
        'conflict',
        `repository ${ctx.repo} has no descriptor yet: PUT meta/repository before anything else`,
      );
    return descriptor;
  }

  forget(repo: string): void {
    this.known.delete(repo);
  }

  /**
   * The descriptor a pack offers (header `Mediagit-Descriptor`, docs/protocol.md "Packs"), so a
   * first push need not wait for a PUT of it before its packs: the repository's own when it has
   * one, which must have the offered layout (else 409, as a PUT of a different one gets); else
   * the offered one, created (create-only, as that PUT would) while the pack streams in and is
   * verified with it. `stored` settles once it is in storage: nothing of the pack is stored
   * before, and a refusal of it (a racing first push of another layout) refuses the pack.
   */
  async offered(
    ctx: RequestContext,
    bytes: Buffer,
    offer: Descriptor,
  ): Promise<{ descriptor: Descriptor; stored: Promise<void> }> {
    for (;;) {
      const pending = this.creating.get(ctx.repo);
      if (pending !== undefined) {
        if (sameDescriptor(pending.descriptor, offer))
          return { descriptor: offer, stored: pending.done };
        // Another layout being created here: whichever lands decides, as with two PUTs.
        await pending.done.catch(() => undefined);
        continue;
      }
      const known = this.known.get(ctx.repo);
      if (known !== undefined) {
        if (!sameDescriptor(known, offer)) throw descriptorConflict();
        return { descriptor: known, stored: Promise.resolve() };
      }
      // Not read first: the client offers it because its negotiation just found none, and the
      // create-only write says whether one is there (over S3, one GET less before the first PUT).
      // Not tied to this request's signal: other packs of the push may be waiting for it too.
      const done = (async () => {
        const store = await ctx.store();
        if (await store.create('meta/repository', bytes)) return this.keep(ctx.repo, offer);
        this.forget(ctx.repo);
        const existing = await this.descriptor(ctx);
        if (existing === null || !sameDescriptor(existing, offer)) throw descriptorConflict();
      })().finally(() => this.creating.delete(ctx.repo));
      done.catch(() => undefined);
      this.creating.set(ctx.repo, { descriptor: offer, done });
      return { descriptor: offer, stored: done };
    }
  }
}

function descriptorConflict(): HttpError {
  return new HttpError(409, 'conflict', 'meta/repository already exists with different content');
}

/** Same layout: what a descriptor says, whatever its bytes' formatting. */
function sameDescriptor(a: Descriptor, b: Descriptor): boolean {
  return (
    a.format === b.format &&
    a.version === b.version &&
    a.encryption === b.encryption &&
    a.chunking.min_size === b.chunking.min_size &&
    a.chunking.avg_size === b.chunking.avg_size &&
    a.chunking.max_size === b.chunking.max_size
  );
}

/** Repositories whose descriptor is remembered at once. */
const MAX_REMEMBERED = 10_000;

/**
 * What uploads to a repository may decode to: a chunk at most its descriptor's maximum chunk size
 * (and never more than four times `max_object_bytes`, whatever a descriptor claims), any other
 * object at most `max_object_bytes`.
 */
export function decodeLimits(descriptor: Descriptor, config: ServerConfig): DecodeLimits {
  return {
    maxChunkBytes: Math.min(descriptor.chunking.max_size, 4 * config.maxObjectBytes),
    maxObjectBytes: config.maxObjectBytes,
  };
}

export function modeOf(descriptor: Descriptor): VerificationMode {
  return descriptor.encryption === null ? 'plain' : 'encrypted';
}

export interface Descriptor {
  readonly format: 'mediagit';
  readonly version: 1;
  readonly chunking: {
    readonly min_size: number;
    readonly avg_size: number;
    readonly max_size: number;
  };
  readonly encryption: 'aes-256-gcm' | null;
}

/** The repository descriptor (src/sync/descriptor.ts) from stored or uploaded bytes; null when malformed. */
export function parseDescriptor(bytes: Buffer): Descriptor | null {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const d = value as Partial<Record<keyof Descriptor, unknown>>;
  const c = d.chunking as
    Partial<Record<'min_size' | 'avg_size' | 'max_size', unknown>> | undefined;
  const positive = (n: unknown): boolean =>
    typeof n === 'number' && Number.isSafeInteger(n) && n > 0;
  if (d.format !== 'mediagit' || d.version !== 1 || typeof c !== 'object' || c === null)
    return null;
  if (!positive(c.min_size) || !positive(c.avg_size) || !positive(c.max_size)) return null;
  if (d.encryption !== null && d.encryption !== 'aes-256-gcm') return null;
  return value as Descriptor;
}
