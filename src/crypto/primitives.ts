import * as crypto from 'node:crypto';
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

/** AES-256-GCM encryption: returns ciphertext || tag. */
export function aesGcmSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  return Buffer.concat([head, tail, cipher.getAuthTag()]);
}

/** AES-256-GCM decryption of ciphertext || tag; throws when authentication fails. */
export function aesGcmOpen(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  aad: Uint8Array,
): Buffer {
  if (sealed.length < TAG_BYTES) throw new Error('ciphertext shorter than its tag');
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const head = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
  const tail = decipher.final();
  // GCM is a stream mode: final() has nothing left to add, so the join (a copy of every object) is skipped.
  return tail.length === 0 ? head : Buffer.concat([head, tail]);
}

export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: string | Uint8Array,
  length: number,
): Buffer {
  return Buffer.from(
    hkdfSync(
      'sha256',
      ikm,
      salt,
      typeof info === 'string' ? Buffer.from(info, 'utf8') : info,
      length,
    ),
  );
}

export function hmacSha256(key: Uint8Array | KeyObject, data: Uint8Array): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function randomKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

export function randomNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

export interface Argon2Params {
  /** Memory in KiB. */
  readonly memoryKiB: number;
  readonly iterations: number;
  readonly parallelism: number;
}

/** Interactive-but-costly defaults from the design brief: m = 64 MiB, t = 3, p = 4. */
export const DEFAULT_ARGON2: Argon2Params = { memoryKiB: 64 * 1024, iterations: 3, parallelism: 4 };

type NativeArgon2 = (
  algorithm: 'argon2id',
  parameters: {
    message: Uint8Array;
    nonce: Uint8Array;
    parallelism: number;
    tagLength: number;
    memory: number;
    passes: number;
  },
  callback: (err: Error | null, derived: Buffer) => void,
) => void;

/**
 * Argon2id v1.3 → 32-byte key-encryption key. Node ≥ 24.7 has a native implementation that runs
 * on the thread pool about 1.7× faster than WebAssembly; the two give identical output (checked in
 * test/unit/crypto/kat.test.ts), so hash-wasm (loaded lazily) serves older Node versions.
 */
export async function argon2idKey(
  passphrase: string,
  salt: Uint8Array,
  params: Argon2Params,
): Promise<Buffer> {
  const password = Buffer.from(passphrase.normalize('NFC'), 'utf8');
  const native = (crypto as unknown as { argon2?: NativeArgon2 }).argon2;
  if (typeof native === 'function' && process.env.MEDIAGIT_ARGON2 !== 'wasm') {
    return new Promise((done, fail) => {
      native(
        'argon2id',
        {
          message: password,
          nonce: salt,
          parallelism: params.parallelism,
          tagLength: KEY_BYTES,
          memory: params.memoryKiB,
          passes: params.iterations,
        },
        (err, key) => (err ? fail(err) : done(Buffer.from(key))),
      );
    });
  }
  return argon2idWasm(password, salt, params);
}

/** The hash-wasm implementation, exported so tests can check it against the native one. */
export async function argon2idWasm(
  password: Uint8Array,
  salt: Uint8Array,
  params: Argon2Params,
): Promise<Buffer> {
  const { argon2id } = await import('hash-wasm');
  const out = await argon2id({
    password,
    salt,
    iterations: params.iterations,
    parallelism: params.parallelism,
    memorySize: params.memoryKiB,
    hashLength: KEY_BYTES,
    outputType: 'binary',
  });
  return Buffer.from(out);
}

/**
 * PADMÉ (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication with
 * PURBs", 2019): rounds a length up so that at most O(log log L) bits of it are revealed, with at
 * most 12 % overhead. Stored sizes then no longer fingerprint known files.
 */
export function padme(length: number): number {
  if (length <= 2) return length;
  const e = Math.floor(Math.log2(length));
  const s = Math.floor(Math.log2(e)) + 1;
  const lastBits = e - s;
  const mask = 2 ** lastBits - 1;
  return Math.ceil(length / (mask + 1)) * (mask + 1);
}
