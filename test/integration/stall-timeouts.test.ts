/**
 * No hang, ever (issue 16, item 1): every cloud backend behind a fault proxy that accepts a request
 * and never answers, or sends the start of a reply and then nothing. Each stalled attempt must end
 * (per-request deadline, or the backend's idle timer), be retried, and when the retries run out
 * fail as E_STORE_UNAVAILABLE naming the remote. A stall on one attempt only must cost a retry and
 * nothing else.
 *
 * The timeouts are set small through the remote's options; the tests assert on outcomes and on
 * what the proxy saw, never on elapsed time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { StoreUnavailableError } from '../../src/errors/index.js';
import { openStore, type Store, type StoreOptions } from '../../src/store/index.js';
import { nextRequests, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { PROXIED_BACKENDS } from '../support/proxied-backends.js';
import { descriptorBytes } from '../support/server-harness.js';

const KEY = 'meta/repository';

const TIMEOUTS: StoreOptions = { request_timeout_ms: 1500, max_retries: 2 };

for (const backend of PROXIED_BACKENDS) {
  describe(`stalled connections: ${backend.name}`, { skip: backend.skip }, () => {
    let proxy: FaultProxy;
    let store: Store;
    let close: (() => Promise<void>) | undefined;
    const data = descriptorBytes();

    before(async () => {
      const prepared = await backend.prepare('stall');
      close = prepared.close;
      proxy = await startFaultProxy({ target: prepared.target });
      const { url, options } = prepared.remote(proxy.url, 'stall');
      ({ store } = await openStore(
        url,
        { ...options, ...TIMEOUTS },
        process.cwd(),
        undefined,
        prepared.tokens,
      ));
      await store.put(KEY, data);
    });

    after(async () => {
      await store?.close();
      await proxy?.close();
      await close?.();
    });

    test('a request that is never answered is retried, then reported unavailable naming the remote', async () => {
      proxy.setPlan(() => ({ kind: 'stall' }));
      const seen = proxy.injected.get('stall') ?? 0;
      await assert.rejects(store.get(KEY), (err: unknown) => {
        assert.ok(err instanceof StoreUnavailableError, String(err));
        assert.equal(err.code, 'E_STORE_UNAVAILABLE');
        assert.ok(err.message.includes(store.description), err.message);
        return true;
      });
      // The first attempt and both retries all reached the proxy and stalled there.
      assert.ok((proxy.injected.get('stall') ?? 0) - seen >= 3);
      proxy.setPlan(undefined);
    });

    test('a ref read that is never answered fails as unavailable instead of hanging', async () => {
      proxy.setPlan(() => ({ kind: 'stall' }));
      await assert.rejects(
        store.readRef('refs/heads/main'),
        (err: unknown) => err instanceof StoreUnavailableError,
      );
      proxy.setPlan(undefined);
    });

    test('one stalled attempt (headers never come) costs a retry and the read succeeds', async () => {
      proxy.setPlan(nextRequests({ kind: 'stall' }, 1));
      assert.deepEqual(await store.get(KEY), data);
      proxy.setPlan(undefined);
    });

    test('a reply that stops mid-body is retried and the read succeeds', async () => {
      const before = proxy.injected.get('stall-body') ?? 0;
      proxy.setPlan(nextRequests({ kind: 'stall-body', bytes: 10 }, 1, (r) => r.method === 'GET'));
      assert.deepEqual(await store.get(KEY), data);
      assert.equal((proxy.injected.get('stall-body') ?? 0) - before, 1);
      proxy.setPlan(undefined);
    });
  });
}
