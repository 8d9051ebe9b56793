/**
 * A pack that carries a ref update (`Mediagit-Ref-Update`, docs/protocol.md "Pack with a ref
 * update"): a push's last pack and its ref update in one request. The server stores the pack,
 * then applies the update exactly as POST /refs would (rights, connectivity, fast-forward, CAS),
 * and answers both. What it must keep: a bad header costs nothing stored, a conflict leaves the
 * ref alone and says so with 409 `ref_conflict`, a server serving only the version-1 calls
 * ignores the header, and the ref update gets its own audit line.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HttpStore } from '../../src/store/http/index.js';
import type { RefValue } from '../../src/store/index.js';
import {
  commitRecords,
  describeRepository,
  encodeTestPack,
  http,
  startTestServer,
  type TestServer,
} from '../support/server-harness.js';

const MAIN = 'refs/heads/main';
const KEYS = { chunk: 'chunks', manifest: 'objects', tree: 'objects', commit: 'objects' } as const;

type Records = Awaited<ReturnType<typeof commitRecords>>['records'];

const entriesOf = (records: Records) =>
  records.map((r) => ({ key: `${KEYS[r.kind as keyof typeof KEYS]}/${r.oid}`, data: r.stored }));

/** `commit`'s records in packs, the last carrying the update of main from `expected` to it. */
const pushed = (
  store: HttpStore,
  commit: Awaited<ReturnType<typeof commitRecords>>,
  expected: RefValue | null,
): Promise<boolean | null> =>
  store.putManyThenSwap(
    entriesOf(commit.records),
    { name: MAIN, expected, next: commit.commit },
    { endAtNextIsEnough: true },
  );

const header = (update: Record<string, unknown>): string =>
  Buffer.from(JSON.stringify(update)).toString('base64url');

describe('mediagit server: a pack carrying a ref update', () => {
  let server: TestServer;
  let oldServer: TestServer;
  let token: string;
  const stores: HttpStore[] = [];
  const client = (on: TestServer, repo: string): HttpStore => {
    const store = new HttpStore({ origin: on.url, repo, token });
    stores.push(store);
    return store;
  };
  before(async () => {
    server = await startTestServer();
    oldServer = await startTestServer({ config: '[server]\nnegotiate = false\n' });
    token = await server.token('*', 'write', 'pusher');
  });
  after(async () => {
    for (const store of stores) await store.close();
    await server.close();
    await oldServer.close();
  });

  test('stores the pack, then moves the ref, in one request; a ref_update audit line of its own', async () => {
    await describeRepository(`${server.url}/one`, token);
    const store = client(server, 'one');
    const first = await commitRecords([], 'first');
    const before = server.auditLines.length;
    let lease: unknown;
    const swapped = await store.putManyThenSwap(
      entriesOf(first.records),
      { name: MAIN, expected: null, next: first.commit },
      { endAtNextIsEnough: true, onLeaseAfter: (read) => (lease = read) },
    );
    assert.equal(swapped, true);
    assert.equal((await store.readRef(MAIN))?.oid, first.commit);
    assert.deepEqual(lease, { ref: null, record: null }, 'the gc lease came with the answer');
    const lines = server.auditLines.slice(before).filter((l) => l['repo'] === 'one');
    assert.deepEqual(
      lines.map((l) => [l['event'], l['target'], l['status']]),
      [
        ['pack', 'objects/pack', 200],
        ['ref_update', MAIN, 200],
      ],
    );
  });

  test('a ref that moved: 409 ref_conflict → false, the ref left alone, the objects stored', async () => {
    await describeRepository(`${server.url}/moved`, token);
    const store = client(server, 'moved');
    const a = await commitRecords([], 'a');
    assert.equal(await pushed(store, a, null), true);
    const atA = (await store.readRef(MAIN))!;
    const b = await commitRecords([a.commit], 'b');
    assert.equal(await pushed(store, b, atA), true);
    // A writer that still believes the ref is at a.
    const c = await commitRecords([a.commit], 'c');
    assert.equal(await pushed(store, c, atA), false);
    assert.equal((await store.readRef(MAIN))?.oid, b.commit);
    assert.deepEqual(await store.has(entriesOf(c.records).map((e) => e.key)), [
      true,
      true,
      true,
      true,
    ]);
    // Its repeat after a lost answer: the ref already at `next` is success, whoever put it there.
    assert.equal(await pushed(store, b, atA), true);
  });

  test('a server serving only the version-1 calls ignores the header: stored, ref untouched, null', async () => {
    const oldToken = await oldServer.token('*', 'write', 'pusher');
    await describeRepository(`${oldServer.url}/old`, oldToken);
    const store = new HttpStore({ origin: oldServer.url, repo: 'old', token: oldToken });
    stores.push(store);
    const first = await commitRecords([], 'old');
    assert.equal(await pushed(store, first, null), null);
    assert.equal(await store.readRef(MAIN), null);
    assert.deepEqual(await store.has(entriesOf(first.records).map((e) => e.key)), [
      true,
      true,
      true,
      true,
    ]);
  });

  test('bad headers are refused before the pack is read: nothing stored', async () => {
    await describeRepository(`${server.url}/bad`, token);
    const store = client(server, 'bad');
    const first = await commitRecords([], 'bad');
    const pack = encodeTestPack(first.records);
    const keys = entriesOf(first.records).map((e) => e.key);
    const cases: [string, string, number][] = [
      ['not base64url', '{"name":"refs/heads/main"}', 400],
      ['not JSON', Buffer.from('not json').toString('base64url'), 400],
      ['a JSON array', header([] as unknown as Record<string, unknown>), 400],
      [
        'a bad ref name',
        header({ name: 'refs/heads/../x', expected: null, next: first.commit }),
        400,
      ],
      ['no expected', header({ name: MAIN, next: first.commit }), 400],
      ['a deletion', header({ name: MAIN, expected: null, next: null }), 400],
      ['a lock ref', header({ name: 'refs/locks/x', expected: null, next: first.commit }), 400],
      ['too long', 'A'.repeat(5000), 400],
    ];
    for (const [what, value, status] of cases) {
      const res = await http(`${server.url}/bad/objects/pack`, {
        token,
        body: pack,
        headers: { 'mediagit-ref-update': value },
      });
      assert.equal(res.status, status, `${what}: ${res.body.toString('utf8')}`);
      assert.deepEqual(
        await store.has(keys),
        [false, false, false, false],
        `${what} stored objects`,
      );
    }
    assert.equal(await store.readRef(MAIN), null);
  });

  test('the update is checked as POST /refs checks it: a commit whose tree is missing is refused', async () => {
    await describeRepository(`${server.url}/holes`, token);
    const store = client(server, 'holes');
    const first = await commitRecords([], 'holes');
    // The commit alone: its tree (and the file under it) never sent.
    const commitOnly = first.records.filter((r) => r.kind === 'commit');
    const res = await http(`${server.url}/holes/objects/pack`, {
      token,
      body: encodeTestPack(commitOnly),
      headers: {
        'mediagit-ref-update': header({ name: MAIN, expected: null, next: first.commit }),
      },
    });
    assert.equal(res.status, 422, res.body.toString('utf8'));
    assert.equal(await store.readRef(MAIN), null);
    // A rewind needs force rights, here as through POST /refs.
    assert.equal(await pushed(store, first, null), true);
    const second = await commitRecords([first.commit], 'second');
    const at: RefValue = (await store.readRef(MAIN))!;
    assert.equal(await pushed(store, second, at), true);
    const rewind = await http(`${server.url}/holes/objects/pack`, {
      token,
      body: encodeTestPack(first.records),
      headers: {
        'mediagit-ref-update': header({
          name: MAIN,
          expected: (await store.readRef(MAIN))!,
          next: first.commit,
        }),
      },
    });
    assert.equal(rewind.status, 403, rewind.body.toString('utf8'));
    assert.equal((await store.readRef(MAIN))?.oid, second.commit);
  });
});
