import { createHash, randomBytes } from 'node:crypto';
import { PassphraseError, UsageError, NotFoundError } from '../errors/index.js';
import type { Store } from '../store/index.js';
import { mapLimit } from '../util/limit.js';
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

function parseKeyFile(bytes: Buffer, key: string): KeyFile {
  let parsed: KeyFile;
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as KeyFile;
  } catch {
    throw new PassphraseError(`key file ${key} is not valid JSON`);
  }
  if (
    parsed.version !== 1 ||
    parsed.kdf?.name !== 'argon2id' ||
    parsed.wrapped?.cipher !== 'aes-256-gcm' ||
    `${KEY_PREFIX}${parsed.id}` !== key
  ) {
    throw new PassphraseError(`key file ${key} has an unknown format`);
  }
  // Refuse parameters an attacker could use to make unlocking hang or trivially weak.
  const { memoryKiB, iterations, parallelism } = parsed.kdf;
  if (!(
    memoryKiB >= 8 * 1024 &&
    memoryKiB <= 4 * 1024 * 1024 &&
    iterations >= 1 &&
    iterations <= 64 &&
    parallelism >= 1 &&
    parallelism <= 64
  )) {
    throw new PassphraseError(`key file ${key} has out-of-range Argon2 parameters`);
  }
  return parsed;
}

export async function readKeyFiles(store: Store): Promise<KeyFile[]> {
  const files: KeyFile[] = [];
  for await (const { key } of store.list(KEY_PREFIX))
    files.push(parseKeyFile(await store.get(key), key));
  return files.sort((a, b) => (a.created < b.created ? -1 : 1));
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
  for await (const { key } of store.list(KEY_PREFIX)) {
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

/** Tries the passphrase against every key file; a wrong one changes nothing anywhere. */
export async function unlock(store: Store, passphrase: string): Promise<UnlockedKey> {
  const files = await readKeyFiles(store);
  if (files.length === 0)
    throw new PassphraseError('this repository is encrypted but has no key files', {
      hint: 'restore .mediagit/keys/ from a copy of the repository',
    });
  // Two key files at a time: Argon2 runs on the thread pool, so a repository with several
  // passphrases unlocks in about half the time, while memory stays at 2 × m (64 MiB each).
  const attempts = await mapLimit(files, 2, async (file): Promise<UnlockedKey | null> => {
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
  });
  for (const found of attempts) if (found) return found;
  throw new PassphraseError("wrong passphrase: it opens none of this repository's keys", {
    hint: 'check MEDIAGIT_PASSPHRASE / --passphrase-file; nothing was changed',
  });
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
  const files = await readKeyFiles(store);
  if (!files.some((f) => f.id === id))
    throw new NotFoundError(`${KEY_PREFIX}${id}`, { hint: "list keys with 'mediagit key list'" });
  if (files.length <= 1)
    throw new UsageError('refusing to remove the last key: the repository would become unreadable');
  if (id === currentKeyId)
    throw new UsageError('refusing to remove the key that unlocked this command', {
      hint: 'unlock with another passphrase to remove this one, or use `mediagit key passwd`',
    });
  await store.delete(`${KEY_PREFIX}${id}`);
}
