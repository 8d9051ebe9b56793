/**
 * Tip-only clones: a default clone fetches every commit, tree and manifest but chunk content only
 * for what it checks out; older versions come on demand, exactly their chunks. fsck and gc treat
 * content left on the remote as fine; `--history-content all`, `clone.history`, `fetch --recent`
 * and `fetch --all-content` bring the rest.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { CLI_PATH, cliEnv, mg, runCli, tempDir } from '../support/cli.js';
import { SMALL_CHUNK_ARGS, storedChunks } from '../support/sync-fixtures.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** `mediagit <args>` with stdout kept as bytes (file content from `show`). */
function mgBytes(cwd: string, ...args: string[]): Promise<{ code: number; stdout: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      cwd,
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out) }));
  });
}

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
  const report = JSON.parse((await mg(work, 'clone', '--json', remote, lean)).stdout) as {
    bytesReceived: number;
  };
  const ratio = report.bytesReceived / tipStored;
  t.diagnostic(
    `default clone received ${report.bytesReceived} bytes; the tip's stored bytes are ${tipStored} (${ratio.toFixed(4)}×); full history ${[...pushedAfter[2]!.values()].reduce((a, b) => a + b, 0)}`,
  );
  assert.ok(ratio <= 1.05, `received ${ratio.toFixed(4)}× the tip's stored bytes`);
  const local = await chunkSet(path.join(lean, '.mediagit'));
  assert.deepEqual([...local.keys()].sort(), [...tip.keys()].sort(), 'exactly the tip’s chunks');
  for (const [i, name] of FILES.entries())
    assert.ok((await readFile(path.join(lean, name))).equals(versions[2]![i]!), name);

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

  // --recent widens: every commit here is minutes old, so all content comes.
  await mg(lean, 'fetch', '-q', '--recent', '7d');
  const widened = await chunkSet(path.join(lean, '.mediagit'));
  assert.deepEqual([...widened.keys()].sort(), [...pushedAfter[2]!.keys()].sort());
  await rename(remote, `${remote}.away`);
  const offline = await mgBytes(lean, 'show', 'HEAD~1:f2.bin');
  assert.equal(offline.code, 0);
  assert.ok(offline.stdout.equals(versions[1]![1]!), 'fetched content reads offline');
  assert.match((await mg(lean, 'fsck', '--full')).stdout, /no problems found/);
});

/** A small source with three commits, pushed to a folder remote. */
async function smallSource(work: string): Promise<{ src: string; remote: string }> {
  const src = path.join(work, 'src');
  const remote = path.join(work, 'remote.mediagit');
  await mkdir(src);
  await mg(src, 'init', '-q', ...SMALL_CHUNK_ARGS);
  await mg(src, 'remote', 'add', 'origin', remote);
  for (let v = 1; v <= 3; v++) {
    await writeFile(path.join(src, 'a.raw'), randomBytes(300_000));
    await writeFile(path.join(src, 'b.raw'), randomBytes(200_000));
    await mg(src, 'add', '.');
    await mg(src, 'commit', '-q', '-m', `v${v}`);
  }
  await mg(src, 'push', '-q', 'origin', 'main');
  return { src, remote };
}

test('--history-content all and config clone.history=all fetch every version; fetch --all-content widens a tip clone', async () => {
  const work = await tempDir('lean-all');
  const { remote } = await smallSource(work);
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
  assert.deepEqual([...(await chunkSet(path.join(lean, '.mediagit'))).keys()].sort(), everything);
});

test('a tip-only clone pushes its whole history to another remote: what it lacks comes from its own', async () => {
  const work = await tempDir('lean-push');
  const { src, remote } = await smallSource(work);
  const lean = path.join(work, 'lean');
  await mg(work, 'clone', '-q', remote, lean);
  const backup = path.join(work, 'backup.mediagit');
  await mg(lean, 'remote', 'add', 'backup', backup);
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
  const { src, remote } = await smallSource(work);
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
