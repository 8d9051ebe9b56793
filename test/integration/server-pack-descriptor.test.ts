/**
 * A pack carrying the repository descriptor (`Mediagit-Descriptor`, docs/protocol.md "Packs"): a
 * plain repository's first push through a server sends no PUT of its descriptor before its packs
 * (that write, an fsync or a bucket PUT, was a round trip in front of every upload); the server
 * creates it, create-only, while the pack streams in, and stores nothing of the pack before it
 * is stored. What it must keep: another layout than the stored one is refused with nothing
 * stored, as a PUT of it is; a malformed header is 400; a server serving only the version-1 calls
 * ignores the header (and then has no descriptor: 409).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentProgress } from '../../src/repo/index.js';
import { ForwardingStore, type PackOptions, type Passage } from '../../src/store/index.js';
import { HttpStore } from '../../src/store/http/index.js';
import { makeDescriptor, push, readDescriptor, sameLayout } from '../../src/sync/index.js';
import { tempDir } from '../support/cli.js';
import { Prng } from '../support/corpus.js';
import {
  commitRecords,
  describeRepository,
  descriptorBytes,
  encodeTestPack,
  http,
  startTestServer,
  type TestServer,
} from '../support/server-harness.js';
import { MAIN, commitFiles, initRepo } from '../support/sync-fixtures.js';

const KEYS = { chunk: 'chunks', manifest: 'objects', tree: 'objects', commit: 'objects' } as const;

/** Writes down every call that reached the server's store: operation, target, descriptor carried. */
class Recording extends ForwardingStore {
  readonly calls: string[] = [];
  protected override pass<T>(passage: Passage<T>): Promise<T> {
    const carried = (passage.options as PackOptions | undefined)?.descriptor !== undefined;
    this.calls.push(
      `${passage.operation} ${passage.target}${carried ? ' (descriptor carried)' : ''}`,
    );
    return passage.run();
  }
}

describe('mediagit server: a pack carrying the descriptor', () => {
  let server: TestServer;
  let oldServer: TestServer;
  let token: string;
  before(async () => {
    server = await startTestServer();
    oldServer = await startTestServer({ config: '[server]\nnegotiate = false\n' });
    token = await server.token('*', 'write', 'pusher');
  });
  after(async () => {
    await server.close();
    await oldServer.close();
  });

  const packTo = (base: string, pack: Buffer, descriptor: string | Buffer, as = token) =>
    http(`${base}/objects/pack`, {
      token: as,
      body: pack,
      headers: {
        'mediagit-descriptor':
          typeof descriptor === 'string' ? descriptor : descriptor.toString('base64url'),
      },
    });
  const present = async (base: string, records: Awaited<ReturnType<typeof commitRecords>>) => {
    const out: number[] = [];
    for (const r of records.records)
      out.push(
        (await http(`${base}/${KEYS[r.kind as keyof typeof KEYS]}/${r.oid}`, { token })).status,
      );
    return out;
  };

  test('a first push writes no descriptor of its own: its packs carry it, and the server stores it', async () => {
    const dir = await tempDir('pack-descriptor-push');
    const repo = await initRepo(path.join(dir, 'client'));
    const prng = new Prng('pack-descriptor');
    const tip = await commitFiles(
      repo,
      [],
      new Map([
        ['a.bin', prng.fill(Buffer.alloc(300_000))],
        ['b.bin', prng.fill(Buffer.alloc(200_000))],
      ]),
      'v1',
    );
    const remote = new Recording(new HttpStore({ origin: server.url, repo: 'pushed', token }));
    try {
      const outcome = await push(
        repo,
        remote,
        { oid: tip, ref: MAIN, force: false },
        silentProgress,
      );
      assert.equal(outcome.status, 'created');
      assert.deepEqual(
        remote.calls.filter((c) => c.includes('meta/repository')),
        [],
        'no write (nor read) of the descriptor of its own',
      );
      assert.ok(
        remote.calls.some((c) => c.endsWith('(descriptor carried)')),
        remote.calls.join('\n'),
      );
      const stored = await readDescriptor(remote);
      assert.ok(stored && sameLayout(stored, makeDescriptor(repo.settings.chunking, false)));
      assert.equal((await remote.readRef(MAIN))?.oid, tip);
    } finally {
      await remote.close();
    }
  });

  test('packs offering it to a fresh repository, several at once: all stored, one descriptor', async () => {
    const base = `${server.url}/fresh`;
    const commits = await Promise.all([0, 1, 2].map((i) => commitRecords([], `fresh-${i}`)));
    const answers = await Promise.all(
      commits.map((c) => packTo(base, encodeTestPack(c.records), descriptorBytes())),
    );
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200],
      answers.map((a) => a.body.toString()).join('\n'),
    );
    const info = await http(`${base}/info`, { token });
    assert.equal(info.status, 200);
    assert.deepEqual(info.json, JSON.parse(descriptorBytes().toString('utf8')));
    for (const c of commits) assert.deepEqual(await present(base, c), [200, 200, 200, 200]);
    // Offered again once it is there, same layout: taken as it is.
    const more = await commitRecords([], 'fresh-more');
    assert.equal((await packTo(base, encodeTestPack(more.records), descriptorBytes())).status, 200);
  });

  test('another layout than the stored one, or than one being created: 409, nothing stored', async () => {
    const base = `${server.url}/described`;
    await describeRepository(base, token);
    const other = await commitRecords([], 'other-layout');
    const refused = await packTo(
      base,
      encodeTestPack(other.records),
      descriptorBytes(false, 2 ** 20),
    );
    assert.equal(refused.status, 409, refused.body.toString());
    assert.equal(refused.json?.['error'], 'conflict');
    assert.deepEqual(await present(base, other), [404, 404, 404, 404]);

    // Two first pushes of different layouts at once: exactly one layout is stored, and only the
    // pack offering it is stored.
    const raced = `${server.url}/raced`;
    const a = await commitRecords([], 'raced-a');
    const b = await commitRecords([], 'raced-b');
    const [ra, rb] = await Promise.all([
      packTo(raced, encodeTestPack(a.records), descriptorBytes(false, 2 ** 21)),
      packTo(raced, encodeTestPack(b.records), descriptorBytes(false, 2 ** 22)),
    ]);
    assert.deepEqual(
      [ra.status, rb.status].sort(),
      [200, 409],
      `${ra.body.toString()} ${rb.body.toString()}`,
    );
    const [winner, loser] = ra.status === 200 ? [a, b] : [b, a];
    const info = await http(`${raced}/info`, { token });
    const chunking = info.json?.['chunking'] as { max_size?: number } | undefined;
    assert.equal(chunking?.max_size, ra.status === 200 ? 2 ** 21 : 2 ** 22);
    assert.deepEqual(await present(raced, winner), [200, 200, 200, 200]);
    assert.deepEqual(await present(raced, loser), [404, 404, 404, 404]);
  });

  test('a malformed header: 400, nothing stored, no descriptor', async () => {
    const base = `${server.url}/malformed`;
    const records = await commitRecords([], 'malformed');
    for (const header of [
      'not base64url!',
      Buffer.from('{}').toString('base64url'),
      Buffer.from('not json').toString('base64url'),
      descriptorBytes(false, 1000).toString('base64url'),
    ]) {
      const answer = await packTo(base, encodeTestPack(records.records), header);
      assert.equal(answer.status, 400, `${header}: ${answer.body.toString()}`);
    }
    assert.equal((await http(`${base}/info`, { token })).status, 404);
    assert.deepEqual(await present(base, records), [404, 404, 404, 404]);
  });

  test('a server serving only the version-1 calls ignores it: no descriptor, so 409', async () => {
    const oldToken = await oldServer.token('*', 'write', 'pusher');
    const base = `${oldServer.url}/old`;
    const records = await commitRecords([], 'old');
    const answer = await packTo(base, encodeTestPack(records.records), descriptorBytes(), oldToken);
    assert.equal(answer.status, 409);
    assert.equal((await http(`${base}/info`, { token: oldToken })).status, 404);
  });
});
