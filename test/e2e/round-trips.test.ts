/**
 * Round trips that wait on each other, counted through a recording proxy in front of a real
 * `mediagit server`: what an incremental push (a few files changed since the last push), a clone
 * and a fetch cost on a link whose round-trip time dominates. The proxy holds every request a
 * moment before forwarding it, so requests the client sends in parallel really overlap and are
 * counted as one round trip (recording-proxy.ts, `sequentialRoundTrips`); the count is a number
 * of round trips, not a time. Counted on this small repository (24 files, 4 changed): incremental
 * push 16 → 4 → 3 → 2 (negotiate, then one pack carrying the ref update, whose answer brings the
 * gc lease), first push 19 → 5 → 4 → 3; a push of 12 MiB 8 → 4 → 3 (its chunk packs go at once,
 * then the structured objects with the ref update);
 * with the history call (docs/protocol.md "History"), clone 16 → 5–6 and pull 12 → 3, and a deep
 * history's clone and pull cost what a shallow one's do (2 and 12 commits: 16 and 27 before).
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { runCli, tempDir, type CliResult } from '../support/cli.js';
import { writeRandomFiles } from '../support/corpus.js';
import { startRecordingProxy, type RecordingProxy } from '../support/recording-proxy.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';
import { storedChunks } from '../support/sync-fixtures.js';
import { assertTreesEqual, hashTree } from '../support/tree.js';

/** The hold that makes parallel requests overlap; a latency, never a limit asserted on. */
const HOLD_MS = 20;
/** Issue 18: an incremental push costs at most this many sequential round trips. */
const PUSH_TARGET = 4;
/** What it costs now: the negotiation, then its one pack carrying the ref update. */
const INCREMENTAL_PUSH = 2;
/** A push of several packs: negotiation, chunk packs at once, structured objects with the update. */
const BIG_PUSH = 3;

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

interface Setup {
  server: TestServer;
  proxy: RecordingProxy;
  url: string;
  env: Record<string, string | undefined>;
}

async function setup(config?: string): Promise<Setup> {
  const server = await startTestServer(config === undefined ? {} : { config });
  closers.push(() => server.close());
  const proxy = await startRecordingProxy({
    target: server.url,
    hold: { match: () => true, ms: HOLD_MS },
  });
  closers.push(() => proxy.close());
  const env = {
    XDG_CONFIG_HOME: await tempDir('rt-xdg'),
    MEDIAGIT_TOKEN: await server.token('*', 'write', 'alice'),
  };
  return { server, proxy, url: `${proxy.url}/hero`, env };
}

function cli(cwd: string, env: Record<string, string | undefined>) {
  return (...args: string[]): Promise<CliResult> => runCli(args, { cwd, env, timeoutMs: 300_000 });
}

const V1_FILES = Array.from({ length: 24 }, (_, i) => `assets/${i % 4}/file_${i}.bin`);
/** v2: three files rewritten, one added, in two folders. */
const V2_FILES = ['assets/0/file_0.bin', 'assets/1/file_5.bin', 'assets/2/file_6.bin', 'new.bin'];

/** The count, with the chain of requests that made it when it is over `limit`. */
function measured(proxy: RecordingProxy, what: string, limit?: number): number {
  const chain: string[] = [];
  const count = proxy.sequentialRoundTrips(chain);
  if (limit !== undefined)
    assert.ok(
      count <= limit,
      `${what}: ${count} sequential round trips, over ${limit}:\n${chain.join('\n')}`,
    );
  return count;
}

interface Counts {
  firstPush: number;
  push: number;
  clone: number;
  fetch: number;
  /** GET /refs?prefix=refs/ and GET /meta/repository sent by the clone and the pull. */
  refReads: number;
}

/** An artist's repository with v1 committed and the remote added, not pushed yet. */
async function artistWithV1(
  s: Setup,
  name: string,
): Promise<{ work: string; artist: string; a: ReturnType<typeof cli> }> {
  const work = await tempDir(name);
  const artist = path.join(work, 'artist');
  await mkdir(artist);
  const a = cli(artist, s.env);
  await a('init', '-q');
  await writeRandomFiles(artist, 'v1', V1_FILES);
  await a('add', '.');
  await a('commit', '-q', '-m', 'v1');
  await a('remote', 'add', 'origin', s.url);
  return { work, artist, a };
}

/** v1 pushed and cloned, v2 pushed and fetched into the clone, each counted. */
async function roundTrips(s: Setup, pushLimit?: number): Promise<Counts> {
  const { work, artist, a } = await artistWithV1(s, 'rt-work');
  s.proxy.reset();
  await a('push', '-q', 'origin', 'main');
  const firstPush = measured(s.proxy, 'first push');

  s.proxy.reset();
  const clone = path.join(work, 'clone');
  await cli(work, s.env)('clone', '-q', s.url, clone);
  const cloned = measured(s.proxy, 'clone');
  const cloneAsked = refReads(s.proxy);
  assertTreesEqual(await hashTree(clone), await hashTree(artist), 'clone of v1');

  await writeRandomFiles(artist, 'v2', V2_FILES);
  await a('add', '.');
  await a('commit', '-q', '-m', 'v2');
  s.proxy.reset();
  await a('push', '-q');
  const push = measured(s.proxy, 'incremental push', pushLimit);

  s.proxy.reset();
  await cli(clone, s.env)('pull', '-q');
  const fetched = measured(s.proxy, 'pull');
  const pullAsked = refReads(s.proxy);
  assertTreesEqual(await hashTree(clone), await hashTree(artist), 'clone after pull of v2');
  return { firstPush, push, clone: cloned, fetch: fetched, refReads: cloneAsked + pullAsked };
}

/** Separate reads of the refs or the descriptor: what a negotiation answers in its one call. */
function refReads(proxy: RecordingProxy): number {
  return proxy.requests.filter(
    (r) =>
      r.method === 'GET' &&
      (/\/refs\?prefix=refs%2F(&|$)/.test(r.url) || r.url.endsWith('/meta/repository')),
  ).length;
}

describe('sequential round trips against mediagit server', () => {
  test(
    `an incremental push costs ${INCREMENTAL_PUSH} sequential round trips (negotiate, one pack carrying the ref update; target ${PUSH_TARGET})`,
    { timeout: 300_000 },
    async (t) => {
      const s = await setup();
      const counts = await roundTrips(s, INCREMENTAL_PUSH);
      t.diagnostic(`round trips: ${JSON.stringify(counts)}`);
      // A plain first push's packs carry its descriptor: no PUT of it in front of them.
      assert.ok(counts.firstPush <= 2, `first push: ${counts.firstPush} sequential round trips`);
      // Clone and pull learn the refs and the descriptor from their negotiation (the clone reads
      // the descriptor once more at its end, for the one-copy eviction).
      assert.ok(
        counts.refReads <= 1,
        `refs or descriptor read separately ${counts.refReads} times`,
      );
    },
  );

  test(
    `a push of more than 8 MiB (three 4 MiB files) costs at most ${BIG_PUSH} sequential round trips`,
    { timeout: 300_000 },
    async (t) => {
      const s = await setup();
      const artist = path.join(await tempDir('rt-big'), 'artist');
      await mkdir(artist);
      const a = cli(artist, s.env);
      await a('init', '-q');
      await writeRandomFiles(artist, 'v1', V1_FILES.slice(0, 4));
      await a('add', '.');
      await a('commit', '-q', '-m', 'v1');
      await a('remote', 'add', 'origin', s.url);
      await a('push', '-q', 'origin', 'main');
      await writeRandomFiles(
        artist,
        'big',
        ['big/a.bin', 'big/b.bin', 'big/c.bin'],
        4 * 1024 * 1024,
      );
      await a('add', '.');
      await a('commit', '-q', '-m', 'big');
      s.proxy.reset();
      await a('push', '-q');
      const uploaded = s.proxy.requests.filter((r) => r.url.endsWith('/objects/pack')).length;
      const count = measured(s.proxy, 'push of 12 MiB', BIG_PUSH);
      t.diagnostic(`push of 12 MiB: ${count} sequential round trips, ${uploaded} packs`);
    },
  );

  test(
    "a pull's downloads and a push's packs go on connections opened beside an earlier round trip, not after it",
    { timeout: 300_000 },
    async (t) => {
      const s = await setup();
      const { work, artist, a } = await artistWithV1(s, 'rt-warm');
      await a('push', '-q', 'origin', 'main');
      const clone = path.join(work, 'clone');
      await cli(work, s.env)('clone', '-q', s.url, clone);
      // Each of these asks for several objects at once, more than the one connection it has.
      await writeRandomFiles(artist, 'big', ['big/a.bin', 'big/b.bin', 'big/c.bin'], 4 << 20);
      await writeRandomFiles(artist, 'v2', V2_FILES);
      await a('add', '.');
      await a('commit', '-q', '-m', 'v2');
      const counted: Record<string, { plain: number; handshakes: number }> = {};
      const count = (what: string): void => {
        const chain: string[] = [];
        const handshakes = s.proxy.sequentialRoundTrips(chain, undefined, { handshakes: true });
        const plain = s.proxy.sequentialRoundTrips();
        counted[what] = { plain, handshakes };
        // The first connection's handshake is the one round trip a connection may add: any
        // other opened when an answer came in costs its first request a round trip more.
        assert.ok(
          handshakes <= plain + 1,
          `${what}: ${handshakes} sequential round trips counting handshakes, ${plain} without:\n${chain.join('\n')}`,
        );
      };
      s.proxy.reset();
      await a('push', '-q');
      const packs = s.proxy.requests.filter((r) => r.url.endsWith('/objects/pack')).length;
      count('push');
      s.proxy.reset();
      await cli(clone, s.env)('pull', '-q');
      const chunks = s.proxy.requests.filter((r) => r.url.includes('/chunks/')).length;
      count('pull');
      t.diagnostic(
        `${JSON.stringify(counted)}; push ${packs} packs, pull ${chunks} chunk requests`,
      );
      assert.ok(packs > 2 && chunks > 2, `push ${packs} packs, pull ${chunks} chunk requests`);
      assertTreesEqual(await hashTree(clone), await hashTree(artist), 'clone after pull of v2');
    },
  );

  test(
    'clone and pull of a deep history cost the same round trips whatever its depth (one history call)',
    { timeout: 300_000 },
    async (t) => {
      const s = await setup();
      const counts: { depth: number; clone: number; pull: number; walked: number }[] = [];
      for (const depth of [2, 12]) {
        const work = await tempDir(`rt-deep-${depth}`);
        const artist = path.join(work, 'artist');
        await mkdir(artist);
        const a = cli(artist, s.env);
        await a('init', '-q');
        await a('remote', 'add', 'origin', `${s.url}-${depth}`);
        // Each commit changes one file three folders down: a new commit, three trees and a
        // manifest per level of history, which a level-by-level walk asks for one level at a time.
        const commitLevels = async (from: number): Promise<void> => {
          for (let i = from; i < from + depth; i++) {
            await writeRandomFiles(artist, `d${i}`, [`a/b/c/take_${i % 3}.bin`]);
            await a('add', '.');
            await a('commit', '-q', '-m', `take ${i}`);
          }
        };
        await commitLevels(0);
        await a('push', '-q', 'origin', 'main');
        s.proxy.reset();
        const clone = path.join(work, 'clone');
        await cli(work, s.env)('clone', '-q', `${s.url}-${depth}`, clone);
        const cloned = measured(s.proxy, `clone of ${depth} commits`);
        const walked = s.proxy.requests.filter(
          (r) => /\/objects\/[0-9a-f]{64}$/.test(r.url) || r.url.endsWith('/objects/fetch'),
        ).length;
        await commitLevels(depth);
        await a('push', '-q');
        s.proxy.reset();
        await cli(clone, s.env)('pull', '-q');
        const pulled = measured(s.proxy, `pull of ${depth} commits`);
        assertTreesEqual(await hashTree(clone), await hashTree(artist), `pull of ${depth}`);
        counts.push({ depth, clone: cloned, pull: pulled, walked });
      }
      t.diagnostic(`round trips by depth: ${JSON.stringify(counts)}`);
      const [shallow, deep] = counts as [(typeof counts)[0], (typeof counts)[0]];
      assert.equal(deep.clone, shallow.clone, 'clone round trips grow with the depth');
      assert.equal(deep.pull, shallow.pull, 'pull round trips grow with the depth');
      assert.equal(deep.walked, 0, 'the clone asked for structured objects one level at a time');
    },
  );

  test(
    'a clone evicts the chunks its files share without asking the server whether it holds what it just served',
    { timeout: 300_000 },
    async () => {
      const s = await setup();
      const work = await tempDir('rt-shared');
      const artist = path.join(work, 'artist');
      await mkdir(artist);
      const a = cli(artist, s.env);
      await a('init', '-q');
      await writeRandomFiles(artist, 'shared', ['one.bin']);
      await copyFile(path.join(artist, 'one.bin'), path.join(artist, 'copy.bin'));
      await a('add', '.');
      await a('commit', '-q', '-m', 'two files, one content');
      await a('remote', 'add', 'origin', `${s.url}-shared`);
      await a('push', '-q', 'origin', 'main');
      s.proxy.reset();
      const clone = path.join(work, 'clone');
      await cli(work, s.env)('clone', '-q', `${s.url}-shared`, clone);
      const checks = s.proxy.requests.filter((r) => r.url.endsWith('/chunks/check')).length;
      assert.equal(checks, 0, 'the clone asked the server about chunks it had just fetched');
      assert.deepEqual(
        await storedChunks(path.join(clone, '.mediagit')),
        [],
        'the shared chunks were not evicted',
      );
      assertTreesEqual(await hashTree(clone), await hashTree(artist), 'clone');
    },
  );

  test(
    'a server without negotiate (as before it) gets the version-1 calls, and the same result',
    { timeout: 300_000 },
    async (t) => {
      const s = await setup('[server]\nnegotiate = false\n');
      const counts = await roundTrips(s);
      t.diagnostic(`round trips without negotiate: ${JSON.stringify(counts)}`);
      // The client asked once, heard "no such endpoint", and used the separate calls.
      const asked = s.proxy.requests.filter((r) => r.url.endsWith('/negotiate'));
      assert.ok(asked.length <= 1, `negotiate asked ${asked.length} times in one pull`);
      assert.ok(counts.push > PUSH_TARGET, `push: ${counts.push}`);
      assert.ok(counts.refReads >= 4, `refs and descriptor read ${counts.refReads} times`);
    },
  );
});
