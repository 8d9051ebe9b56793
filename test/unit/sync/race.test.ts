/**
 * Many clients racing to push to one remote, in-process: the ref compare-and-swap must let exactly
 * one push per round through, turn every other one into a NonFastForwardError, and never lose a
 * commit that a push acknowledged.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { NonFastForwardError } from '../../../src/errors/index.js';
import type { Oid } from '../../../src/objects/index.js';
import { silentProgress, walkHistory, type Repository } from '../../../src/repo/index.js';
import { LocalStore } from '../../../src/store/index.js';
import { fetchObjects, push } from '../../../src/sync/index.js';
import {
  MAIN,
  cloneLibrary,
  commitFiles,
  filesOf,
  fsckFull,
  initRepo,
} from '../../support/sync-fixtures.js';

const CLIENTS = 4;
const ROUNDS = 20;

interface Client {
  readonly name: string;
  readonly repo: Repository;
  tip: Oid;
}

test(`${CLIENTS} clients pushing to one remote for ${ROUNDS} rounds: one winner per round, no acknowledged commit lost`, async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-sync-race-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const remote = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await remote.initialize();

  const seed = await initRepo(path.join(root, 'seed'));
  const base = await commitFiles(
    seed,
    [],
    new Map([['README.txt', Buffer.from('shared base\n')]]),
    'base',
  );
  assert.equal(
    (await push(seed, remote, { oid: base, ref: MAIN, force: false }, silentProgress)).status,
    'created',
  );

  const clients: Client[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const { repo, tip } = await cloneLibrary(remote, path.join(root, `client-${i}`));
    assert.equal(tip, base);
    clients.push({ name: `client-${i}`, repo, tip: base });
  }

  const acknowledged: { oid: Oid; round: number; client: number }[] = [];
  const wins = new Array<number>(CLIENTS).fill(0);
  let rejectedBeforeUpload = 0;
  let rejectedAtSwap = 0;

  for (let round = 0; round < ROUNDS; round++) {
    const before = (await remote.readRef(MAIN))?.oid;
    // Every client records a file nobody else touches, on top of what it knows of the remote.
    const commits = await Promise.all(
      clients.map((c, i) =>
        commitFiles(
          c.repo,
          [c.tip],
          new Map([[`round-${round}/client-${i}.bin`, randomBytes(1000 + 97 * i)]]),
          `round ${round} by ${c.name}`,
        ),
      ),
    );
    // A random head start of 0-9 ms each, so the winner is not always whoever the loop starts first.
    const results = await Promise.allSettled(
      clients.map(async (c, i) => {
        await sleep(Math.floor(Math.random() * 10));
        return push(c.repo, remote, { oid: commits[i]!, ref: MAIN, force: false }, silentProgress);
      }),
    );

    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(
      winners.length,
      1,
      `round ${round}: ${winners.length} pushes succeeded (${results.map((r) => r.status).join(', ')})`,
    );
    const w = winners[0]!;
    for (const [i, r] of results.entries()) {
      if (r.status === 'fulfilled') continue;
      assert.ok(
        r.reason instanceof NonFastForwardError,
        `round ${round}, ${clients[i]!.name}: expected NonFastForwardError, got ${String(r.reason)}`,
      );
      assert.equal(r.reason.exitCode, 10);
      if (/moved while pushing/.test(r.reason.message)) rejectedAtSwap++;
      else rejectedBeforeUpload++;
    }
    const won = results[w];
    assert.ok(won?.status === 'fulfilled');
    assert.equal(won.value.new, commits[w]);
    assert.equal(won.value.old, before);
    assert.equal(won.value.status, 'fast-forward');
    assert.equal(
      (await remote.readRef(MAIN))?.oid,
      commits[w],
      `round ${round}: the remote must hold the winner's commit`,
    );
    acknowledged.push({ oid: commits[w]!, round, client: w });
    wins[w]!++;

    // Losers catch up the way `pull` does: fetch the remote tip, merge it with their own commit.
    await Promise.all(
      clients.map(async (c, i) => {
        if (i === w) {
          c.tip = commits[i]!;
          return;
        }
        await fetchObjects(c.repo, remote, [commits[w]!], { progress: silentProgress });
        c.tip = await commitFiles(
          c.repo,
          [commits[w]!, commits[i]!],
          new Map(),
          `merge round ${round} into ${c.name}`,
        );
      }),
    );
  }

  // A fresh clone holds every acknowledged commit, and the final snapshot every file they added.
  const { repo: fresh, tip } = await cloneLibrary(remote, path.join(root, 'verify'));
  assert.ok(tip);
  const history = new Set<Oid>();
  for await (const entry of walkHistory(fresh, [tip])) history.add(entry.oid);
  const lost = acknowledged.filter((a) => !history.has(a.oid));
  assert.deepEqual(lost, [], 'acknowledged commits missing from the remote history');
  const finalFiles = await filesOf(fresh, tip);
  for (const a of acknowledged) {
    const name = `round-${a.round}/client-${a.client}.bin`;
    assert.equal(
      finalFiles.get(name)?.oid,
      (await filesOf(fresh, a.oid)).get(name)?.oid,
      `${name} (acknowledged in round ${a.round}) is not in the final snapshot`,
    );
  }
  const fsck = await fsckFull(fresh);
  assert.deepEqual(fsck.problems, []);
  t.diagnostic(
    `${ROUNDS} rounds x ${CLIENTS} clients: wins per client ${wins.join('/')}; losers rejected before upload ${rejectedBeforeUpload}, at the ref swap ${rejectedAtSwap}; history ${history.size} commits`,
  );
});
