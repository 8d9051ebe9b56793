/**
 * Upload verification (docs/protocol.md "Verification on upload"). For a plain repository every
 * stored envelope is opened, decoded and hashed: SHA-256 of the canonical bytes must be the ID in
 * the URL (or pack record). For an encrypted repository the server holds no key, so it checks
 * what it can: the header of docs/encryption.md (magic, version, kind, codec 0, cipher 1,
 * length 0) and a size at least that of the smallest sealed object.
 *
 * Decoding is capped before it starts: a chunk may declare at most the repository's maximum chunk
 * size (its descriptor), any other object at most `max_object_bytes`, and zstd stops at the
 * declared length, so a few bytes can never inflate into more than one object's worth of work.
 */
import { decodePayload, decodePayloadSync } from '../compression/index.js';
import {
  CIPHER_NONE,
  ENVELOPE_HEADER_SIZE,
  decodeEnvelopeHeader,
  decodeManifest,
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

/** How uploads to a repository are checked: from its descriptor, which comes before anything else. */
export type VerificationMode = 'plain' | 'encrypted';

/** What an endpoint accepts: one kind, or any structured kind (`/objects`). */
export type ExpectedKind = ObjectKind | 'structured';

export interface VerifiedUpload {
  readonly kind: ObjectKind;
  readonly encrypted: boolean;
  /** Length of the canonical bytes (plain objects; 0 for sealed ones, whose length is secret). */
  readonly canonicalLength: number;
  readonly storedLength: number;
  /** A plain manifest's chunk IDs: they must be on the server before the manifest is stored. */
  readonly chunks: readonly string[];
}

export interface DecodeLimits {
  /** Largest canonical length a chunk may declare: the repository's maximum chunk size. */
  readonly maxChunkBytes: number;
  /** Largest canonical length a manifest, tree, commit or tag may declare. */
  readonly maxObjectBytes: number;
}

export interface VerifyOptions extends DecodeLimits {
  readonly mode: VerificationMode;
}

/** The cap on what an envelope of `kind` may decode to: decoding never produces more. */
export function canonicalCap(kind: ObjectKind, limits: DecodeLimits): number {
  return kind === 'chunk' ? limits.maxChunkBytes : limits.maxObjectBytes;
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
  const checked = checkEnvelope(expected, oid, stored, options);
  if (!('header' in checked)) return checked;
  let canonical: Buffer;
  try {
    canonical = await decodePayload(
      checked.header.codec,
      stored.subarray(ENVELOPE_HEADER_SIZE),
      checked.header.plainLength,
    );
  } catch (err) {
    throw invalidObject(oid, `payload does not decode: ${messageOf(err)}`);
  }
  return checkCanonical(oid, checked.header, stored, canonical);
}

/** verifyUpload for threads that may block (the verification workers): the same checks. */
export function verifyUploadSync(
  expected: ExpectedKind,
  oid: string,
  stored: Buffer,
  options: VerifyOptions,
): VerifiedUpload {
  const checked = checkEnvelope(expected, oid, stored, options);
  if (!('header' in checked)) return checked;
  let canonical: Buffer;
  try {
    canonical = decodePayloadSync(
      checked.header.codec,
      stored.subarray(ENVELOPE_HEADER_SIZE),
      checked.header.plainLength,
    );
  } catch (err) {
    throw invalidObject(oid, `payload does not decode: ${messageOf(err)}`);
  }
  return checkCanonical(oid, checked.header, stored, canonical);
}

/**
 * Everything that needs no decoding: the header, the kind, and for an encrypted repository the
 * whole verdict. A plain envelope's header comes back for the decode.
 */
function checkEnvelope(
  expected: ExpectedKind,
  oid: string,
  stored: Buffer,
  options: VerifyOptions,
): VerifiedUpload | { header: EnvelopeHeader } {
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
  if (options.mode === 'encrypted') {
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
    return {
      kind: header.kind,
      encrypted: true,
      canonicalLength: 0,
      storedLength: stored.length,
      chunks: [],
    };
  }
  if (header.cipher !== CIPHER_NONE)
    throw invalidObject(
      oid,
      `unexpected cipher ${header.cipher} in a repository that is not encrypted`,
    );
  const cap = canonicalCap(header.kind, options);
  if (header.plainLength > cap)
    throw invalidObject(
      oid,
      `declared length ${header.plainLength} is over the limit of ${cap} bytes for a ${header.kind}`,
    );
  return { header };
}

/** The decoded bytes against the header and the ID; a manifest's chunk IDs. */
function checkCanonical(
  oid: string,
  header: EnvelopeHeader,
  stored: Buffer,
  canonical: Buffer,
): VerifiedUpload {
  const canonicalLength = canonical.length;
  let chunks: readonly string[] = [];
  try {
    if (canonicalLength !== header.plainLength)
      throw invalidObject(
        oid,
        `decoded ${canonicalLength} bytes, the header says ${header.plainLength}`,
      );
    if (sha256Hex(canonical) !== oid) throw invalidObject(oid, 'content does not match its ID');
    if (header.kind === 'manifest') {
      try {
        chunks = decodeManifest(canonical).chunks.map((c) => c.oid);
      } catch (err) {
        throw invalidObject(oid, `not a valid manifest: ${messageOf(err)}`);
      }
    }
  } finally {
    // A decompressed payload is the server's own and needed for nothing more (see releaseMemory).
    if (canonical.buffer !== stored.buffer) releaseMemory(canonical);
  }
  return {
    kind: header.kind,
    encrypted: false,
    canonicalLength,
    storedLength: stored.length,
    chunks,
  };
}

/**
 * The canonical bytes of a plain object read back from storage (for the ref update's walk), within
 * the same caps as uploads; throws a plain Error when it does not decode or match its ID.
 */
export async function openPlain(
  oid: string,
  stored: Buffer,
  limits: DecodeLimits,
): Promise<{ kind: ObjectKind; canonical: Buffer }> {
  const header = decodeEnvelopeHeader(stored);
  if (header.cipher !== CIPHER_NONE) throw new Error('an encrypted object in a plain repository');
  if (header.plainLength > canonicalCap(header.kind, limits))
    throw new Error(`declared length ${header.plainLength} is over the limit`);
  const canonical = await decodePayload(
    header.codec,
    stored.subarray(ENVELOPE_HEADER_SIZE),
    header.plainLength,
  );
  if (canonical.length !== header.plainLength || sha256Hex(canonical) !== oid)
    throw new Error('content does not match its ID');
  return { kind: header.kind, canonical };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
