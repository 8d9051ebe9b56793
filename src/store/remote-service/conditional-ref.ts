/**
 * Compare-and-swap of a ref over a service's conditional write, written once for every backend
 * that has one: Azure (If-None-Match: * / If-Match: <ETag>), GCS (ifGenerationMatch) and S3 (a
 * log of entries created with If-None-Match: *). A backend supplies only its primitive — read the
 * ref's state, and write (or delete) it on condition that it is still at a given state — and this
 * module decides what `expected` means and when no write is needed at all.
 *
 * What `expected` means (the Store contract):
 * - null: the ref must not exist.
 * - a value from readRef/listRefs: its `version` pins that exact state (ETag, generation, log
 *   entry), so an A→B→A change in between is noticed.
 * - `{ oid, version: oid }`, which is all the repository layer knows: value semantics, like the
 *   local store — the ref is read, must hold that OID, and the write is conditional on the state
 *   just read, so it stays atomic.
 */
import {
  assertValidRefName,
  assertValidRefTarget,
  isWriterToken,
  type SwapOptions,
  type RefValue,
} from '../store.js';

/** A ref's state as a backend reads it; `oid` null means "absent" where absence has a state (an S3 tombstone). */
export interface RefState {
  readonly oid: string | null;
  readonly version: string;
}

export interface ConditionalRefWrites<S extends RefState> {
  /** The ref's current state, or null when it has none at all. */
  read(name: string, signal: AbortSignal | undefined): Promise<S | null>;
  /**
   * The state to write against, straight from the caller's `expected`, when the backend's
   * precondition can carry it without a read: null for "must not exist" where a create-only write
   * needs no state, an ETag, a generation, an S3 log head this store read a moment ago. 'stale'
   * when that version can never match; undefined to read the ref first. `writerToken`: the
   * update's token, when it has one; a backend that tells its own landed writes by token (S3)
   * pins only an update's first attempt, since a repeat must read to find out (`landed`).
   */
  pin(
    expected: RefValue | null,
    name: string,
    writerToken: string | undefined,
  ): S | null | 'stale' | undefined;
  /**
   * Whether the state just read satisfies `expected`. Default: the same OID, absent for null.
   * A backend with versions it can compare after reading (S3's log sequence) checks them too.
   */
  matches?(current: S | null, expected: RefValue | null): boolean;
  /**
   * Sets the ref to `next`, or deletes it when `next` is null, on condition that it is still at
   * `base` (null: that it does not exist). True when this write took effect; false when the
   * condition failed because another writer got there first. Any other failure rejects.
   * `written`: the caller's SwapOptions.onWritten, for a backend that confirms after writing.
   */
  write(
    name: string,
    base: S | null,
    next: string | null,
    signal: AbortSignal | undefined,
    writerToken: string | undefined,
    written?: () => void,
  ): Promise<boolean>;
  /**
   * For a backend that records each write's token: called when the ref was not in the expected
   * state on an update that carries a writer token (a repeat after an unknown outcome). True when
   * the reason is this very update — a write with `writerToken` landed from `expected` and the ref
   * then took it (it is the current state, or the one the current state was built on) — so the
   * update is reported as done instead of lost.
   */
  landed?(
    name: string,
    current: S | null,
    expected: RefValue | null,
    writerToken: string,
    signal: AbortSignal | undefined,
  ): Promise<boolean>;
}

const absent = (state: RefState | null): boolean => state === null || state.oid === null;

function sameValue(current: RefState | null, expected: RefValue | null): boolean {
  return expected === null ? absent(current) : current?.oid === expected.oid;
}

export async function compareAndSwapRef<S extends RefState>(
  backend: ConditionalRefWrites<S>,
  name: string,
  expected: RefValue | null,
  next: string | null,
  options: SwapOptions = {},
): Promise<boolean> {
  assertValidRefName(name);
  assertValidRefTarget(next);
  const signal = options.signal;
  const token = isWriterToken(options.writerToken) ? options.writerToken : undefined;
  const matches = backend.matches?.bind(backend) ?? sameValue;

  // Deleting a ref that must not exist needs no write, only the answer whether it is absent now.
  const pinned =
    next === null && expected === null ? undefined : backend.pin(expected, name, token);
  if (pinned === 'stale') return false;
  let base: S | null;
  if (pinned !== undefined) base = pinned;
  else {
    const current = await backend.read(name, signal);
    if (!matches(current, expected))
      return token !== undefined && backend.landed
        ? backend.landed(name, current, expected, token, signal)
        : false;
    if (next === null && absent(current)) return true;
    base = current;
  }
  if (next === null && absent(base)) return false;
  return backend.write(name, base, next, signal, token, options.onWritten);
}
