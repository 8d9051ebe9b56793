/**
 * `POST /<repo>/history` (docs/protocol.md "History") against a real server: the structured
 * objects from the wants down to the haves, leaving out what the haves' trees hold; bounded by
 * what the client takes; refused (409) for an encrypted repository, which the client then walks.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import type { Oid } from '../../src/objects/index.js';
import { silentProgress, walkReachable } from '../../src/repo/index.js';
import { HttpStore } from '../../src/store/http/index.js';
import { push } from '../../src/sync/index.js';
import { tempDir } from '../support/cli.js';
import { Prng } from '../support/corpus.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';
import { MAIN, commitFiles, initRepo } from '../support/sync-fixtures.js';

let server: TestServer | undefined;
after(() => server?.close());

async function pushed(
  name: string,
): Promise<{ store: HttpStore; commits: Oid[]; repo: Awaited<ReturnType<typeof initRepo>> }> {
  server ??= await startTestServer();
  const store = new HttpStore({
    origin: server.url,
    repo: name,
    token: await server.token(name, 'write'),
  });
  const repo = await initRepo(path.join(await tempDir(name), 'repo'));
  const prng = new Prng(name);
  const commits: Oid[] = [];
  const files = new Map<string, Buffer>([['a/b/keep.bin', prng.fill(Buffer.alloc(9000))]]);
  for (let i = 0; i < 3; i++) {
    files.set(`a/b/take_${i}.bin`, prng.fill(Buffer.alloc(9000)));
    commits.push(await commitFiles(repo, commits.slice(-1), new Map(files), `take ${i}`));
  }
  await push(repo, store, { oid: commits[2]!, ref: MAIN, force: false }, silentProgress);
  return { store, commits, repo };
}

describe('POST /history', () => {
  test('the whole history for a clone; only what is new beyond a have for a fetch', async (t) => {
    const { store, commits, repo } = await pushed('history');
    t.after(() => store.close());
    const history = store.capabilities.negotiate!.history!;
    const all = await walkReachable(repo, [{ oid: commits[2]!, kind: 'object', where: 'tip' }], {
      chunks: 'skip',
    });
    const structured = new Set(
      [...all.commits, ...all.trees, ...all.manifests].map((oid) => `objects/${oid}`),
    );
    const whole = await history({ want: [commits[2]!], have: [] });
    assert.deepEqual(new Set(whole!.keys()), structured);

    const since = await walkReachable(repo, [{ oid: commits[2]!, kind: 'object', where: 'tip' }], {
      chunks: 'skip',
      exclude: new Set([commits[1]!]),
      excludeBoundaryContent: true,
    });
    const newer = await history({ want: [commits[2]!], have: [commits[1]!] });
    // The new commit, its three changed trees and one new manifest: not keep.bin's, not the past.
    assert.deepEqual(
      new Set(newer!.keys()),
      new Set(
        [...since.commits, ...since.trees, ...since.manifests].map((oid) => `objects/${oid}`),
      ),
    );
    assert.equal(newer!.size, 5);

    const capped = await history({ want: [commits[2]!], have: [], maxObjects: 2 });
    assert.equal(capped!.size, 2);
  });

  test('an encrypted repository answers 409, and the client says it cannot (null)', async (t) => {
    server ??= await startTestServer();
    const token = await server.token('sealed', 'write');
    const res = await fetch(`${server.url}/sealed/meta/repository`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: JSON.stringify({
        format: 'mediagit',
        version: 1,
        chunking: { min_size: 16384, avg_size: 65536, max_size: 262144 },
        encryption: 'aes-256-gcm',
      }),
    });
    assert.equal(res.status, 201, await res.text());
    const store = new HttpStore({ origin: server.url, repo: 'sealed', token });
    t.after(() => store.close());
    const oid = 'a'.repeat(64);
    const raw = await fetch(`${server.url}/sealed/history`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ want: [oid], have: [] }),
    });
    assert.equal(raw.status, 409);
    assert.equal(await store.capabilities.negotiate!.history!({ want: [oid], have: [] }), null);
  });
});
