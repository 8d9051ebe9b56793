/**
 * `mediagit key cache` / `key forget` and the key agent, through the built CLI. Every test gets its
 * own XDG_RUNTIME_DIR, so it never meets the developer's real agent, and stops its agent at the end.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { cleanup, runCli, tempDir, type CliResult } from '../support/cli.js';

const A = 'correct horse battery staple';
const B = 'a completely different passphrase';
const C = 'yet another passphrase';

interface Sandbox {
  work: string;
  runtime: string;
  /** Runs the CLI with this sandbox's runtime folder, the unlock report on, and no passphrase unless given. */
  cli(
    args: string[],
    cwd: string,
    opts?: { pass?: string; fresh?: string; env?: Record<string, string>; allowFail?: boolean },
  ): Promise<CliResult>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function agentPid(sb: Sandbox, cwd: string): Promise<number | null> {
  const status = await sb.cli(['key', 'cache', '--status'], cwd, { allowFail: true });
  const match = /pid (\d+)/.exec(status.stdout);
  return match ? Number(match[1]) : null;
}

async function sandbox(name: string): Promise<Sandbox> {
  // Registered before tempDir's own cleanup so it runs while the folders still exist.
  let created: Sandbox | null = null;
  cleanup(async () => {
    if (!created) return;
    // Whatever the test did, leave no agent behind: ask it to stop, then make sure.
    const pid = await agentPid(created, created.work);
    await created.cli(['key', 'forget', '--all'], created.work, { allowFail: true });
    if (pid !== null && isAlive(pid)) {
      await new Promise((r) => setTimeout(r, 200));
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
  const work = await tempDir(name);
  const runtime = path.join(work, 'run');
  await mkdir(runtime, { mode: 0o700 });
  const sb: Sandbox = {
    work,
    runtime,
    cli: (args, cwd, opts = {}) =>
      runCli(args, {
        cwd,
        allowFail: opts.allowFail ?? false,
        timeoutMs: 60_000,
        env: {
          XDG_RUNTIME_DIR: runtime,
          MEDIAGIT_DEBUG_UNLOCK: '1',
          ...(opts.pass ? { MEDIAGIT_PASSPHRASE: opts.pass } : {}),
          ...(opts.fresh ? { MEDIAGIT_NEW_PASSPHRASE: opts.fresh } : {}),
          ...opts.env,
        },
      }),
  };
  created = sb;
  return sb;
}

async function encryptedRepo(sb: Sandbox, name: string, pass = A): Promise<string> {
  const repo = path.join(sb.work, name);
  await sb.cli(['init', '-q', '--encrypt', repo], sb.work, { fresh: pass });
  await writeFile(path.join(repo, 'hero.tif'), randomBytes(50_000));
  await sb.cli(['add', '.'], repo, { pass });
  await sb.cli(['commit', '-q', '-m', 'hero'], repo, { pass });
  return repo;
}

function assertNeedsPassphrase(r: CliResult, label: string): void {
  assert.equal(r.code, 14, `${label}: ${r.stderr}`);
  assert.match(r.stderr, /passphrase/, label);
}

test('key cache: later commands need no passphrase and skip Argon2; key forget brings the passphrase back', async () => {
  const sb = await sandbox('agent-basic');
  const repo = await encryptedRepo(sb, 'repo');
  const cached = await sb.cli(['key', 'cache', '--timeout', '5m'], repo, { pass: A });
  assert.match(cached.stdout, /^cached the key of .* for 5m$/m);
  assert.doesNotMatch(
    cached.stderr,
    /unlocked via agent/,
    'key cache itself always proves the passphrase',
  );

  const status = await sb.cli(['status'], repo);
  assert.match(status.stderr, /^unlocked via agent$/m);
  await writeFile(path.join(repo, 'notes.txt'), 'retime shot 12');
  await sb.cli(['add', '.'], repo);
  await sb.cli(['commit', '-q', '-m', 'notes'], repo);
  const log = await sb.cli(['log', '--oneline'], repo);
  assert.equal(log.stdout.trim().split('\n').length, 2);
  await sb.cli(['fsck', '--full'], repo);

  assert.match(
    (await sb.cli(['key', 'cache', '--status'], repo)).stdout,
    /cached for another \d+m/,
  );
  assertNeedsPassphrase(
    await sb.cli(['status'], repo, { env: { MEDIAGIT_AGENT: '0' }, allowFail: true }),
    'MEDIAGIT_AGENT=0',
  );

  assert.match((await sb.cli(['key', 'forget'], repo)).stdout, /forgot the cached key of/);
  assertNeedsPassphrase(await sb.cli(['status'], repo, { allowFail: true }), 'after forget');
  assert.match((await sb.cli(['status'], repo, { pass: A })).stderr, /^unlocked via passphrase$/m);
  assert.match((await sb.cli(['key', 'forget'], repo)).stdout, /no key of .* was cached/);

  assert.match(
    (await sb.cli(['key', 'forget', '--all'], repo)).stdout,
    /the key agent has stopped/,
  );
  const again = await sb.cli(['key', 'forget', '--all'], repo, { allowFail: true });
  assert.equal(again.code, 17, again.stderr);
  assert.match(again.stderr, /^error: no key agent is running\nhint: .+\n$/);
  assert.equal((await sb.cli(['key', 'forget'], repo, { allowFail: true })).code, 17);
});

test('a cached key expires after its timeout', async () => {
  const sb = await sandbox('agent-expiry');
  const repo = await encryptedRepo(sb, 'repo');
  await sb.cli(['key', 'cache', '--timeout', '2s'], repo, { pass: A });
  // The key was cached before `key cache` exited, so it expires at the latest 2 s from here.
  const cachedBy = Date.now();
  const early = await sb.cli(['status'], repo, { allowFail: true });
  // Only meaningful if the machine was quick enough to ask well before the 2 s were up.
  if (Date.now() - cachedBy < 1500) assert.equal(early.code, 0, early.stderr);
  await new Promise((r) => setTimeout(r, Math.max(0, cachedBy + 2300 - Date.now())));
  assertNeedsPassphrase(await sb.cli(['status'], repo, { allowFail: true }), 'after expiry');
  assert.match(
    (await sb.cli(['key', 'cache', '--status'], repo)).stdout,
    /holds no key|no key agent is running/,
  );
});

test('the agent serves a clone of the same repository, never another repository with the same passphrase', async () => {
  const sb = await sandbox('agent-repos');
  const original = await encryptedRepo(sb, 'original');
  const other = await encryptedRepo(sb, 'other', A);
  await sb.cli(['key', 'cache'], original, { pass: A });

  const remote = path.join(sb.work, 'remote.mediagit');
  await sb.cli(['remote', 'add', 'origin', remote], original);
  assert.match(
    (await sb.cli(['push', '-q', '--create'], original)).stderr,
    /^unlocked via agent$/m,
  );
  const clone = await sb.cli(['clone', '-q', remote, 'copy'], sb.work);
  assert.match(clone.stderr, /^unlocked via agent$/m);
  const copy = path.join(sb.work, 'copy');
  assert.deepEqual(
    await readFile(path.join(copy, 'hero.tif')),
    await readFile(path.join(original, 'hero.tif')),
  );
  assert.match((await sb.cli(['status'], copy)).stderr, /^unlocked via agent$/m);

  assertNeedsPassphrase(await sb.cli(['status'], other, { allowFail: true }), 'other repository');
  assert.match((await sb.cli(['status'], other, { pass: A })).stderr, /^unlocked via passphrase$/m);
  assert.match((await sb.cli(['key', 'forget'], other)).stdout, /no key of .* was cached/);
  assert.match(
    (await sb.cli(['status'], original)).stderr,
    /^unlocked via agent$/m,
    'forgetting another repository leaves this one cached',
  );
});

test('an agent folder other users can reach is refused, by key cache and by the lookup', async () => {
  const sb = await sandbox('agent-unsafe');
  const repo = await encryptedRepo(sb, 'repo');
  const folder = path.join(sb.runtime, 'mediagit');
  await mkdir(folder, { mode: 0o700 });
  await chmod(folder, 0o755);
  const refused = await sb.cli(['key', 'cache'], repo, { pass: A, allowFail: true });
  assert.equal(refused.code, 17, refused.stderr);
  assert.match(
    refused.stderr,
    /^error: the key agent folder .* is accessible to other users \(mode 755\); refusing to use it\nhint: .+\n$/,
  );
  await assert.rejects(lstat(path.join(folder, 'agent.sock')), /ENOENT/);

  // A key cached while the folder was private is not fetched once the folder is opened up.
  await chmod(folder, 0o700);
  await sb.cli(['key', 'cache'], repo, { pass: A });
  assert.match((await sb.cli(['status'], repo)).stderr, /unlocked via agent/);
  await chmod(folder, 0o755);
  assertNeedsPassphrase(await sb.cli(['status'], repo, { allowFail: true }), 'folder opened up');
  assert.match(
    (await sb.cli(['status'], repo, { pass: A })).stderr,
    /unlocked via passphrase/,
    'silent fallback to the passphrase',
  );
  await chmod(folder, 0o700);

  if (process.getuid?.() === 0) {
    // Only root can hand a folder to someone else: check the ownership test too.
    await chown(folder, 12345, 12345);
    const foreign = await sb.cli(['key', 'cache'], repo, { pass: A, allowFail: true });
    assert.equal(foreign.code, 17, foreign.stderr);
    assert.match(foreign.stderr, /belongs to uid 12345/);
    assertNeedsPassphrase(
      await sb.cli(['status'], repo, { allowFail: true }),
      'folder of another user',
    );
    await chown(folder, 0, 0);
  }
});

test('a wrong passphrase or a bad duration caches nothing and starts no agent', async () => {
  const sb = await sandbox('agent-wrong');
  const repo = await encryptedRepo(sb, 'repo');
  const wrong = await sb.cli(['key', 'cache'], repo, {
    pass: 'not the passphrase',
    allowFail: true,
  });
  assert.equal(wrong.code, 14, wrong.stderr);
  assert.match(wrong.stderr, /^error: wrong passphrase/);
  await assert.rejects(lstat(path.join(sb.runtime, 'mediagit', 'agent.sock')), /ENOENT/);
  assert.match(
    (await sb.cli(['key', 'cache', '--status'], repo)).stdout,
    /no key agent is running/,
  );

  for (const bad of ['15', 'soon', '0s', '30d']) {
    const r = await sb.cli(['key', 'cache', '--timeout', bad], repo, { allowFail: true });
    assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
    assert.match(r.stderr, /^error: invalid duration '.*': .+\nhint: .*30s, 15m, 2h.*\n$/, bad);
  }
  const plain = path.join(sb.work, 'plain');
  await sb.cli(['init', '-q', plain], sb.work);
  const notEncrypted = await sb.cli(['key', 'cache'], plain, { allowFail: true });
  assert.equal(notEncrypted.code, 2);
  assert.match(notEncrypted.stderr, /not encrypted/);
});

test('key add, remove and passwd work with the cached key, which follows the new passphrase', async () => {
  const sb = await sandbox('agent-keys');
  const repo = await encryptedRepo(sb, 'repo');
  await sb.cli(['key', 'cache'], repo, { pass: A });
  await sb.cli(['key', 'add', '--label', 'B'], repo, { fresh: B });
  const keys = JSON.parse((await sb.cli(['key', 'list', '--json'], repo)).stdout) as {
    id: string;
    label: string;
    current: boolean;
  }[];
  assert.equal(keys.length, 2);
  const cachedKey = keys.find((k) => k.current)!;
  assert.equal(cachedKey.label, 'initial');
  const self = await sb.cli(['key', 'remove', cachedKey.id], repo, { allowFail: true });
  assert.equal(self.code, 2, self.stderr);
  assert.match(self.stderr, /key forget/);
  await sb.cli(['key', 'remove', keys.find((k) => !k.current)!.id], repo);

  const passwd = await sb.cli(['key', 'passwd'], repo, { fresh: C });
  assert.match(passwd.stdout, /changed passphrase/);
  assert.match(
    (await sb.cli(['status'], repo)).stderr,
    /^unlocked via agent$/m,
    'the cached key moved to the new key file',
  );
  await sb.cli(['fsck', '--full'], repo, { pass: C, env: { MEDIAGIT_AGENT: '0' } });
  assertNeedsPassphrase(
    await sb.cli(['status'], repo, { pass: A, env: { MEDIAGIT_AGENT: '0' }, allowFail: true }),
    'old passphrase after passwd',
  );
});

test('a killed agent leaves commands on the passphrase path; key cache replaces its stale socket', async () => {
  const sb = await sandbox('agent-killed');
  const repo = await encryptedRepo(sb, 'repo');
  await sb.cli(['key', 'cache'], repo, { pass: A });
  const pid = await agentPid(sb, repo);
  assert.ok(pid !== null && isAlive(pid));
  process.kill(pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(
    (await lstat(path.join(sb.runtime, 'mediagit', 'agent.sock'))).isSocket(),
    'the socket is left behind',
  );
  assertNeedsPassphrase(await sb.cli(['status'], repo, { allowFail: true }), 'dead agent');
  assert.match((await sb.cli(['status'], repo, { pass: A })).stderr, /unlocked via passphrase/);
  await sb.cli(['key', 'cache'], repo, { pass: A });
  assert.match((await sb.cli(['status'], repo)).stderr, /unlocked via agent/);
  assert.notEqual(await agentPid(sb, repo), pid);
});

test('key cache and key forget have help with examples', async () => {
  const sb = await sandbox('agent-help');
  for (const sub of ['cache', 'forget']) {
    const help = await sb.cli(['key', sub, '--help'], sb.work);
    assert.match(help.stdout, /Examples:\n {2}\$ mediagit key /);
  }
});

test('an explicit passphrase wins over a cached key: a wrong one is exit 14 for status and clone, the right one is checked', async () => {
  const sb = await sandbox('agent-explicit');
  const repo = await encryptedRepo(sb, 'repo');
  await sb.cli(['key', 'cache'], repo, { pass: A });
  const remote = path.join(sb.work, 'remote.mediagit');
  await sb.cli(['remote', 'add', 'origin', remote], repo);
  await sb.cli(['push', '-q', '--create'], repo);

  assert.match((await sb.cli(['status'], repo)).stderr, /^unlocked via agent$/m);
  assertNeedsPassphrase(
    await sb.cli(['status'], repo, { pass: 'wrong', allowFail: true }),
    'status with MEDIAGIT_PASSPHRASE=wrong',
  );
  const wrongFile = path.join(sb.work, 'wrong.txt');
  await writeFile(wrongFile, 'wrong\n');
  assertNeedsPassphrase(
    await sb.cli(['--passphrase-file', wrongFile, 'status'], repo, { allowFail: true }),
    'status with a wrong --passphrase-file',
  );
  assert.match((await sb.cli(['status'], repo, { pass: A })).stderr, /^unlocked via passphrase$/m);

  const wrongClone = await sb.cli(['clone', '-q', remote, 'copy'], sb.work, {
    pass: 'wrong',
    allowFail: true,
  });
  assertNeedsPassphrase(wrongClone, 'clone with MEDIAGIT_PASSPHRASE=wrong');
  const clone = await sb.cli(['clone', '-q', remote, 'copy'], sb.work);
  assert.match(clone.stderr, /^unlocked via agent$/m);
});

test('init --encrypt takes MEDIAGIT_PASSPHRASE when MEDIAGIT_NEW_PASSPHRASE is unset', async () => {
  const sb = await sandbox('init-one-variable');
  const repo = path.join(sb.work, 'repo');
  await sb.cli(['init', '-q', '--encrypt', repo], sb.work, { pass: B });
  assert.match((await sb.cli(['status'], repo, { pass: B })).stderr, /^unlocked via passphrase$/m);
  assertNeedsPassphrase(
    await sb.cli(['status'], repo, { pass: C, allowFail: true }),
    'another passphrase',
  );
  // A second key is never silently the first one again: key add still wants a new passphrase.
  const add = await sb.cli(['key', 'add'], repo, { pass: B, allowFail: true });
  assertNeedsPassphrase(add, 'key add without a new passphrase');
});
