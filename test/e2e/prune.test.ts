/**
 * One copy on disk: `prune` evicts only chunks the remote confirms it holds. Unpushed commits,
 * staged content and an offline repository's content stay; what is evicted comes back from the
 * working tree or the remote. SIGKILL during prune, an on-demand fetch or a widen leaves a
 * repository fsck calls clean, and running the command again converges.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { mg, mgBytes, mgFail, tempDir } from '../support/cli.js';
import {
  killWhen,
  pushedVersions,
  SMALL_CHUNK_ARGS,
  storedChunks,
} from '../support/sync-fixtures.js';
import { hashTree } from '../support/tree.js';

const local = async (repo: string): Promise<Set<string>> =>
  new Set((await storedChunks(path.join(repo, '.mediagit'))).map((c) => c.oid));

test('prune never evicts what only the local store holds: an offline, unpushed commit and staged content survive and push later byte-identical', async () => {
  const work = await tempDir('prune-safe');
  const { remote } = await pushedVersions(work, 2);
  const clone = path.join(work, 'clone');
  await mg(work, 'clone', '-q', '--no-hardlinks', remote, clone);
  assert.equal((await local(clone)).size, 0, 'clone kept no copy of what it checked out');

  // Offline work: a new file and an edit, committed; another file staged.
  await rename(remote, `${remote}.away`);
  const made = randomBytes(250_000);
  const edited = randomBytes(300_000);
  const staged = randomBytes(150_000);
  await writeFile(path.join(clone, 'c.raw'), made);
  await writeFile(path.join(clone, 'a.raw'), edited);
  await mg(clone, 'add', '.');
  await mg(clone, 'commit', '-q', '-m', 'offline work');
  await writeFile(path.join(clone, 'd.raw'), staged);
  await mg(clone, 'add', 'd.raw');
  // Only here: the chunks the remote lacks (add . also re-stored unchanged b.raw, which it has).
  const onRemote = new Set((await storedChunks(`${remote}.away`)).map((c) => c.oid));
  const mine = new Set([...(await local(clone))].filter((oid) => !onRemote.has(oid)));
  assert.ok(mine.size > 0);

  // Offline: the remote cannot confirm anything, so nothing goes.
  const offline = await mgFail(clone, 'prune');
  assert.equal(offline.code, 12, offline.stderr);
  assert.match(offline.stderr, /nothing was evicted/);
  const still = await local(clone);
  assert.ok(
    [...mine].every((oid) => still.has(oid)),
    'offline prune evicted something',
  );
  await rename(`${remote}.away`, remote);
  // Online: the remote has none of these chunks either.
  await runPrune(clone, mine, 'online');
  // The content reads back with the remote gone, from the store.
  await rename(remote, `${remote}.away`);
  await rename(path.join(clone, 'c.raw'), path.join(work, 'c.moved'));
  const shown = await mgBytes(clone, 'show', 'HEAD:c.raw');
  assert.ok(shown.stdout.equals(made), 'the unpushed file reads offline');
  await rename(path.join(work, 'c.moved'), path.join(clone, 'c.raw'));
  await rename(`${remote}.away`, remote);

  await mg(clone, 'commit', '-q', '-m', 'staged file');
  await mg(clone, 'push', '-q');
  const copy = path.join(work, 'copy');
  await mg(work, 'clone', '-q', remote, copy);
  assert.ok((await readFile(path.join(copy, 'c.raw'))).equals(made));
  assert.ok((await readFile(path.join(copy, 'a.raw'))).equals(edited));
  assert.ok((await readFile(path.join(copy, 'd.raw'))).equals(staged));

  // Pushed now: prune evicts them, and they read back from the working tree, offline.
  await mg(clone, 'prune', '-q');
  assert.equal((await local(clone)).size, 0);
  await rename(remote, `${remote}.away`);
  assert.ok((await mgBytes(clone, 'show', 'HEAD:d.raw')).stdout.equals(staged));
  await rename(`${remote}.away`, remote);
  assert.match((await mg(clone, 'fsck', '--full')).stdout, /no problems found/);
});

async function runPrune(clone: string, mine: Set<string>, label: string): Promise<void> {
  const res = JSON.parse((await mg(clone, 'prune', '--json')).stdout) as {
    evicted: number;
    notOnRemote: number;
  };
  assert.equal(res.notOnRemote, mine.size, `${label}: what the remote lacks`);
  const after = await local(clone);
  for (const oid of mine) assert.ok(after.has(oid), `${label}: ${oid} was evicted`);
}

test('prune --keep-recent keeps recent history for offline work; content.one_copy=false turns prune off', async () => {
  const work = await tempDir('prune-recent');
  const { remote } = await pushedVersions(work, 2);
  const clone = path.join(work, 'clone');
  await mg(work, 'clone', '-q', '--no-hardlinks', remote, clone);
  await mg(clone, 'fetch', '-q', '--all-content');
  const history = await local(clone);
  assert.ok(history.size > 0);
  const kept = JSON.parse((await mg(clone, 'prune', '--json', '--keep-recent', '7d')).stdout) as {
    evicted: number;
    recent: number;
  };
  assert.equal(kept.evicted, 0);
  assert.equal(kept.recent, history.size);
  await mg(clone, 'prune', '-q');
  assert.equal((await local(clone)).size, 0);

  await mg(clone, 'config', 'content.one_copy', 'false');
  const off = await mgFail(clone, 'prune');
  assert.match(off.stderr, /turned off/);
});

test('SIGKILL during prune, an on-demand fetch and a widen: fsck is clean and running again converges', async (t) => {
  const work = await tempDir('prune-crash');
  const src = path.join(work, 'src');
  const remote = path.join(work, 'remote.mediagit');
  await mkdir(path.join(src, 'audio'), { recursive: true });
  await mkdir(path.join(src, 'video'), { recursive: true });
  await mg(src, 'init', '-q', ...SMALL_CHUNK_ARGS);
  await mg(src, 'remote', 'add', 'origin', remote);
  await mg(src, 'init', '-q', '--bare', remote);
  const video = randomBytes(6_000_000);
  await writeFile(path.join(src, 'audio', 'take.raw'), randomBytes(200_000));
  await writeFile(path.join(src, 'video', 'shot.raw'), video);
  await mg(src, 'add', '.');
  await mg(src, 'commit', '-q', '-m', 'first');
  await writeFile(path.join(src, 'audio', 'take.raw'), randomBytes(200_000));
  await mg(src, 'commit', '-q', '-am', 'second');
  await mg(src, 'push', '-q', 'origin', 'main');
  const clone = path.join(work, 'clone');
  await mg(work, 'clone', '-q', '--include', 'audio/**', remote, clone);

  const clean = async (label: string): Promise<void> => {
    assert.match((await mg(clone, 'fsck', '--full')).stdout, /no problems found/, label);
    assert.equal((await mg(clone, 'status', '--porcelain')).stdout.trim(), '', label);
  };
  // Kills land inside each operation: once it has stored, written or evicted something (a kill
  // at a fixed delay mostly lands before the process has started working, or after it is done).
  const chunkCount = async (): Promise<number> => (await local(clone)).size;
  const tempInVideo = async (): Promise<boolean> =>
    (await readdir(path.join(clone, 'video')).catch(() => [] as string[])).some((n) =>
      n.startsWith('.tmp-'),
    );
  const killedMidway: Record<string, number> = { show: 0, widen: 0, prune: 0 };

  // On-demand fetch of a file outside the sparse set, killed once chunks arrive or output starts.
  for (let round = 0; round < 3; round++) {
    const before = await chunkCount();
    const outcome = await killWhen(
      ['show', 'HEAD:video/shot.raw'],
      clone,
      async ({ stdoutBytes }) => stdoutBytes > 0 || (await chunkCount()) > before,
    );
    if (outcome === 'killed') killedMidway.show!++;
    t.diagnostic(`show, round ${round}: ${outcome}`);
    await clean(`show killed in round ${round}`);
  }
  const shown = await mgBytes(clone, 'show', 'HEAD:video/shot.raw');
  assert.ok(shown.stdout.equals(video));
  await mg(clone, 'prune', '-q');

  // Widen, killed.
  for (let round = 0; round < 2; round++) {
    const before = await chunkCount();
    const outcome = await killWhen(
      ['sparse-checkout', 'add', 'video/**'],
      clone,
      async () => (await tempInVideo()) || (await chunkCount()) > before,
    );
    if (outcome === 'killed') killedMidway.widen!++;
    t.diagnostic(`widen, round ${round}: ${outcome}`);
    await clean(`widen killed in round ${round}`);
  }
  await mg(clone, 'sparse-checkout', 'add', '-q', 'video/**');
  assert.ok((await readFile(path.join(clone, 'video', 'shot.raw'))).equals(video));
  const tree = await hashTree(clone);

  // Prune, killed.
  await mg(clone, 'fetch', '-q', '--all-content');
  for (let round = 0; round < 2; round++) {
    const before = await chunkCount();
    const outcome = await killWhen(['prune'], clone, async () => (await chunkCount()) < before);
    if (outcome === 'killed') killedMidway.prune!++;
    t.diagnostic(`prune, round ${round}: ${outcome}`);
    await clean(`prune killed in round ${round}`);
    if (outcome === 'finished') await mg(clone, 'fetch', '-q', '--all-content');
  }
  t.diagnostic(`killed midway: ${JSON.stringify(killedMidway)}`);
  assert.ok(killedMidway.show! + killedMidway.widen! > 0, 'no kill landed inside a fetch');
  await mg(clone, 'prune', '-q');
  assert.equal((await local(clone)).size, 0);
  await clean('after prune');
  assert.deepEqual(await hashTree(clone), tree);
  for (const rev of ['HEAD', 'HEAD~1'])
    assert.equal(
      (await mgBytes(clone, 'show', `${rev}:audio/take.raw`)).code,
      0,
      `${rev} reads after prune`,
    );
});
