/**
 * `gc --remote` as a user runs it, on a folder remote: what the dry run and the real run print
 * (counts and bytes per reason, the full list with --json, freed bytes, a progress bar on a
 * terminal only), Ctrl-C in the middle of a sweep, and SIGKILL of the sweeper at random moments
 * (docs/remote-gc.md): every re-run converges on the same remote, nothing reachable is lost.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { watch } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { formatBytes } from '../../src/commands/shared/format.js';
import { decodeManifest, type Oid } from '../../src/objects/index.js';
import { Repository } from '../../src/repo/index.js';
import { LocalStore } from '../../src/store/index.js';
import { readLease, type RemoteGcReport } from '../../src/sync/index.js';
import { CLI_PATH, cliEnv, runCli, tempDir } from '../support/cli.js';

/** Small chunks: a sweep of a few MB deletes hundreds of them, so it can be caught mid-way. */
const CHUNKING = ['--chunk-min', '2K', '--chunk-avg', '8K', '--chunk-max', '32K'];
const KEEP = ['--keep', 'renders/**=2', '--grace', '0'];

interface Fixture {
  work: string;
  repo: string;
  remote: string;
  versions: Buffer[];
  /** Chunk keys only versions 1-3 use: what the policy deletes. */
  expected: Set<string>;
}

/** 5 versions of renders/shot.exr (a shared part and one of their own each) pushed to a folder. */
async function fixture(unique = 2_000_000): Promise<Fixture> {
  const work = await tempDir('remote-gc');
  const repo = path.join(work, 'artist');
  const remote = path.join(work, 'remote.mediagit');
  await mkdir(path.join(repo, 'renders'), { recursive: true });
  await runCli(['init', '-q', ...CHUNKING], { cwd: repo });
  const shared = randomBytes(500_000);
  const versions: Buffer[] = [];
  for (let v = 1; v <= 5; v++) {
    versions.push(Buffer.concat([shared, randomBytes(unique)]));
    await writeFile(path.join(repo, 'renders', 'shot.exr'), versions[v - 1]!);
    await runCli(['add', '.'], { cwd: repo });
    await runCli(['commit', '-q', '-m', `v${v}`], { cwd: repo });
  }
  await runCli(['remote', 'add', 'origin', remote], { cwd: repo });
  await runCli(['push', '-q', '--create'], { cwd: repo });
  const chunks = await versionChunks(repo);
  const kept = new Set([...chunks[3]!, ...chunks[4]!]);
  const expected = new Set<string>();
  for (const set of chunks.slice(0, 3)) for (const k of set) if (!kept.has(k)) expected.add(k);
  return { work, repo, remote, versions, expected };
}

async function versionChunks(dir: string): Promise<Set<string>[]> {
  const repo = await Repository.open(dir);
  const out: Set<string>[] = [];
  for (let c: Oid | null = await repo.readRef('refs/heads/main'); c !== null;) {
    const commit = await repo.odb.readCommit(c);
    const renders = (await repo.odb.readTree(commit.tree)).find((e) => e.name === 'renders')!;
    const shot = (await repo.odb.readTree(renders.oid)).find((e) => e.name === 'shot.exr')!;
    const m = decodeManifest(await repo.odb.read('manifest', shot.oid));
    out.unshift(new Set(m.chunks.map((ch) => `chunks/${ch.oid}`)));
    c = commit.parents[0] ?? null;
  }
  return out;
}

async function remoteKeys(remote: string): Promise<Set<string>> {
  const store = new LocalStore(remote, { fsync: false });
  const keys = new Set<string>();
  for (const prefix of ['objects/', 'chunks/'])
    for await (const { key } of store.list(prefix)) keys.add(key);
  await store.close();
  return keys;
}

/** The remote is what an uninterrupted sweep leaves: fsck-clean, the tip clones byte-identical. */
async function assertConverged(f: Fixture, before: Set<string>, label: string): Promise<void> {
  const after = await remoteKeys(f.remote);
  const want = new Set([...before].filter((k) => !f.expected.has(k)));
  assert.deepEqual(after, want, `${label}: exactly the expired chunks are gone`);
  assert.equal((await runCli(['fsck', '--remote', 'origin', '--full'], { cwd: f.repo })).code, 0);
  const dir = path.join(f.work, `clone-${label}`);
  await runCli(['clone', '-q', f.remote, dir], { cwd: f.work });
  assert.deepEqual(await readFile(path.join(dir, 'renders', 'shot.exr')), f.versions[4]);
  const v4 = await runCli(['show', 'HEAD~1:renders/shot.exr', '--json'], { cwd: dir });
  assert.equal((JSON.parse(v4.stdout) as { size: number }).size, f.versions[3]!.length);
  const again = JSON.parse(
    (await runCli(['gc', '--remote', 'origin', ...KEEP, '--json'], { cwd: f.repo })).stdout,
  ) as RemoteGcReport;
  assert.equal(again.keys.length, 0, `${label}: a further run finds nothing to delete`);
}

test('dry run prints counts and bytes per reason, --json the full list; the real run prints what it freed and no progress bar off a terminal', async () => {
  const f = await fixture(300_000);
  const before = await remoteKeys(f.remote);
  const gc = ['gc', '--remote', 'origin', ...KEEP];
  const json = JSON.parse(
    (await runCli([...gc, '--dry-run', '--json'], { cwd: f.repo })).stdout,
  ) as RemoteGcReport;
  assert.equal(json.dryRun, true);
  assert.deepEqual(new Set(json.keys.map((k) => k.key)), f.expected);
  assert.equal(json.deleted.expired.count, f.expected.size);
  const bytes = json.keys.reduce((n, k) => n + k.size, 0);
  assert.equal(json.deleted.expired.bytes, bytes);

  const dry = await runCli([...gc, '--dry-run'], { cwd: f.repo });
  assert.deepEqual(dry.stdout.trim().split('\n'), [
    'would delete 0 unreachable objects (0 B)',
    `would delete ${f.expected.size} expired objects (${formatBytes(bytes)})`,
    '3 file versions expired by the retention policy',
  ]);
  assert.deepEqual(await remoteKeys(f.remote), before, 'a dry run deletes nothing');

  const real = await runCli(gc, { cwd: f.repo });
  assert.deepEqual(real.stdout.trim().split('\n'), [
    'deleted 0 unreachable objects (0 B)',
    `deleted ${f.expected.size} expired objects (${formatBytes(bytes)})`,
    '3 file versions expired by the retention policy',
    `freed ${formatBytes(bytes)}`,
  ]);
  assert.doesNotMatch(real.stderr, /gc \[/, 'no progress bar without a terminal');
  await assertConverged(f, before, 'output');
});

const hasScript =
  spawnSync('sh', ['-c', 'command -v script'], { encoding: 'utf8' }).stdout.trim() !== '';

test(
  'on a terminal the real run draws a progress bar on stderr and prints what it freed',
  { skip: hasScript ? false : 'util-linux script(1) not installed' },
  async () => {
    const f = await fixture(4_000_000);
    const log = path.join(f.work, 'gc.typescript');
    const env = { ...cliEnv(), TERM: 'xterm' } as NodeJS.ProcessEnv;
    delete env['CI'];
    const command = [process.execPath, CLI_PATH, 'gc', '--remote', 'origin', ...KEEP]
      .map((a) => `'${a}'`)
      .join(' ');
    // A size for the pseudo-terminal: on one that reports no width the CLI draws no bars.
    const r = spawnSync('script', ['-qec', `stty cols 120 rows 40; ${command}`, log], {
      cwd: f.repo,
      env,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const screen = await readFile(log, 'utf8');
    assert.match(screen, /gc \[[#-]{24}\] files \d+\/\d+/);
    assert.match(screen, /freed \d/);
  },
);

test('Ctrl-C during a sweep stops it (exit 130) and releases the lease; a re-run at once carries on to the same result', async (t) => {
  const f = await fixture(3_000_000);
  const before = await remoteKeys(f.remote);
  const child = spawn(process.execPath, [CLI_PATH, 'gc', '--remote', 'origin', ...KEEP], {
    cwd: f.repo,
    env: cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  // Interrupted as soon as it holds the lease: it is listing, marking or deleting by then.
  const store = new LocalStore(f.remote, { fsync: false });
  while (child.exitCode === null && (await readLease(store)).record?.state !== 'sweeping')
    await new Promise((resolve) => setTimeout(resolve, 1));
  child.kill('SIGINT');
  const code = await exited;
  const partial = await remoteKeys(f.remote);
  const gone = [...f.expected].filter((k) => !partial.has(k)).length;
  t.diagnostic(`exit ${code}, ${gone}/${f.expected.size} expired chunks deleted before it stopped`);
  assert.equal(code, 130, stderr);
  assert.match(stderr, /gc interrupted: stopping after the deletions in flight/);
  assert.ok(gone < f.expected.size, 'it stopped before the end');
  assert.equal((await readLease(store)).record?.state, 'idle', 'the lease is released');
  await store.close();
  const rerun = await runCli(['gc', '--remote', 'origin', ...KEEP], { cwd: f.repo });
  assert.match(rerun.stdout, /freed/);
  await assertConverged(f, before, 'sigint');
});

/**
 * Starts the sweeper and SIGKILLs it either after `delayMs` (it may still be starting or marking)
 * or once it has deleted `deletions` files; resolves to what happened.
 */
async function killSweeper(
  f: Fixture,
  args: string[],
  at: { delayMs: number } | { deletions: number },
): Promise<string> {
  // Deletions are seen as they happen (inotify), so the kill lands a few files after the chosen one.
  let deleted = 0;
  let reached: () => void = () => {};
  const enough = new Promise<void>((resolve) => (reached = resolve));
  const watcher = watch(path.join(f.remote, 'chunks'), { recursive: true }, (event) => {
    if (event === 'rename' && 'deletions' in at && ++deleted >= at.deletions) reached();
  });
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: f.repo,
    env: cliEnv(),
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await Promise.race([
      'delayMs' in at ? new Promise((resolve) => setTimeout(resolve, at.delayMs)) : enough,
      exited,
    ]);
  } finally {
    watcher.close();
  }
  if (child.exitCode !== null) return 'finished before the kill';
  child.kill('SIGKILL');
  await exited;
  return 'killed';
}

test('SIGKILL of the sweeper at random moments: every re-run converges, nothing reachable is lost', async (t) => {
  const f = await fixture(3_000_000);
  const before = await remoteKeys(f.remote);
  const gc = ['gc', '--remote', 'origin', ...KEEP, '--lease', '2s'];
  const outcomes: string[] = [];
  const moments = [
    { delayMs: 50 + Math.floor(Math.random() * 400) },
    { delayMs: 50 + Math.floor(Math.random() * 400) },
    ...Array.from({ length: 4 }, () => ({
      deletions: 1 + Math.floor(Math.random() * (f.expected.size / 4)),
    })),
  ];
  for (const at of moments) {
    const outcome = await killSweeper(f, gc, at);
    const now = await remoteKeys(f.remote);
    const gone = [...f.expected].filter((k) => !now.has(k)).length;
    outcomes.push(
      `${JSON.stringify(at)}: ${outcome}, ${gone}/${f.expected.size} expired chunks deleted`,
    );
    // Whatever moment it died at, everything the kept versions need is there and fsck is clean.
    const fsck = await runCli(['fsck', '--remote', 'origin', '--full'], {
      cwd: f.repo,
      allowFail: true,
    });
    assert.equal(
      fsck.code,
      0,
      `after a kill (${JSON.stringify(at)}): ${fsck.stdout}${fsck.stderr}`,
    );
    for (const k of before) if (!f.expected.has(k)) assert.ok(now.has(k), `${k} is kept`);
    // A sweeper killed holding the lease blocks the next one until the lease runs out (2 s).
    await new Promise((resolve) => setTimeout(resolve, 2100));
  }
  t.diagnostic(outcomes.join('; '));
  const rerun = await runCli(gc, { cwd: f.repo });
  assert.match(rerun.stdout, /freed/);
  await assertConverged(f, before, 'sigkill');
});
