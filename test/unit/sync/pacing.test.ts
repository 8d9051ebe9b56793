/**
 * A store's pace for transfers (StoreCapabilities.pacing) reaches the transfer layer through every
 * wrapper openStore puts around it, and a byte budget bounds the weight in flight, not the count.
 * What the pace does on the wire is test/integration/transfer-pacing.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { LocalStore, MultiStore, openStore } from '../../../src/store/index.js';
import { S3Store } from '../../../src/store/s3/index.js';
import {
  TRANSFER_CONCURRENCY,
  largeAndSmallInTurn,
  transferPacing,
} from '../../../src/sync/transfer.js';
import { WeightedSemaphore } from '../../../src/util/limit.js';

const MiB = 1024 * 1024;
// Never contacted: building a store and reading its capabilities sends nothing.
const S3 = { endpoint: 'http://127.0.0.1:9', access_key: 'k', secret_key: 's' };

describe('transfer pacing', () => {
  test('S3 asks for 16 requests and part_size × max_concurrent_parts bytes, through the wrappers', async () => {
    const opened = await openStore('s3://bucket/p', S3);
    const local = await mkdtemp(path.join(os.tmpdir(), 'mediagit-pacing-'));
    try {
      const folder = new LocalStore(local);
      assert.deepEqual(opened.store.capabilities.pacing, { requests: 16, bytes: 800 * MiB });
      assert.deepEqual(transferPacing(folder, opened.store), { requests: 16, bytes: 800 * MiB });
      const tuned = await openStore('s3://bucket/p', {
        ...S3,
        max_concurrent_requests: '4',
        part_size: String(5 * MiB),
        max_concurrent_parts: '3',
      });
      assert.deepEqual(transferPacing(tuned.store), { requests: 4, bytes: 15 * MiB });
      // Stores that do not say keep what every transfer had.
      assert.deepEqual(transferPacing(folder, folder), {
        requests: TRANSFER_CONCURRENCY,
        bytes: Number.POSITIVE_INFINITY,
      });
      const folderRemote = await openStore(local);
      assert.equal(transferPacing(folder, folderRemote.store).requests, 8);
    } finally {
      await rm(local, { recursive: true, force: true });
    }
  });

  test('a mirror goes at the slower side’s pace, and at the default when a side has none', () => {
    const fast = new S3Store({ bucket: 'a', ...S3 });
    const slow = new S3Store({ bucket: 'b', ...S3, max_concurrent_requests: 6 });
    assert.deepEqual(new MultiStore(fast, slow).capabilities.pacing, {
      requests: 6,
      bytes: 800 * MiB,
    });
    const folder = new LocalStore(path.join(os.tmpdir(), 'never-created'));
    assert.equal(new MultiStore(fast, folder).capabilities.pacing, undefined);
  });
});

describe('WeightedSemaphore', () => {
  test('holds at most its limit of weight at once; a piece above the limit runs alone', async () => {
    const gate = new WeightedSemaphore(10);
    let inside = 0;
    let most = 0;
    const alone: boolean[] = [];
    const piece = async (weight: number): Promise<void> => {
      await gate.run(weight, async () => {
        inside += weight;
        most = Math.max(most, inside);
        if (weight > 10) alone.push(inside === weight);
        await new Promise((resolve) => setImmediate(resolve));
        inside -= weight;
      });
    };
    await Promise.all([4, 4, 4, 25, 3, 6, 1, 9, 2].map(piece));
    assert.ok(most <= 25, `${most}`);
    assert.deepEqual(alone, [true]);
    // Without the heavy piece the limit itself holds.
    most = 0;
    await Promise.all([4, 4, 4, 3, 6, 1, 9, 2, 7, 7].map(piece));
    assert.ok(most <= 10, `${most}`);
    assert.ok(most >= 8, `pieces that fit together ran together (${most})`);
  });

  test('a waiter whose signal aborts leaves the line and lets the lighter ones behind it in', async () => {
    const gate = new WeightedSemaphore(10);
    await gate.acquire(6);
    const heavy = new AbortController();
    const heavyWait = gate.acquire(8, heavy.signal);
    let lightIn = false;
    const lightWait = gate.acquire(3).then(() => {
      lightIn = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(lightIn, false, 'arrival order: the light piece waits behind the heavy one');
    heavy.abort(new Error('client went away'));
    await assert.rejects(heavyWait, /client went away/);
    await lightWait;
    assert.equal(lightIn, true);
    // An already-aborted signal is refused at once when the piece would have to wait.
    await assert.rejects(gate.acquire(5, AbortSignal.abort(new Error('gone'))), /gone/);
    gate.release(3);
    gate.release(6);
    // With nothing inside, a piece goes straight in.
    await gate.acquire(10);
    gate.release(10);
  });
});

describe('the order objects start in', () => {
  test('largest and smallest in turn: a run of small objects goes beside the large ones, and each object once', () => {
    // The walk's order: a run of 30 small chunks between two runs of large ones, as on the bench corpus.
    const sizes = new Map<string, number>();
    const oids: string[] = [];
    const add = (name: string, size: number): void => {
      sizes.set(name, size);
      oids.push(name);
    };
    for (let i = 0; i < 20; i++) add(`large-a${i}`, 600_000 + i * 1000);
    for (let i = 0; i < 30; i++) add(`small${i}`, 300 + i);
    for (let i = 0; i < 20; i++) add(`large-b${i}`, 500_000 + i * 1000);
    add('unknown', Number.NaN);
    const order = largeAndSmallInTurn(oids, (oid) =>
      Number.isNaN(sizes.get(oid)) ? undefined : sizes.get(oid),
    );
    assert.deepEqual([...order].sort(), [...oids].sort());
    // The first wave of 16 requests: 8 of the largest, 8 of the smallest (unknown counts as 0).
    const first = order.slice(0, 16);
    assert.equal(first[0], 'large-a19');
    assert.equal(first[1], 'unknown');
    assert.equal(first.filter((oid) => oid.startsWith('large')).length, 8);
    // No run of more than one small object while large ones are left.
    order.forEach((oid, i) => {
      if (i > 0 && !oid.startsWith('large') && !order[i - 1]!.startsWith('large'))
        assert.ok(
          order.slice(i).every((o) => !o.startsWith('large')),
          `two small in a row at ${i} before the large ones ran out`,
        );
    });
    assert.deepEqual(
      largeAndSmallInTurn([], () => 1),
      [],
    );
    assert.deepEqual(
      largeAndSmallInTurn(['x'], () => 1),
      ['x'],
    );
  });
});
