/**
 * A push writes a missing descriptor before it moves the ref, whatever else it has to send: the
 * descriptor write goes beside the push's reads (src/sync/push.ts), and a push that finds every
 * object already on the remote sends nothing else before its ref update. Its failure is the
 * push's failure.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { silentProgress } from '../../src/repo/index.js';
import { ForwardingStore, type Passage } from '../../src/store/index.js';
import { HttpStore } from '../../src/store/http/index.js';
import { push } from '../../src/sync/index.js';
import { tempDir } from '../support/cli.js';
import { Prng } from '../support/corpus.js';
import { startTestServer } from '../support/server-harness.js';
import { MAIN, commitFiles, initRepo } from '../support/sync-fixtures.js';

/** Refuses the descriptor's write; every other call goes through. */
class RefusingDescriptor extends ForwardingStore {
  protected override pass<T>(passage: Passage<T>): Promise<T> {
    if (passage.target === 'meta/repository' && passage.operation !== 'get')
      return Promise.reject(new Error('descriptor write refused by the test'));
    return passage.run();
  }
}

/**
 * Holds the descriptor's write until the ref update is attempted (which must not happen first) or
 * a moment has passed, and writes down the order in which both reached the server.
 */
class HoldingDescriptor extends ForwardingStore {
  readonly order: string[] = [];
  private swapAttempted!: () => void;
  private readonly attempted = new Promise<void>((resolve) => (this.swapAttempted = resolve));
  protected override async pass<T>(passage: Passage<T>): Promise<T> {
    if (passage.operation === 'compareAndSwapRef') {
      this.order.push('ref update sent');
      this.swapAttempted();
    } else if (passage.target === 'meta/repository' && passage.operation !== 'get') {
      // Not a limit on anything: the moment only lets a correct push go on.
      await Promise.race([this.attempted, new Promise((r) => setTimeout(r, 200))]);
      this.order.push('descriptor sent');
    }
    return passage.run();
  }
}

async function descriptorlessRemote(t: TestContext, name: string) {
  const dir = await tempDir(name);
  const storage = path.join(dir, 'storage');
  const config = `[storage]\nbackend = "local"\n\n[storage.local]\npath = ${JSON.stringify(storage)}\nfsync = false\n`;
  const repo = await initRepo(path.join(dir, 'client'));
  const prng = new Prng('descriptor-first');
  const tip = await commitFiles(
    repo,
    [],
    new Map([['a.bin', prng.fill(Buffer.alloc(300_000))]]),
    'v1',
  );

  // Every object on the remote, then its descriptor lost (a restore that missed it, say); a
  // second server, so nothing remembers the descriptor it stored.
  const first = await startTestServer({ config });
  try {
    const store = new HttpStore({
      origin: first.url,
      repo: 'r',
      token: await first.token('r', 'write'),
    });
    await push(repo, store, { oid: tip, ref: MAIN, force: false }, silentProgress);
    await store.close();
  } finally {
    await first.close();
  }
  await rm(path.join(storage, 'r', 'meta', 'repository'));

  const second = await startTestServer({ config });
  t.after(() => second.close());
  const token = await second.token('r', 'write');
  return { repo, tip, connect: () => new HttpStore({ origin: second.url, repo: 'r', token }) };
}

test('a push with nothing else to send fails with its descriptor write', async (t) => {
  const { repo, tip, connect } = await descriptorlessRemote(t, 'descriptor-refused');
  const remote = new RefusingDescriptor(connect());
  t.after(() => remote.close());
  await assert.rejects(
    push(repo, remote, { oid: tip, ref: 'refs/heads/other', force: false }, silentProgress),
    /descriptor write refused by the test/,
  );
});

test('a push with nothing else to send moves the ref only once the descriptor is written', async (t) => {
  const { repo, tip, connect } = await descriptorlessRemote(t, 'descriptor-first');
  const remote = new HoldingDescriptor(connect());
  t.after(() => remote.close());
  const outcome = await push(
    repo,
    remote,
    { oid: tip, ref: 'refs/heads/other', force: false },
    silentProgress,
  );
  assert.equal(outcome.status, 'created');
  assert.deepEqual(remote.order, ['descriptor sent', 'ref update sent']);
});
