/**
 * The one compare-and-swap over a conditional write (remote-service/conditional-ref.ts), driven
 * through an in-memory primitive with ETag-like versions: what `expected` means, when a read is
 * needed and when not, and that a lost precondition is `false`, never an error.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  compareAndSwapRef,
  type ConditionalRefWrites,
} from '../../../src/store/remote-service/conditional-ref.js';
import type { RefValue } from '../../../src/store/index.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);
const REF = 'refs/heads/main';

/** A service with If-Match / If-None-Match semantics on one ref, counting requests. */
function service(): ConditionalRefWrites<RefValue> & {
  value: RefValue | null;
  reads: number;
  writes: number;
  /** Runs before the next write's condition is checked: another writer's move. */
  interfere?: () => void;
} {
  let generation = 0;
  const s = {
    value: null as RefValue | null,
    reads: 0,
    writes: 0,
    interfere: undefined as (() => void) | undefined,
    async read(): Promise<RefValue | null> {
      s.reads++;
      return s.value;
    },
    pin(expected: RefValue | null): RefValue | null | 'stale' | undefined {
      if (expected === null) return null;
      return expected.version === expected.oid ? undefined : expected;
    },
    async write(_name: string, base: RefValue | null, next: string | null): Promise<boolean> {
      s.writes++;
      const interfere = s.interfere;
      s.interfere = undefined;
      interfere?.();
      const holds = base === null ? s.value === null : s.value?.version === base.version;
      if (!holds) return false;
      s.value = next === null ? null : { oid: next, version: `etag-${++generation}` };
      return true;
    },
  };
  return s;
}

describe('compareAndSwapRef over a conditional write', () => {
  test('create-only needs no read; a second create loses', async () => {
    const s = service();
    assert.equal(await compareAndSwapRef(s, REF, null, A), true);
    assert.equal(s.reads, 0);
    assert.equal(await compareAndSwapRef(s, REF, null, B), false);
    assert.equal(s.value?.oid, A);
  });

  test('a version from a read pins that exact state: no read, and A→B→A is noticed', async () => {
    const s = service();
    await compareAndSwapRef(s, REF, null, A);
    const seen = s.value!;
    await compareAndSwapRef(s, REF, seen, B);
    await compareAndSwapRef(s, REF, s.value, A);
    const reads = s.reads;
    assert.equal(await compareAndSwapRef(s, REF, seen, C), false, 'same OID, older state');
    assert.equal(s.reads, reads, 'the pinned version went straight to the write');
    assert.equal(s.value?.oid, A);
  });

  test('{ oid, version: oid } gets value semantics: read, compare, write on the state read', async () => {
    const s = service();
    await compareAndSwapRef(s, REF, null, A);
    assert.equal(await compareAndSwapRef(s, REF, { oid: B, version: B }, C), false);
    assert.equal(s.writes, 1, 'a different OID writes nothing');
    assert.equal(await compareAndSwapRef(s, REF, { oid: A, version: A }, B), true);
    assert.equal(s.value?.oid, B);
    // Another writer moves the ref between our read and our write: the condition catches it.
    s.interfere = () => {
      s.value = { oid: C, version: 'etag-other' };
    };
    assert.equal(await compareAndSwapRef(s, REF, { oid: B, version: B }, A), false);
    assert.equal(s.value?.oid, C);
  });

  test('deleting: conditional on the state, and "delete if absent" is a read only', async () => {
    const s = service();
    assert.equal(await compareAndSwapRef(s, REF, null, null), true);
    assert.equal(s.writes, 0);
    await compareAndSwapRef(s, REF, null, A);
    assert.equal(await compareAndSwapRef(s, REF, null, null), false, 'it exists');
    assert.equal(await compareAndSwapRef(s, REF, { oid: A, version: A }, null), true);
    assert.equal(s.value, null);
    assert.equal(await compareAndSwapRef(s, REF, { oid: A, version: A }, null), false);
  });

  test('a version the backend can never match is false without a request; bad input throws', async () => {
    const s = service();
    s.pin = () => 'stale';
    assert.equal(await compareAndSwapRef(s, REF, { oid: A, version: 'nonsense' }, B), false);
    assert.equal(s.reads + s.writes, 0);
    await assert.rejects(compareAndSwapRef(s, REF, null, 'not-an-oid'), TypeError);
    await assert.rejects(compareAndSwapRef(s, 'heads/main', null, A), TypeError);
  });

  test('matches lets a backend compare versions after reading (a log sequence)', async () => {
    const s = service();
    await compareAndSwapRef(s, REF, null, A);
    s.pin = () => undefined;
    s.matches = (current, expected) =>
      expected === null
        ? current === null
        : current?.oid === expected.oid &&
          (expected.version === expected.oid || expected.version === current.version);
    assert.equal(await compareAndSwapRef(s, REF, { oid: A, version: 'etag-0' }, B), false);
    assert.equal(await compareAndSwapRef(s, REF, { oid: A, version: s.value!.version }, B), true);
  });
});
