import type { ChunkingParams } from '../chunking/index.js';
import { ConfigError, NotFoundError } from '../errors/index.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CIPHER_AES_256_GCM, CIPHER_NONE, decodeEnvelopeHeader } from '../objects/index.js';
import { ConfigFile, readSettings } from '../repo/index.js';
import { LocalStore, unwrapStore, type RefValue, type Store } from '../store/index.js';

export const DESCRIPTOR_KEY = 'meta/repository';

/**
 * What a client must know before it can read or add to a remote: the format, the chunking
 * parameters (a clone must cut identically or deduplication breaks) and whether objects are
 * encrypted (the key files under `keys/` then travel with it).
 */
export interface RepositoryDescriptor {
  readonly format: 'mediagit';
  readonly version: 1;
  readonly chunking: {
    readonly min_size: number;
    readonly avg_size: number;
    readonly max_size: number;
  };
  readonly encryption: 'aes-256-gcm' | null;
}

export function makeDescriptor(chunking: ChunkingParams, encrypted: boolean): RepositoryDescriptor {
  return {
    format: 'mediagit',
    version: 1,
    chunking: {
      min_size: chunking.minSize,
      avg_size: chunking.avgSize,
      max_size: chunking.maxSize,
    },
    encryption: encrypted ? 'aes-256-gcm' : null,
  };
}

export async function readDescriptor(store: Store): Promise<RepositoryDescriptor | null> {
  let bytes: Buffer;
  try {
    bytes = await store.get(DESCRIPTOR_KEY);
  } catch (err) {
    if (err instanceof NotFoundError) return workingDescriptor(store);
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ConfigError(`the remote's ${DESCRIPTOR_KEY} is not valid JSON`);
  }
  return checkDescriptor(parsed);
}

/** A descriptor the remote sent (read, or in a negotiation's answer), checked as readDescriptor does. */
export function checkDescriptor(value: unknown): RepositoryDescriptor {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConfigError(`the remote's ${DESCRIPTOR_KEY} is not a repository descriptor`);
  const parsed = value as RepositoryDescriptor;
  if (parsed.format !== 'mediagit' || parsed.version !== 1)
    throw new ConfigError(
      `the remote holds an unsupported repository format (${String(parsed.format)} ${String(parsed.version)})`,
      { hint: 'upgrade mediagit' },
    );
  const c = parsed.chunking;
  if (!c || ![c.min_size, c.avg_size, c.max_size].every((n) => Number.isInteger(n) && n > 0))
    throw new ConfigError(`the remote's ${DESCRIPTOR_KEY} has bad chunking parameters`);
  return parsed;
}

export function sameLayout(a: RepositoryDescriptor, b: RepositoryDescriptor): boolean {
  return (
    a.chunking.min_size === b.chunking.min_size &&
    a.chunking.avg_size === b.chunking.avg_size &&
    a.chunking.max_size === b.chunking.max_size &&
    a.encryption === b.encryption
  );
}

export function encodeDescriptor(descriptor: RepositoryDescriptor): Buffer {
  return Buffer.from(JSON.stringify(descriptor, null, 2) + '\n');
}

/** What a push says when the remote's descriptor (found, or created by a racing push) is not ours. */
export function layoutMismatch(store: Store, raced: boolean): ConfigError {
  return new ConfigError(
    raced
      ? `another push created the repository on ${store.description} first, with different chunking or encryption settings; nothing was stored`
      : 'the remote holds a repository with different chunking or encryption settings',
    { hint: 'push to a new location, or clone the remote and work from that clone' },
  );
}

/**
 * Makes `descriptor` the remote's, with a create-only write: of two first pushes racing (say one
 * plain, one encrypted), exactly one descriptor is stored, and the other push fails here, before
 * it has stored anything, instead of replacing it and leaving objects of one kind under a
 * descriptor of the other. A descriptor already there with the same layout is fine (a racing
 * push of the same settings, or our own write whose reply was lost).
 */
export async function writeDescriptor(
  store: Store,
  descriptor: RepositoryDescriptor,
): Promise<void> {
  if (await store.create(DESCRIPTOR_KEY, encodeDescriptor(descriptor))) return;
  const stored = await readDescriptor(store);
  if (stored !== null && sameLayout(stored, descriptor)) return;
  throw layoutMismatch(store, true);
}

/** Whether a stored object's envelope agrees with the descriptor; a sentence saying how not, or null. */
export function envelopeMismatch(descriptor: RepositoryDescriptor, stored: Buffer): string | null {
  let cipher: number;
  try {
    cipher = decodeEnvelopeHeader(stored).cipher;
  } catch {
    // A damaged envelope is reported as such by whoever reads the object.
    return null;
  }
  if (descriptor.encryption === null && cipher !== CIPHER_NONE)
    return 'is encrypted, but the repository descriptor says objects are plain';
  if (descriptor.encryption === 'aes-256-gcm' && cipher !== CIPHER_AES_256_GCM)
    return cipher === CIPHER_NONE
      ? 'is plain (not encrypted), but the repository descriptor says objects are encrypted'
      : `has cipher ${cipher}, but the repository descriptor says aes-256-gcm`;
  return null;
}

/**
 * A working repository's store (`<folder>/.mediagit`, cloned or fetched from as git allows) has
 * no descriptor: its config says the same things.
 */
async function workingDescriptor(store: Store): Promise<RepositoryDescriptor | null> {
  const local = unwrapStore(store, LocalStore);
  if (!local || !existsSync(join(local.root, 'HEAD'))) return null;
  const config = await ConfigFile.load(join(local.root, 'config.toml'), { mustExist: true });
  return makeDescriptor(readSettings(config).chunking, config.get('encryption.enabled') === true);
}

/** What a fetch or clone reads of a remote first: its descriptor and its refs. */
export interface RemoteState {
  readonly descriptor: RepositoryDescriptor | null;
  readonly refs: Map<string, RefValue>;
}

/**
 * The descriptor and every ref under refs/: one round trip from a server that negotiates
 * (docs/protocol.md "Negotiate"); from anything else the two reads at once.
 */
export async function readRemoteState(store: Store): Promise<RemoteState> {
  const answer = await store.capabilities.negotiate?.negotiate({ refs: 'refs/' });
  if (answer)
    return {
      descriptor: answer.descriptor === null ? null : checkDescriptor(answer.descriptor),
      refs: answer.refs ?? new Map(),
    };
  const [descriptor, refs] = await Promise.all([readDescriptor(store), store.listRefs('refs/')]);
  return { descriptor, refs };
}
