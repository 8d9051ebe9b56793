/**
 * The Store conformance suite. Every backend and every wrapper stack runs it, so "implements
 * Store" means the same thing for a local folder, a cloud bucket and RetryingStore(FaultyStore(x)).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { isValidKey, type ListedKey, type RefValue, type Store } from '../../src/store/index.js';

export interface StoreFixture {
  store: Store;
  cleanup: () => Promise<void>;
}

export interface StoreContractOptions {
  /** Run the racing-CAS test; only for backends whose CAS is meant to be atomic under concurrency. */
  concurrentCas?: boolean;
  /** Rounds of the racing-CAS test. Default 20. */
  rounds?: number;
  /** Keys in the paging test: more than the backend's listing page. Default 1001. */
  listingKeys?: number;
}

const MiB = 1024 * 1024;
const CONTENDERS = 8;

/** Deterministic bytes (SHA-256 in counter mode), so a failure reproduces byte for byte. */
export function patternBytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let offset = 0, i = 0; offset < length; i++)
    offset += createHash('sha256').update(`${seed}/${i}`).digest().copy(out, offset);
  return out;
}

/** A well-formed OID (64 lowercase hex) derived from a label. */
export function oidFor(label: string): string {
  return createHash('sha256').update(label).digest('hex');
}

/** An OID with a chosen leading part, for exercising prefix listings. */
export function oidWithPrefix(prefix: string, label: string): string {
  return prefix + oidFor(label).slice(prefix.length);
}

export async function collectList(store: Store, prefix: string): Promise<ListedKey[]> {
  const out: ListedKey[] = [];
  for await (const item of store.list(prefix)) out.push(item);
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

function isNotFound(err: unknown): boolean {
  return (
    typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'E_NOT_FOUND'
  );
}

/** The signal's reason, or an SDK's own AbortError standing in for it. */
function isAbortOf(err: unknown, reason: unknown): boolean {
  return (
    err === reason ||
    (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError')
  );
}

async function assertNotFound(promise: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isNotFound(err), `${what}: expected code E_NOT_FOUND, got ${String(err)}`);
    return true;
  });
}

async function withStore(
  make: () => Promise<StoreFixture>,
  fn: (store: Store) => Promise<void>,
): Promise<void> {
  const { store, cleanup } = await make();
  try {
    await fn(store);
  } finally {
    try {
      await store.close();
    } finally {
      await cleanup();
    }
  }
}

/** Everything visible through the Store API, to prove a rejected call changed nothing. */
async function visibleState(store: Store): Promise<string> {
  const keys = await collectList(store, '');
  const refs = [...(await store.listRefs('refs/'))].map(([name, v]) => `${name}=${v.oid}`).sort();
  return JSON.stringify({ keys, refs });
}

const INVALID_KEYS = [
  '../x',
  'chunks/ABC',
  `chunks/${'A'.repeat(64)}`,
  `chunks/${'a'.repeat(63)}`,
  `chunks/../${'a'.repeat(61)}`,
  '',
  '/etc/passwd',
  'keys/../x',
  'tmp/x',
  'refs/heads/main',
];

const INVALID_REF_NAMES = [
  'refs/heads/../x',
  'refs/heads/a.lock',
  'refs/heads/',
  'heads/main',
  '../refs/heads/x',
  'refs/heads/a..b',
  'refs/other/x',
  'refs/heads/.hidden',
];

export function storeContract(
  name: string,
  make: () => Promise<StoreFixture>,
  options: StoreContractOptions = {},
): void {
  const rounds = options.rounds ?? 20;
  const listingKeys = options.listingKeys ?? 1001;

  describe(`Store contract: ${name}`, () => {
    describe('objects', () => {
      test('get of a missing key rejects with NotFoundError', () =>
        withStore(make, async (store) => {
          await assertNotFound(store.get(`chunks/${oidFor('missing')}`), 'missing chunk');
          await assertNotFound(store.get(`objects/${oidFor('missing')}`), 'missing object');
          await assertNotFound(store.get('keys/missing'), 'missing key file');
        }));

      test('put/get round-trips empty, small and 5 MiB objects byte for byte', () =>
        withStore(make, async (store) => {
          const cases: [string, Buffer][] = [
            ['empty', Buffer.alloc(0)],
            ['small', Buffer.from('hello, store\n')],
            ['binary', patternBytes('binary', 4099)],
            ['large', patternBytes('large', 5 * MiB)],
          ];
          for (const [label, data] of cases) {
            const key = `chunks/${oidFor(label)}`;
            await store.put(key, data);
            const back = await store.get(key);
            assert.equal(back.length, data.length, `${label}: length`);
            assert.ok(back.equals(data), `${label}: bytes differ`);
          }
          for (const key of [`objects/${oidFor('obj')}`, 'keys/master', 'meta/config']) {
            const data = patternBytes(key, 300);
            await store.put(key, data);
            assert.ok((await store.get(key)).equals(data), key);
          }
        }));

      test('accepts a Uint8Array view into a larger buffer and stores only the view', () =>
        withStore(make, async (store) => {
          const backing = patternBytes('backing', 1000);
          const view = new Uint8Array(backing.buffer, backing.byteOffset + 100, 200);
          const key = `chunks/${oidFor('view')}`;
          await store.put(key, view);
          assert.ok((await store.get(key)).equals(backing.subarray(100, 300)));
        }));

      test('putting an existing key succeeds and leaves it intact', () =>
        withStore(make, async (store) => {
          const key = `chunks/${oidFor('again')}`;
          const data = patternBytes('again', 70_000);
          await store.put(key, data);
          await store.put(key, data);
          assert.ok((await store.get(key)).equals(data));
          // Concurrent writers of the same content are the normal case with deduplication.
          await Promise.all(Array.from({ length: 8 }, () => store.put(key, data)));
          assert.ok((await store.get(key)).equals(data));
          assert.deepEqual(
            (await collectList(store, 'chunks/')).map((k) => [k.key, k.size]),
            [[key, data.length]],
          );
        }));

      test('create stores an absent key file once; on an existing key it answers false and changes nothing', () =>
        withStore(make, async (store) => {
          for (const key of ['meta/created', 'keys/created']) {
            const first = patternBytes(`${key} first`, 300);
            // False only where a retry after a lost reply met this very write (the contract allows it).
            const created = await store.create(key, first);
            assert.ok((await store.get(key)).equals(first), `${key}: stored (created: ${created})`);
            assert.equal(await store.create(key, patternBytes(`${key} second`, 300)), false);
            assert.equal(await store.create(key, first), false, `${key}: same bytes again`);
            assert.ok((await store.get(key)).equals(first), `${key}: left as first written`);
          }
          // A key written by put exists for create too.
          await store.put('meta/put-first', Buffer.from('put'));
          assert.equal(await store.create('meta/put-first', Buffer.from('create')), false);
          assert.equal((await store.get('meta/put-first')).toString(), 'put');
          // A removed key may be created again.
          await store.delete('meta/created');
          await store.create('meta/created', Buffer.from('again'));
          assert.equal((await store.get('meta/created')).toString(), 'again');
        }));

      test('create of an object key or an invalid key is a TypeError, and nothing changes', () =>
        withStore(make, async (store) => {
          const before = await visibleState(store);
          for (const key of [`chunks/${oidFor('c')}`, `objects/${oidFor('o')}`, ...INVALID_KEYS])
            await assert.rejects(store.create(key, Buffer.from('x')), TypeError, key);
          assert.equal(await visibleState(store), before);
        }));

      if (options.concurrentCas) {
        test(`${CONTENDERS} racing creates of one key: at most one wins, and the key holds its bytes, ${Math.min(rounds, 5)} rounds`, () =>
          withStore(make, async (store) => {
            for (let round = 0; round < Math.min(rounds, 5); round++) {
              const key = `meta/race-${round}`;
              const bodies = Array.from({ length: CONTENDERS }, (_, i) =>
                Buffer.from(`round ${round} contender ${i}\n`),
              );
              const results = await Promise.all(bodies.map((b) => store.create(key, b)));
              const winners = bodies.filter((_, i) => results[i]);
              // Under injected faults a winner whose reply was lost answers false on its retry
              // (the contract allows that); two trues would be two writers both told they won.
              assert.ok(winners.length <= 1, `round ${round}: ${winners.length} winners`);
              const stored = await store.get(key);
              assert.ok(
                bodies.some((b) => b.equals(stored)),
                `round ${round}: stored bytes are one contender's`,
              );
              if (winners[0]) assert.ok(winners[0].equals(stored), `round ${round}: the winner's`);
            }
          }));
      }

      test('has answers a 1000-key batch in order, mixing present and absent keys', () =>
        withStore(make, async (store) => {
          assert.deepEqual(await store.has([]), []);
          const keys = Array.from({ length: 1000 }, (_, i) =>
            i % 3 === 0 ? `objects/${oidFor(`has-${i}`)}` : `chunks/${oidFor(`has-${i}`)}`,
          );
          const present = keys.map((_, i) => i % 7 === 0 || i % 11 === 5);
          await Promise.all(
            keys.map((key, i) =>
              present[i] ? store.put(key, Buffer.from(`value ${i}`)) : undefined,
            ),
          );
          assert.deepEqual(await store.has(keys), present);
          const reversed = [...keys].reverse();
          assert.deepEqual(await store.has(reversed), [...present].reverse());
          // The same key twice in one batch gets two answers.
          const dup = keys[0]!;
          assert.deepEqual(await store.has([dup, keys[1]!, dup]), [
            present[0],
            present[1],
            present[0],
          ]);
        }));

      test('list(prefix) returns exactly the keys under the prefix with their sizes', () =>
        withStore(make, async (store) => {
          assert.deepEqual(await collectList(store, ''), []);
          const chunksAb = [0, 1, 2].map((i) => `chunks/${oidWithPrefix(`ab${i}`, `ab-${i}`)}`);
          const chunksAbc = `chunks/${oidWithPrefix('abc', 'abc')}`;
          const chunksCd = [0, 1].map((i) => `chunks/${oidWithPrefix('cd', `cd-${i}`)}`);
          const objectsAb = [0, 1].map((i) => `objects/${oidWithPrefix('ab', `obj-${i}`)}`);
          const keyFiles = ['keys/main', 'keys/backup'];
          const meta = ['meta/info'];
          const all = [...chunksAb, chunksAbc, ...chunksCd, ...objectsAb, ...keyFiles, ...meta];
          const sizes = new Map(all.map((key, i) => [key, i * 37]));
          for (const key of all) await store.put(key, patternBytes(key, sizes.get(key)!));

          const expect = async (prefix: string, keys: string[]): Promise<void> => {
            const expected = keys
              .map((key) => ({ key, size: sizes.get(key)! }))
              .sort((a, b) => (a.key < b.key ? -1 : 1));
            assert.deepEqual(
              await collectList(store, prefix),
              expected,
              `list(${JSON.stringify(prefix)})`,
            );
          };
          await expect('', all);
          await expect('chunks/', [...chunksAb, chunksAbc, ...chunksCd]);
          await expect('chunks/ab', [...chunksAb, chunksAbc]);
          await expect('chunks/abc', [chunksAbc]);
          await expect('chunks/a', [...chunksAb, chunksAbc]);
          await expect('chunks/cd', chunksCd);
          await expect('chunks/ef', []);
          await expect(chunksAb[1]!, [chunksAb[1]!]);
          await expect('objects/', objectsAb);
          await expect('objects/ab', objectsAb);
          await expect('keys/', keyFiles);
          await expect('keys/m', ['keys/main']);
          await expect('meta/', meta);
          await expect('nothing/', []);
          // Whatever a backend uses for in-progress writes must never surface as a key.
          for (const { key } of await collectList(store, ''))
            assert.ok(isValidKey(key), `listed a non-key: ${key}`);
        }));

      test('list reflects deletes and tolerates the consumer stopping early', () =>
        withStore(make, async (store) => {
          const keys = [0, 1, 2, 3].map((i) => `chunks/${oidFor(`early-${i}`)}`);
          for (const key of keys) await store.put(key, Buffer.from(key));
          for await (const item of store.list('chunks/')) {
            assert.ok(keys.includes(item.key));
            break;
          }
          await store.delete(keys[0]!);
          assert.deepEqual(
            (await collectList(store, 'chunks/')).map((k) => k.key),
            keys.slice(1).sort(),
          );
        }));

      test('delete removes a key; deleting a missing key succeeds', () =>
        withStore(make, async (store) => {
          const key = `chunks/${oidFor('doomed')}`;
          const keep = `chunks/${oidFor('kept')}`;
          await store.put(key, Buffer.from('doomed'));
          await store.put(keep, Buffer.from('kept'));
          await store.delete(key);
          await assertNotFound(store.get(key), 'deleted key');
          assert.deepEqual(await store.has([key, keep]), [false, true]);
          await store.delete(key);
          await store.delete(`objects/${oidFor('never existed')}`);
          await store.delete('keys/never');
          assert.ok((await store.get(keep)).equals(Buffer.from('kept')));
          // A deleted key can be written again.
          await store.put(key, Buffer.from('doomed'));
          assert.ok((await store.get(key)).equals(Buffer.from('doomed')));
        }));

      test('invalid keys are rejected without touching the backend', () =>
        withStore(make, async (store) => {
          await store.put(`chunks/${oidFor('witness')}`, Buffer.from('witness'));
          const before = await visibleState(store);
          const good = `chunks/${oidFor('good')}`;
          for (const key of INVALID_KEYS) {
            const label = JSON.stringify(key);
            await assert.rejects(() => store.get(key), TypeError, `get ${label}`);
            await assert.rejects(() => store.put(key, Buffer.from('x')), TypeError, `put ${label}`);
            await assert.rejects(() => store.has([good, key]), TypeError, `has ${label}`);
            await assert.rejects(() => store.delete(key), TypeError, `delete ${label}`);
          }
          assert.equal(await visibleState(store), before);
        }));

      test('put is atomic: readers racing a 5 MiB put see nothing or all of it', () =>
        withStore(make, async (store) => {
          const key = `chunks/${oidFor('atomic')}`;
          const data = patternBytes('atomic', 5 * MiB);
          let done = false;
          const seen: number[] = [];
          const readers = Array.from({ length: 3 }, async () => {
            while (!done) {
              try {
                const got = await store.get(key);
                seen.push(got.length);
                assert.ok(
                  got.equals(data),
                  `a reader saw ${got.length} bytes that are not the object`,
                );
              } catch (err) {
                if (!isNotFound(err)) throw err;
              }
              await new Promise((resolve) => setImmediate(resolve));
            }
          });
          await store.put(key, data);
          done = true;
          await Promise.all(readers);
          assert.ok((await store.get(key)).equals(data));
        }));

      test('list pages through more keys than one page holds, naming each key once', () =>
        withStore(make, async (store) => {
          const count = listingKeys;
          const keys = Array.from({ length: count }, (_, i) => `chunks/${oidFor(`page-${i}`)}`);
          for (let i = 0; i < keys.length; i += 16)
            await Promise.all(keys.slice(i, i + 16).map((key) => store.put(key, Buffer.from(key))));
          const listed: string[] = [];
          for await (const { key, size } of store.list('chunks/')) {
            listed.push(key);
            assert.equal(size, Buffer.byteLength(key), key);
          }
          assert.equal(listed.length, count, 'every key, and each once');
          assert.equal(new Set(listed).size, count, 'no key twice');
          assert.deepEqual(listed.sort(), [...keys].sort());
        }));

      test('a call whose signal is already aborted rejects and changes nothing', () =>
        withStore(make, async (store) => {
          const present = `chunks/${oidFor('present')}`;
          await store.put(present, Buffer.from('present'));
          assert.equal(await store.compareAndSwapRef('refs/heads/main', null, oidFor('A')), true);
          const before = await visibleState(store);
          const controller = new AbortController();
          const reason = new Error('stopped by the test');
          controller.abort(reason);
          const options = { signal: controller.signal };
          const absent = `chunks/${oidFor('absent')}`;
          const calls: [string, () => Promise<unknown>][] = [
            ['get', () => store.get(present, options)],
            ['put', () => store.put(absent, Buffer.from('absent'), options)],
            ['has', () => store.has([present], options)],
            ['delete', () => store.delete(present, options)],
            ['readRef', () => store.readRef('refs/heads/main', options)],
            ['create', () => store.compareAndSwapRef('refs/heads/x', null, oidFor('B'), options)],
            ['listRefs', () => store.listRefs('refs/', options)],
          ];
          for (const [what, call] of calls)
            await assert.rejects(call, (err: unknown) => isAbortOf(err, reason), what);
          assert.equal(await visibleState(store), before);
        }));

      test('close may be called more than once', () =>
        withStore(make, async (store) => {
          await store.put(`chunks/${oidFor('before close')}`, Buffer.from('x'));
          await store.close();
          await store.close();
        }));

      test('capabilities are fixed, and each one offered keeps the contract of the calls it replaces', () =>
        withStore(make, async (store) => {
          const capabilities = store.capabilities;
          assert.equal(store.capabilities, capabilities, 'the same object every time');
          assert.equal(typeof capabilities.freshBuffers, 'boolean');
          const keys = [0, 1, 2].map((i) => `objects/${oidFor(`capable-${i}`)}`);
          const data = keys.map((key) => patternBytes(key, 1000));
          const absent = `objects/${oidFor('not there')}`;
          if (capabilities.batch) {
            await capabilities.batch.putMany(keys.map((key, i) => ({ key, data: data[i]! })));
            assert.deepEqual(await store.has(keys), [true, true, true]);
            const found = await capabilities.batch.getMany([...keys, absent]);
            assert.deepEqual([...found.keys()].sort(), [...keys].sort(), 'absent keys left out');
            keys.forEach((key, i) => assert.ok(found.get(key)?.equals(data[i]!), key));
            await assert.rejects(() => capabilities.batch!.getMany([keys[0]!, '../x']), TypeError);
            await assert.rejects(
              () => capabilities.batch!.putMany([{ key: 'tmp/x', data: Buffer.alloc(1) }]),
              TypeError,
            );
          } else {
            for (const [i, key] of keys.entries()) await store.put(key, data[i]!);
          }
          if (capabilities.localFiles) {
            const files = await capabilities.localFiles.lend(keys);
            assert.deepEqual(
              files.map((f) => [f.key, f.size]),
              keys.map((key, i) => [key, data[i]!.length]),
            );
            await assertNotFound(capabilities.localFiles.lend([keys[0]!, absent]), 'lend');
            // Adopting what the store already holds changes nothing.
            const result = await capabilities.localFiles.adopt(files);
            assert.deepEqual(result, { linked: 0, copied: 0, present: 3, bytes: 0 });
            await assert.rejects(() => capabilities.localFiles!.lend(['keys/main']), TypeError);
          }
          if (capabilities.replicas) {
            // Just written through the store: every copy holds them.
            assert.deepEqual(await capabilities.replicas.hasEverywhere([...keys, absent]), [
              true,
              true,
              true,
              false,
            ]);
            await assert.rejects(() => capabilities.replicas!.hasEverywhere(['../x']), TypeError);
          }
          if (capabilities.streaming) {
            const streaming = capabilities.streaming;
            for (const [i, key] of keys.entries()) {
              const opened = await streaming.getStream(key);
              assert.equal(opened.size, data[i]!.length);
              const parts: Buffer[] = [];
              for await (const part of opened.body as AsyncIterable<Buffer>) parts.push(part);
              assert.ok(Buffer.concat(parts).equals(data[i]!), `${key} streamed as stored`);
            }
            await assertNotFound(streaming.getStream(absent), 'getStream');
            await assert.rejects(() => streaming.getStream('../x'), TypeError);
            // A stream abandoned after opening is destroyed, and the store goes on serving.
            (await streaming.getStream(keys[1]!)).body.destroy();
            assert.ok((await store.get(keys[1]!)).equals(data[1]!));
          }
          if (capabilities.freshBuffers) {
            const [a, b] = [await store.get(keys[0]!), await store.get(keys[0]!)];
            assert.notEqual(a.buffer, b.buffer, 'two reads share no memory');
          }
          for (const [i, key] of keys.entries()) assert.ok((await store.get(key)).equals(data[i]!));
        }));
    });

    describe('refs', () => {
      const main = 'refs/heads/main';
      const [A, B, C] = [oidFor('commit A'), oidFor('commit B'), oidFor('commit C')];

      test('readRef of a missing ref is null', () =>
        withStore(make, async (store) => {
          assert.equal(await store.readRef(main), null);
          assert.equal(await store.readRef('refs/tags/v1.0'), null);
          assert.equal(await store.readRef('refs/heads/feature/deep/name'), null);
        }));

      test('create with expected null succeeds once; a second create returns false', () =>
        withStore(make, async (store) => {
          assert.equal(await store.compareAndSwapRef(main, null, A), true);
          assert.equal((await store.readRef(main))?.oid, A);
          assert.equal(await store.compareAndSwapRef(main, null, B), false);
          assert.equal((await store.readRef(main))?.oid, A);
        }));

      test('update with the current value succeeds; with a stale value returns false and changes nothing', () =>
        withStore(make, async (store) => {
          assert.equal(await store.compareAndSwapRef(main, null, A), true);
          const atA = await store.readRef(main);
          assert.ok(atA);
          assert.equal(await store.compareAndSwapRef(main, atA, B), true);
          const atB = await store.readRef(main);
          assert.equal(atB?.oid, B);
          assert.equal(
            await store.compareAndSwapRef(main, atA, C),
            false,
            'stale expected value must lose',
          );
          assert.equal((await store.readRef(main))?.oid, B);
          // A fabricated RefValue for an OID the ref never held must lose too.
          const forged: RefValue = { oid: C, version: C };
          assert.equal(await store.compareAndSwapRef(main, forged, A), false);
          assert.equal((await store.readRef(main))?.oid, B);
          // Expecting absence of an existing ref is stale as well.
          assert.equal(await store.compareAndSwapRef(main, null, null), false);
          assert.equal((await store.readRef(main))?.oid, B);
        }));

      test('update and delete against a missing ref return false', () =>
        withStore(make, async (store) => {
          const ghost: RefValue = { oid: A, version: A };
          assert.equal(await store.compareAndSwapRef(main, ghost, B), false);
          assert.equal(await store.compareAndSwapRef(main, ghost, null), false);
          assert.equal(await store.readRef(main), null);
        }));

      test('CAS with next null deletes the ref; a stale delete changes nothing', () =>
        withStore(make, async (store) => {
          assert.equal(await store.compareAndSwapRef(main, null, A), true);
          const atA = await store.readRef(main);
          assert.ok(atA);
          assert.equal(await store.compareAndSwapRef(main, atA, B), true);
          assert.equal(
            await store.compareAndSwapRef(main, atA, null),
            false,
            'stale delete must lose',
          );
          assert.equal((await store.readRef(main))?.oid, B);
          const atB = await store.readRef(main);
          assert.equal(await store.compareAndSwapRef(main, atB, null), true);
          assert.equal(await store.readRef(main), null);
          assert.equal((await store.listRefs('refs/')).has(main), false);
          // Deleted refs can be created again.
          assert.equal(await store.compareAndSwapRef(main, null, C), true);
          assert.equal((await store.readRef(main))?.oid, C);
        }));

      test('readRef of a name that is only a folder of other refs is null', () =>
        withStore(make, async (store) => {
          assert.equal(await store.compareAndSwapRef('refs/heads/feature/x', null, A), true);
          assert.equal(await store.readRef('refs/heads/feature'), null);
          assert.equal((await store.readRef('refs/heads/feature/x'))?.oid, A);
        }));

      test('expected { oid, version: oid } has value semantics: it matches while the ref holds oid', () =>
        withStore(make, async (store) => {
          assert.equal(await store.compareAndSwapRef(main, null, A), true);
          assert.equal(await store.compareAndSwapRef(main, { oid: A, version: A }, B), true);
          assert.equal((await store.readRef(main))?.oid, B);
          assert.equal(await store.compareAndSwapRef(main, { oid: A, version: A }, C), false);
          assert.equal(await store.compareAndSwapRef(main, { oid: B, version: B }, null), true);
          assert.equal(await store.readRef(main), null);
        }));

      test('CAS from null to null is true exactly when the ref is absent, and changes nothing', () =>
        withStore(make, async (store) => {
          assert.equal(await store.compareAndSwapRef(main, null, null), true);
          assert.equal(await store.readRef(main), null);
          assert.equal((await store.listRefs('refs/')).size, 0);
          assert.equal(await store.compareAndSwapRef(main, null, A), true);
          assert.equal(await store.compareAndSwapRef(main, null, null), false);
          assert.equal((await store.readRef(main))?.oid, A);
        }));

      test('a ref target that is not an OID is a TypeError, and nothing changes', () =>
        withStore(make, async (store) => {
          assert.equal(await store.compareAndSwapRef(main, null, A), true);
          const atA = await store.readRef(main);
          const before = await visibleState(store);
          for (const next of ['', 'abc', A.toUpperCase(), `${A}0`, ` ${A}`, `${A.slice(1)}g`]) {
            const label = JSON.stringify(next);
            await assert.rejects(() => store.compareAndSwapRef(main, atA, next), TypeError, label);
            await assert.rejects(
              () => store.compareAndSwapRef('refs/heads/new', null, next),
              TypeError,
              label,
            );
          }
          assert.equal(await visibleState(store), before);
        }));

      test('listRefs(prefix) returns exactly the refs under the prefix', () =>
        withStore(make, async (store) => {
          assert.equal((await store.listRefs('refs/')).size, 0);
          const refs: Record<string, string> = {
            'refs/heads/main': A,
            'refs/heads/feature/x': B,
            'refs/heads/feature/y': C,
            'refs/tags/v1.0': A,
            'refs/remotes/origin/main': B,
          };
          for (const [refName, oid] of Object.entries(refs))
            assert.equal(await store.compareAndSwapRef(refName, null, oid), true, refName);
          const expect = async (prefix: string, names: string[]): Promise<void> => {
            const listed = await store.listRefs(prefix);
            assert.deepEqual([...listed.keys()].sort(), [...names].sort(), `listRefs(${prefix})`);
            for (const [refName, value] of listed) {
              assert.equal(value.oid, refs[refName], refName);
              assert.equal(typeof value.version, 'string');
            }
          };
          await expect('refs/', Object.keys(refs));
          await expect('refs/heads/', [
            'refs/heads/main',
            'refs/heads/feature/x',
            'refs/heads/feature/y',
          ]);
          await expect('refs/heads/feature/', ['refs/heads/feature/x', 'refs/heads/feature/y']);
          await expect('refs/tags/', ['refs/tags/v1.0']);
          await expect('refs/remotes/', ['refs/remotes/origin/main']);
          await expect('refs/heads/nope/', []);
          // A value from listRefs is as good as one from readRef for a CAS.
          const listed = (await store.listRefs('refs/heads/')).get('refs/heads/main');
          assert.ok(listed);
          assert.equal(await store.compareAndSwapRef('refs/heads/main', listed, C), true);
          const x = await store.readRef('refs/heads/feature/x');
          assert.equal(await store.compareAndSwapRef('refs/heads/feature/x', x, null), true);
          await expect('refs/heads/feature/', ['refs/heads/feature/y']);
          // Objects are not refs and refs are not objects.
          assert.deepEqual(await collectList(store, ''), []);
        }));

      test('invalid ref names are rejected without touching the backend', () =>
        withStore(make, async (store) => {
          assert.equal(await store.compareAndSwapRef(main, null, A), true);
          const before = await visibleState(store);
          for (const refName of INVALID_REF_NAMES) {
            const label = JSON.stringify(refName);
            await assert.rejects(() => store.readRef(refName), TypeError, `readRef ${label}`);
            await assert.rejects(
              () => store.compareAndSwapRef(refName, null, A),
              TypeError,
              `create ${label}`,
            );
            await assert.rejects(
              () => store.compareAndSwapRef(refName, { oid: A, version: A }, null),
              TypeError,
              `delete ${label}`,
            );
          }
          assert.equal(await visibleState(store), before);
        }));

      if (options.concurrentCas) {
        test(`${CONTENDERS} racing CAS calls from the same expected value: exactly one wins, ${rounds} rounds`, () =>
          withStore(make, async (store) => {
            const race = 'refs/heads/race';
            let expected: RefValue | null = null;
            for (let round = 0; round < rounds; round++) {
              const candidates = Array.from({ length: CONTENDERS }, (_, i) =>
                oidFor(`round ${round} contender ${i}`),
              );
              const results = await Promise.all(
                candidates.map((oid) => store.compareAndSwapRef(race, expected, oid)),
              );
              const winners = candidates.filter((_, i) => results[i]);
              assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`);
              const now = await store.readRef(race);
              assert.equal(
                now?.oid,
                winners[0],
                `round ${round}: the ref must hold the winner's value`,
              );
              expected = now;
            }
          }));
      }
    });
  });
}
