/**
 * Tip-only clones: a default clone fetches every commit, tree and manifest but chunk content only
 * for what it checks out; older versions come on demand, exactly their chunks. fsck and gc treat
 * content left on the remote as fine; `--history-content all`, `clone.history`, `fetch --recent`
 * and `fetch --all-content` bring the rest.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { mg, mgBytes, mgFail, runCli, tempDir } from '../support/cli.js';
import { folderSize, pushedVersions, storedChunks } from '../support/sync-fixtures.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function chunkSet(storeRoot: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const c of await storedChunks(storeRoot)) out.set(c.oid, (await stat(c.file)).size);
  return out;
}

const FILES = ['f1.bin', 'f2.bin', 'f3.bin'];
const SIZE = 20_000_000;

test('default clone of 3 versions × three 20 MB files receives the tip only; show HEAD~2 fetches exactly that file', async (t) => {
  const work = await tempDir('lean-tip');
  const src = path.join(work, 'src');
  const remote = path.join(work, 'remote.mediagit');
  await mkdir(src);
  await mg(src, 'init', '-q');
  await mg(src, 'remote', 'add', 'origin', remote);
  await mg(src, 'init', '-q', '--bare', remote);
  const versions: Buffer[][] = [];
  const pushedAfter: Map<string, number>[] = [];
  for (let v = 0; v < 3; v++) {
    const files = FILES.map(() => randomBytes(SIZE));
    versions.push(files);
    for (const [i, name] of FILES.entries()) await writeFile(path.join(src, name), files[i]!);
    await mg(src, 'add', '.');
    await mg(src, 'commit', '-q', '-m', `v${v + 1}`);
    await mg(src, 'push', '-q', 'origin', 'main');
    pushedAfter.push(await chunkSet(remote));
  }
  // Random content shares no chunks between versions: the tip's chunks are what v3 added.
  const tip = new Map([...pushedAfter[2]!].filter(([oid]) => !pushedAfter[1]!.has(oid)));
  const tipStored = [...tip.values()].reduce((a, b) => a + b, 0);

  const lean = path.join(work, 'lean');
  // Copied, not hard-linked from the folder remote: as from any remote elsewhere.
  const report = JSON.parse(
    (await mg(work, 'clone', '--json', '--no-hardlinks', remote, lean)).stdout,
  ) as {
    bytesReceived: number;
  };
  const ratio = report.bytesReceived / tipStored;
  t.diagnostic(
    `default clone received ${report.bytesReceived} bytes; the tip's stored bytes are ${tipStored} (${ratio.toFixed(4)}×); full history ${[...pushedAfter[2]!.values()].reduce((a, b) => a + b, 0)}`,
  );
  assert.ok(ratio <= 1.05, `received ${ratio.toFixed(4)}× the tip's stored bytes`);
  // One copy on disk: the tip's bytes are in the working tree, so .mediagit keeps no chunk of them.
  const local = await chunkSet(path.join(lean, '.mediagit'));
  assert.equal(local.size, 0, 'the checked-out chunks were evicted');
  const meta = await folderSize(path.join(lean, '.mediagit'));
  t.diagnostic(`.mediagit holds ${meta.bytes} bytes beside a ${3 * SIZE}-byte working tree`);
  assert.ok(meta.bytes < 0.05 * 3 * SIZE);
  for (const [i, name] of FILES.entries())
    assert.ok((await readFile(path.join(lean, name))).equals(versions[2]![i]!), name);
  // ...and read back from there, verified, with the remote gone.
  await rename(remote, `${remote}.away`);
  const fromTree = await mgBytes(lean, 'show', 'HEAD:f2.bin');
  assert.equal(fromTree.code, 0);
  assert.ok(fromTree.stdout.equals(versions[2]![1]!), 'HEAD:f2.bin read from the working tree');
  await rename(`${remote}.away`, remote);
  for (const oid of (await chunkSet(path.join(lean, '.mediagit'))).keys())
    assert.ok(tip.has(oid), 'only tip chunks came from the working tree');
  await mg(lean, 'prune', '-q');
  assert.equal((await chunkSet(path.join(lean, '.mediagit'))).size, 0, 'prune evicted them again');

  // Metadata is all there: history reads offline-style, and fsck calls the rest fetchable.
  assert.match((await mg(lean, 'log', '--oneline')).stdout, /v1/);
  const fsck = (await mg(lean, 'fsck')).stdout;
  assert.match(fsck, /no problems found/);
  assert.match(fsck, /not present locally \(fetchable from 'origin'/);
  assert.doesNotMatch((await mg(lean, 'gc')).stdout, /missing/);

  const info = JSON.parse((await mg(lean, 'show', '--json', 'HEAD~2:f1.bin')).stdout) as {
    chunks: number;
  };
  const shown = await mgBytes(lean, 'show', 'HEAD~2:f1.bin');
  assert.equal(shown.code, 0);
  assert.equal(sha256(shown.stdout), sha256(versions[0]![0]!), 'sha256 of HEAD~2:f1.bin');
  const after = await chunkSet(path.join(lean, '.mediagit'));
  const fetched = [...after.keys()].filter((oid) => !local.has(oid));
  t.diagnostic(`show HEAD~2:f1.bin fetched ${fetched.length} chunks; the file has ${info.chunks}`);
  assert.equal(fetched.length, info.chunks, 'only that file’s chunks were fetched');
  const v1 = new Set([...pushedAfter[0]!.keys()]);
  assert.ok(
    fetched.every((oid) => v1.has(oid)),
    'every fetched chunk is v1 content',
  );

  // --recent widens: every commit here is minutes old, so all content comes, except what the
  // working tree holds.
  await mg(lean, 'fetch', '-q', '--recent', '7d');
  const widened = await chunkSet(path.join(lean, '.mediagit'));
  assert.deepEqual(
    [...widened.keys()].sort(),
    [...pushedAfter[1]!.keys()].sort(),
    'v1 and v2 content',
  );
  await rename(remote, `${remote}.away`);
  const offline = await mgBytes(lean, 'show', 'HEAD~1:f2.bin');
  assert.equal(offline.code, 0);
  assert.ok(offline.stdout.equals(versions[1]![1]!), 'fetched content reads offline');
  assert.match((await mg(lean, 'fsck', '--full')).stdout, /no problems found/);
});

test('--history-content all and config clone.history=all fetch every version; fetch --all-content widens a tip clone', async () => {
  const work = await tempDir('lean-all');
  const { remote } = await pushedVersions(work, 3);
  const everything = [...(await chunkSet(remote)).keys()].sort();

  const full = path.join(work, 'full');
  await mg(work, 'clone', '-q', '--history-content', 'all', remote, full);
  assert.deepEqual([...(await chunkSet(path.join(full, '.mediagit'))).keys()].sort(), everything);
  assert.equal((await mg(full, 'config', 'clone.history')).stdout.trim(), 'all');

  const viaConfig = path.join(work, 'via-config');
  const env = { MEDIAGIT_CONFIG_GLOBAL: path.join(work, 'global-config.toml') };
  await runCli(['config', '--global', 'clone.history', 'all'], { cwd: work, env });
  await runCli(['clone', '-q', remote, viaConfig], { cwd: work, env });
  assert.deepEqual(
    [...(await chunkSet(path.join(viaConfig, '.mediagit'))).keys()].sort(),
    everything,
  );

  const lean = path.join(work, 'lean');
  await mg(work, 'clone', '-q', remote, lean);
  assert.ok((await chunkSet(path.join(lean, '.mediagit'))).size < everything.length);
  await mg(lean, 'fetch', '-q', '--all-content');
  await rename(remote, `${remote}.away`);
  for (const rev of ['HEAD~2', 'HEAD~1', 'HEAD'])
    for (const file of ['a.raw', 'b.raw']) {
      const offline = await mgBytes(lean, 'show', `${rev}:${file}`);
      const shown = await mgBytes(full, 'show', `${rev}:${file}`);
      assert.equal(offline.code, 0, `${rev}:${file} offline`);
      assert.ok(offline.stdout.equals(shown.stdout), `${rev}:${file}`);
    }
});

test('a tip-only clone pushes its whole history to another remote: what it lacks comes from its own', async () => {
  const work = await tempDir('lean-push');
  const { src, remote } = await pushedVersions(work, 3);
  const lean = path.join(work, 'lean');
  await mg(work, 'clone', '-q', remote, lean);
  const backup = path.join(work, 'backup.mediagit');
  await mg(lean, 'remote', 'add', 'backup', backup);
  await mg(lean, 'init', '-q', '--bare', backup);
  await mg(lean, 'push', '-q', 'backup', 'main');
  assert.match((await mg(lean, 'fsck', '--remote', 'backup')).stdout, /no problems found/);
  const copy = path.join(work, 'copy');
  await mg(work, 'clone', '-q', '--history-content', 'all', backup, copy);
  for (const rev of ['HEAD~2', 'HEAD~1', 'HEAD']) {
    const a = await mgBytes(src, 'show', `${rev}:a.raw`);
    const b = await mgBytes(copy, 'show', `${rev}:a.raw`);
    assert.ok(a.stdout.equals(b.stdout), `${rev}:a.raw pushed byte-identical`);
  }
});

test('fetch keeps the tip policy: a new commit on the remote brings its content, not the history between', async () => {
  const work = await tempDir('lean-fetch');
  const { src, remote } = await pushedVersions(work, 3);
  const lean = path.join(work, 'lean');
  await mg(work, 'clone', '-q', remote, lean);
  const before = await chunkSet(path.join(lean, '.mediagit'));
  const middle = randomBytes(250_000);
  await writeFile(path.join(src, 'a.raw'), middle);
  await mg(src, 'commit', '-q', '-am', 'v4');
  const latest = randomBytes(250_000);
  await writeFile(path.join(src, 'a.raw'), latest);
  await mg(src, 'commit', '-q', '-am', 'v5');
  await mg(src, 'push', '-q', 'origin', 'main');
  await mg(lean, 'pull', '-q');
  assert.ok((await readFile(path.join(lean, 'a.raw'))).equals(latest));
  const gained = [...(await chunkSet(path.join(lean, '.mediagit'))).keys()].filter(
    (oid) => !before.has(oid),
  );
  const v5 = JSON.parse((await mg(lean, 'show', '--json', 'HEAD:a.raw')).stdout) as {
    chunks: number;
  };
  assert.equal(gained.length, v5.chunks, 'only the new tip’s chunks came');
  const shown = await mgBytes(lean, 'show', 'HEAD~1:a.raw');
  assert.ok(shown.stdout.equals(middle), 'the version in between comes on demand');
});

test('stats tells content stored here from content left on the remote; status says ahead/behind its upstream', async () => {
  const work = await tempDir('lean-report');
  const { src, remote } = await pushedVersions(work, 3);
  const lean = path.join(work, 'lean');
  await mg(work, 'clone', '-q', '--no-hardlinks', remote, lean);
  const stats = JSON.parse((await mg(lean, 'stats', '--json')).stdout) as {
    chunks: number;
    localChunks: number;
    remoteOnlyChunks: number;
    unconfirmedChunks: number;
    localBytes: number;
    remoteOnlyBytes: number;
    uniqueBytes: number;
  };
  // The clone evicted what it checked out: every chunk is left on the remote.
  assert.equal(stats.localChunks, (await chunkSet(path.join(lean, '.mediagit'))).size);
  assert.equal(stats.localChunks, 0);
  assert.equal(stats.remoteOnlyChunks, stats.chunks);
  assert.equal(stats.unconfirmedChunks, 0);
  assert.equal(stats.localBytes + stats.remoteOnlyBytes, stats.uniqueBytes);
  await mgBytes(lean, 'show', 'HEAD~1:a.raw');
  const after = JSON.parse((await mg(lean, 'stats', '--json')).stdout) as typeof stats;
  assert.ok(after.localBytes >= 300_000, 'a fetched version counts as stored here');
  assert.match((await mg(lean, 'stats')).stdout, /on 'origin' only:/);
  await rename(remote, `${remote}.away`);
  const offline = JSON.parse((await mg(lean, 'stats', '--json')).stdout) as typeof stats;
  assert.equal(offline.unconfirmedChunks, after.remoteOnlyChunks);
  assert.match((await mg(lean, 'fsck')).stdout, /could not be reached to confirm/);
  await rename(`${remote}.away`, remote);

  const status = async (): Promise<string> => (await mg(lean, 'status')).stdout;
  assert.match(await status(), /Your branch is up to date with 'origin\/main'\./);
  await writeFile(path.join(lean, 'a.raw'), randomBytes(1000));
  await mg(lean, 'commit', '-q', '-am', 'mine');
  assert.match(await status(), /ahead of 'origin\/main' by 1 commit\./);
  await writeFile(path.join(src, 'b.raw'), randomBytes(1000));
  await mg(src, 'commit', '-q', '-am', 'theirs 1');
  await writeFile(path.join(src, 'b.raw'), randomBytes(1000));
  await mg(src, 'commit', '-q', '-am', 'theirs 2');
  await mg(src, 'push', '-q', 'origin', 'main');
  await mg(lean, 'fetch', '-q');
  assert.match(await status(), /have diverged,\nand have 1 and 2 different commits each/);
  const json = JSON.parse((await mg(lean, 'status', '--json')).stdout) as {
    upstream: { upstream: string; ahead: number; behind: number };
  };
  assert.deepEqual(
    [json.upstream.upstream, json.upstream.ahead, json.upstream.behind],
    ['origin/main', 1, 2],
  );
  await mg(lean, 'pull', '-q');
  assert.match(await status(), /ahead of 'origin\/main' by 2 commits\./);
  await mg(lean, 'push', '-q');
  assert.match(await status(), /up to date with 'origin\/main'/);
});

test('content a retention policy expired on the remote is not a problem for a lean clone’s fsck', async () => {
  const work = await tempDir('lean-expired');
  const { src, remote } = await pushedVersions(work, 3);
  const lean = path.join(work, 'lean');
  await mg(work, 'clone', '-q', '--no-hardlinks', remote, lean);
  await mg(src, 'gc', '--remote', 'origin', '--keep', '**=1', '--grace', '0');
  const fsck = (await mg(lean, 'fsck')).stdout;
  assert.match(fsck, /no problems found/);
  assert.match(fsck, /expired on 'origin' by a retention policy/);
  const old = await mgFail(lean, 'show', 'HEAD~2:a.raw');
  assert.equal(old.code, 18, old.stderr);
  assert.ok((await mgBytes(lean, 'show', 'HEAD:a.raw')).code === 0, 'the tip still reads');
});

test('add . right after a lean clone stores nothing again: unchanged files are recognised, not re-stored', async () => {
  const work = await tempDir('lean-add');
  const { remote } = await pushedVersions(work, 3);
  const lean = path.join(work, 'lean');
  await mg(work, 'clone', '-q', '--no-hardlinks', remote, lean);
  const before = (await chunkSet(path.join(lean, '.mediagit'))).size;
  assert.equal(before, 0, 'the clone keeps no second copy of what it checked out');
  await mg(lean, 'add', '.');
  assert.equal(
    (await chunkSet(path.join(lean, '.mediagit'))).size,
    0,
    'add . of an unchanged tree stored chunks again',
  );
  assert.equal((await mg(lean, 'status', '--porcelain')).stdout, '');
  // A real edit is still staged (same size, different bytes).
  await writeFile(path.join(lean, 'b.raw'), randomBytes(200_000));
  await mg(lean, 'add', '.');
  assert.match((await mg(lean, 'status', '--porcelain')).stdout, /^M {2}b\.raw$/m);
  assert.ok((await chunkSet(path.join(lean, '.mediagit'))).size > 0, 'the edit is stored');
});
