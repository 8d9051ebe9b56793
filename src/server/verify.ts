/**
 * Upload verification (docs/protocol.md "Verification on upload"). For a plain repository every
 * stored envelope is opened, decoded and hashed: SHA-256 of the canonical bytes must be the ID in
 * the URL (or pack record). For an encrypted repository the server holds no key, so it checks
 * what it can: the header of docs/encryption.md (magic, version, kind, codec 0, cipher 1,
 * length 0) and a size at least that of the smallest sealed object.
 */
import { decodePayload } from '../compression/index.js';
import {
  CIPHER_NONE,
  ENVELOPE_HEADER_SIZE,
  decodeEnvelopeHeader,
  sha256Hex,
  type EnvelopeHeader,
  type ObjectKind,
} from '../objects/index.js';
import { releaseMemory } from '../util/memory.js';
import { invalidObject } from './errors.js';

/** Cipher byte of encrypted repositories (docs/encryption.md). */
export const CIPHER_AES_256_GCM = 1;
/** Header, nonce, the smallest padded inner record (17 bytes) and the GCM tag. */
export const MIN_SEALED_SIZE = ENVELOPE_HEADER_SIZE + 12 + 17 + 16;

/**
 * How uploads to a repository are checked: from its descriptor, or — before anything was pushed,
 * when there is no descriptor yet — from each envelope's own cipher byte.
 */
export type VerificationMode = 'plain' | 'encrypted' | 'undecided';

/** What an endpoint accepts: one kind, or any structured kind (`/objects`). */
export type ExpectedKind = ObjectKind | 'structured';

export interface VerifiedUpload {
  readonly kind: ObjectKind;
  readonly encrypted: boolean;
  /** Length of the canonical bytes (plain objects; 0 for sealed ones, whose length is secret). */
  readonly canonicalLength: number;
  readonly storedLength: number;
}

export interface VerifyOptions {
  readonly mode: VerificationMode;
  /** Largest canonical length a plain object may declare (bounds decompression). */
  readonly maxCanonicalBytes: number;
}

function kindAccepted(expected: ExpectedKind, kind: ObjectKind): boolean {
  return expected === 'structured' ? kind !== 'chunk' : expected === kind;
}

/** Verifies one stored envelope against its ID; throws a 422 naming the object when it does not match. */
export async function verifyUpload(
  expected: ExpectedKind,
  oid: string,
  stored: Buffer,
  options: VerifyOptions,
): Promise<VerifiedUpload> {
  let header: EnvelopeHeader;
  try {
    header = decodeEnvelopeHeader(stored);
  } catch (err) {
    throw invalidObject(oid, `not a valid envelope: ${messageOf(err)}`);
  }
  if (!kindAccepted(expected, header.kind)) {
    throw invalidObject(
      oid,
      `the envelope holds a ${header.kind}, this endpoint takes ${expected === 'structured' ? 'a manifest, tree, commit or tag' : `a ${expected}`}`,
    );
  }
  const encrypted =
    options.mode === 'encrypted' ||
    (options.mode === 'undecided' && header.cipher === CIPHER_AES_256_GCM);
  if (encrypted) {
    if (header.cipher !== CIPHER_AES_256_GCM)
      throw invalidObject(oid, 'the repository is encrypted but the object is not');
    if (header.codec !== 0 || header.plainLength !== 0)
      throw invalidObject(
        oid,
        'an encrypted envelope must have codec 0 and length 0 in its header',
      );
    if (stored.length < MIN_SEALED_SIZE)
      throw invalidObject(
        oid,
        `an encrypted envelope of ${stored.length} bytes is shorter than the smallest possible (${MIN_SEALED_SIZE})`,
      );
    return { kind: header.kind, encrypted: true, canonicalLength: 0, storedLength: stored.length };
  }
  if (header.cipher !== CIPHER_NONE)
    throw invalidObject(
      oid,
      `unexpected cipher ${header.cipher} in a repository that is not encrypted`,
    );
  if (header.plainLength > options.maxCanonicalBytes)
    throw invalidObject(
      oid,
      `declared length ${header.plainLength} is over the server's limit of ${options.maxCanonicalBytes}`,
    );
  let canonical: Buffer;
  try {
    canonical = await decodePayload(
      header.codec,
      stored.subarray(ENVELOPE_HEADER_SIZE),
      header.plainLength,
    );
  } catch (err) {
    throw invalidObject(oid, `payload does not decode: ${messageOf(err)}`);
  }
  const canonicalLength = canonical.length;
  try {
    if (canonicalLength !== header.plainLength)
      throw invalidObject(
        oid,
        `decoded ${canonicalLength} bytes, the header says ${header.plainLength}`,
      );
    if (sha256Hex(canonical) !== oid) throw invalidObject(oid, 'content does not match its ID');
  } finally {
    // A decompressed payload is the server's own and needed for nothing more (see releaseMemory).
    if (canonical.buffer !== stored.buffer) releaseMemory(canonical);
  }
  return { kind: header.kind, encrypted: false, canonicalLength, storedLength: stored.length };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
