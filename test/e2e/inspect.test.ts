/**
 * The inspection and maintenance commands end to end: diff, show, branch, tag, stats, gc, fsck,
 * run as a user would run them, on one small repository whose files span several chunks.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, test } from 'node:test';
import { CLI_PATH, cliEnv, runCli, tempDir, type CliResult } from '../support/cli.js';
import { storedChunks } from '../support/sync-fixtures.js';

/** Deterministic pseudo-random bytes (SHA-256 in counter mode). */
function bytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let offset = 0, i = 0; offset < length; i++)
    offset += createHash('sha256').update(`${seed}/${i}`).digest().copy(out, offset);
  return out;
}

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');
const json = <T>(text: string): T => JSON.parse(text) as T;

interface ChangeJson {
  path: string;
  status: string;
  oldOid: string | null;
  newOid: string | null;
  oldSize: number | null;
  newSize: number | null;
}

interface Stats {
  commits: number;
  files: number;
  chunks: number;
  logicalBytes: number;
  uniqueBytes: number;
  storedBytes: number;
  storedChunkBytes: number;
  dedupRatio: number;
  compressionRatio: number;
}

// Created at the top level: tempDir's cleanup then runs when the whole file is done.
const repo = await tempDir('inspect');
const mg = (args: string[], allowFail = false): Promise<CliResult> =>
  runCli(args, { cwd: repo, allowFail });

/** Runs the CLI capturing stdout as raw bytes (runCli decodes it as UTF-8). */
function mgRaw(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      cwd: repo,
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
  });
}

const files = {
  a: bytes('a', 300_000),
  b1: bytes('b', 200_000),
  b2: Buffer.concat([
    bytes('b', 120_000),
    bytes('insert', 30_000),
    bytes('b', 200_000).subarray(120_000),
  ]),
  c: bytes('c', 150_000),
  n: bytes('n', 100_000),
};

before(async () => {
  await mg(['init', '-q', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K']);
  await mkdir(path.join(repo, 'tex'));
  await writeFile(path.join(repo, 'tex', 'a.bin'), files.a);
  await writeFile(path.join(repo, 'b.bin'), files.b1);
  await writeFile(path.join(repo, 'c.bin'), files.c);
  await mg(['add', '.']);
  await mg(['commit', '-m', 'first']);
});

test('diff: working tree, index and commits in every format', async () => {
  await writeFile(path.join(repo, 'b.bin'), files.b2);
  await unlink(path.join(repo, 'c.bin'));

  assert.equal((await mg(['diff', '--name-status'])).stdout, 'M\tb.bin\nD\tc.bin\n');
  assert.equal((await mg(['diff', '--name-only'])).stdout, 'b.bin\nc.bin\n');
  assert.equal(
    (await mg(['diff', '--stat'])).stdout,
    ' b.bin | Bin 200000 -> 230000 bytes\n c.bin | Bin 150000 -> 0 bytes\n 2 files changed\n',
  );
  const patch = (await mg(['diff'])).stdout;
  assert.match(
    patch,
    /^diff --mediagit a\/b\.bin b\/b\.bin\nindex [0-9a-f]{12}\.\.[0-9a-f]{12} 100644\nBinary files a\/b\.bin and b\/b\.bin differ \(195 KiB → 225 KiB\)\n/,
  );
  assert.match(
    patch,
    /diff --mediagit a\/c\.bin b\/c\.bin\ndeleted file mode 100644\nindex [0-9a-f]{12}\.\.0{12}\nBinary files a\/c\.bin and \/dev\/null differ/,
  );
  const changes = json<ChangeJson[]>((await mg(['diff', '--json'])).stdout);
  assert.deepEqual(
    changes.map((c) => [c.path, c.status, c.oldSize, c.newSize, c.newOid === null]),
    [
      ['b.bin', 'M', 200_000, 230_000, false],
      ['c.bin', 'D', 150_000, null, true],
    ],
  );
  // Paths after -- (relative to the current folder) narrow the comparison.
  assert.equal((await mg(['diff', '--name-only', '--', 'b.bin'])).stdout, 'b.bin\n');
  assert.equal((await mg(['diff', '--name-only', '--', 'tex'])).stdout, '');
  assert.equal(
    (await runCli(['diff', '--name-only', '--', '..'], { cwd: path.join(repo, 'tex') })).stdout,
    'b.bin\nc.bin\n',
  );

  // Staged: the working tree matches the index, the index differs from HEAD.
  await mg(['add', '-A']);
  assert.equal((await mg(['diff'])).stdout, '');
  assert.equal((await mg(['diff', '--cached', '--name-status'])).stdout, 'M\tb.bin\nD\tc.bin\n');
  assert.equal(
    (await mg(['diff', '--staged', '--name-status', 'HEAD'])).stdout,
    'M\tb.bin\nD\tc.bin\n',
  );
  // Both manifests are stored now, so the patch counts the chunks the insertion changed.
  const staged = (await mg(['diff', '--cached', '--', 'b.bin'])).stdout;
  const m = /differ \(195 KiB → 225 KiB; (\d+) of (\d+) chunks changed\)/.exec(staged);
  assert.ok(m, staged);
  assert.ok(
    Number(m[1]) >= 1 && Number(m[1]) < Number(m[2]),
    `an insertion changes a few chunks, not all: ${m[0]}`,
  );
  assert.equal((await mg(['diff', 'HEAD', '--name-only'])).stdout, 'b.bin\nc.bin\n');

  await writeFile(path.join(repo, 'tex', 'n.bin'), files.n);
  await mg(['add', '.']);
  await mg(['commit', '-m', 'second']);
  assert.equal(
    (await mg(['diff', 'HEAD~1', 'HEAD', '--name-status'])).stdout,
    'M\tb.bin\nD\tc.bin\nA\ttex/n.bin\n',
  );
  assert.equal(
    (await mg(['diff', 'HEAD~1..HEAD', '--name-status'])).stdout,
    'M\tb.bin\nD\tc.bin\nA\ttex/n.bin\n',
  );
  assert.equal(
    (await mg(['diff', 'HEAD~1', 'HEAD', '--stat'])).stdout,
    ' b.bin     | Bin 200000 -> 230000 bytes\n c.bin     | Bin 150000 -> 0 bytes\n tex/n.bin | Bin 0 -> 100000 bytes\n 3 files changed\n',
  );
  assert.equal(
    (await mg(['diff', 'HEAD~1', 'HEAD', '--name-only', '--', 'tex'])).stdout,
    'tex/n.bin\n',
  );
  assert.equal(
    (await mg(['diff', 'HEAD~1', 'tex/n.bin', '--name-only'])).stdout,
    'tex/n.bin\n',
    'a path without -- after a revision',
  );
  const bad = await mg(['diff', 'no-such-rev'], true);
  assert.equal(bad.code, 5);
  assert.match(bad.stderr, /unknown revision/);
});

test('show: commits, folders, and a file byte for byte', async () => {
  const head = json<{ oid: string; message: string; changes: ChangeJson[] }>(
    (await mg(['show', '--json'])).stdout,
  );
  assert.equal(head.message, 'second\n');
  assert.deepEqual(
    head.changes.map((c) => `${c.status} ${c.path}`),
    ['M b.bin', 'D c.bin', 'A tex/n.bin'],
  );
  const text = (await mg(['show'])).stdout;
  assert.match(
    text,
    new RegExp(
      `^commit ${head.oid} \\(HEAD -> main\\)\\nAuthor: Test <test@example\\.com>\\nDate:   .+\\n\\n    second\\n\\nM\\tb\\.bin\\nD\\tc\\.bin\\nA\\ttex/n\\.bin\\n$`,
    ),
  );
  assert.match(
    (await mg(['show', '--stat', 'HEAD~1'])).stdout,
    /\n b\.bin +\| Bin 0 -> 200000 bytes\n/,
  );

  for (const [spec, content] of [
    ['HEAD~1:b.bin', files.b1],
    ['HEAD:b.bin', files.b2],
    ['HEAD~1:c.bin', files.c],
    ['main:tex/a.bin', files.a],
  ] as const) {
    const shown = await mgRaw(['show', spec]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout.length, content.length, spec);
    assert.equal(sha256(shown.stdout), sha256(content), `${spec} is byte-identical`);
  }
  assert.equal((await mg(['show', 'HEAD:tex'])).stdout, 'tree HEAD:tex\n\na.bin\nn.bin\n');
  assert.equal((await mg(['show', 'HEAD:'])).stdout, 'tree HEAD:\n\nb.bin\ntex/\n');
  const missing = await mg(['show', 'HEAD:c.bin'], true);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /does not exist/);
});

test('branch: create, list, rename, and delete only when merged', async () => {
  await mg(['branch', 'feature']);
  assert.equal((await mg(['branch'])).stdout, '  feature\n* main\n');
  const exists = await mg(['branch', 'feature'], true);
  assert.equal(exists.code, 4);
  assert.match(exists.stderr, /already exists/);
  assert.match(
    (await mg(['branch', '-v'])).stdout,
    /^ {2}feature [0-9a-f]{12} second\n\* main {4}[0-9a-f]{12} second\n$/,
  );

  await mg(['switch', '-q', 'feature']);
  await writeFile(path.join(repo, 'unique.bin'), bytes('unique', 200_000));
  await mg(['add', 'unique.bin']);
  await mg(['commit', '-q', '-m', 'unique work']);
  await mg(['switch', '-q', 'main']);

  const unmerged = await mg(['branch', '-d', 'feature'], true);
  assert.notEqual(unmerged.code, 0);
  assert.match(unmerged.stderr, /not fully merged/);
  const current = await mg(['branch', '-d', 'main'], true);
  assert.notEqual(current.code, 0);
  assert.match(current.stderr, /current branch/);

  await mg(['branch', '-m', 'feature', 'lighting']);
  const list = json<{ name: string; oid: string; current: boolean }[]>(
    (await mg(['branch', '--json'])).stdout,
  );
  assert.deepEqual(
    list.map((b) => [b.name, b.current]),
    [
      ['lighting', false],
      ['main', true],
    ],
  );
  assert.match((await mg(['log', '--oneline', '-n', '1', 'lighting'])).stdout, /unique work/);

  // Renaming the current branch moves HEAD with it.
  await mg(['branch', '-m', 'trunk']);
  assert.equal((await mg(['branch'])).stdout, '  lighting\n* trunk\n');
  await mg(['branch', '-m', 'trunk', 'main']);

  await mg(['branch', 'merged-already', 'HEAD~1']);
  assert.match(
    (await mg(['branch', '-d', 'merged-already'])).stdout,
    /^Deleted branch merged-already \(was [0-9a-f]{12}\)\.\n$/,
  );

  await mg(['switch', '-q', '--detach', 'HEAD~1']);
  assert.match(
    (await mg(['branch'])).stdout,
    /^\* \(HEAD detached at [0-9a-f]{12}\)\n {2}lighting\n {2}main\n$/,
  );
  await mg(['switch', '-q', 'main']);
});

test('tag: lightweight and annotated, resolved by log and show', async () => {
  await mg(['tag', 'v1', 'HEAD~1']);
  await mg(['tag', '-a', 'v2', '-m', 'Release two']);
  assert.equal((await mg(['tag'])).stdout, 'v1\nv2\n');
  assert.equal((await mg(['tag', '-l', 'v2*'])).stdout, 'v2\n');
  assert.match((await mg(['log', '--oneline', 'v1'])).stdout, /^[0-9a-f]{12} \(tag: v1\) first\n$/);
  assert.match(
    (await mg(['log', '--oneline', '-n', '1', 'v2'])).stdout,
    /\(HEAD -> main, tag: v2\) second\n$/,
  );

  const shownTag = (await mg(['show', 'v2'])).stdout;
  assert.match(
    shownTag,
    /^tag v2\nTagger: Test <test@example\.com>\nDate: {3}.+\n\nRelease two\n\ncommit [0-9a-f]{64} /,
  );
  assert.match(shownTag, /\n {4}second\n/);
  assert.match(
    (await mg(['show', 'v1', '--name-status'])).stdout,
    /\n {4}first\n\nA\tb\.bin\nA\tc\.bin\nA\ttex\/a\.bin\n$/,
  );
  const tags = json<{ name: string; annotated: boolean; commit: string }[]>(
    (await mg(['tag', '--json'])).stdout,
  );
  assert.deepEqual(
    tags.map((t) => [t.name, t.annotated]),
    [
      ['v1', false],
      ['v2', true],
    ],
  );
  const shownFile = await mgRaw(['show', 'v1:b.bin']);
  assert.equal(sha256(shownFile.stdout), sha256(files.b1));

  const again = await mg(['tag', 'v1'], true);
  assert.equal(again.code, 4);
  assert.match(again.stderr, /already exists/);
  await mg(['tag', '-f', 'v1', 'HEAD']);
  assert.match((await mg(['tag', '-d', 'v1'])).stdout, /^Deleted tag 'v1'/);
  assert.equal((await mg(['tag'])).stdout, 'v2\n');
});

test('stats: consistent numbers; re-adding the same content adds no chunks', async () => {
  const before = json<Stats>((await mg(['stats', '--json'])).stdout);
  assert.equal(before.commits, 3);
  assert.ok(before.dedupRatio >= 1, `dedup ratio ${before.dedupRatio}`);
  assert.ok(before.chunks >= 10, `files span several chunks (${before.chunks})`);
  assert.ok(before.storedChunkBytes <= before.storedBytes);
  // first: a + b1 + c; second: a + b2 + n; unique work: second + unique.
  const snapshots = [
    300_000 + 200_000 + 150_000,
    300_000 + 230_000 + 100_000,
    300_000 + 230_000 + 100_000 + 200_000,
  ];
  assert.equal(
    before.logicalBytes,
    snapshots.reduce((a, b) => a + b, 0),
  );
  assert.ok(
    before.uniqueBytes < 300_000 + 200_000 + 150_000 + 230_000 + 100_000 + 200_000,
    'b1 and b2 share chunks',
  );
  assert.ok(Math.abs(before.dedupRatio - before.logicalBytes / before.uniqueBytes) < 1e-9);
  assert.ok(
    Math.abs(before.compressionRatio - before.uniqueBytes / before.storedChunkBytes) < 1e-9,
  );

  await writeFile(path.join(repo, 'tex', 'a-copy.bin'), files.a);
  await mg(['add', '.']);
  await mg(['commit', '-q', '-m', 'copy']);
  const after = json<Stats>((await mg(['stats', '--json'])).stdout);
  assert.equal(after.commits, 4);
  assert.equal(after.chunks, before.chunks, 'same content, no new chunks');
  assert.equal(after.uniqueBytes, before.uniqueBytes);
  assert.equal(after.files, before.files, 'same content, same manifest');
  assert.ok(after.dedupRatio > before.dedupRatio);
  assert.match((await mg(['stats'])).stdout, /deduplication: +\d+\.\d\dx/);
});

test('gc: unreachable content goes only after its grace period; fsck stays clean', async () => {
  await mg(['branch', '-D', 'lighting']);
  // HEAD's reflog still names lighting's commits (gc keeps them 90 days); forget them as git would.
  await mg(['reflog', 'expire', '--expire=now', '--all']);
  const before = json<Stats>((await mg(['stats', '--json'])).stdout);
  const graced = json<{ removed: number; keptUnreachable: number }>(
    (await mg(['gc', '--json'])).stdout,
  );
  assert.equal(graced.removed, 0, 'everything is younger than the default hour');
  assert.ok(graced.keptUnreachable > 0);
  const dry = json<{ removed: number; dryRun: boolean }>(
    (await mg(['gc', '--prune', 'now', '--dry-run', '--json'])).stdout,
  );
  assert.ok(dry.removed > 0);
  assert.equal(
    json<Stats>((await mg(['stats', '--json'])).stdout).storedBytes,
    before.storedBytes,
    'dry run deletes nothing',
  );

  const result = await mg(['gc', '--prune', 'now']);
  assert.match(
    result.stdout,
    new RegExp(`^removed ${dry.removed} objects \\([\\d.]+ KiB\\), kept \\d+\\n$`),
  );
  const after = json<Stats>((await mg(['stats', '--json'])).stdout);
  assert.ok(after.storedBytes < before.storedBytes - 190_000, 'the unique 200 KB file is gone');
  assert.equal(after.chunks, before.chunks, 'every reachable chunk is kept');
  assert.equal(after.logicalBytes, before.logicalBytes);
  assert.match((await mg(['fsck', '--full'])).stdout, /no problems found/);
  assert.equal(
    (await mg(['gc', '--prune', 'now', '--json'])).stdout.includes('"removed": 0'),
    true,
    'a second gc finds nothing',
  );
  const bad = await mg(['gc', '--prune', 'soon'], true);
  assert.equal(bad.code, 2);
});

test('fsck: clean, then a corrupt chunk (--full) and a missing chunk are named', async () => {
  const clean = await mg(['fsck']);
  assert.match(
    clean.stdout,
    /^checked 1 tag, 3 commits, \d+ trees, \d+ manifests, \d+ chunks \([\d.]+ KiB\): no problems found\n$/,
  );

  // The stored chunks themselves, not the first fan-out folders: init makes all 256.
  const chunks = await storedChunks(path.join(repo, '.mediagit'));
  const pick = (i: number): { oid: string; file: string } => chunks[i]!;

  const corrupt = pick(0);
  const original = await readFile(corrupt.file);
  await chmod(corrupt.file, 0o644);
  const damaged = Buffer.from(original);
  damaged[damaged.length - 5]! ^= 0x40;
  await writeFile(corrupt.file, damaged);
  assert.equal((await mg(['fsck'], true)).code, 0, 'without --full only presence is checked');
  const full = await mg(['fsck', '--full'], true);
  assert.equal(full.code, 6);
  assert.match(
    full.stdout,
    new RegExp(`^corrupt chunk ${corrupt.oid}: .+ \\(in manifest [0-9a-f]{64} of .+\\)$`, 'm'),
  );
  const report = json<{ ok: boolean; problems: { kind: string; oid: string; problem: string }[] }>(
    (await mg(['fsck', '--full', '--json'], true)).stdout,
  );
  assert.equal(report.ok, false);
  assert.deepEqual(
    report.problems.map((p) => [p.kind, p.oid, p.problem]),
    [['chunk', corrupt.oid, 'corrupt']],
  );
  await writeFile(corrupt.file, original);
  await chmod(corrupt.file, 0o444);

  const missing = pick(1);
  await rename(missing.file, `${missing.file}.away`);
  const quick = await mg(['fsck'], true);
  assert.equal(quick.code, 6);
  assert.match(
    quick.stdout,
    new RegExp(`^missing chunk ${missing.oid} \\(in manifest [0-9a-f]{64} of .+\\)$`, 'm'),
  );
  assert.match(quick.stdout, /1 problem found/);
  const gc = await mg(['gc', '--prune', 'now'], true);
  assert.notEqual(gc.code, 0, 'gc refuses to run on a damaged repository');
  assert.match(gc.stderr, /fsck/);
  await rename(`${missing.file}.away`, missing.file);
  assert.match((await mg(['fsck', '--full'])).stdout, /no problems found/);
});
