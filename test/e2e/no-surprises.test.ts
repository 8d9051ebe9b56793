/**
 * What a git user expects and must not be surprised by: folder remotes are created on purpose,
 * README's exit-code table is what the commands return, and `config` reads like git's.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import * as errors from '../../src/errors/index.js';
import { ProtocolError, PayloadTooLargeError } from '../../src/store/http/errors.js';
import { ConditionalWritesUnsupportedError } from '../../src/store/s3/errors.js';
import { FsckError } from '../../src/commands/fsck.js';
import { REPO_ROOT, mg, mgFail, pathExists, runCli, tempDir } from '../support/cli.js';

async function repoWithCommit(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'a.txt'), 'a\n');
  await mg(dir, 'init', '-q');
  await mg(dir, 'add', '.');
  await mg(dir, 'commit', '-q', '-m', 'one');
}

test('a push to a folder remote that does not exist fails with the hint; init --bare or --create make one', async () => {
  const work = await tempDir('typo-remote');
  const repo = path.join(work, 'project');
  await repoWithCommit(repo);
  await mg(repo, 'remote', 'add', 'origin', '../typo.mediagit');

  const refused = await mgFail(repo, 'push');
  assert.equal(refused.code, 11, refused.stderr);
  assert.match(
    refused.stderr,
    /^error: remote 'origin' does not exist: no folder at .*typo\.mediagit$/m,
  );
  assert.match(refused.stderr, /^hint: .*mediagit init --bare .*typo\.mediagit.*push --create/m);
  assert.equal(await pathExists(path.join(work, 'typo.mediagit')), false, 'the push created it');

  const init = await mg(work, 'init', '--bare', 'typo.mediagit');
  assert.match(init.stdout, /^Initialized empty mediagit remote repository in .*typo\.mediagit$/m);
  const again = await mg(work, 'init', '--bare', 'typo.mediagit');
  assert.match(again.stdout, /^Reinitialized existing mediagit remote repository/m);
  assert.match((await mg(repo, 'push')).stdout, /\* \[new branch\] +main -> main/);
  const clone = path.join(work, 'clone');
  await mg(work, 'clone', '-q', 'typo.mediagit', clone);
  assert.equal(await readFile(path.join(clone, 'a.txt'), 'utf8'), 'a\n');

  // --create: the user says a new remote is meant.
  await mg(repo, 'remote', 'add', 'second', path.join(work, 'nas', 'second.mediagit'));
  assert.equal((await mgFail(repo, 'push', 'second')).code, 11);
  await mg(repo, 'push', '-q', '--create', 'second');
  await mg(work, 'clone', '-q', path.join(work, 'nas', 'second.mediagit'), path.join(work, 'c2'));

  // A folder that holds something else is never turned into a remote, with or without --create.
  const other = path.join(work, 'photos');
  await mkdir(other);
  await writeFile(path.join(other, 'holiday.jpg'), 'jpg');
  await mg(repo, 'remote', 'add', 'photos', other);
  const notRepo = await mgFail(repo, 'push', '--create', 'photos');
  assert.equal(notRepo.code, 11);
  assert.match(notRepo.stderr, /is not a mediagit repository/);
  assert.deepEqual(await readdir(other), ['holiday.jpg']);
  assert.equal((await mgFail(work, 'init', '--bare', other)).code, 11);
  assert.equal((await mgFail(work, 'init', '--bare', '--encrypt', 'x.mediagit')).code, 2);
});

/** README's exit-code table: exit code → the error codes its row names. */
async function readmeTable(): Promise<Map<number, Set<string>>> {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const table = new Map<number, Set<string>>();
  for (const line of readme.split('\n')) {
    const m = /^\| (\d+) \| .* \|([^|]*)\|$/.exec(line);
    if (!m) continue;
    table.set(Number(m[1]), new Set([...m[2]!.matchAll(/`(E_[A-Z_]+)`/g)].map((x) => x[1]!)));
  }
  return table;
}

test("every error class's exit code is the row of README's table that names its code", async () => {
  const table = await readmeTable();
  assert.ok(table.size >= 20, `README's table has only ${table.size} rows`);
  // Every constructor takes strings first (message, or oid/path/what); three cover them all.
  type ErrorClass = new (...args: string[]) => errors.MediagitError;
  const classes = [
    ...Object.values(errors).filter((v) => typeof v === 'function' && v.prototype instanceof Error),
    ProtocolError,
    PayloadTooLargeError,
    ConditionalWritesUnsupportedError,
    FsckError,
  ] as unknown as ErrorClass[];
  assert.ok(classes.length >= 28);
  const documented = new Set<number>([0]);
  for (const Cls of classes) {
    const err = new Cls('x', 'x', 'x');
    const row = table.get(err.exitCode);
    assert.ok(row, `${Cls.name}: exit ${err.exitCode} is not in README's table`);
    assert.ok(
      row.has(err.code),
      `${Cls.name}: README's row for exit ${err.exitCode} does not name ${err.code}`,
    );
    documented.add(err.exitCode);
  }
  // And no row documents an exit code nothing returns.
  assert.deepEqual(
    [...table.keys()].sort((a, b) => a - b),
    [...documented].sort((a, b) => a - b),
  );
});

test('real commands exit with the codes the table gives: every "already exists" is 4', async () => {
  const work = await tempDir('exit-codes');
  const repo = path.join(work, 'repo');
  await repoWithCommit(repo);
  await mg(repo, 'branch', 'topic');
  await mg(repo, 'tag', 'v1');
  await mg(work, 'init', '-q', '--bare', 'remote.mediagit');
  await mg(repo, 'remote', 'add', 'origin', '../remote.mediagit');
  await mg(repo, 'push', '-q');
  const busy = path.join(work, 'busy');
  await mkdir(busy);
  await writeFile(path.join(busy, 'keep.txt'), 'mine');
  const notRepo = path.join(work, 'half');
  await mkdir(path.join(notRepo, '.mediagit'), { recursive: true });

  const cases: [string, string, string[], number, RegExp][] = [
    ['branch exists', repo, ['branch', 'topic'], 4, /already exists/],
    ['rename onto a branch', repo, ['branch', '-m', 'main', 'topic'], 4, /already exists/],
    ['switch -c onto a branch', repo, ['switch', '-c', 'topic'], 4, /already exists/],
    ['tag exists', repo, ['tag', 'v1'], 4, /already exists/],
    ['remote exists', repo, ['remote', 'add', 'origin', '/elsewhere'], 4, /already exists/],
    ['clone into a non-empty folder', work, ['clone', 'remote.mediagit', busy], 4, /exists/],
    ['init over a stray .mediagit', work, ['init', notRepo], 4, /exists/],
    ['nothing to commit', repo, ['commit', '-m', 'again'], 1, /nothing/],
    ['unknown option', repo, ['status', '--no-such-flag'], 2, /unknown option/],
    ['outside a repository', work, ['status'], 3, /not a mediagit repository/],
    ['unknown revision', repo, ['show', 'nope'], 5, /unknown revision/],
    ['bad remote URL', repo, ['remote', 'add', 'bad', 'ftp://x/y'], 11, /bad remote URL/],
  ];
  for (const [what, cwd, args, code, message] of cases) {
    const r = await mgFail(cwd, ...args);
    assert.equal(r.code, code, `${what}: mediagit ${args.join(' ')}\n${r.stderr}`);
    assert.match(r.stderr, message, what);
  }
  assert.deepEqual(await readdir(busy), ['keep.txt']);
});

test('config <key> falls back to the global value; --list shows both with their origin', async () => {
  const work = await tempDir('config-scopes');
  const xdg = path.join(work, 'xdg');
  const repo = path.join(work, 'repo');
  await mkdir(repo);
  const run = (cwd: string, ...args: string[]) =>
    runCli(args, { cwd, env: { XDG_CONFIG_HOME: xdg } });
  await run(repo, 'init', '-q');
  await run(repo, 'config', '--global', 'user.name', 'Ada Global');
  await run(repo, 'config', '--global', 'user.email', 'ada@global.example');
  await run(repo, 'config', 'user.email', 'ada@local.example');

  assert.equal((await run(repo, 'config', 'user.name')).stdout, 'Ada Global\n');
  assert.equal((await run(repo, 'config', 'user.email')).stdout, 'ada@local.example\n');
  assert.equal((await run(work, 'config', 'user.name')).stdout, 'Ada Global\n', 'outside a repo');
  const missing = await runCli(['config', 'user.nickname'], {
    cwd: repo,
    env: { XDG_CONFIG_HOME: xdg },
    allowFail: true,
  });
  assert.equal(missing.code, 11);

  const list = (await run(repo, 'config', '--list')).stdout.split('\n');
  assert.ok(list.includes('global\tuser.name=Ada Global'), list.join('\n'));
  assert.ok(list.includes('global\tuser.email=ada@global.example'));
  assert.ok(list.includes('local\tuser.email=ada@local.example'));
  assert.ok(
    list.indexOf('global\tuser.email=ada@global.example') <
      list.indexOf('local\tuser.email=ada@local.example'),
    'the repository value comes last, as the one that wins',
  );
  const json = JSON.parse((await run(repo, 'config', '--list', '--json')).stdout) as {
    key: string;
    value: unknown;
    origin: string;
  }[];
  assert.ok(json.some((r) => r.key === 'user.name' && r.origin === 'global'));
  assert.ok(json.some((r) => r.key === 'chunking.avg_size' && r.origin === 'local'));
  // Writing outside a repository still needs --global.
  const outside = await runCli(['config', 'user.name', 'X'], {
    cwd: work,
    env: { XDG_CONFIG_HOME: xdg },
    allowFail: true,
  });
  assert.equal(outside.code, 3);
});
