/**
 * A push through `mediagit server` reads what it sends while the first push's descriptor write is
 * on the wire, and reads the files of its chunk packs in pack order, so the first pack leaves once
 * its own files are read rather than once nearly all packs in flight have been read: the order of
 * the local store's reads against the remote's descriptor write and packs, recorded.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentProgress } from '../../src/repo/index.js';
import {
  ForwardingStore,
  type Passage,
  type Store,
  type StoreCapabilities,
} from '../../src/store/index.js';
import { HttpStore } from '../../src/store/http/index.js';
import { push } from '../../src/sync/index.js';
import { tempDir } from '../support/cli.js';
import { Prng } from '../support/corpus.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';
import { MAIN, commitFiles, initRepo } from '../support/sync-fixtures.js';

/**
 * Writes down when the descriptor write is answered and which keys each pack carries; holds the
 * descriptor write's answer until `release` (the first chunk read, or the test's fallback).
 */
class RecordingRemote extends ForwardingStore {
  readonly packs: string[][] = [];
  constructor(
    inner: Store,
    private readonly events: string[],
    private readonly release: Promise<void>,
  ) {
    super(inner);
  }
  protected override async pass<T>(passage: Passage<T>): Promise<T> {
    const result = await passage.run();
    if (passage.operation === 'put' && passage.target === 'meta/repository') {
      await this.release;
      this.events.push('descriptor answered');
    }
    return result;
  }
  protected override forwardCapabilities(inner: StoreCapabilities): StoreCapabilities {
    const forwarded = super.forwardCapabilities(inner);
    const batch = forwarded.batch;
    const negotiator = forwarded.negotiate;
    if (!batch || !negotiator) return forwarded;
    return {
      ...forwarded,
      // Answered as a server that takes no descriptor with a pack answers (this one would, and a
      // plain first push would then write none): the pushes that still write it first (an
      // encrypted one, to an older server) are the ones whose reads must not wait for it.
      negotiate: {
        ...negotiator,
        negotiate: async (request, options) => {
          const answer = await negotiator.negotiate(request, options);
          if (answer === null) return null;
          const { descriptorInPack: _taken, ...rest } = answer;
          return rest;
        },
      },
      batch: {
        ...batch,
        putMany: (entries, options) => {
          this.packs.push(entries.map((e) => e.key));
          this.events.push(`pack ${this.packs.length}`);
          return batch.putMany(entries, options);
        },
      },
    };
  }
  override close(): Promise<void> {
    return this.inner.close();
  }
}

describe('push through mediagit server: reads beside the descriptor, packs in order', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server?.close());

  test('chunk files are read while the descriptor write is answered, the first pack’s first', async (t) => {
    const dir = await tempDir('server-push-reads');
    const repo = await initRepo(path.join(dir, 'client'));
    // ~12 MiB of 64 KiB chunks: three or four packs of ~60 chunks each, in flight together.
    const prng = new Prng('server-push-reads');
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 6; i++) files.set(`f${i}.bin`, prng.fill(Buffer.alloc(2 * 1024 * 1024)));
    const tip = await commitFiles(repo, [], files, 'v1');

    const events: string[] = [];
    const readOrder: string[] = [];
    let firstRead!: () => void;
    const released = new Promise<void>((resolve) => (firstRead = resolve));
    // Without reads beside the descriptor write none can come before its answer: the fallback only
    // ends that wait so the test fails instead of hanging.
    const fallback = setTimeout(firstRead, 3000);
    t.after(() => clearTimeout(fallback));
    const local = repo.store;
    const get = local.get.bind(local);
    local.get = async (key, options) => {
      const data = await get(key, options);
      if (key.startsWith('chunks/')) {
        readOrder.push(key);
        if (readOrder.length === 1) events.push('first chunk read');
        firstRead();
      }
      return data;
    };
    const token = await server.token('reads', 'write', 'ana');
    const remote = new RecordingRemote(
      new HttpStore({ origin: server.url, repo: 'reads', token }),
      events,
      released,
    );
    t.after(() => remote.close());

    const outcome = await push(repo, remote, { oid: tip, ref: MAIN, force: false }, silentProgress);
    assert.equal(outcome.status, 'created');

    const chunkPacks = remote.packs.filter((keys) => keys.every((k) => k.startsWith('chunks/')));
    assert.ok(chunkPacks.length >= 3, `${chunkPacks.length} chunk packs`);
    assert.ok(
      events.indexOf('first chunk read') < events.indexOf('descriptor answered'),
      `reads waited for the descriptor: ${events.join(', ')}`,
    );
    // The first pack's files are the first read (up to the reads in flight when they were).
    const first = chunkPacks[0]!;
    const lastOfFirst = Math.max(...first.map((key) => readOrder.indexOf(key)));
    t.diagnostic(
      `first pack: ${first.length} chunks, its last read ${lastOfFirst + 1}th of ${readOrder.length}`,
    );
    assert.ok(
      lastOfFirst < first.length + 8,
      `the first pack's last file was read ${lastOfFirst + 1}th of ${readOrder.length} (${first.length} in it)`,
    );
  });
});
