import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { AuthError, NotFoundError, StoreUnavailableError } from '../../../src/errors/index.js';
import {
  LocalStore,
  MultiStore,
  RetryingStore,
  type Store,
  type StoreCapabilities,
} from '../../../src/store/index.js';
import { FaultyStore } from '../../support/faulty-store.js';
import { collectList, oidFor, storeContract } from '../../support/store-contract.js';
import { MemoryStore } from './memory-store.js';

async function tempLocal(
  label: string,
): Promise<{ store: LocalStore; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(path.join(os.tmpdir(), `mediagit-multi-${label}-`));
  const store = new LocalStore(root);
  await store.initialize();
  return { store, cleanup: () => rm(root, { recursive: true, force: true }) };
}

storeContract(
  'MultiStore(LocalStore, LocalStore)',
  async () => {
    const [a, b] = await Promise.all([tempLocal('primary'), tempLocal('secondary')]);
    return {
      store: new MultiStore(a.store, b.store),
      cleanup: async () => {
        await Promise.all([a.cleanup(), b.cleanup()]);
      },
    };
  },
  { concurrentCas: true },
);

storeContract(
  'MultiStore(MemoryStore, MemoryStore), version-checked refs',
  async () => ({
    store: new MultiStore(new MemoryStore(), new MemoryStore()),
    cleanup: async () => {},
  }),
  {
    concurrentCas: true,
  },
);

const K = (label: string): string => `chunks/${oidFor(label)}`;
const MAIN = 'refs/heads/main';
const [A, B, C] = [oidFor('A'), oidFor('B'), oidFor('C')];

function pair(options: ConstructorParameters<typeof MultiStore>[2] = {}): {
  multi: MultiStore;
  primary: MemoryStore;
  secondary: MemoryStore;
} {
  const primary = new MemoryStore();
  const secondary = new MemoryStore();
  return { multi: new MultiStore(primary, secondary, options), primary, secondary };
}

function failing(store: MemoryStore, error: () => unknown, ops?: readonly string[]): void {
  store.around = async (op, _target, run) => {
    if (!ops || ops.includes(op)) throw error();
    return run();
  };
}

const down = (): StoreUnavailableError => new StoreUnavailableError('connection reset');

/** A MemoryStore offering batches (as the HTTP client does), so MultiStore's batch paths run. */
class BatchingMemoryStore extends MemoryStore {
  override readonly capabilities: StoreCapabilities = {
    freshBuffers: false,
    batch: {
      putMany: async (entries, options) => {
        for (const { key, data } of entries) await this.put(key, data, options);
      },
      getMany: async (keys, options) => {
        const found = new Map<string, Buffer>();
        for (const key of keys)
          await this.get(key, options).then(
            (data) => found.set(key, data),
            (err: unknown) => {
              if (!(err instanceof NotFoundError)) throw err;
            },
          );
        return found;
      },
    },
  };
}

function batchingPair(options: ConstructorParameters<typeof MultiStore>[2] = {}): {
  multi: MultiStore;
  primary: MemoryStore;
  secondary: MemoryStore;
} {
  const primary = new BatchingMemoryStore();
  const secondary = new BatchingMemoryStore();
  return { multi: new MultiStore(primary, secondary, options), primary, secondary };
}

describe('MultiStore reads', () => {
  test('an object only on the secondary is readable, present, listed once, and copied back', async () => {
    const { multi, primary, secondary } = pair();
    secondary.objects.set(K('s'), Buffer.from('secondary only'));
    secondary.objects.set(K('both'), Buffer.from('both'));
    primary.objects.set(K('both'), Buffer.from('both'));
    assert.deepEqual(await multi.has([K('s'), K('both'), K('none')]), [true, true, false]);
    assert.deepEqual(await multi.hasEverywhere([K('s'), K('both'), K('none')]), [
      false,
      true,
      false,
    ]);
    assert.deepEqual(
      (await collectList(multi, 'chunks/')).map((k) => k.key),
      [K('both'), K('s')].sort(),
    );
    assert.equal((await multi.get(K('s'))).toString(), 'secondary only');
    assert.equal(primary.objects.get(K('s'))?.toString(), 'secondary only', 'repaired on read');
    assert.deepEqual(await multi.hasEverywhere([K('s')]), [true]);
  });

  test('repairOnRead: false leaves the primary alone; a failed repair does not fail the read', async () => {
    const plain = pair({ repairOnRead: false });
    plain.secondary.objects.set(K('s'), Buffer.from('x'));
    assert.equal((await plain.multi.get(K('s'))).toString(), 'x');
    assert.equal(plain.primary.objects.has(K('s')), false);

    const broken = pair();
    broken.secondary.objects.set(K('s'), Buffer.from('x'));
    failing(broken.primary, down, ['put']);
    assert.equal((await broken.multi.get(K('s'))).toString(), 'x');
    assert.equal(broken.multi.repairFailures, 1);
  });

  test('read repair the other way: with readFirst secondary, an object only on the primary is copied to the secondary', async () => {
    const { multi, primary, secondary } = batchingPair({ readFirst: 'secondary' });
    primary.objects.set(K('p'), Buffer.from('primary only'));
    primary.objects.set(K('q'), Buffer.from('primary only, batched'));
    secondary.objects.set(K('both'), Buffer.from('both'));
    primary.objects.set(K('both'), Buffer.from('both'));
    assert.deepEqual(await multi.has([K('p'), K('both'), K('none')]), [true, true, false]);
    assert.equal((await multi.get(K('both'))).toString(), 'both');
    assert.equal(primary.calls.get ?? 0, 0, 'the secondary answered first');
    assert.equal((await multi.get(K('p'))).toString(), 'primary only');
    assert.equal(secondary.objects.get(K('p'))?.toString(), 'primary only', 'repaired on read');
    const batch = await multi.capabilities.batch!.getMany([K('q'), K('none')]);
    assert.deepEqual([...batch.keys()], [K('q')]);
    assert.equal(secondary.objects.get(K('q'))?.toString(), 'primary only, batched');
    assert.deepEqual(await multi.hasEverywhere([K('p'), K('q')]), [true, true]);
    assert.equal(multi.failures().objects.size, 0);
    // Refs stay with the primary whichever side reads go to.
    primary.swap(MAIN, null, A);
    secondary.swap(MAIN, null, B);
    assert.equal((await multi.readRef(MAIN))?.oid, A);
  });

  test('a read repair that fails is remembered against the side that still lacks the object, in both directions', async () => {
    for (const readFirst of ['primary', 'secondary'] as const) {
      const { multi, primary, secondary } = pair({ readFirst });
      const [first, second] = readFirst === 'primary' ? [primary, secondary] : [secondary, primary];
      second.objects.set(K('x'), Buffer.from('x'));
      failing(first, down, ['put']);
      assert.equal((await multi.get(K('x'))).toString(), 'x', readFirst);
      assert.equal(multi.repairFailures, 1);
      assert.deepEqual([...multi.failures().objects], [[K('x'), readFirst]]);
      first.around = (_op, _target, run) => run();
      await multi.get(K('x'));
      assert.equal(first.objects.get(K('x'))?.toString(), 'x', `${readFirst} repaired`);
      assert.equal(multi.failures().objects.size, 0);
    }
  });

  test('an unreachable primary falls back to the secondary for get, has, readRef and listRefs', async () => {
    const { multi, primary, secondary } = pair();
    secondary.objects.set(K('x'), Buffer.from('from secondary'));
    secondary.swap(MAIN, null, A);
    failing(primary, down);
    assert.equal((await multi.get(K('x'))).toString(), 'from secondary');
    assert.deepEqual(await multi.has([K('x'), K('y')]), [true, false]);
    assert.equal((await multi.readRef(MAIN))?.oid, A);
    assert.deepEqual([...(await multi.listRefs('refs/')).keys()], [MAIN]);
    assert.equal(primary.calls.put ?? 0, 0, 'no repair against a failing primary');
    // Writes need both sides, so they fail loudly.
    await assert.rejects(multi.put(K('new'), Buffer.from('n')), StoreUnavailableError);
    await assert.rejects(
      multi.compareAndSwapRef(MAIN, await multi.readRef(MAIN), B),
      StoreUnavailableError,
    );
    assert.equal(secondary.refs.get(MAIN)?.oid, A, 'nothing mirrored from a failed CAS');
  });

  test('a primary ref that does not exist is not looked up on the secondary', async () => {
    const { multi, secondary } = pair();
    secondary.swap(MAIN, null, A);
    assert.equal(await multi.readRef(MAIN), null);
    assert.equal(secondary.calls.readRef ?? 0, 0);
  });

  test('missing on both sides is NotFound; an unreachable side is never reported as NotFound', async () => {
    const both = pair();
    await assert.rejects(both.multi.get(K('gone')), NotFoundError);

    const secondaryDown = pair();
    failing(secondaryDown.secondary, down);
    await assert.rejects(secondaryDown.multi.get(K('gone')), StoreUnavailableError);

    const primaryDown = pair();
    failing(primaryDown.primary, down);
    await assert.rejects(primaryDown.multi.get(K('gone')), StoreUnavailableError);
  });

  test('a permanent primary error is not papered over by the secondary', async () => {
    const { multi, primary, secondary } = pair();
    secondary.objects.set(K('x'), Buffer.from('x'));
    failing(primary, () => new AuthError('credentials expired'));
    await assert.rejects(multi.get(K('x')), AuthError);
    await assert.rejects(multi.has([K('x')]), AuthError);
    assert.equal(secondary.calls.get ?? 0, 0);
  });
});

describe('MultiStore writes', () => {
  test('put writes both; a secondary failure is surfaced and a retry completes it', async () => {
    const { multi, primary, secondary } = pair();
    failing(secondary, down, ['put']);
    await assert.rejects(multi.put(K('x'), Buffer.from('x')), StoreUnavailableError);
    assert.equal(primary.objects.has(K('x')), true, 'the primary write stands');
    assert.deepEqual([...multi.failures().objects], [[K('x'), 'secondary']], 'remembered');
    secondary.around = (_op, _target, run) => run();
    await multi.put(K('x'), Buffer.from('x'));
    assert.equal(secondary.objects.get(K('x'))?.toString(), 'x');
    assert.equal(multi.failures().objects.size, 0, 'forgotten once both sides hold it');
  });

  test('a create the secondary did not take is remembered; a later one that reaches it is forgotten', async () => {
    const { multi, primary, secondary } = pair();
    failing(secondary, down, ['put']);
    await assert.rejects(multi.create('meta/repository', Buffer.from('d')), StoreUnavailableError);
    assert.equal(primary.objects.get('meta/repository')?.toString(), 'd');
    assert.deepEqual([...multi.failures().objects], [['meta/repository', 'secondary']]);
    secondary.around = (_op, _target, run) => run();
    assert.equal(
      await multi.create('meta/repository', Buffer.from('e')),
      false,
      'the first stands',
    );
    assert.equal(secondary.objects.get('meta/repository')?.toString(), 'd');
    assert.equal(multi.failures().objects.size, 0);
  });

  test('a batch that reached one side only is remembered against every key in it', async () => {
    const { multi, primary } = batchingPair();
    failing(primary, down, ['put']);
    const entries = [K('b1'), K('b2')].map((key) => ({ key, data: Buffer.from(key) }));
    await assert.rejects(multi.capabilities.batch!.putMany(entries), StoreUnavailableError);
    assert.deepEqual(
      [...multi.failures().objects].sort(),
      [
        [K('b1'), 'primary'],
        [K('b2'), 'primary'],
      ].sort(),
    );
  });

  test('put through a RetryingStore survives a flaky secondary', async () => {
    const primary = new MemoryStore();
    const secondary = new MemoryStore();
    const flaky = new FaultyStore(secondary, { seed: 9, failureRate: 0.3, maxLatencyMs: 0 });
    const store = new RetryingStore(new MultiStore(primary, flaky), {
      maxRetries: 10,
      sleep: async () => {},
    });
    for (let i = 0; i < 50; i++) await store.put(K(`f${i}`), Buffer.from(`${i}`));
    assert.equal(primary.objects.size, 50);
    assert.equal(secondary.objects.size, 50);
    assert.ok(flaky.totalInjected > 0);
  });

  test('delete removes from both sides', async () => {
    const { multi, primary, secondary } = pair();
    await multi.put(K('d'), Buffer.from('d'));
    secondary.objects.set(K('only-s'), Buffer.from('s'));
    await multi.delete(K('d'));
    await multi.delete(K('only-s'));
    assert.equal(primary.objects.size + secondary.objects.size, 0);
  });

  test('close closes both', async () => {
    const { multi, primary, secondary } = pair();
    await multi.close();
    assert.equal(primary.closed && secondary.closed, true);
  });
});

describe('MultiStore refs', () => {
  test('a successful CAS is mirrored to the secondary; a lost one touches nothing', async () => {
    const { multi, primary, secondary } = pair();
    assert.equal(await multi.compareAndSwapRef(MAIN, null, A), true);
    assert.equal(secondary.refs.get(MAIN)?.oid, A);
    const atA = await multi.readRef(MAIN);
    assert.equal(await multi.compareAndSwapRef(MAIN, atA, B), true);
    assert.equal(secondary.refs.get(MAIN)?.oid, B);
    const secondaryCas = secondary.calls.compareAndSwapRef;
    assert.equal(await multi.compareAndSwapRef(MAIN, atA, C), false);
    assert.equal(secondary.calls.compareAndSwapRef, secondaryCas);
    assert.equal(await multi.compareAndSwapRef(MAIN, await multi.readRef(MAIN), null), true);
    assert.equal(primary.refs.has(MAIN) || secondary.refs.has(MAIN), false);
  });

  test('the secondary is overwritten to match even if it had drifted', async () => {
    const { multi, secondary } = pair();
    secondary.swap(MAIN, null, C);
    assert.equal(await multi.compareAndSwapRef(MAIN, null, A), true, 'only the primary decides');
    assert.equal(secondary.refs.get(MAIN)?.oid, A);
  });

  test('a mirror failure keeps the CAS a success and is recorded until a later mirror succeeds', async () => {
    const failures: string[] = [];
    const { multi, secondary } = pair({ onMirrorFailure: (name) => failures.push(name) });
    failing(secondary, down, ['compareAndSwapRef']);
    assert.equal(await multi.compareAndSwapRef(MAIN, null, A), true);
    assert.deepEqual(failures, [MAIN]);
    assert.deepEqual([...multi.unmirroredRefs.keys()], [MAIN]);
    assert.deepEqual((await multi.divergence()).refMismatches, [
      { name: MAIN, primary: A, secondary: null },
    ]);

    secondary.around = (_op, _target, run) => run();
    assert.equal(await multi.compareAndSwapRef(MAIN, await multi.readRef(MAIN), B), true);
    assert.equal(multi.unmirroredRefs.size, 0);
    assert.deepEqual((await multi.divergence()).refMismatches, []);
  });

  test('racing writers through separate MultiStores leave the secondary equal to the primary', async () => {
    // Several processes sharing the same two backends; latency on the secondary shuffles the
    // order in which their mirrors land.
    const primary = new MemoryStore();
    const secondary = new MemoryStore();
    const writers = Array.from(
      { length: 6 },
      (_, i) =>
        new MultiStore(
          primary,
          new FaultyStore(secondary, { seed: i + 1, failureRate: 0, maxLatencyMs: 6 }),
        ),
    );
    let next = 0;
    await Promise.all(
      writers.map(async (multi) => {
        for (let done = 0; done < 10;) {
          const current = await multi.readRef(MAIN);
          if (await multi.compareAndSwapRef(MAIN, current, oidFor(`step ${next++}`))) done++;
        }
      }),
    );
    assert.equal(secondary.refs.get(MAIN)?.oid, primary.refs.get(MAIN)?.oid);
    assert.deepEqual((await writers[0]!.divergence()).refMismatches, []);
    // Under this much contention a writer may give up mirroring (and record it) while another
    // writer's mirror finishes the job; what matters is that the last one leaves them equal.
  });
});

describe('MultiStore.divergence', () => {
  test('reports keys on one side only, size mismatches and ref mismatches, sorted', async () => {
    const { multi, primary, secondary } = pair();
    await multi.put(K('shared'), Buffer.from('same'));
    primary.objects.set(K('p2'), Buffer.from('p'));
    primary.objects.set(K('p1'), Buffer.from('p'));
    primary.objects.set('keys/main', Buffer.from('k'));
    secondary.objects.set(K('s1'), Buffer.from('s'));
    primary.objects.set(K('size'), Buffer.from('long version'));
    secondary.objects.set(K('size'), Buffer.from('short'));
    await multi.compareAndSwapRef(MAIN, null, A);
    primary.swap('refs/tags/v1', null, B);
    secondary.swap('refs/heads/old', null, C);
    secondary.swap('refs/heads/feature', null, A);
    primary.swap('refs/heads/feature', null, B);

    const report = await multi.divergence();
    assert.deepEqual(report.onlyPrimary, [K('p1'), K('p2'), 'keys/main'].sort());
    assert.deepEqual(report.onlySecondary, [K('s1')]);
    assert.deepEqual(report.sizeMismatches, [
      { key: K('size'), primarySize: 12, secondarySize: 5 },
    ]);
    assert.deepEqual(report.refMismatches, [
      { name: 'refs/heads/feature', primary: B, secondary: A },
      { name: 'refs/heads/old', primary: null, secondary: C },
      { name: 'refs/tags/v1', primary: B, secondary: null },
    ]);

    const chunksOnly = await multi.divergence({ prefix: 'chunks/' });
    assert.deepEqual(chunksOnly.onlyPrimary, [K('p1'), K('p2')].sort());
  });

  test('in-sync stores report nothing', async () => {
    const a = await tempLocal('sync-a');
    const b = await tempLocal('sync-b');
    try {
      const multi: Store & { divergence: MultiStore['divergence'] } = new MultiStore(
        a.store,
        b.store,
      );
      for (let i = 0; i < 10; i++) await multi.put(K(`sync ${i}`), Buffer.from(`${i}`));
      await multi.compareAndSwapRef(MAIN, null, A);
      assert.deepEqual(await multi.divergence(), {
        onlyPrimary: [],
        onlySecondary: [],
        sizeMismatches: [],
        refMismatches: [],
      });
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });
});
