/**
 * Gear tables: 256 pseudo-random 32-bit words, one per byte value. Both derivations are part of the
 * format (docs/chunking.md) so that any implementation reproduces the same boundaries.
 */
import { createHash, createHmac, createSecretKey } from 'node:crypto';

/** Domain label hashed in front of the byte value; bump the version to change every boundary. */
export const GEAR_LABEL = 'mediagit-gear-v1';
/** Seeds are 256-bit secrets; anything shorter would make the keyed table guessable. */
export const GEAR_SEED_BYTES = 32;

let cachedDefault: Uint32Array | undefined;

function deriveTable(digestOf: (message: Buffer) => Buffer): Uint32Array {
  const table = new Uint32Array(256);
  const label = Buffer.from(GEAR_LABEL, 'ascii');
  const message = Buffer.alloc(label.length + 1);
  label.copy(message, 0);
  for (let i = 0; i < 256; i++) {
    message[label.length] = i;
    table[i] = digestOf(message).readUInt32BE(0);
  }
  return table;
}

/** Shared, never handed out: callers get copies so one of them can't change everyone's boundaries. */
export function defaultGearShared(): Uint32Array {
  cachedDefault ??= deriveTable((m) => createHash('sha256').update(m).digest());
  return cachedDefault;
}

/** Entry i = first 4 bytes (big-endian) of SHA-256("mediagit-gear-v1" || u8(i)). Returns a fresh copy. */
export function defaultGear(): Uint32Array {
  return defaultGearShared().slice();
}

/**
 * Keyed table for encrypted repositories: entry i = first 4 bytes (big-endian) of
 * HMAC-SHA-256(key = seed, "mediagit-gear-v1" || u8(i)). Without the seed an observer can't predict
 * where boundaries fall, which would otherwise leak which known content a repository holds.
 */
export function gearFromSeed(seed: Uint8Array): Uint32Array {
  if (!(seed instanceof Uint8Array)) {
    throw new Error(`gear seed must be a Uint8Array of ${GEAR_SEED_BYTES} bytes`);
  }
  if (seed.length !== GEAR_SEED_BYTES) {
    throw new Error(`gear seed must be exactly ${GEAR_SEED_BYTES} bytes, got ${seed.length}`);
  }
  // One key object for all 256 HMACs: given raw bytes, createHmac would build one per call.
  const key = createSecretKey(seed);
  return deriveTable((m) => createHmac('sha256', key).update(m).digest());
}

/** Rejects anything that isn't a 256-entry table before it silently produces odd boundaries. */
export function checkGear(gear: Uint32Array): void {
  if (!(gear instanceof Uint32Array) || gear.length !== 256) {
    const got =
      gear instanceof Uint32Array ? `a Uint32Array of length ${gear.length}` : typeof gear;
    throw new Error(`gear table must be a Uint32Array with 256 entries, got ${got}`);
  }
}
