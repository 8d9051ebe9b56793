import { createHash, randomBytes } from 'node:crypto';
import { PassphraseError, UsageError, NotFoundError } from '../errors/index.js';
import type { Store } from '../store/index.js';
import {
  DEFAULT_ARGON2,
  aesGcmOpen,
  aesGcmSeal,
  argon2idKey,
  randomKey,
  randomNonce,
  type Argon2Params,
} from './primitives.js';

/**
 * A passphrase-wrapped copy of the master key, stored as `keys/<id>` in the repository's store so
 * it travels with the repository: a clone plus any one passphrase opens it.
 */
export interface KeyFile {
  readonly version: 1;
  readonly id: string;
  readonly created: string;
  readonly label: string;
  readonly kdf: {
    readonly name: 'argon2id';
    readonly memoryKiB: number;
    readonly iterations: number;
    readonly parallelism: number;
    readonly salt: string;
  };
  readonly wrapped: {
    readonly cipher: 'aes-256-gcm';
    readonly nonce: string;
    readonly ciphertext: string;
  };
}

export interface KeyInfo {
  readonly id: string;
  readonly created: string;
  readonly label: string;
  readonly kdf: KeyFile['kdf'];
}

export interface UnlockedKey {
  readonly master: Buffer;
  /** The key file the passphrase opened. */
  readonly keyId: string;
}

const KEY_PREFIX = 'keys/';
const wrapAad = (id: string): Buffer => Buffer.from(`mediagit key v1 ${id}`, 'utf8');

export function newMasterKey(): Buffer {
  return randomKey();
}

export async function wrapMasterKey(
  master: Uint8Array,
  passphrase: string,
  label: string,
  params: Argon2Params = DEFAULT_ARGON2,
): Promise<KeyFile> {
  if (passphrase.length === 0)
    throw new PassphraseError('the passphrase is empty', { hint: 'choose a non-empty passphrase' });
  const id = randomBytes(8).toString('hex');
  const salt = randomBytes(16);
  const kek = await argon2idKey(passphrase, salt, params);
  const nonce = randomNonce();
  return {
    version: 1,
    id,
    created: new Date().toISOString(),
    label,
    kdf: {
      name: 'argon2id',
      memoryKiB: params.memoryKiB,
      iterations: params.iterations,
      parallelism: params.parallelism,
      salt: salt.toString('base64'),
    },
    wrapped: {
      cipher: 'aes-256-gcm',
      nonce: nonce.toString('base64'),
      ciphertext: aesGcmSeal(kek, nonce, master, wrapAad(id)).toString('base64'),
    },
  };
}

/**
 * Argon2id parameters a key file may ask for (docs/encryption.md "Keys"). Key files travel with
 * the repository, so anyone who can write to a remote can plant one: these bounds keep a decoy
 * from making an unlock allocate gigabytes or run for minutes, while leaving room far above the
 * defaults (m = 64 MiB, t = 3, p = 4) and RFC 9106's second recommendation.
 */
export const ARGON2_BOUNDS = {
  minMemoryKiB: 8 * 1024,
  maxMemoryKiB: 1024 * 1024,
  maxIterations: 16,
  maxParallelism: 16,
  /** memory × passes: the work one attempt may cost (1 GiB × 2, 512 MiB × 4, 64 MiB × 16…). */
  maxMemoryPassesKiB: 2 * 1024 * 1024,
} as const;
/** Key files an unlock tries at most, cheapest first. */
export const MAX_KEY_FILES_TRIED = 16;
/** A key file is a few hundred bytes of JSON; anything this large is not one and is never read. */
export const MAX_KEY_FILE_BYTES = 64 * 1024;
/** Two key files are tried at once only while their Argon2 memory together stays under this. */
const PARALLEL_MEMORY_KIB = 256 * 1024;

/** Why a stored key file cannot be tried. */
export interface RefusedKeyFile {
  readonly key: string;
  readonly reason: string;
}

function isInteger(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

function base64Bytes(value: unknown): number {
  return typeof value === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(value)
    ? Buffer.from(value, 'base64').length
    : -1;
}

/** The key file, or why it cannot be tried (a message that never quotes the file). */
function parseKeyFile(bytes: Buffer, key: string): KeyFile | string {
  let parsed: KeyFile;
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as KeyFile;
  } catch {
    return 'not valid JSON';
  }
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    parsed.version !== 1 ||
    parsed.kdf?.name !== 'argon2id' ||
    parsed.wrapped?.cipher !== 'aes-256-gcm' ||
    `${KEY_PREFIX}${parsed.id}` !== key
  )
    return 'an unknown format';
  const { memoryKiB, iterations, parallelism } = parsed.kdf;
  const b = ARGON2_BOUNDS;
  if (
    !isInteger(memoryKiB, b.minMemoryKiB, b.maxMemoryKiB) ||
    !isInteger(iterations, 1, b.maxIterations) ||
    !isInteger(parallelism, 1, b.maxParallelism) ||
    memoryKiB * iterations > b.maxMemoryPassesKiB
  ) {
    const shown = (v: unknown): string => (typeof v === 'number' ? String(v) : typeof v);
    return `Argon2 parameters out of range (m=${shown(memoryKiB)} KiB, t=${shown(iterations)}, p=${shown(parallelism)}; accepted: m 8 MiB-1 GiB, t 1-16, p 1-16, m×t at most 2 GiB)`;
  }
  if (
    base64Bytes(parsed.kdf.salt) !== 16 ||
    base64Bytes(parsed.wrapped.nonce) !== 12 ||
    base64Bytes(parsed.wrapped.ciphertext) !== 48
  )
    return 'a salt, nonce or wrapped key of the wrong length';
  return parsed;
}

/**
 * Every key file in `store`: those an unlock may try, in the order it tries them (cheapest
 * Argon2 first, then by ID, so the order is the same everywhere and no planted key file can make
 * the expensive ones run first), and those it refuses, with why.
 */
export async function inspectKeyFiles(
  store: Store,
): Promise<{ usable: KeyFile[]; refused: RefusedKeyFile[] }> {
  const usable: KeyFile[] = [];
  const refused: RefusedKeyFile[] = [];
  for await (const { key, size } of store.list(KEY_PREFIX)) {
    if (size > MAX_KEY_FILE_BYTES) {
      refused.push({ key, reason: `${size} bytes, more than a key file can be` });
      continue;
    }
    const file = parseKeyFile(await store.get(key), key);
    if (typeof file === 'string') refused.push({ key, reason: file });
    else usable.push(file);
  }
  const cost = (f: KeyFile): number => f.kdf.memoryKiB * f.kdf.iterations;
  usable.sort((a, b) => cost(a) - cost(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  refused.sort((a, b) => (a.key < b.key ? -1 : 1));
  return { usable, refused };
}

/** The key files an unlock may try, oldest first (`key list`). */
export async function readKeyFiles(store: Store): Promise<KeyFile[]> {
  const { usable } = await inspectKeyFiles(store);
  return usable.sort((a, b) => (a.created < b.created ? -1 : 1));
}

export interface KeyFileHash {
  readonly id: string;
  /** SHA-256 (hex) of the key file's stored bytes. */
  readonly sha256: string;
}

/**
 * Fingerprints of the key files, exactly as stored. They name a repository to the key agent: a
 * clone carries the same key files, and no other repository has them unless it copied them.
 */
export async function keyFileHashes(store: Store): Promise<KeyFileHash[]> {
  const digests: KeyFileHash[] = [];
  for await (const { key, size } of store.list(KEY_PREFIX)) {
    if (size > MAX_KEY_FILE_BYTES) continue;
    digests.push({
      id: key.slice(KEY_PREFIX.length),
      sha256: createHash('sha256')
        .update(await store.get(key))
        .digest('hex'),
    });
  }
  return digests;
}

export async function listKeys(store: Store): Promise<KeyInfo[]> {
  return (await readKeyFiles(store)).map(({ id, created, label, kdf }) => ({
    id,
    created,
    label,
    kdf,
  }));
}

/**
 * Tries the passphrase against the key files, cheapest first and at most MAX_KEY_FILES_TRIED of
 * them; key files outside the Argon2 bounds are never run. A wrong one changes nothing anywhere.
 */
export async function unlock(store: Store, passphrase: string): Promise<UnlockedKey> {
  const { usable, refused } = await inspectKeyFiles(store);
  const skipped =
    refused.length === 0
      ? ''
      : `; refused without trying: ${refused.map((r) => `${r.key} (${r.reason})`).join(', ')}`;
  if (usable.length === 0)
    throw new PassphraseError(
      refused.length === 0
        ? 'this repository is encrypted but has no key files'
        : `none of this repository's key files can be used${skipped}`,
      {
        hint: 'restore .mediagit/keys/ from a copy of the repository; mediagit never writes key files like these',
      },
    );
  const tried = usable.slice(0, MAX_KEY_FILES_TRIED);
  for (let i = 0; i < tried.length;) {
    // Two at a time (Argon2 runs on the thread pool) while the pair's memory stays modest.
    const wave = [tried[i]!];
    const next = tried[i + 1];
    if (next && tried[i]!.kdf.memoryKiB + next.kdf.memoryKiB <= PARALLEL_MEMORY_KIB)
      wave.push(next);
    i += wave.length;
    for (const found of await Promise.all(wave.map((file) => tryKeyFile(file, passphrase))))
      if (found) return found;
  }
  const untried =
    usable.length > tried.length
      ? `; ${usable.length - tried.length} more key files were not tried (at most ${MAX_KEY_FILES_TRIED}, cheapest first)`
      : '';
  throw new PassphraseError(
    `wrong passphrase: it opens none of this repository's keys${untried}${skipped}`,
    { hint: 'check MEDIAGIT_PASSPHRASE / --passphrase-file; nothing was changed' },
  );
}

async function tryKeyFile(file: KeyFile, passphrase: string): Promise<UnlockedKey | null> {
  const kek = await argon2idKey(passphrase, Buffer.from(file.kdf.salt, 'base64'), file.kdf);
  try {
    const master = aesGcmOpen(
      kek,
      Buffer.from(file.wrapped.nonce, 'base64'),
      Buffer.from(file.wrapped.ciphertext, 'base64'),
      wrapAad(file.id),
    );
    return master.length === 32 ? { master, keyId: file.id } : null;
  } catch {
    return null;
  }
}

export async function addKey(
  store: Store,
  master: Uint8Array,
  passphrase: string,
  label: string,
  params?: Argon2Params,
): Promise<KeyFile> {
  const file = await wrapMasterKey(master, passphrase, label, params);
  await store.put(`${KEY_PREFIX}${file.id}`, Buffer.from(JSON.stringify(file, null, 2) + '\n'));
  return file;
}

export async function removeKey(store: Store, id: string, currentKeyId: string): Promise<void> {
  const { usable, refused } = await inspectKeyFiles(store);
  const key = `${KEY_PREFIX}${id}`;
  // A key file no unlock would try (a decoy, a damaged file) can always go.
  if (refused.some((r) => r.key === key)) return store.delete(key);
  if (!usable.some((f) => f.id === id))
    throw new NotFoundError(key, { hint: "list keys with 'mediagit key list'" });
  if (usable.length <= 1)
    throw new UsageError('refusing to remove the last key: the repository would become unreadable');
  if (id === currentKeyId)
    throw new UsageError('refusing to remove the key that unlocked this command', {
      hint: 'unlock with another passphrase to remove this one, or use `mediagit key passwd`',
    });
  await store.delete(key);
}
