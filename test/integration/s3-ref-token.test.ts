/**
 * A ref update on S3 whose reply was lost after it landed, with other writers moving the ref on
 * before the retry re-read it: the retry must report success for the first writer (its entry is
 * in the ref log, and the next entry was built on it) — neither a conflict nor a second write.
 * Every attempt of one update carries the same writer token, which the ref-log entry records.
 * Faults come from the fault proxy in front of radosgw: the entry's PUT lands and its reply is
 * lost, and the read-back that would settle it in the same attempt is reset.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  ForwardingStore,
  RetryingStore,
  type Passage,
  type RefValue,
  type Store,
} from '../../src/store/index.js';
import { S3Store } from '../../src/store/s3/index.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { createS3TestBucket, type S3TestOptions } from '../support/s3-bucket.js';
import { oidFor } from '../support/store-contract.js';
import { skipUnlessServer } from '../support/test-servers.js';

const MAIN = 'refs/heads/main';

/** Runs `between` once, after the first compare-and-swap that fails, before its error goes on. */
class SecondWriterBetween extends ForwardingStore {
  private armed = true;

  constructor(
    inner: Store,
    private readonly between: () => Promise<void>,
  ) {
    super(inner);
  }

  protected override async pass<T>(passage: Passage<T>): Promise<T> {
    if (passage.operation !== 'compareAndSwapRef' || !this.armed) return passage.run();
    try {
      return await passage.run();
    } catch (err) {
      this.armed = false;
      await this.between();
      throw err;
    }
  }
}

describe(
  'S3 ref update: the writer token is reused across retries',
  { skip: skipUnlessServer('s3') },
  () => {
    let options: S3TestOptions;
    let proxy: FaultProxy;
    const bucket = `mg-reftoken-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;

    before(async () => {
      options = await createS3TestBucket(bucket);
      proxy = await startFaultProxy({ target: options.endpoint });
    });
    after(() => proxy?.close());

    for (const others of [1, 2]) {
      test(`a lost reply after the entry landed, then ${others} other writer(s) moved the ref: the retry reports success and writes nothing more`, async () => {
        const prefix = `others-${others}`;
        const direct = new S3Store({ ...options, bucket, prefix });
        const proxied = new S3Store({ ...options, bucket, prefix, endpoint: proxy.url });
        const [x, y] = [oidFor(`${prefix} x`), oidFor(`${prefix} y`)];
        const theirs = Array.from({ length: others }, (_, i) => oidFor(`${prefix} other ${i}`));
        try {
          // Set-up (and the conditional-write probe) without faults.
          assert.equal(await proxied.compareAndSwapRef(MAIN, null, x), true);
          const start = (await proxied.readRef(MAIN)) as RefValue;

          let moved = 0;
          const store = new RetryingStore(
            new SecondWriterBetween(proxied, async () => {
              for (const oid of theirs) {
                const now = await direct.readRef(MAIN);
                if (await direct.compareAndSwapRef(MAIN, now, oid)) moved++;
              }
            }),
            { baseDelayMs: 1, maxDelayMs: 5 },
          );
          // The entry our update creates is the ref log's second; lose the reply of its PUT and
          // reset the read-back that would settle the outcome within the same attempt.
          const entry = `/${bucket}/${prefix}/${MAIN}/00000000000000000002`;
          const faults: string[] = [];
          proxy.setPlan((request) => {
            if (request.url.split('?')[0] !== entry) return undefined;
            if (request.method === 'PUT' && !faults.includes('PUT')) {
              faults.push('PUT');
              return { kind: 'lose-reply' };
            }
            if (request.method === 'GET' && !faults.includes('GET')) {
              faults.push('GET');
              return { kind: 'reset' };
            }
            return undefined;
          });

          assert.equal(
            await store.compareAndSwapRef(MAIN, start, y),
            true,
            'our update landed and the others built on it: success, not a conflict',
          );
          assert.deepEqual(faults, ['PUT', 'GET'], 'both faults were injected');
          assert.equal(moved, others, 'the other writers moved the ref from ours');
          assert.equal((await direct.readRef(MAIN))?.oid, theirs.at(-1), 'their value stands');
          // Nothing written after theirs: the retry did not write y again over them.
          assert.equal((await direct.readRef(MAIN))?.version, String(2 + others).padStart(20, '0'));

          // A writer whose update really lost still hears false (same token machinery, no landing).
          proxy.setPlan(undefined);
          assert.equal(await store.compareAndSwapRef(MAIN, start, oidFor(`${prefix} late`)), false);
        } finally {
          proxy.setPlan(undefined);
          await direct.close();
          await proxied.close();
        }
      });
    }
  },
);
