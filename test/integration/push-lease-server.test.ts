/**
 * A push through `mediagit server` learns the gc sweeper's lease after its ref update from the
 * update's own answer (the ref update its last pack carries, or `POST /refs`, with `gc_lease`;
 * docs/protocol.md), not from a read of its own:
 * one round trip less. It must still notice a sweep that ran between its negotiation and its ref
 * update, and put back what that sweep deleted, before it reports success (docs/remote-gc.md).
 * Here the "sweep" is forced at that moment, on the server's own storage: it deletes a chunk the
 * negotiation had found present and moves the lease, as a finished sweep leaves it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { Oid } from '../../src/objects/index.js';
import { silentProgress } from '../../src/repo/index.js';
import {
  ForwardingStore,
  type Passage,
  type RefValue,
  type Store,
  type StoreCapabilities,
  type SwapOptions,
} from '../../src/store/index.js';
import { HttpStore } from '../../src/store/http/index.js';
import { push } from '../../src/sync/index.js';
import { tempDir } from '../support/cli.js';
import { Prng } from '../support/corpus.js';
import { startRecordingProxy, type RecordingProxy } from '../support/recording-proxy.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';
import { commitFiles, filesOf, initRepo } from '../support/sync-fixtures.js';

const SWEEPER_REF = 'refs/locks/gc-sweeper';

let server: TestServer | undefined;
let proxy: RecordingProxy | undefined;
/** Each repository's storage as the server opened it: the forced sweep works on it directly. */
const storage = new Map<string, Store>();
after(async () => {
  await proxy?.close();
  await server?.close();
});

/** Runs `before` once, just before the first update of a branch leaves for the server. */
class BeforeRefUpdate extends ForwardingStore {
  constructor(
    inner: Store,
    private before: (() => Promise<void>) | null,
    /** Asks the update without the lease, as to a server from before it (which ignores the field). */
    private readonly oldServer = false,
  ) {
    super(inner);
  }
  override compareAndSwapRef(
    name: string,
    expected: RefValue | null,
    next: string | null,
    options?: SwapOptions,
  ): Promise<boolean> {
    const { onLeaseAfter: _dropped, ...without } = options ?? {};
    return super.compareAndSwapRef(name, expected, next, this.oldServer ? without : options);
  }
  /**
   * A push's ref update rides on its last pack (putManyThenSwap): the sweep runs before that
   * request leaves. A server from before it stores the pack and leaves the ref to a separate
   * update, which the sweep then precedes.
   */
  protected override forwardCapabilities(inner: StoreCapabilities): StoreCapabilities {
    const forwarded = super.forwardCapabilities(inner);
    const batch = forwarded.batch;
    const putThenSwap = batch?.putManyThenSwap;
    if (!batch || !putThenSwap) return forwarded;
    return {
      ...forwarded,
      batch: {
        ...batch,
        putManyThenSwap: async (entries, update, options) => {
          if (this.oldServer) {
            await batch.putMany(entries, options);
            return null;
          }
          await this.beforeUpdateOf(update.name);
          return putThenSwap(entries, update, options);
        },
      },
    };
  }
  override close(): Promise<void> {
    return Promise.resolve();
  }
  protected override async pass<T>(passage: Passage<T>): Promise<T> {
    if (passage.operation === 'compareAndSwapRef') await this.beforeUpdateOf(passage.target);
    return passage.run();
  }
  private async beforeUpdateOf(ref: string): Promise<void> {
    const run = this.before;
    if (!ref.startsWith('refs/heads/') || !run) return;
    this.before = null;
    await run();
  }
}

async function remotes(repo: string): Promise<{ client: HttpStore; direct: Store }> {
  server ??= await startTestServer({
    wrapStore: (store, area) => {
      storage.set(area, store);
      return store;
    },
  });
  proxy ??= await startRecordingProxy({ target: server.url });
  const token = await server.token(repo, 'write', 'ana');
  const client = new HttpStore({ origin: proxy.url, repo, token });
  // The server opens a repository's storage on its first request.
  await client.listRefs('refs/');
  const direct = storage.get(repo);
  assert.ok(direct, `no storage opened for ${repo}`);
  return { client, direct };
}

/** What a sweep that deleted `chunk` leaves: the chunk gone, the lease ref at a finished record. */
async function sweptAway(direct: Store, chunk: Oid): Promise<void> {
  await direct.delete(`chunks/${chunk}`);
  const record = Buffer.from(
    JSON.stringify({ state: 'idle', holder: 'forced-sweep', expiresAt: 0 }),
  );
  const oid = createHash('sha256').update(record).digest('hex');
  await direct.put(`meta/gc-lease-${oid}`, record);
  assert.ok(await direct.compareAndSwapRef(SWEEPER_REF, await direct.readRef(SWEEPER_REF), oid));
}

describe('push through mediagit server: the gc lease told by the ref update', () => {
  const cases = [
    { name: 'lease-guard', guard: true, old: false, what: 'is noticed and its deletion repaired' },
    {
      name: 'lease-old',
      guard: true,
      old: true,
      what: 'is noticed through a separate lease read when the update does not answer the lease',
    },
    {
      name: 'lease-off',
      guard: false,
      old: false,
      what: 'with the guard off loses the chunk (the test has teeth)',
    },
  ];
  for (const { name, guard, old, what } of cases) {
    test(`a sweep between negotiation and ref update ${what}`, async (t) => {
      const { client, direct } = await remotes(name);
      t.after(() => client.close());
      const repo = await initRepo(path.join(await tempDir(name), 'client'));
      const v1 = await commitFiles(repo, [], new Map([['a.bin', Buffer.from('v1')]]), 'v1');
      await push(repo, client, { oid: v1, ref: 'refs/heads/main', force: false }, silentProgress);
      // Garbage on the server: a branch pushed and deleted, whose content v2 then reuses.
      const data = new Prng(name).fill(Buffer.alloc(40_000));
      const scratch = await commitFiles(repo, [], new Map([['s.bin', data]]), 'scratch');
      await push(
        repo,
        client,
        { oid: scratch, ref: 'refs/heads/scratch', force: false },
        silentProgress,
      );
      assert.ok(
        await direct.compareAndSwapRef(
          'refs/heads/scratch',
          await direct.readRef('refs/heads/scratch'),
          null,
        ),
      );
      const v2 = await commitFiles(
        repo,
        [v1],
        new Map([
          ['a.bin', Buffer.from('v1')],
          ['s.bin', data],
        ]),
        'v2',
      );
      const reused = (await repo.odb.readManifest((await filesOf(repo, scratch)).get('s.bin')!.oid))
        .chunks[0]!.oid;
      const gated = new BeforeRefUpdate(client, () => sweptAway(direct, reused), old);
      proxy!.reset();
      await push(repo, gated, { oid: v2, ref: 'refs/heads/main', force: false }, silentProgress, {
        sweepGuard: guard,
      });
      const leaseReads = proxy!.requests.filter((r) =>
        r.url.includes('prefix=refs%2Flocks%2Fgc-sweeper'),
      ).length;
      const present = (await direct.has([`chunks/${reused}`]))[0];
      t.diagnostic(`chunk present after the push: ${present}; separate lease reads: ${leaseReads}`);
      if (guard) {
        assert.equal(present, true, 'the chunk the sweep deleted was put back');
        assert.equal(leaseReads, old ? 1 : 0, 'the lease came with the ref update');
      } else assert.equal(present, false);
    });
  }
});
