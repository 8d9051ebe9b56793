/**
 * The upload verification pool (src/server/verifier.ts): verdicts from worker threads match the
 * in-place verification, refusals come back as the same 422 naming the object, the bytes come
 * back intact, and the queue is bounded: a job that does not fit waits until earlier ones settle.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { HttpError } from '../../../src/server/errors.js';
import { UploadVerifier } from '../../../src/server/verifier.js';
import type { VerifyOptions } from '../../../src/server/verify.js';
import { storedObject } from '../../support/server-harness.js';

const MiB = 1024 * 1024;
const PLAIN: VerifyOptions = { mode: 'plain', maxChunkBytes: 8 * MiB, maxObjectBytes: 16 * MiB };

/** A chunk of `size` bytes stored zstd-compressed (so the worker decodes, not only hashes). */
async function chunk(size: number): Promise<{ oid: string; stored: Buffer }> {
  // Random halves and zero halves: zstd halves it, so there is a real payload to decode.
  const canonical = randomBytes(size);
  for (let at = 0; at < size; at += 8192) canonical.fill(0, at, Math.min(at + 4096, size));
  return storedObject('chunk', canonical, true);
}

test('a worker verdict matches the bytes, which come back intact; a wrong object is the 422 naming it', async (t) => {
  const verifier = new UploadVerifier({ workers: 2, maxQueuedBytes: 64 * MiB });
  t.after(() => verifier.close());
  const good = await chunk(3 * MiB);
  const copy = Buffer.from(good.stored);
  const { verified, data } = await verifier.verify('chunk', good.oid, copy, PLAIN);
  assert.equal(verified.kind, 'chunk');
  assert.equal(verified.canonicalLength, 3 * MiB);
  assert.ok(data.equals(good.stored), 'the bytes come back from the worker unchanged');
  assert.equal(verifier.stats.verifiedOnWorkers, 1);

  const other = await chunk(2 * MiB);
  await assert.rejects(
    verifier.verify('chunk', good.oid, Buffer.from(other.stored), PLAIN),
    (err: unknown) =>
      err instanceof HttpError &&
      err.status === 422 &&
      err.code === 'invalid_object' &&
      err.extra['oid'] === good.oid &&
      /does not match its ID/.test(err.message),
  );
  // A manifest offered to the chunk endpoint is refused on the worker too.
  await assert.rejects(
    verifier.verify('manifest', good.oid, Buffer.from(good.stored), PLAIN),
    (err: unknown) => err instanceof HttpError && err.status === 422,
  );
});

test('the queue is bounded: a job that does not fit is admitted only once an earlier one settled', async (t) => {
  const objects = await Promise.all([chunk(2 * MiB), chunk(2 * MiB), chunk(2 * MiB)]);
  const size = Math.max(...objects.map((o) => o.stored.length));
  // Room for one job at a time.
  const verifier = new UploadVerifier({ workers: 2, maxQueuedBytes: size });
  t.after(() => verifier.close());
  const results: Promise<unknown>[] = [];
  for (const o of objects) {
    const admitted = await verifier.admit('chunk', o.oid, Buffer.from(o.stored), PLAIN);
    // Admitted means the earlier job settled and left the pool: never two at once.
    assert.equal(verifier.stats.jobsInFlight, 1);
    // It weighs what it stores plus what it decodes to, within the bound.
    assert.ok(verifier.stats.queuedBytes >= o.stored.length);
    assert.ok(verifier.stats.queuedBytes <= size);
    results.push(admitted.result);
  }
  await Promise.all(results);
  assert.equal(verifier.stats.queuedBytes, 0);
  assert.equal(verifier.stats.jobsInFlight, 0);
});

test('a small envelope weighs what it decodes to: zstd bombs are admitted one at a time, like the megabytes they become', async (t) => {
  const bombs = await Promise.all(
    [1, 2, 3].map((fill) => storedObject('chunk', Buffer.alloc(3 * MiB, fill), true)),
  );
  for (const bomb of bombs) assert.ok(bomb.stored.length < 64 * 1024, 'a few bytes stored');
  const verifier = new UploadVerifier({ workers: 2, maxQueuedBytes: 4 * MiB });
  t.after(() => verifier.close());
  const results: Promise<unknown>[] = [];
  for (const bomb of bombs) {
    const admitted = await verifier.admit('chunk', bomb.oid, Buffer.from(bomb.stored), PLAIN);
    // Two would decode to 6 MiB at once, over the 4 MiB bound: the earlier one has settled.
    assert.equal(verifier.stats.jobsInFlight, 1, 'one bomb decoding at a time, on a worker');
    assert.ok(verifier.stats.queuedBytes >= 3 * MiB, `weighs ${verifier.stats.queuedBytes}`);
    results.push(admitted.result);
  }
  await Promise.all(results);
  assert.equal(verifier.stats.queuedBytes, 0);
});

test('a wait for room ends with the signal; small objects and workers = 0 verify in place', async (t) => {
  const big = await chunk(2 * MiB);
  const verifier = new UploadVerifier({ workers: 1, maxQueuedBytes: 1024 });
  t.after(() => verifier.close());
  const first = await verifier.admit('chunk', big.oid, Buffer.from(big.stored), PLAIN);
  const stop = new AbortController();
  const waiting = verifier.admit('chunk', big.oid, Buffer.from(big.stored), PLAIN, stop.signal);
  stop.abort(new Error('client went away'));
  await assert.rejects(waiting, /client went away/);
  await first.result;

  const small = await storedObject('chunk', Buffer.from('small'));
  const inPlace = new UploadVerifier({ workers: 0, maxQueuedBytes: 1024 });
  const before = inPlace.stats.verifiedOnWorkers;
  await inPlace.verify('chunk', big.oid, Buffer.from(big.stored), PLAIN);
  await verifier.verify('chunk', small.oid, Buffer.from(small.stored), PLAIN);
  assert.equal(inPlace.stats.verifiedOnWorkers, before);
  assert.equal(verifier.stats.verifiedOnWorkers, 1, 'only the big one went to a worker');
  await inPlace.close();
});
