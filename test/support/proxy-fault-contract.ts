/**
 * The proxy-fault section of the Store contract: the same write, read and compare-and-swap rules
 * as test/support/store-contract.ts, with a fault-injecting proxy (fault-proxy.ts) between a store
 * opened the way the CLI opens it (openStore: timeouts, retries) and a backend's real test server.
 * Each test breaks exactly one request of the call — the connection reset before the server sees
 * it, a 503 or a 429 with Retry-After instead of an answer, the reply lost or replaced by a 503
 * after the write landed, a request never answered, a reply stalled or cut short mid-body — and
 * the call must still keep its contract: a put lands whole, a get returns the bytes stored, a CAS
 * that landed reports true (never a conflict with itself) and a stale one still loses.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openStore, type Store, type StoreOptions } from '../../src/store/index.js';
import { nextRequests, startFaultProxy, type Fault, type FaultProxy } from './fault-proxy.js';
import { PLAIN_FIXTURES, type BackendFixtures, type PreparedBackend } from './proxied-backends.js';

interface NamedFault {
  readonly label: string;
  readonly fault: Fault;
}

/** Faults for a request that changes something: the server may or may not have applied it. */
export const WRITE_FAULTS: readonly NamedFault[] = [
  { label: 'reset before the server sees it', fault: { kind: 'reset' } },
  { label: '503 instead of an answer', fault: { kind: 'refuse', status: 503 } },
  {
    label: '429 with Retry-After: 1',
    fault: { kind: 'refuse', status: 429, retryAfter: '1' },
  },
  { label: 'reply lost after the write landed', fault: { kind: 'lose-reply' } },
  {
    label: '503 after the write landed',
    fault: { kind: 'replace-reply', status: 503 },
  },
  { label: 'request never answered', fault: { kind: 'stall' } },
];

/** Faults for a read: the above that apply, plus replies that stop or break mid-body. */
export const READ_FAULTS: readonly NamedFault[] = [
  { label: 'reset before the server sees it', fault: { kind: 'reset' } },
  { label: '503 instead of an answer', fault: { kind: 'refuse', status: 503 } },
  {
    label: '429 with Retry-After: 1',
    fault: { kind: 'refuse', status: 429, retryAfter: '1' },
  },
  { label: '503 after the server answered', fault: { kind: 'replace-reply', status: 503 } },
  { label: 'request never answered', fault: { kind: 'stall' } },
  { label: 'reply stalls after 100 bytes', fault: { kind: 'stall-body', bytes: 100 } },
  { label: 'reply cut after 100 bytes', fault: { kind: 'cut-body', bytes: 100 } },
];

/** Small enough that a stalled attempt ends soon; the retry after it is what is tested. */
const FAULT_OPTIONS: StoreOptions = { request_timeout_ms: 3000, max_retries: 4 };

const isWrite = (r: { method: string }): boolean => r.method !== 'GET' && r.method !== 'HEAD';
const isRead = (r: { method: string }): boolean => r.method === 'GET';

/** Faults injected per backend and kind, for the summary the last test prints. */
export const injectedFaults = new Map<string, Map<string, number>>();

function tally(backend: string, kind: string, n: number): void {
  const row = injectedFaults.get(backend) ?? new Map<string, number>();
  row.set(kind, (row.get(kind) ?? 0) + n);
  injectedFaults.set(backend, row);
}

export function proxyFaultContract(
  name: string,
  prepare: () => Promise<PreparedBackend>,
  options: { skip?: string | false } = {},
): void {
  const skip = options.skip ?? false;
  describe(`Store contract through a faulty network: ${name}`, { skip }, () => {
    let prepared: PreparedBackend;
    let proxy: FaultProxy;
    let store: Store;
    let fixtures: BackendFixtures;
    let object: Buffer;
    let objectKey: string;
    let warm: string;
    let refCounter = 0;

    before(async () => {
      prepared = await prepare();
      proxy = await startFaultProxy({ target: prepared.target });
      const { url, options: remoteOptions } = prepared.remote(proxy.url, 'faults');
      ({ store } = await openStore(
        url,
        { ...remoteOptions, ...FAULT_OPTIONS },
        process.cwd(),
        undefined,
        prepared.tokens,
      ));
      fixtures = (await prepared.fixtures?.('faults')) ?? PLAIN_FIXTURES;
      ({ key: objectKey, data: object } = await fixtures.object(`proxy-fault/${name}`, 256 * 1024));
      await store.put(objectKey, object);
      // A first ref update runs any one-time set-up (S3's conditional-write probe) fault-free.
      warm = await fixtures.refTarget('warm');
      assert.equal(await store.compareAndSwapRef('refs/heads/warm-up', null, warm), true);
    });

    after(async () => {
      await store?.close();
      await proxy?.close();
      await prepared?.close?.();
    });

    /**
     * Runs `call` with `fault` on the next request `filter` matches, and asserts it was injected
     * (unless `mayNotReach`: a backend may settle the call without such a request).
     */
    async function through<T>(
      fault: Fault,
      filter: (r: { method: string }) => boolean,
      call: () => Promise<T>,
      mayNotReach = false,
    ): Promise<T> {
      const before = proxy.injected.get(fault.kind) ?? 0;
      proxy.setPlan(nextRequests(fault, 1, filter));
      try {
        return await call();
      } finally {
        proxy.setPlan(undefined);
        const injected = (proxy.injected.get(fault.kind) ?? 0) - before;
        tally(name, fault.kind, injected);
        if (!mayNotReach || injected > 1)
          assert.equal(injected, 1, `the ${fault.kind} fault was injected once`);
      }
    }

    for (const { label, fault } of WRITE_FAULTS) {
      test(`put through "${label}" lands whole`, async () => {
        const { key, data } = await fixtures.object(`put/${name}/${label}`, 64 * 1024);
        await through(fault, isWrite, () => store.put(key, data));
        assert.deepEqual(await store.has([key]), [true]);
        assert.deepEqual(await store.get(key), data);
      });

      test(`CAS through "${label}": create and update report true, a stale update still loses`, async () => {
        const ref = `refs/heads/fault-${++refCounter}`;
        const a = await fixtures.refTarget(`${ref.slice(11)}-a`);
        const b = await fixtures.refTarget(`${ref.slice(11)}-b`);
        const c = await fixtures.refTarget(`${ref.slice(11)}-c`);
        assert.equal(
          await through(fault, isWrite, () => store.compareAndSwapRef(ref, null, a)),
          true,
          'create',
        );
        const first = await store.readRef(ref);
        assert.equal(first?.oid, a);
        assert.equal(
          await through(fault, isWrite, () => store.compareAndSwapRef(ref, first, b)),
          true,
          'update',
        );
        assert.equal((await store.readRef(ref))?.oid, b);
        assert.equal(await store.compareAndSwapRef(ref, first, c), false, 'stale update');
        assert.equal((await store.readRef(ref))?.oid, b);
        assert.equal(
          await through(fault, isWrite, () => store.compareAndSwapRef(ref, null, c), true),
          false,
          'create of an existing ref',
        );
        assert.equal((await store.readRef(ref))?.oid, b);
      });
    }

    for (const { label, fault } of READ_FAULTS) {
      test(`get through "${label}" returns the stored bytes`, async () => {
        assert.deepEqual(await through(fault, isRead, () => store.get(objectKey)), object);
      });

      test(`readRef through "${label}" returns the ref's value`, async () => {
        const value = await through(fault, isRead, () => store.readRef('refs/heads/warm-up'));
        assert.equal(value?.oid, warm);
      });
    }
  });
}

/** One line per backend: "S3 (radosgw): reset 4, refuse 8, …". */
export function injectedSummary(): string[] {
  return [...injectedFaults].map(
    ([backend, row]) =>
      `${backend}: ${[...row].map(([kind, n]) => `${kind} ${n}`).join(', ')} (total ${[...row.values()].reduce((s, n) => s + n, 0)})`,
  );
}
