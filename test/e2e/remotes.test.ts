/**
 * Remotes end to end, through the built binary against local-folder remotes: push, clone, fetch
 * and pull; what they transfer; how they refuse; and what they leave behind when killed or given
 * bad input.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import {
  CLI_PATH,
  cliEnv,
  mg,
  mgFail,
  parseJson,
  pathExists,
  runCli,
  tempDir,
  type CliResult,
} from '../support/cli.js';
import { makeCorpus } from '../support/corpus.js';
import {
  SMALL_CHUNK_ARGS,
  flipByte,
  folderContains,
  folderSize,
  killAfter,
  readRefFile,
  stderrLines,
  storedChunks,
  type KillOutcome,
} from '../support/sync-fixtures.js';
import { assertTreesEqual, hashTree, type TreeHashes } from '../support/tree.js';

interface PushJson {
  refs: {
    ref: string;
    old: string | null;
    new: string;
    status: string;
    stats: { objects: number; bytes: number };
  }[];
  bytesSent: number;
  bytesReceived: number;
}
interface CloneJson {
  directory: string;
  branch: string | null;
  objects: number;
  bytes: number;
  bytesReceived: number;
}
interface FetchJson {
  updated: { ref: string; old: string | null; new: string | null }[];
  objects: number;
  bytes: number;
  bytesReceived: number;
}
interface LogJson {
  oid: string;
  parents: string[];
  message: string;
}

const json = parseJson;
const exists = pathExists;

async function headOid(repo: string): Promise<string> {
  const log = json<LogJson[]>((await mg(repo, 'log', '--json')).stdout);
  assert.ok(log[0], `${repo} has no commits`);
  return log[0].oid;
}

async function assertFsckClean(repo: string, env: Record<string, string> = {}): Promise<void> {
  const fsck = await runCli(['fsck', '--full'], { cwd: repo, env });
  assert.match(fsck.stdout, /no problems found/, `fsck --full in ${repo}`);
}

async function assertStatusClean(repo: string, env: Record<string, string> = {}): Promise<void> {
  const status = json<{ clean: boolean }>(
    (await runCli(['status', '--json'], { cwd: repo, env })).stdout,
  );
  assert.equal(status.clean, true, `status in ${repo} is not clean`);
}

/**
 * A failed command as a user should see it: the expected exit code, exactly one `error:` line
 * (optionally followed by one `hint:` line), no stack trace, nothing on stdout.
 */
function assertOneLineError(res: CliResult, code: number, pattern: RegExp, label: string): void {
  const lines = stderrLines(res.stderr);
  assert.equal(res.code, code, `${label}: exit code\n${res.stderr}`);
  assert.ok(
    lines.length >= 1 && lines.length <= 2,
    `${label}: expected an error line and at most a hint, got:\n${res.stderr}`,
  );
  assert.match(lines[0]!, /^error: /, `${label}: first line`);
  assert.match(lines[0]!, pattern, label);
  if (lines[1] !== undefined) assert.match(lines[1], /^hint: /, `${label}: second line`);
  assert.doesNotMatch(res.stderr, /^\s+at /m, `${label}: stack trace printed`);
  assert.equal(res.stdout, '', `${label}: stdout`);
}

/** A repository in `dir` with small chunks, everything in it committed. */
async function initAndCommit(
  dir: string,
  message: string,
  env: Record<string, string> = {},
  extraInit: string[] = [],
): Promise<void> {
  await runCli(['init', '-q', ...SMALL_CHUNK_ARGS, ...extraInit], { cwd: dir, env });
  await runCli(['add', '.'], { cwd: dir, env });
  await runCli(['commit', '-q', '-m', message], { cwd: dir, env });
}

async function commitFile(
  repo: string,
  rel: string,
  data: Buffer | string,
  message: string,
): Promise<void> {
  await mkdir(path.dirname(path.join(repo, rel)), { recursive: true });
  await writeFile(path.join(repo, rel), data);
  await mg(repo, 'add', rel);
  await mg(repo, 'commit', '-q', '-m', message);
}

// ---- shared fixture: the small corpus, committed and pushed (read-only for the tests) -----------

const shared = await tempDir('remotes-shared');

interface SmallRemote {
  /** Working tree holding v1 of the small corpus, committed and pushed. */
  src: string;
  srcTree: TreeHashes;
  remote: string;
  tip: string;
}

let smallRemote: Promise<SmallRemote> | undefined;

/** Built once for the tests that only read it; a test that pushes takes a copy. */
function sharedSmallRemote(): Promise<SmallRemote> {
  smallRemote ??= (async () => {
    const src = path.join(shared, 'src');
    const remote = path.join(shared, 'remote.mediagit');
    await makeCorpus(src, 1, 'small');
    await initAndCommit(src, 'v1');
    await mg(src, 'remote', 'add', 'origin', remote);
    await mg(src, 'init', '-q', '--bare', remote);
    await mg(src, 'push', '-q');
    return { src, srcTree: await hashTree(src), remote, tip: await headOid(src) };
  })();
  return smallRemote;
}

// ---- round trip ----------------------------------------------------------------------------------

test('push, clone, push v2 (bytes sent match the remote growth), pull, fetch when up to date', async (t) => {
  const work = await tempDir('remotes-roundtrip');
  const src = path.join(work, 'src');
  const remote = path.join(work, 'remote.mediagit');
  const clone = path.join(work, 'clone');
  await makeCorpus(src, 1, 'small');
  await initAndCommit(src, 'v1');
  const v1 = await hashTree(src);

  await mg(src, 'remote', 'add', 'origin', remote);
  await mg(src, 'init', '-q', '--bare', remote);
  const first = json<PushJson>((await mg(src, 'push', '--json')).stdout);
  assert.equal(first.refs[0]?.status, 'created');
  assert.equal(await readRefFile(remote), await headOid(src));

  await mkdir(clone);
  const cloned = json<CloneJson>((await mg(work, 'clone', '--json', remote, clone)).stdout);
  assert.equal(cloned.branch, 'main');
  assertTreesEqual(await hashTree(clone), v1, 'clone of v1');
  await assertFsckClean(clone);
  await assertStatusClean(clone);

  // v2: the push sends what the remote's stored size grows by, and only a fraction of v1.
  await makeCorpus(src, 2, 'small');
  await mg(src, 'add', '.');
  await mg(src, 'commit', '-q', '-m', 'v2');
  const v2 = await hashTree(src);
  const before = await folderSize(remote);
  const second = json<PushJson>((await mg(src, 'push', '--json')).stdout);
  const after = await folderSize(remote);
  const growth = after.bytes - before.bytes;
  t.diagnostic(
    `v2 push: bytesSent ${second.bytesSent} B; remote folder (sum of the sizes of every regular file under it: chunks, objects, refs, meta, tmp) ${before.bytes} -> ${after.bytes} B = +${growth} B in ${after.files - before.files} new files; v1 push sent ${first.bytesSent} B`,
  );
  assert.equal(second.refs[0]?.status, 'fast-forward');
  assert.ok(growth > 0);
  assert.ok(
    Math.abs(second.bytesSent - growth) <= 0.1 * growth,
    `bytesSent ${second.bytesSent} is not within 10 % of the remote's growth ${growth}`,
  );
  assert.ok(
    second.bytesSent < first.bytesSent / 5,
    `v2 push sent ${second.bytesSent} B, v1 push ${first.bytesSent} B: unchanged chunks were sent again`,
  );

  const pull = await mg(clone, 'pull');
  assert.match(pull.stdout, /Fast-forward/);
  assertTreesEqual(await hashTree(clone), v2, 'clone after pull');
  assert.equal(await headOid(clone), await headOid(src));
  await assertFsckClean(clone);
  await assertStatusClean(clone);

  // Up to date: fetch moves nothing but the ref listing; a repeated push sends nothing.
  const fetched = json<FetchJson>((await mg(clone, 'fetch', '--json')).stdout);
  t.diagnostic(
    `fetch when up to date: ${fetched.objects} objects, ${fetched.bytes} B of objects, ${fetched.bytesReceived} B received in all`,
  );
  assert.deepEqual(fetched.updated, []);
  assert.equal(fetched.objects, 0);
  assert.equal(fetched.bytes, 0);
  assert.ok(
    fetched.bytesReceived < 4096,
    `an up-to-date fetch received ${fetched.bytesReceived} B`,
  );
  const again = json<PushJson>((await mg(src, 'push', '--json')).stdout);
  assert.equal(again.refs[0]?.status, 'up-to-date');
  assert.equal(again.bytesSent, 0);
});

// ---- non-fast-forward, force, merges ----------------------------------------------------------

test('push refuses a non-fast-forward (exit 10, hint); pull fast-forwards and merges disjoint changes; --force overwrites', async () => {
  const work = await tempDir('remotes-nff');
  const alice = path.join(work, 'alice');
  const bob = path.join(work, 'bob');
  const remote = path.join(work, 'remote.mediagit');
  await makeCorpus(alice, 1, 'tiny');
  await initAndCommit(alice, 'v1');
  await mg(alice, 'remote', 'add', 'origin', remote);
  await mg(alice, 'init', '-q', '--bare', remote);
  await mg(alice, 'push', '-q');
  await mg(work, 'clone', '-q', remote, bob);

  await commitFile(alice, 'notes/alice.txt', 'from alice\n', 'alice 1');
  await mg(alice, 'push', '-q');
  const aliceTip = await headOid(alice);
  await commitFile(bob, 'audio/bob_take.raw', randomBytes(70_000), 'bob 1');
  const bobTip = await headOid(bob);

  const refused = await mgFail(bob, 'push');
  assertOneLineError(refused, 10, /non-fast-forward/, 'push behind the remote');
  assert.match(refused.stderr, /^hint: .*pull/m);
  assert.equal(await readRefFile(remote), aliceTip, 'a refused push moved the remote ref');

  // A real merge: both sides changed different files.
  await mg(bob, 'pull');
  const merged = json<LogJson[]>((await mg(bob, 'log', '--json')).stdout)[0]!;
  assert.deepEqual(
    [...merged.parents].sort(),
    [aliceTip, bobTip].sort(),
    'pull should create a merge commit of both tips',
  );
  assert.equal(await readFile(path.join(bob, 'notes/alice.txt'), 'utf8'), 'from alice\n');
  assert.ok(await exists(path.join(bob, 'audio/bob_take.raw')));
  await mg(bob, 'push', '-q');
  assert.equal(await readRefFile(remote), merged.oid);

  // Alice is strictly behind: pull fast-forwards to the merge.
  const ff = await mg(alice, 'pull');
  assert.match(ff.stdout, /Fast-forward/);
  assert.equal(await headOid(alice), merged.oid);
  assertTreesEqual(await hashTree(alice), await hashTree(bob), 'alice after fast-forward');
  await assertStatusClean(alice);

  // Diverge again; --force overwrites, and alice is now the one refused.
  await commitFile(alice, 'notes/alice2.txt', 'second\n', 'alice 2');
  await mg(alice, 'push', '-q');
  await commitFile(bob, 'notes/bob2.txt', 'bob second\n', 'bob 2');
  assertOneLineError(await mgFail(bob, 'push'), 10, /non-fast-forward/, 'second refused push');
  const forced = json<PushJson>((await mg(bob, 'push', '--force', '--json')).stdout);
  assert.equal(forced.refs[0]?.status, 'forced');
  assert.equal(await readRefFile(remote), await headOid(bob));
  await commitFile(alice, 'notes/alice3.txt', 'third\n', 'alice 3');
  assertOneLineError(
    await mgFail(alice, 'push'),
    10,
    /non-fast-forward/,
    'push after being overwritten',
  );

  const check = path.join(work, 'check');
  await mg(work, 'clone', '-q', remote, check);
  assertTreesEqual(await hashTree(check), await hashTree(bob), 'clone after --force');
  assert.equal(
    await exists(path.join(check, 'notes/alice2.txt')),
    false,
    'the overwritten commit should be gone from the branch',
  );
});

// ---- interrupted transfers -----------------------------------------------------------------------

test('push killed midway: the remote ref does not move; re-running sends only the rest; a clone is byte-identical', async (t) => {
  const work = await tempDir('remotes-kill-push');
  const src = path.join(work, 'src');
  await mkdir(src);
  await writeFile(path.join(src, 'README.txt'), 'base\n');
  await initAndCommit(src, 'base');
  const base = await headOid(src);
  await mg(src, 'branch', 'base');
  await makeCorpus(src, 1, 'small');
  await mg(src, 'add', '.');
  await mg(src, 'commit', '-q', '-m', 'corpus');
  const tip = await headOid(src);
  const expected = await hashTree(src);

  /** A remote holding `base` on main, like one the push continues. */
  const remoteWithBase = async (name: string): Promise<string> => {
    const remote = path.join(work, name);
    await mg(src, 'remote', 'set-url', 'origin', remote);
    await mg(src, 'push', '-q', '--create', 'origin', 'base:main');
    assert.equal(await readRefFile(remote), base);
    return remote;
  };

  // The full cost, measured on an uninterrupted push of the same commit.
  await mg(src, 'remote', 'add', 'origin', path.join(work, 'control.mediagit'));
  await mg(src, 'init', '-q', '--bare', path.join(work, 'control.mediagit'));
  await remoteWithBase('control.mediagit');
  // --no-hardlinks: the interruption under test is of an upload that copies bytes; a linking push
  // to a folder is over too quickly to be caught mid-way.
  const full = json<PushJson>(
    (await mg(src, 'push', '--json', '--no-hardlinks', 'origin', 'main')).stdout,
  ).bytesSent;

  let delay = 400;
  let remote: string | undefined;
  let present = 0;
  const attempts: string[] = [];
  for (let attempt = 0; attempt < 10 && remote === undefined; attempt++) {
    const candidate = await remoteWithBase(`remote-${attempt}.mediagit`);
    const chunksBefore = (await storedChunks(candidate)).length;
    const outcome: KillOutcome = await killAfter(
      ['push', '--no-hardlinks', 'origin', 'main'],
      src,
      delay,
    );
    const chunks = await storedChunks(candidate);
    const ref = await readRefFile(candidate);
    attempts.push(
      `${delay} ms: ${outcome}, ${chunks.length - chunksBefore} chunks uploaded${outcome === 'killed' && ref === tip ? ', after the ref update' : ''}`,
    );
    if (outcome === 'finished' || ref === tip) {
      // Finished, or killed on its way out after the ref update: the remote must then be complete.
      assert.equal(ref, tip);
      assert.match((await mg(src, 'fsck', '--remote', 'origin')).stdout, /no problems found/);
      delay = Math.max(20, Math.round(delay * 0.6));
    } else {
      assert.equal(
        await readRefFile(candidate),
        base,
        `the push killed after ${delay} ms moved the remote ref`,
      );
      if (chunks.length > chunksBefore) {
        remote = candidate;
        for (const c of chunks) present += (await stat(c.file)).size;
        present += (await folderSize(path.join(candidate, 'objects'))).bytes;
      } else delay = Math.round(delay * 1.5);
    }
  }
  t.diagnostic(`kill attempts: ${attempts.join('; ')}`);
  assert.ok(remote, 'never managed to kill the push midway');
  assert.equal(await readRefFile(remote), base);

  const resumed = json<PushJson>(
    (await mg(src, 'push', '--json', '--no-hardlinks', 'origin', 'main')).stdout,
  );
  t.diagnostic(
    `full push ${full} B; already on the remote after the kill ${present} B (objects and chunks); re-run push sent ${resumed.bytesSent} B`,
  );
  assert.equal(resumed.refs[0]?.new, tip);
  assert.equal(await readRefFile(remote), tip);
  assert.ok(
    resumed.bytesSent < full,
    `the re-run push sent ${resumed.bytesSent} B, no less than the full ${full} B`,
  );
  assert.ok(
    Math.abs(resumed.bytesSent - (full - present)) <= 0.01 * full,
    `re-run sent ${resumed.bytesSent} B; expected about ${full - present} B (full minus what was already there)`,
  );

  const clone = path.join(work, 'clone');
  await mg(work, 'clone', '-q', remote, clone);
  assertTreesEqual(await hashTree(clone), expected, 'clone after the resumed push');
  await assertFsckClean(clone);
});

test('clone killed midway: a new clone works with the debris left in place; fetch completes the partial one', async (t) => {
  const { remote, srcTree, tip } = await sharedSmallRemote();
  const work = await tempDir('remotes-kill-clone');

  let delay = 500;
  let partial: string | undefined;
  const attempts: string[] = [];
  const remoteChunks = (await storedChunks(remote)).length;
  for (let attempt = 0; attempt < 10 && partial === undefined; attempt++) {
    const target = path.join(work, `killed-${attempt}`);
    // Copied and verified rather than hard-linked: linking takes milliseconds, too short a window to kill in.
    // Keeping all content: a default clone writes the checked-out chunks into the files only, so
    // its store would show no progress to tell a partial clone by.
    const outcome = await killAfter(
      ['clone', '--no-hardlinks', '--history-content', 'all', remote, target],
      work,
      delay,
    );
    const config = await readFile(path.join(target, '.mediagit', 'config.toml'), 'utf8').catch(
      () => '',
    );
    const chunks = (await storedChunks(path.join(target, '.mediagit'))).length;
    const branch = await readRefFile(path.join(target, '.mediagit'));
    const tracking = await readRefFile(path.join(target, '.mediagit'), 'refs/remotes/origin/main');
    attempts.push(
      `${delay} ms: ${outcome}, ${chunks} of ${remoteChunks} chunks, ${config.includes('[remote.origin]') ? 'remote configured' : 'no remote yet'}${tracking ? ', fetch done' : ''}`,
    );
    // Too late when the fetch had already finished (the kill then struck the checkout), or had
    // every chunk and was only writing the last objects or the ref: nothing left for a re-fetch.
    if (outcome === 'finished' || tracking !== null || chunks >= remoteChunks) {
      delay = Math.max(20, Math.round(delay * 0.6));
    } else if (!config.includes('[remote.origin]') || chunks === 0) {
      delay = Math.round(delay * 1.4);
    } else {
      assert.equal(branch, null, 'a killed clone must not have its branch yet');
      partial = target;
    }
  }
  t.diagnostic(`kill attempts: ${attempts.join('; ')}`);
  assert.ok(partial, 'never managed to kill the clone midway');

  // Nothing removed: the killed folders stay where they are.
  const fresh = path.join(work, 'fresh');
  const full = json<CloneJson>((await mg(work, 'clone', '--json', remote, fresh)).stdout);
  assertTreesEqual(await hashTree(fresh), srcTree, 'clone next to killed ones');
  await assertFsckClean(fresh);

  const fetched = json<FetchJson>((await mg(partial, 'fetch', '--json')).stdout);
  t.diagnostic(
    `full clone ${full.objects} objects / ${full.bytes} B; fetch in the killed clone ${fetched.objects} objects / ${fetched.bytes} B`,
  );
  assert.ok(
    fetched.objects > 0 && fetched.objects < full.objects,
    `fetch in a partial clone moved ${fetched.objects} objects of ${full.objects}`,
  );
  assert.deepEqual(
    fetched.updated.map((u) => [u.ref, u.new]),
    [['refs/remotes/origin/main', tip]],
  );
  await mg(partial, 'pull', '-q');
  // The clone checks out while it downloads: files it had written stay (pull finds them already
  // right), and so do the temporary files it was writing when killed (mediagit's own, which status
  // ignores). Everything else is complete.
  const completed = await hashTree(partial);
  for (const rel of [...completed.keys()])
    if (/(^|\/)\.tmp-.+-\d+-[0-9a-f]{12}$/.test(rel)) completed.delete(rel);
  assertTreesEqual(completed, srcTree, 'killed clone completed by fetch + pull');
  await assertFsckClean(partial);
  await assertStatusClean(partial);
});

test('clone interrupted by SIGINT or SIGTERM: one line, exit 128 + signal, and the folder is gone', async (t) => {
  const { remote } = await sharedSmallRemote();
  const work = await tempDir('remotes-interrupt-clone');
  const outcomes: string[] = [];
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    let interrupted = false;
    for (let attempt = 0; attempt < 8 && !interrupted; attempt++) {
      const target = path.join(work, `${signal}-${attempt}`);
      // Copied and verified rather than hard-linked, so the fetch lasts long enough to interrupt.
      const child = spawn(process.execPath, [CLI_PATH, 'clone', '--no-hardlinks', remote, target], {
        cwd: work,
        env: cliEnv(),
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      // The signal goes in as soon as the remote is configured: the fetch is under way.
      let done = false;
      void exited.then(() => (done = true));
      while (
        !done &&
        !(
          await readFile(path.join(target, '.mediagit', 'config.toml'), 'utf8').catch(() => '')
        ).includes('[remote.origin]')
      )
        await sleep(2);
      if (!done) child.kill(signal);
      const exitCode = await exited;
      outcomes.push(`${signal} #${attempt}: exit ${exitCode}`);
      if (exitCode === 0) continue; // finished before the signal landed: try again
      assert.equal(exitCode, code, stderr);
      assert.deepEqual(stderrLines(stderr), [`clone interrupted; removing ${target}`]);
      assert.equal(await pathExists(target), false, `${target} left behind`);
      interrupted = true;
    }
    assert.ok(interrupted, `never interrupted a clone with ${signal}: ${outcomes.join(', ')}`);
  }
  t.diagnostic(outcomes.join(', '));
});

// ---- sparse clone ------------------------------------------------------------------------------

test("clone --include 'audio/**' fetches and checks out only audio; a commit pushed from it keeps everything else", async (t) => {
  const { remote: sharedRemote, src, srcTree } = await sharedSmallRemote();
  const work = await tempDir('remotes-sparse');
  const remote = path.join(work, 'remote.mediagit');
  await cp(sharedRemote, remote, { recursive: true });

  const full = json<CloneJson>(
    (await mg(work, 'clone', '--json', remote, path.join(work, 'full'))).stdout,
  );
  const sparse = path.join(work, 'sparse');
  const part = json<CloneJson>(
    (await mg(work, 'clone', '--json', '--include', 'audio/**', remote, sparse)).stdout,
  );
  t.diagnostic(
    `bytesReceived: sparse clone ${part.bytesReceived} B, full clone ${full.bytesReceived} B (${((100 * part.bytesReceived) / full.bytesReceived).toFixed(1)} %)`,
  );

  const audio = new Map([...srcTree].filter(([p]) => p.startsWith('audio/')));
  assert.ok(audio.size >= 3 && audio.size < srcTree.size / 4);
  assertTreesEqual(await hashTree(sparse), audio, 'sparse checkout');
  const audioBytes = (await folderSize(path.join(src, 'audio'))).bytes;
  t.diagnostic(`audio files: ${audioBytes} B of the checkout`);
  assert.ok(
    part.bytesReceived < full.bytesReceived / 3,
    `sparse clone received ${part.bytesReceived} B, full clone ${full.bytesReceived} B`,
  );
  await assertStatusClean(sparse);

  await commitFile(
    sparse,
    'audio/new_take.raw',
    randomBytes(150_000),
    'new take from the sparse clone',
  );
  await mg(sparse, 'push', '-q');
  const check = path.join(work, 'check');
  await mg(work, 'clone', '-q', remote, check);
  const expected = new Map(srcTree);
  expected.set('audio/new_take.raw', (await hashTree(sparse)).get('audio/new_take.raw')!);
  assertTreesEqual(
    await hashTree(check),
    expected,
    'full clone after a push from the sparse clone',
  );
  await assertFsckClean(check);
});

// ---- bad input -------------------------------------------------------------------------------------

test('clone of a path that holds no repository: one-line error, nothing created', async () => {
  const work = await tempDir('remotes-bad-path');
  const missing = path.join(work, 'no-such-remote');
  const res = await mgFail(work, 'clone', missing, 'target');
  assertOneLineError(res, 16, /not found|no-such-remote/, 'clone of a missing path');
  assert.equal(await exists(path.join(work, 'target')), false, 'the target folder was left behind');
  assert.equal(await exists(missing), false, 'the clone created the remote folder');
  // An existing empty target stays (it was the user's) and stays empty.
  await mkdir(path.join(work, 'empty'));
  assertOneLineError(
    await mgFail(work, 'clone', missing, 'empty'),
    16,
    /not found|no-such-remote/,
    'clone into an empty folder',
  );
  assert.deepEqual(await readdir(path.join(work, 'empty')), []);
});

test('malformed remote URLs and a duplicate remote name: one-line errors, no password echoed, nothing written', async () => {
  const work = await tempDir('remotes-bad-url');
  const repo = path.join(work, 'repo');
  await mkdir(repo);
  await writeFile(path.join(repo, 'a.txt'), 'a\n');
  await initAndCommit(repo, 'a');
  await mg(repo, 'remote', 'add', 'origin', path.join(work, 'remote'));
  const configPath = path.join(repo, '.mediagit', 'config.toml');
  const config = await readFile(configPath, 'utf8');

  const password = 'Pa55w0rdNeverShown';
  const cases: [string, RegExp][] = [
    ['s3://', /bad remote URL/],
    ['ftp://x/y', /bad remote URL.*scheme/],
    ['s3://bucket/../x', /bad remote URL.*\.\./],
    [`http://user:${password}@host/x`, /bad remote URL.*credentials/],
  ];
  for (const [url, pattern] of cases) {
    const clone = await mgFail(work, 'clone', url, 'target');
    assertOneLineError(clone, 11, pattern, `clone ${url}`);
    assert.equal(
      await exists(path.join(work, 'target')),
      false,
      `clone ${url} left its target folder`,
    );
    const add = await mgFail(repo, 'remote', 'add', 'bad', url);
    assertOneLineError(add, 11, pattern, `remote add ${url}`);
    for (const res of [clone, add])
      assert.ok(
        !res.stdout.includes(password) && !res.stderr.includes(password),
        `the password was printed for ${url}`,
      );
  }
  assert.equal(
    await readFile(configPath, 'utf8'),
    config,
    'a rejected remote add changed the config',
  );

  const dup = await mgFail(repo, 'remote', 'add', 'origin', path.join(work, 'elsewhere'));
  assertOneLineError(dup, 4, /remote 'origin' already exists/, 'duplicate remote add');
  assert.equal(
    await readFile(configPath, 'utf8'),
    config,
    'a duplicate remote add changed the config',
  );
  assert.equal(
    (await mg(repo, 'remote', '-v')).stdout.trim(),
    `origin\t${path.join(work, 'remote')}`,
  );
});

test('a corrupted chunk on the remote: clone exits 6 naming it and writes nothing', async () => {
  const work = await tempDir('remotes-corrupt');
  const src = path.join(work, 'src');
  const remote = path.join(work, 'remote.mediagit');
  await makeCorpus(src, 1, 'tiny');
  await initAndCommit(src, 'v1');
  await mg(src, 'remote', 'add', 'origin', remote);
  await mg(src, 'init', '-q', '--bare', remote);
  await mg(src, 'push', '-q');
  // Sanity: the untouched remote clones fine, so the failure below is the damage alone.
  await mg(work, 'clone', '-q', remote, path.join(work, 'before'));

  const chunks = await storedChunks(remote);
  const victim = chunks[Math.floor(chunks.length / 2)]!;
  await flipByte(victim.file);

  const res = await mgFail(work, 'clone', remote, 'target');
  assertOneLineError(res, 6, new RegExp(`${victim.oid}.*corrupt`), 'clone of a corrupted remote');
  assert.equal(
    await exists(path.join(work, 'target')),
    false,
    'a failed clone left its folder behind',
  );
  await mkdir(path.join(work, 'empty'));
  assertOneLineError(
    await mgFail(work, 'clone', remote, 'empty'),
    6,
    new RegExp(victim.oid),
    'clone into an existing empty folder',
  );
  assert.deepEqual(
    await readdir(path.join(work, 'empty')),
    [],
    'refs or files were written into the clone target',
  );
});

test('unreachable S3 endpoint: StoreUnavailable error quickly, secret never printed, nothing created', async () => {
  const work = await tempDir('remotes-s3-down');
  const secret = 'SuperSecretKeyValue0123456789';
  const started = Date.now();
  const res = await runCli(
    [
      'clone',
      's3://bucket/x',
      'target',
      '-o',
      'endpoint=http://127.0.0.1:9',
      '-o',
      'access_key=a',
      '-o',
      `secret_key=${secret}`,
      '-o',
      'max_retries=0',
    ],
    {
      cwd: work,
      allowFail: true,
      timeoutMs: 60_000,
    },
  );
  const elapsed = Date.now() - started;
  assertOneLineError(
    res,
    12,
    /cannot reach|unavailable|ECONNREFUSED/i,
    'clone from a dead endpoint',
  );
  assert.ok(elapsed < 15_000, `took ${elapsed} ms to give up`);
  assert.ok(
    !res.stdout.includes(secret) && !res.stderr.includes(secret),
    'the secret key was printed',
  );
  assert.equal(await exists(path.join(work, 'target')), false);
});

// ---- encryption ------------------------------------------------------------------------------------

test('encrypted repository: push and clone are byte-identical, the remote holds no plaintext, a wrong passphrase clones nothing', async () => {
  const work = await tempDir('remotes-encrypted');
  const marker = Buffer.from('PLAINTEXT-MARKER-7f3a9c1e-mediagit-remote-test');
  const content = (): Buffer =>
    Buffer.concat([randomBytes(50_000), marker, randomBytes(90_000), marker, randomBytes(30_000)]);
  const pass = { MEDIAGIT_PASSPHRASE: 'correct horse battery staple' };

  const populate = async (dir: string, files: Map<string, Buffer>): Promise<void> => {
    await mkdir(dir, { recursive: true });
    for (const [rel, data] of files) {
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await writeFile(path.join(dir, rel), data);
    }
  };
  const files = new Map([
    ['shots/a.raw', content()],
    ['shots/b.raw', content()],
    ['notes.txt', Buffer.concat([Buffer.from('notes '), marker, Buffer.from('\n')])],
  ]);

  // Control: the same files pushed without encryption do show the marker on the remote.
  const plain = path.join(work, 'plain');
  await populate(plain, files);
  await initAndCommit(plain, 'plain');
  await mg(plain, 'remote', 'add', 'origin', path.join(work, 'plain-remote'));
  await mg(plain, 'init', '-q', '--bare', path.join(work, 'plain-remote'));
  await mg(plain, 'push', '-q');
  assert.ok(
    await folderContains(path.join(work, 'plain-remote'), marker),
    'control: the marker should be visible in an unencrypted remote',
  );

  const src = path.join(work, 'src');
  const remote = path.join(work, 'remote.mediagit');
  await populate(src, files);
  await initAndCommit(
    src,
    'secret',
    { ...pass, MEDIAGIT_NEW_PASSPHRASE: pass.MEDIAGIT_PASSPHRASE },
    ['--encrypt'],
  );
  await runCli(['remote', 'add', 'origin', remote], { cwd: src, env: pass });
  await runCli(['push', '-q', '--create'], { cwd: src, env: pass });
  assert.equal(
    await folderContains(remote, marker),
    null,
    'plaintext found on the encrypted remote',
  );

  const clone = path.join(work, 'clone');
  await runCli(['clone', '-q', remote, clone], { cwd: work, env: pass });
  assertTreesEqual(await hashTree(clone), await hashTree(src), 'encrypted clone');
  await assertFsckClean(clone, pass);
  await assertStatusClean(clone, pass);

  const wrong = await runCli(['clone', remote, 'wrong'], {
    cwd: work,
    env: { MEDIAGIT_PASSPHRASE: 'not the passphrase' },
    allowFail: true,
  });
  assertOneLineError(wrong, 14, /passphrase/, 'clone with a wrong passphrase');
  assert.equal(
    await exists(path.join(work, 'wrong')),
    false,
    'a clone with a wrong passphrase left a folder',
  );
  assert.ok(!wrong.stderr.includes('correct horse'), 'the right passphrase appeared in the output');
});

// ---- concurrent pushes -------------------------------------------------------------------------------

test('4 clones pushing at once, round after round: exactly one wins each round, the rest get exit 10, nothing acknowledged is lost', async (t) => {
  const CLONES = 4;
  const MIN_ROUNDS = 8;
  const MAX_ROUNDS = 16;
  const BUDGET_MS = 35_000;
  const work = await tempDir('remotes-race');
  const seed = path.join(work, 'seed');
  const remote = path.join(work, 'remote.mediagit');
  await mkdir(seed);
  await writeFile(path.join(seed, 'README.txt'), 'race\n');
  await initAndCommit(seed, 'base');
  await mg(seed, 'remote', 'add', 'origin', remote);
  await mg(seed, 'init', '-q', '--bare', remote);
  await mg(seed, 'push', '-q');
  const clones = Array.from({ length: CLONES }, (_, i) => path.join(work, `clone-${i}`));
  await Promise.all(clones.map((c) => mg(work, 'clone', '-q', remote, c)));

  const started = Date.now();
  const acknowledged: { oid: string; file: string }[] = [];
  const wins = new Array<number>(CLONES).fill(0);
  let rounds = 0;
  while (rounds < MIN_ROUNDS || (rounds < MAX_ROUNDS && Date.now() - started < BUDGET_MS)) {
    const round = rounds++;
    await Promise.all(
      clones.map((c, i) =>
        commitFile(
          c,
          `round-${round}/clone-${i}.bin`,
          randomBytes(2000 + i),
          `round ${round} clone ${i}`,
        ),
      ),
    );
    const results = await Promise.all(
      clones.map((c) => runCli(['push', '--json'], { cwd: c, allowFail: true })),
    );
    const winners = results.flatMap((r, i) => (r.code === 0 ? [i] : []));
    assert.equal(
      winners.length,
      1,
      `round ${round}: exit codes ${results.map((r) => r.code).join(', ')}`,
    );
    for (const r of results)
      if (r.code !== 0) assertOneLineError(r, 10, /rejected/, `round ${round}: losing push`);
    const w = winners[0]!;
    const pushed = json<PushJson>(results[w]!.stdout).refs[0]!.new;
    assert.equal(pushed, await headOid(clones[w]!));
    assert.equal(
      await readRefFile(remote),
      pushed,
      `round ${round}: the remote ref is not the winner's commit`,
    );
    acknowledged.push({ oid: pushed, file: `round-${round}/clone-${w}.bin` });
    wins[w]!++;
    await Promise.all(clones.map((c, i) => (i === w ? Promise.resolve() : mg(c, 'pull', '-q'))));
  }
  const elapsed = Date.now() - started;

  const fresh = path.join(work, 'fresh');
  await mg(work, 'clone', '-q', remote, fresh);
  const history = new Set(
    json<LogJson[]>((await mg(fresh, 'log', '--json')).stdout).map((e) => e.oid),
  );
  const lost = acknowledged.filter((a) => !history.has(a.oid));
  assert.deepEqual(lost, [], 'acknowledged pushes missing from the history of a fresh clone');
  for (const a of acknowledged)
    assert.ok(
      await exists(path.join(fresh, a.file)),
      `${a.file} (acknowledged) is missing from a fresh clone`,
    );
  await assertFsckClean(fresh);
  t.diagnostic(
    `${rounds} rounds x ${CLONES} concurrent pushes in ${elapsed} ms: wins per clone ${wins.join('/')}; fresh clone history ${history.size} commits`,
  );
});
