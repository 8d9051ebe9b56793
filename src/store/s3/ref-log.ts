/**
 * Encoding of the S3 ref log (see docs/backends/s3.md). A ref is a folder of entries
 * `refs/heads/main/<20-digit sequence>`, each created exactly once with `If-None-Match: *`; the
 * entry with the highest sequence is the ref's value. Only create-only writes are needed because
 * two writers that start from the same state both try to create the same next sequence number and
 * the server lets exactly one of them do it.
 */
import { isValidRefName } from '../store.js';

export const SEQUENCE_DIGITS = 20;
const SEQUENCE_PATTERN = /^\d{20}$/;
const OID_PATTERN = /^[0-9a-f]{64}$/;
const TOKEN_PATTERN = /^[0-9a-f]{32}$/;

export interface RefLogEntry {
  /** The OID, or null for a tombstone (the ref was deleted at this point of its history). */
  readonly oid: string | null;
  /** Random per write attempt: tells "my create landed" from "someone else's did" after an ambiguous answer. */
  readonly writer: string;
  /** `writer` of the entry this one was built on (null for the first entry): chains entries so a late writer can be caught. */
  readonly prev: string | null;
}

export function formatSequence(seq: number): string {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError(`bad ref log sequence ${seq}`);
  return String(seq).padStart(SEQUENCE_DIGITS, '0');
}

/** Sequence from a version string or key segment; undefined when it is not one of ours. */
export function parseSequence(text: string): number | undefined {
  if (!SEQUENCE_PATTERN.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

/** Store-relative key of one entry. */
export function entryKey(ref: string, seq: number): string {
  return `${ref}/${formatSequence(seq)}`;
}

/** Splits a store-relative key into ref name and sequence; undefined for anything that is not an entry. */
export function parseEntryKey(key: string): { ref: string; seq: number } | undefined {
  const slash = key.lastIndexOf('/');
  if (slash < 0) return undefined;
  const seq = parseSequence(key.slice(slash + 1));
  const ref = key.slice(0, slash);
  if (seq === undefined || !isValidRefName(ref)) return undefined;
  return { ref, seq };
}

export function encodeEntry(entry: RefLogEntry): Buffer {
  return Buffer.from(
    `${JSON.stringify({ oid: entry.oid, writer: entry.writer, prev: entry.prev })}\n`,
    'utf8',
  );
}

export class CorruptRefEntryError extends Error {}

export function decodeEntry(body: Uint8Array, key: string): RefLogEntry {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch (err) {
    throw new CorruptRefEntryError(`ref log entry ${key} is not valid JSON`, { cause: err });
  }
  const o =
    typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const { oid, writer, prev } = o;
  if (!(oid === null || (typeof oid === 'string' && OID_PATTERN.test(oid))))
    throw new CorruptRefEntryError(`ref log entry ${key} has a bad oid`);
  if (typeof writer !== 'string' || !TOKEN_PATTERN.test(writer))
    throw new CorruptRefEntryError(`ref log entry ${key} has a bad writer token`);
  if (!(prev === null || (typeof prev === 'string' && TOKEN_PATTERN.test(prev))))
    throw new CorruptRefEntryError(`ref log entry ${key} has a bad prev token`);
  return { oid, writer, prev };
}
