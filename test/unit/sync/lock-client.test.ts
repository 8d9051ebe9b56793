/**
 * The lock client is chosen by what the remote's store can do (capabilities.locks), through any
 * wrappers and through a mirror's primary, and retries transient failures on its own.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, LockedError, StoreUnavailableError } from '../../../src/errors/index.js';
import {
  ConcurrencyLimitedStore,
  MeteredStore,
  MultiStore,
  RetryingStore,
  type LockRecord,
  type RemoteLocks,
  type Store,
} from '../../../src/store/index.js';
import {
  NoLockClient,
  type LockClient,
  ServerLockClient,
  lockClientFor,
  requireLockClient,
} from '../../../src/sync/locks.js';
import { MemoryStore } from '../store/memory-store.js';

const record = (path: string, owner = 'alice'): LockRecord => ({
  id: `id-${path.replace(/\W/g, '-')}`,
  path,
  owner,
  locked_at: '2026-12-06T00:00:00Z',
});

/** Lock endpoints over a map; `failures` answers the next calls with 503s first. */
class FakeLocks implements RemoteLocks {
  readonly held = new Map<string, LockRecord>();
  calls = 0;
  failures = 0;

  private async attempt<T>(fn: () => T): Promise<T> {
    this.calls++;
    if (this.failures > 0) {
      this.failures--;
      throw new StoreUnavailableError('injected 503', { retryAfterMs: 1 });
    }
    return fn();
  }

  createLock(path: string): Promise<LockRecord> {
    return this.attempt(() => {
      const existing = this.held.get(path);
      if (existing) throw new LockedError(`'${path}' is already locked by ${existing.owner}`);
      const lock = record(path);
      this.held.set(path, lock);
      return lock;
    });
  }

  listLocks(prefix?: string): Promise<LockRecord[]> {
    return this.attempt(() =>
      [...this.held.values()].filter((l) => l.path.startsWith(prefix ?? '')),
    );
  }

  verifyLocks(): Promise<{ ours: LockRecord[]; theirs: LockRecord[] }> {
    return this.attempt(() => ({ ours: [...this.held.values()], theirs: [] }));
  }

  unlock(id: string): Promise<LockRecord> {
    return this.attempt(() => {
      const lock = [...this.held.values()].find((l) => l.id === id);
      if (!lock) throw new Error(`no lock ${id}`);
      this.held.delete(lock.path);
      return lock;
    });
  }
}

/** A MemoryStore whose server keeps locks. */
function lockingStore(locks: RemoteLocks): Store {
  const store = new MemoryStore();
  return Object.assign(Object.create(store) as MemoryStore, {
    capabilities: { freshBuffers: false, locks },
  });
}

const wrapped = (inner: Store): Store =>
  new RetryingStore(new ConcurrencyLimitedStore(new MeteredStore(inner)));

describe('lockClientFor', () => {
  test('a store whose remote keeps locks gets a server client, through every wrapper', async () => {
    const locks = new FakeLocks();
    const client = lockClientFor(wrapped(lockingStore(locks)), 'origin');
    assert.ok(client instanceof ServerLockClient);
    assert.equal(client.supported, true);
    await client.createLock('scenes/a.blend');
    assert.deepEqual(
      (await client.listLocks('scenes/')).map((l) => l.path),
      ['scenes/a.blend'],
    );
  });

  test("a mirror offers its primary's locks, and only the primary's", () => {
    const locks = new FakeLocks();
    const mirror = new MultiStore(lockingStore(locks), new MemoryStore());
    assert.equal(mirror.capabilities.locks, locks);
    assert.equal(lockClientFor(wrapped(mirror), 'origin').supported, true);
    const reversed = new MultiStore(new MemoryStore(), lockingStore(locks));
    assert.equal(reversed.capabilities.locks, undefined);
  });

  test('any other store has none: every call and requireLockClient say locks need a server', async () => {
    const store = wrapped(new MemoryStore());
    const client: LockClient = lockClientFor(store, 'backup');
    assert.ok(lockClientFor(store, 'backup') instanceof NoLockClient);
    assert.equal(client.supported, false);
    const isNoLocks = (err: unknown): boolean =>
      err instanceof ConfigError && /'backup'.*does not support locks/.test(err.message);
    await assert.rejects(client.verifyLocks(), isNoLocks);
    await assert.rejects(client.createLock('a'), isNoLocks);
    await assert.rejects(client.listLocks(), isNoLocks);
    await assert.rejects(client.unlock('x', false), isNoLocks);
    assert.throws(() => requireLockClient(store, 'backup'), isNoLocks);
  });
});

describe('ServerLockClient', () => {
  test('retries transient failures of every call, and passes verdicts through at once', async () => {
    const locks = new FakeLocks();
    const waits: number[] = [];
    const client = new ServerLockClient(locks, async (ms) => {
      waits.push(ms);
    });
    locks.failures = 2;
    const lock = await client.createLock('audio/theme.wav');
    assert.equal(locks.calls, 3);
    assert.equal(waits.length, 2);
    locks.failures = 1;
    assert.deepEqual((await client.verifyLocks()).ours, [lock]);
    locks.failures = 1;
    assert.equal((await client.listLocks()).length, 1);
    const before = locks.calls;
    await assert.rejects(client.createLock('audio/theme.wav'), LockedError);
    assert.equal(locks.calls, before + 1, 'a LockedError is an answer, not a failure to retry');
    locks.failures = 1;
    await client.unlock(lock.id, false);
    assert.equal(locks.held.size, 0);
  });
});
