import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  AuthError,
  NotFoundError,
  ObjectCorruptError,
  StoreUnavailableError,
} from '../../../src/errors/index.js';
import {
  ConcurrencyLimitedStore,
  DEFAULT_MAX_RETRIES,
  DeadlineError,
  DURATION_BUCKETS_MS,
  LocalStore,
  MeteredStore,
  MultiStore,
  RetryingStore,
  isStall,
  isTransientError,
  unwrapStore,
  type RetryInfo,
  type RetryOptions,
  type Store,
  type StoreOperation,
} from '../../../src/store/index.js';
import { FaultyStore } from '../../support/faulty-store.js';
import { collectList, oidFor, storeContract } from '../../support/store-contract.js';
import { MemoryStore } from './memory-store.js';

async function tempLocal(): Promise<{ store: LocalStore; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-wrappers-'));
  const store = new LocalStore(root, { fsync: false });
  await store.initialize();
  return { store, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** RetryingStore with a recording, instant sleep and pinned jitter. */
function retrying(
  inner: Store,
  options: RetryOptions = {},
): { store: RetryingStore; delays: number[]; events: RetryInfo[] } {
  const delays: number[] = [];
  const events: RetryInfo[] = [];
  const store = new RetryingStore(inner, {
    sleep: async (ms) => {
      delays.push(ms);
    },
    random: () => 0.5,
    onRetry: (info) => events.push(info),
    ...options,
  });
  return { store, delays, events };
}

const unavailable = (
  message = 'service unavailable',
  retryAfterMs?: number,
): StoreUnavailableError =>
  new StoreUnavailableError(message, retryAfterMs === undefined ? {} : { retryAfterMs });

const K = (label: string): string => `chunks/${oidFor(label)}`;
const MAIN = 'refs/heads/main';
const [A, B, X] = [oidFor('A'), oidFor('B'), oidFor('X')];

// ---- contract through wrappers --------------------------------------------------------------

storeContract(
  'MemoryStore (test double, version-checked refs)',
  async () => ({ store: new MemoryStore(), cleanup: async () => {} }),
  { concurrentCas: true },
);

storeContract(
  'RetryingStore(FaultyStore(LocalStore)), seed 7',
  async () => {
    const { store: local, cleanup } = await tempLocal();
    const faulty = new FaultyStore(local, { seed: 7, failureRate: 0.2, failAfterWriteRate: 0.3 });
    // Enough retries that 20 % faults never exhaust them in the thousands of calls the suite makes.
    return {
      store: new RetryingStore(faulty, { maxRetries: 12, baseDelayMs: 1, maxDelayMs: 5 }),
      cleanup,
    };
  },
  { concurrentCas: true, rounds: 10 },
);

storeContract(
  'MeteredStore(ConcurrencyLimitedStore(RetryingStore(FaultyStore(LocalStore)))), seed 11',
  async () => {
    const { store: local, cleanup } = await tempLocal();
    const faulty = new FaultyStore(local, { seed: 11, failureRate: 0.2, failAfterWriteRate: 0.5 });
    const stack = new MeteredStore(
      new ConcurrencyLimitedStore(
        new RetryingStore(faulty, { maxRetries: 12, baseDelayMs: 1, maxDelayMs: 5 }),
        { maxConcurrent: 3, maxConcurrentRefs: 2 },
      ),
    );
    return { store: stack, cleanup };
  },
  { concurrentCas: true, rounds: 5 },
);

test('every wrapper forwards the capabilities of the store it wraps, no more and no less', async () => {
  const { store: local, cleanup } = await tempLocal();
  try {
    const wrap = (inner: Store): Store[] => [
      new RetryingStore(inner),
      new ConcurrencyLimitedStore(inner),
      new MeteredStore(inner),
      new FaultyStore(inner, { failureRate: 0, forwardCapabilities: true }),
    ];
    const shape = (s: Store): string[] =>
      Object.entries(s.capabilities)
        .filter(([, v]) => v !== undefined && v !== false)
        .map(([k]) => k)
        .sort();
    assert.deepEqual(shape(local), ['freshBuffers', 'localFiles']);
    for (const inner of [local, new MeteredStore(new RetryingStore(local))])
      for (const wrapped of wrap(inner))
        assert.deepEqual(shape(wrapped), ['freshBuffers', 'localFiles'], wrapped.description);
    for (const wrapped of wrap(new MemoryStore()))
      assert.deepEqual(shape(wrapped), [], wrapped.constructor.name);
    // A fault injector stands for a remote unless told otherwise: nothing to slip past it.
    assert.deepEqual(shape(new FaultyStore(local)), []);
    // A mirror's per-copy presence reaches the callers outside every wrapper.
    for (const wrapped of wrap(new MultiStore(new MemoryStore(), new MemoryStore())))
      assert.deepEqual(shape(wrapped), ['replicas'], wrapped.constructor.name);
  } finally {
    await cleanup();
  }
});

test('unwrapStore finds a store of the asked class through any stack of wrappers, or says null', async () => {
  const { store: local, cleanup } = await tempLocal();
  try {
    const memory = new MemoryStore();
    const stack = new RetryingStore(
      new ConcurrencyLimitedStore(new MeteredStore(new FaultyStore(local, { failureRate: 0 }))),
    );
    assert.equal(unwrapStore(stack, LocalStore), local);
    assert.ok(unwrapStore(stack, MeteredStore) instanceof MeteredStore);
    assert.equal(unwrapStore(stack, RetryingStore), stack);
    assert.equal(unwrapStore(stack, MemoryStore), null);
    assert.equal(unwrapStore(memory, MemoryStore), memory);
    assert.equal(unwrapStore(new MeteredStore(memory), LocalStore), null);
  } finally {
    await cleanup();
  }
});

test('batch calls pass through each wrapper like the operations they stand for', async () => {
  const inner = new MemoryStore();
  let failuresLeft = 2;
  const batching: Store = Object.assign(Object.create(inner) as MemoryStore, {
    capabilities: {
      freshBuffers: false,
      batch: {
        putMany: async (entries: readonly { key: string; data: Uint8Array }[]) => {
          if (failuresLeft-- > 0) throw unavailable('injected');
          for (const e of entries) await inner.put(e.key, e.data);
        },
        getMany: async (keys: readonly string[]) => {
          const out = new Map<string, Buffer>();
          for (const k of keys) if (inner.objects.has(k)) out.set(k, await inner.get(k));
          return out;
        },
      },
    },
  });
  const meter = new MeteredStore(batching);
  const { store, events } = retrying(new ConcurrencyLimitedStore(meter, { maxConcurrent: 1 }));
  const batch = store.capabilities.batch;
  assert.ok(batch);
  const entries = ['a', 'b', 'c'].map((l) => ({ key: K(l), data: Buffer.from(l.repeat(10)) }));
  await batch.putMany(entries);
  // Both failures were retried as `put`s of the whole batch, and the meter saw every attempt.
  assert.deepEqual(
    events.map((e) => [e.operation, e.target]),
    [
      ['put', '3 objects'],
      ['put', '3 objects'],
    ],
  );
  const found = await batch.getMany([K('a'), K('missing')]);
  assert.deepEqual([...found.keys()], [K('a')]);
  const m = meter.snapshot().operations;
  assert.equal(m.put.calls, 3);
  assert.equal(m.put.errors, 2);
  assert.equal(m.put.bytesWritten, 30);
  assert.equal(m.get.bytesRead, 10);
  await assert.rejects(batch.putMany([{ key: 'bad', data: Buffer.alloc(1) }]), TypeError);
  assert.equal(
    meter.snapshot().operations.put.calls,
    3,
    'an invalid key is refused before any wrapper counts it',
  );
});

// ---- RetryingStore --------------------------------------------------------------------------

describe('RetryingStore', () => {
  test('gets 200 operations through FaultyStore at 20 % failures', async () => {
    const { store: local, cleanup } = await tempLocal();
    try {
      const faulty = new FaultyStore(local, {
        seed: 42,
        failureRate: 0.2,
        failAfterWriteRate: 0.3,
        maxLatencyMs: 0,
      });
      const { store, events } = retrying(faulty, { maxRetries: 10 });
      const model = new Map<string, Buffer>();
      let ref: string | null = null;
      for (let i = 0; i < 200; i++) {
        const key = K(`op ${i % 40}`);
        switch (i % 7) {
          case 0:
          case 1: {
            const data = Buffer.from(`payload ${i % 40}`);
            await store.put(key, data);
            if (!model.has(key)) model.set(key, data);
            break;
          }
          case 2:
            if (model.has(key)) assert.ok((await store.get(key)).equals(model.get(key)!));
            else await assert.rejects(store.get(key), NotFoundError);
            break;
          case 3:
            assert.deepEqual(await store.has([key, K('never')]), [model.has(key), false]);
            break;
          case 4:
            assert.deepEqual(
              (await collectList(store, 'chunks/')).map((k) => k.key),
              [...model.keys()].sort(),
            );
            break;
          case 5: {
            const next = oidFor(`ref ${i}`);
            const current = await store.readRef(MAIN);
            assert.equal(current?.oid ?? null, ref);
            assert.equal(await store.compareAndSwapRef(MAIN, current, next), true);
            ref = next;
            break;
          }
          case 6:
            await store.delete(key);
            model.delete(key);
            break;
        }
      }
      assert.ok(faulty.totalInjected >= 20, `only ${faulty.totalInjected} faults injected`);
      assert.ok(faulty.injected.after > 0, 'some faults should strike after the write');
      assert.ok(events.length >= faulty.injected.before, 'every fault before a call is retried');
    } finally {
      await cleanup();
    }
  });

  test('gets 200 concurrent operations through FaultyStore at 20 % failures', async () => {
    const inner = new MemoryStore();
    const faulty = new FaultyStore(inner, { seed: 3, failureRate: 0.2, failAfterWriteRate: 0.5 });
    const { store } = retrying(faulty, { maxRetries: 10 });
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => store.put(K(`c${i}`), Buffer.from(`v${i}`))),
    );
    const got = await Promise.all(Array.from({ length: 100 }, (_, i) => store.get(K(`c${i}`))));
    got.forEach((data, i) => assert.equal(data.toString(), `v${i}`));
    assert.equal(inner.objects.size, 100);
    assert.ok(faulty.totalInjected > 10);
  });

  test('backs off exponentially with equal jitter, capped', async () => {
    const inner = new MemoryStore();
    inner.around = async () => {
      throw unavailable();
    };
    const { store, delays } = retrying(inner, {
      maxRetries: 10,
      baseDelayMs: 100,
      maxDelayMs: 10_000,
      random: () => 0.5,
    });
    await assert.rejects(store.get(K('x')), StoreUnavailableError);
    assert.deepEqual(delays, [75, 150, 300, 600, 1200, 2400, 4800, 7500, 7500, 7500]);
    const low = retrying(inner, { maxRetries: 5, random: () => 0 });
    await assert.rejects(low.store.get(K('x')), StoreUnavailableError);
    assert.deepEqual(low.delays, [125, 250, 500, 1000, 2000], 'half of each wait is certain');
    const high = retrying(inner, { maxRetries: 5, random: () => 0.999999 });
    await assert.rejects(high.store.get(K('x')), StoreUnavailableError);
    assert.deepEqual(high.delays, [250, 500, 1000, 2000, 4000]);
    // The default budget: 3.9 s at the least, 7.8 s at the most — a server restart fits.
    const total = (d: number[]): number => d.reduce((a, b) => a + b, 0);
    assert.deepEqual([total(low.delays), total(high.delays)], [3875, 7750]);
    assert.equal(DEFAULT_MAX_RETRIES, 5);
  });

  test('honours retryAfterMs as the minimum delay, capped', async () => {
    const inner = new MemoryStore();
    inner.objects.set(K('x'), Buffer.from('x'));
    let failures = 0;
    let retryAfter = 2500;
    inner.around = async (_op, _target, run) => {
      if (failures-- > 0) throw unavailable('slow down', retryAfter);
      return run();
    };
    const { store, delays } = retrying(inner, { random: () => 0 });
    failures = 2;
    assert.equal((await store.get(K('x'))).toString(), 'x');
    assert.deepEqual(delays, [2500, 2500]);

    // A shorter Retry-After does not undercut the backoff…
    delays.length = 0;
    failures = 1;
    retryAfter = 10;
    const jittered = retrying(inner, { random: () => 0.9 });
    await jittered.store.get(K('x'));
    assert.deepEqual(jittered.delays, [238]);

    // …and an absurd one is capped.
    failures = 1;
    retryAfter = 3_600_000;
    await store.get(K('x'));
    assert.deepEqual(delays, [60_000]);
    const capped = retrying(inner, { random: () => 0, maxRetryAfterMs: 5000 });
    failures = 1;
    await capped.store.get(K('x'));
    assert.deepEqual(capped.delays, [5000]);
  });

  test('gives up after maxRetries with the last error', async () => {
    const inner = new MemoryStore();
    let n = 0;
    inner.around = async () => {
      throw unavailable(`failure ${++n}`);
    };
    const { store, events } = retrying(inner, { maxRetries: 3 });
    await assert.rejects(store.put(K('x'), Buffer.from('x')), { message: 'failure 4' });
    assert.equal(inner.calls.put, 4);
    assert.deepEqual(
      events.map((e) => [e.operation, e.target, e.attempt, e.maxRetries]),
      [1, 2, 3].map((attempt) => ['put', K('x'), attempt, 3]),
    );
    assert.equal((events[0]!.error as Error).message, 'failure 1');

    const none = retrying(inner, { maxRetries: 0 });
    n = 0;
    await assert.rejects(none.store.get(K('x')), { message: 'failure 1' });
    assert.equal(none.delays.length, 0);
  });

  test('defaults to 5 retries', async () => {
    const inner = new MemoryStore();
    inner.around = async () => {
      throw unavailable();
    };
    const { store } = retrying(inner, { maxRetries: undefined });
    await assert.rejects(store.has([K('x')]), StoreUnavailableError);
    assert.equal(inner.calls.has, 6);
  });

  test('never retries NotFoundError, auth, corruption, validation or unknown errors', async () => {
    const permanent: unknown[] = [
      new NotFoundError(K('x')),
      new AuthError('access denied'),
      new ObjectCorruptError(oidFor('x'), 'bad tag'),
      new TypeError('bug'),
      new Error('something else'),
      new AuthError('denied', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) }),
      Object.assign(new Error('aborted'), { code: 'UND_ERR_ABORTED' }),
      new DOMException('aborted', 'AbortError'),
    ];
    for (const error of permanent) {
      const inner = new MemoryStore();
      inner.around = async () => {
        throw error;
      };
      const { store, delays } = retrying(inner);
      await assert.rejects(store.get(K('x')), (err) => err === error);
      assert.equal(inner.calls.get, 1, String(error));
      assert.equal(delays.length, 0);
    }
    // A real missing key through a real backend, too.
    const { store } = retrying(new MemoryStore());
    await assert.rejects(store.get(K('missing')), { code: 'E_NOT_FOUND' });
  });

  test('a stalled call is tried three times, however many retries a refused one gets', async () => {
    const inner = new MemoryStore();
    inner.objects.set(K('x'), Buffer.from('x'));
    const stalls = [
      new DeadlineError('no answer within 100 ms'),
      new StoreUnavailableError('cannot reach it (UND_ERR_HEADERS_TIMEOUT)', {
        cause: Object.assign(new Error('Headers Timeout Error'), {
          code: 'UND_ERR_HEADERS_TIMEOUT',
        }),
      }),
    ];
    for (const stall of stalls) {
      assert.equal(isStall(stall), true);
      inner.calls.get = 0;
      inner.around = async () => {
        throw stall;
      };
      const { store } = retrying(inner, { maxRetries: 10 });
      await assert.rejects(store.get(K('x')), { code: 'E_STORE_UNAVAILABLE' });
      assert.equal(inner.calls.get, 3, `${stall.message}: attempts`);
    }
    // Refused connections (a restart) use the whole budget, and a stall among them counts once.
    let attempts = 0;
    inner.calls.get = 0;
    inner.around = async (_op, _target, run) => {
      attempts++;
      if (attempts === 1) throw stalls[0]!;
      if (attempts < 6)
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      return run();
    };
    const { store } = retrying(inner, {});
    assert.equal((await store.get(K('x'))).toString(), 'x');
    assert.equal(attempts, 6);
    assert.equal(isStall(unavailable()), false);
  });

  test('retries raw Node and undici network errors', async () => {
    const network = (code: string): Error => Object.assign(new Error(code), { code });
    for (const code of [
      'ECONNRESET',
      'ECONNREFUSED',
      'ETIMEDOUT',
      'EPIPE',
      'EAI_AGAIN',
      'UND_ERR_SOCKET',
      'UND_ERR_CONNECT_TIMEOUT',
    ]) {
      assert.equal(isTransientError(network(code)), true, code);
    }
    assert.equal(
      isTransientError(new TypeError('fetch failed', { cause: network('ECONNRESET') })),
      true,
      'fetch wraps the socket error',
    );
    assert.equal(isTransientError(unavailable()), true);
    for (const code of ['ENOENT', 'EACCES', 'ENOSPC', 'EROFS', 'EISDIR'])
      assert.equal(isTransientError(network(code)), false, `${code} is the file system's verdict`);
    assert.equal(isTransientError(network('UND_ERR_ABORTED')), false);
    assert.equal(isTransientError(network('CERT_HAS_EXPIRED')), false);
    assert.equal(isTransientError(network('EHOSTUNREACH')), true, 'the classifier: unreachable');
    assert.equal(isTransientError(null), false);
    assert.equal(isTransientError('ECONNRESET'), false);

    const inner = new MemoryStore();
    inner.objects.set(K('x'), Buffer.from('x'));
    let failures = 2;
    inner.around = async (_op, _target, run) => {
      if (failures-- > 0) throw network('ECONNRESET');
      return run();
    };
    const { store, delays } = retrying(inner);
    assert.equal((await store.get(K('x'))).toString(), 'x');
    assert.equal(delays.length, 2);
  });

  test('validates keys and ref names before the first attempt', async () => {
    const inner = new MemoryStore();
    const { store } = retrying(inner);
    await assert.rejects(() => store.put('../x', Buffer.from('x')), TypeError);
    await assert.rejects(() => store.has([K('ok'), 'chunks/ABC']), TypeError);
    await assert.rejects(() => store.compareAndSwapRef('refs/heads/a.lock', null, A), TypeError);
    assert.deepEqual(inner.calls, {});
  });

  describe('compareAndSwapRef under retriable errors', () => {
    function casStore(
      mode: (store: MemoryStore, run: () => Promise<unknown>) => Promise<unknown>,
    ): MemoryStore {
      const inner = new MemoryStore();
      const previous = inner.around;
      inner.around = (op, target, run) =>
        op === 'compareAndSwapRef'
          ? (mode(inner, run) as ReturnType<typeof run>)
          : previous(op, target, run);
      return inner;
    }

    test('a failure before the write is retried from the same expected value', async () => {
      let failures = 1;
      const inner = casStore(async (_s, run) => {
        if (failures-- > 0) throw unavailable();
        return run();
      });
      inner.swap(MAIN, null, A);
      const { store, events } = retrying(inner);
      const atA = await store.readRef(MAIN);
      assert.equal(await store.compareAndSwapRef(MAIN, atA, B), true);
      assert.equal(inner.refs.get(MAIN)?.oid, B);
      assert.equal(inner.calls.compareAndSwapRef, 2);
      assert.deepEqual(
        events.map((e) => e.operation),
        ['compareAndSwapRef'],
      );
    });

    test('a failure after the write landed is a success, without a second CAS', async () => {
      let failures = 1;
      const inner = casStore(async (_s, run) => {
        const result = await run();
        if (failures-- > 0) throw unavailable('response lost');
        return result;
      });
      const { store, events } = retrying(inner);
      assert.equal(await store.compareAndSwapRef(MAIN, null, A), true);
      assert.equal(inner.refs.get(MAIN)?.oid, A);
      assert.equal(inner.calls.compareAndSwapRef, 1);
      assert.equal(events.length, 0);

      // Same for a delete whose response was lost.
      failures = 1;
      const atA = await store.readRef(MAIN);
      assert.equal(await store.compareAndSwapRef(MAIN, atA, null), true);
      assert.equal(inner.refs.has(MAIN), false);
    });

    test('a failure while another writer moved the ref is a plain false', async () => {
      const inner = casStore(async (s) => {
        s.swap(MAIN, s.refs.get(MAIN) ?? null, X);
        throw unavailable();
      });
      inner.swap(MAIN, null, A);
      const { store } = retrying(inner);
      const atA = await store.readRef(MAIN);
      assert.equal(await store.compareAndSwapRef(MAIN, atA, B), false);
      assert.equal(inner.refs.get(MAIN)?.oid, X);
      assert.equal(inner.calls.compareAndSwapRef, 1);
    });

    test('a CAS that returns false is never retried', async () => {
      const inner = new MemoryStore();
      inner.swap(MAIN, null, X);
      const { store, events } = retrying(inner);
      assert.equal(await store.compareAndSwapRef(MAIN, null, A), false);
      assert.equal(inner.calls.compareAndSwapRef, 1);
      assert.equal(events.length, 0);
    });

    test('persistent failures give up with the error once retries run out, the ref untouched', async () => {
      const inner = casStore(async () => {
        throw unavailable('down');
      });
      inner.swap(MAIN, null, A);
      const { store } = retrying(inner, { maxRetries: 2 });
      const atA = await store.readRef(MAIN);
      await assert.rejects(store.compareAndSwapRef(MAIN, atA, B), { message: 'down' });
      assert.equal(inner.calls.compareAndSwapRef, 3);
      assert.equal(inner.refs.get(MAIN)?.oid, A);
    });

    test('the confirming re-read is itself retried', async () => {
      let casFailures = 1;
      let readFailures = 0;
      const inner = new MemoryStore();
      inner.around = async (op, _target, run) => {
        if (op === 'compareAndSwapRef' && casFailures-- > 0) {
          await run();
          readFailures = 2;
          throw unavailable('lost');
        }
        if (op === 'readRef' && readFailures-- > 0) throw unavailable('read failed');
        return run();
      };
      const { store } = retrying(inner);
      assert.equal(await store.compareAndSwapRef(MAIN, null, A), true);
      assert.equal(inner.calls.readRef, 4, 'one read before, three to confirm');
    });

    test('a stale CAS whose next value already holds is not mistaken for ours', async () => {
      // The response of a (failing) stale delete is lost; the ref is absent, as `next` asks, but
      // it was absent before the call too, so the CAS did not do it.
      const inner = casStore(async (_s, run) => {
        await run();
        throw unavailable('response lost');
      });
      const { store } = retrying(inner);
      assert.equal(await store.compareAndSwapRef(MAIN, { oid: A, version: 'v1' }, null), false);
      inner.swap(MAIN, null, B);
      assert.equal(await store.compareAndSwapRef(MAIN, { oid: A, version: 'v1' }, B), false);
      // A no-op CAS (expected = next) that lands is still a success.
      const atB = await store.readRef(MAIN);
      assert.equal(await store.compareAndSwapRef(MAIN, atB, B), true);
    });

    test('endAtNextIsEnough: no read before the attempt; the ref at next after a lost answer is success', async () => {
      let failures = 1;
      const inner = casStore(async (_s, run) => {
        const result = await run();
        if (failures-- > 0) throw unavailable('response lost');
        return result;
      });
      const { store } = retrying(inner);
      assert.equal(await store.compareAndSwapRef(MAIN, null, A, { endAtNextIsEnough: true }), true);
      assert.equal(inner.calls.readRef, 1, 'only the confirming read, after the lost answer');
      // Answered at once: no read at all.
      const atA = await store.readRef(MAIN);
      const reads = inner.calls.readRef;
      assert.equal(await store.compareAndSwapRef(MAIN, atA, B, { endAtNextIsEnough: true }), true);
      assert.equal(inner.calls.readRef, reads);
      // The ref already at next with a stale expected value: success, as the caller asked.
      failures = 1;
      assert.equal(
        await store.compareAndSwapRef(MAIN, { oid: A, version: 'v1' }, B, {
          endAtNextIsEnough: true,
        }),
        true,
      );
    });

    test('a non-retriable CAS error is thrown without re-reading', async () => {
      const inner = casStore(async () => {
        throw new AuthError('denied');
      });
      const { store } = retrying(inner);
      await assert.rejects(store.compareAndSwapRef(MAIN, null, A), AuthError);
      assert.equal(inner.calls.readRef, 1, 'only the read before the attempt');
    });
  });

  test('restarts a listing that broke off, without repeating keys', async () => {
    const inner = new MemoryStore();
    for (let i = 0; i < 50; i++) inner.objects.set(K(`l${i}`), Buffer.alloc(i));
    const faulty = new FaultyStore(inner, {
      seed: 5,
      failureRate: 0.6,
      operations: ['list'],
      maxLatencyMs: 0,
    });
    const { store } = retrying(faulty, { maxRetries: 30 });
    for (let round = 0; round < 5; round++) {
      const listed: string[] = [];
      for await (const { key } of store.list('chunks/')) listed.push(key);
      assert.equal(listed.length, 50, 'no duplicates');
      assert.deepEqual([...listed].sort(), [...inner.objects.keys()].sort());
    }
    assert.ok(faulty.injected.midList > 0);
  });

  test('a listing that keeps failing without progress gives up after maxRetries', async () => {
    const inner = new MemoryStore();
    const faulty = new FaultyStore(inner, {
      failureRate: 1,
      operations: ['list'],
      maxLatencyMs: 0,
    });
    const { store } = retrying(faulty, { maxRetries: 3 });
    await assert.rejects(collectList(store, ''), StoreUnavailableError);
    assert.equal(faulty.calls.list, 4);
  });

  test('an AbortSignal cancels the backoff wait and prevents new attempts', async () => {
    const inner = new MemoryStore();
    inner.around = async () => {
      throw unavailable();
    };
    // Real sleep, long delay: only the abort can end this quickly.
    const store = new RetryingStore(inner, {
      baseDelayMs: 60_000,
      maxDelayMs: 60_000,
      random: () => 0.99,
    });
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(store.get(K('x'), { signal: controller.signal }), { name: 'AbortError' });
    assert.ok(Date.now() - started < 5_000);
    assert.equal(inner.calls.get, 1, 'no attempt after the abort');

    const before = inner.calls.get;
    await assert.rejects(store.get(K('x'), { signal: AbortSignal.abort() }), {
      name: 'AbortError',
    });
    assert.equal(inner.calls.get, before, 'an already-aborted call never reaches the backend');

    const reason = new Error('user pressed ^C');
    const c2 = new AbortController();
    setTimeout(() => c2.abort(reason), 5);
    await assert.rejects(
      store.put(K('x'), Buffer.from('x'), { signal: c2.signal }),
      (err) => err === reason,
    );
  });

  test('an exception in onRetry does not fail the operation', async () => {
    const inner = new MemoryStore();
    let failures = 1;
    inner.around = async (_op, _target, run) => {
      if (failures-- > 0) throw unavailable();
      return run();
    };
    const { store } = retrying(inner, {
      onRetry: () => {
        throw new Error('display broke');
      },
    });
    await store.put(K('x'), Buffer.from('x'));
    assert.equal(inner.objects.size, 1);
  });
});

// ---- ConcurrencyLimitedStore ----------------------------------------------------------------

const REF_OPS: ReadonlySet<StoreOperation> = new Set(['readRef', 'compareAndSwapRef', 'listRefs']);

/** A MemoryStore that records the most calls it ever had in flight, data and refs apart. */
function instrumented(): {
  inner: MemoryStore;
  peak: { data: number; refs: number };
  now: { data: number; refs: number };
} {
  const inner = new MemoryStore();
  const now = { data: 0, refs: 0 };
  const peak = { data: 0, refs: 0 };
  let tick = 0;
  inner.around = async (op, _target, run) => {
    const kind = REF_OPS.has(op) ? 'refs' : 'data';
    now[kind]++;
    peak[kind] = Math.max(peak[kind], now[kind]);
    try {
      await new Promise((resolve) => setTimeout(resolve, tick++ % 3));
      return await run();
    } finally {
      now[kind]--;
    }
  };
  return { inner, peak, now };
}

describe('ConcurrencyLimitedStore', () => {
  test('never has more than N data and M ref operations in flight', async () => {
    const { inner, peak, now } = instrumented();
    const store = new ConcurrencyLimitedStore(inner, { maxConcurrent: 3, maxConcurrentRefs: 2 });
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const key = K(`k${i % 30}`);
      const ops = [
        () => store.put(key, Buffer.from('x')),
        () => store.get(key).catch(() => null),
        () => store.has([key]),
        () => store.delete(key),
        () => collectList(store, 'chunks/'),
      ];
      work.push(ops[i % ops.length]!());
      if (i % 4 === 0) {
        work.push(store.readRef(MAIN), store.listRefs('refs/'));
        work.push(
          store.readRef(MAIN).then((v) => store.compareAndSwapRef(MAIN, v, oidFor(`${i}`))),
        );
      }
    }
    await Promise.all(work);
    assert.equal(peak.data, 3);
    assert.equal(peak.refs, 2);
    assert.deepEqual(now, { data: 0, refs: 0 });
  });

  test('defaults to 8 data operations in flight', async () => {
    const { inner, peak } = instrumented();
    const store = new ConcurrencyLimitedStore(inner);
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => store.put(K(`d${i}`), Buffer.from('x'))),
    );
    assert.equal(peak.data, 8);
  });

  test('a listing holds a slot per step, so its consumer can use the store (no deadlock at 1)', async () => {
    const { inner } = instrumented();
    for (let i = 0; i < 5; i++) inner.objects.set(K(`s${i}`), Buffer.from(`${i}`));
    const store = new ConcurrencyLimitedStore(inner, { maxConcurrent: 1 });
    let read = 0;
    for await (const { key } of store.list('chunks/')) {
      await store.get(key);
      read++;
    }
    assert.equal(read, 5);
    // Stopping early gives the slot back too.
    for await (const _item of store.list('chunks/')) break;
    await store.get(K('s0'));
  });

  test('an aborted waiter leaves the queue without leaking its slot', async () => {
    const inner = new MemoryStore();
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let blockFirst = true;
    inner.around = async (_op, _target, run) => {
      if (blockFirst) {
        blockFirst = false;
        await gate;
      }
      return run();
    };
    const store = new ConcurrencyLimitedStore(inner, { maxConcurrent: 1 });
    const first = store.put(K('first'), Buffer.from('1'));
    const controller = new AbortController();
    const queued = store.put(K('queued'), Buffer.from('2'), { signal: controller.signal });
    controller.abort();
    await assert.rejects(queued, { name: 'AbortError' });
    open();
    await first;
    await store.put(K('third'), Buffer.from('3'));
    assert.deepEqual([...inner.objects.keys()].sort(), [K('first'), K('third')].sort());
    await assert.rejects(store.get(K('first'), { signal: AbortSignal.abort() }), {
      name: 'AbortError',
    });
  });
});

// ---- MeteredStore ---------------------------------------------------------------------------

describe('MeteredStore', () => {
  test('counts calls, errors, items and bytes exactly', async () => {
    const inner = new MemoryStore();
    let clock = 0;
    const store = new MeteredStore(inner, {
      now: () => {
        clock += 7;
        return clock;
      },
    });
    const sizes = [0, 1, 1000, 5 * 1024 * 1024];
    for (const [i, size] of sizes.entries()) await store.put(K(`m${i}`), Buffer.alloc(size, i));
    await store.get(K('m2'));
    await store.get(K('m3'));
    await assert.rejects(store.get(K('missing')), NotFoundError);
    assert.deepEqual(await store.has([K('m0'), K('m1'), K('zz')]), [true, true, false]);
    assert.equal((await collectList(store, 'chunks/')).length, 4);
    await store.delete(K('m0'));
    assert.equal(await store.compareAndSwapRef(MAIN, null, A), true);
    assert.equal(await store.compareAndSwapRef(MAIN, null, B), false);
    await store.readRef(MAIN);
    assert.equal((await store.listRefs('refs/')).size, 1);

    const s = store.snapshot();
    assert.deepEqual(s.totals, {
      calls: 14,
      errors: 1,
      bytesRead: 1000 + 5 * 1024 * 1024,
      bytesWritten: 1 + 1000 + 5 * 1024 * 1024,
    });
    assert.equal(s.operations.put.calls, 4);
    assert.equal(s.operations.put.bytesWritten, 1 + 1000 + 5 * 1024 * 1024);
    assert.deepEqual(
      [s.operations.get.calls, s.operations.get.errors, s.operations.get.bytesRead],
      [3, 1, 1000 + 5 * 1024 * 1024],
    );
    assert.deepEqual([s.operations.has.calls, s.operations.has.items], [1, 3]);
    assert.deepEqual([s.operations.list.calls, s.operations.list.items], [1, 4]);
    assert.equal(s.operations.delete.calls, 1);
    assert.equal(s.operations.compareAndSwapRef.calls, 2);
    assert.equal(s.operations.compareAndSwapRef.errors, 0, 'a lost race is not an error');
    assert.equal(s.casConflicts, 1);
    assert.deepEqual([s.operations.listRefs.calls, s.operations.listRefs.items], [1, 1]);
    // Every call saw the clock advance by exactly one step.
    assert.equal(s.operations.put.totalDurationMs, 4 * 7);
    assert.equal(s.operations.put.maxDurationMs, 7);
    const bucket = DURATION_BUCKETS_MS.findIndex((le) => 7 <= le);
    assert.equal(s.operations.put.durationBuckets[bucket], 4);
    assert.equal(s.operations.put.durationBuckets[bucket - 1], 0);
    assert.equal(s.operations.put.durationBuckets.at(-1), 4, '+Inf counts everything');
  });

  test('failed puts write no bytes; abandoned listings are still counted', async () => {
    const inner = new MemoryStore();
    for (let i = 0; i < 5; i++) inner.objects.set(K(`a${i}`), Buffer.from('x'));
    const store = new MeteredStore(inner);
    inner.around = async (op, _target, run) => {
      if (op === 'put') throw unavailable();
      return run();
    };
    await assert.rejects(store.put(K('p'), Buffer.alloc(100)), StoreUnavailableError);
    for await (const _item of store.list('chunks/')) break;
    const s = store.snapshot();
    assert.deepEqual(
      [s.operations.put.calls, s.operations.put.errors, s.operations.put.bytesWritten],
      [1, 1, 0],
    );
    assert.deepEqual([s.operations.list.calls, s.operations.list.items], [1, 1]);
    assert.ok(s.operations.put.totalDurationMs >= 0);
  });

  test('snapshot is a copy and reset starts from zero', async () => {
    const store = new MeteredStore(new MemoryStore());
    await store.put(K('r'), Buffer.alloc(10));
    const first = store.snapshot();
    first.operations.put.calls = 99;
    first.operations.put.durationBuckets[0] = 99;
    assert.equal(store.snapshot().operations.put.calls, 1);
    assert.notEqual(store.snapshot().operations.put.durationBuckets[0], 99);
    store.reset();
    const after = store.snapshot();
    assert.deepEqual(after.totals, { calls: 0, errors: 0, bytesRead: 0, bytesWritten: 0 });
    assert.equal(after.casConflicts, 0);
    await store.get(K('r'));
    assert.equal(store.snapshot().totals.bytesRead, 10);
  });
});

// ---- FaultyStore ----------------------------------------------------------------------------

describe('FaultyStore', () => {
  async function outcomes(seed: number, failureRate = 0.2): Promise<string> {
    const faulty = new FaultyStore(new MemoryStore(), { seed, failureRate, maxLatencyMs: 0 });
    let trace = '';
    for (let i = 0; i < 300; i++) {
      try {
        await faulty.put(K(`f${i}`), Buffer.from('x'));
        trace += '.';
      } catch (err) {
        assert.ok(err instanceof StoreUnavailableError);
        trace += err.retryAfterMs === undefined ? 'x' : 'r';
      }
    }
    return trace;
  }

  test('is deterministic for a seed and fails about the configured fraction', async () => {
    const a = await outcomes(1234);
    assert.equal(await outcomes(1234), a);
    assert.notEqual(await outcomes(4321), a);
    const failures = [...a].filter((c) => c !== '.').length;
    assert.ok(failures > 30 && failures < 90, `${failures}/300 failed`);
    assert.ok(a.includes('r') && a.includes('x'), 'some failures carry retryAfterMs, some do not');
    assert.equal(await outcomes(1, 0), '.'.repeat(300));
  });

  test('failAfterWrite lets the write land before failing', async () => {
    const inner = new MemoryStore();
    const faulty = new FaultyStore(inner, {
      failureRate: 1,
      failAfterWriteRate: 1,
      maxLatencyMs: 0,
    });
    await assert.rejects(faulty.put(K('w'), Buffer.from('landed')), StoreUnavailableError);
    assert.equal(inner.objects.get(K('w'))?.toString(), 'landed');
    await assert.rejects(
      faulty.get(K('w')),
      StoreUnavailableError,
      'reads still fail before the call',
    );
    assert.equal(faulty.injected.after, 1);
    assert.equal(faulty.injected.before, 1);
  });
});
