import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { mg, mgFail, runCli, tempDir } from '../support/cli.js';

const FILES = ['a.bin', 'b.bin', 'notes.txt'];

async function digest(repo: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of FILES)
    out[name] = createHash('sha256')
      .update(await readFile(path.join(repo, name)))
      .digest('hex');
  return out;
}

/** Five commits, each rewriting two binary files with fresh random bytes (so nothing dedupes). */
async function fiveCommits(repo: string): Promise<void> {
  await mg(repo, 'init', '-q');
  for (let i = 1; i <= 5; i++) {
    await writeFile(path.join(repo, 'a.bin'), randomBytes(150_000));
    await writeFile(path.join(repo, 'b.bin'), randomBytes(90_000 + i));
    await writeFile(path.join(repo, 'notes.txt'), `take ${i}\n`);
    await mg(repo, 'add', '.');
    await mg(repo, 'commit', '-q', '-m', `c${i}`);
  }
}

test('reset --hard HEAD~3 && gc --prune=now, then reset --hard HEAD@{1} restores every byte', async () => {
  const repo = await tempDir('reflog-recover');
  await fiveCommits(repo);
  const before = await digest(repo);
  await mg(repo, 'reset', '--hard', 'HEAD~3');
  assert.notDeepEqual(await digest(repo), before);
  // ORIG_HEAD would keep the old tip too; without it only the reflog names the lost commits.
  await rm(path.join(repo, '.mediagit', 'ORIG_HEAD'));
  await mg(repo, 'gc', '--prune=now');
  await mg(repo, 'reset', '--hard', 'HEAD@{1}');
  assert.deepEqual(await digest(repo), before, 'the tree is byte-identical to the lost tip');
  assert.equal((await mg(repo, 'fsck')).code, 0);

  const reflog = (await mg(repo, 'reflog')).stdout.trim().split('\n');
  assert.match(reflog[0]!, /^[0-9a-f]+ HEAD@\{0\}: reset: moving to HEAD@\{1\}$/);
  assert.match(reflog[1]!, /^[0-9a-f]+ HEAD@\{1\}: reset: moving to HEAD~3$/);
  assert.match(reflog[2]!, /^[0-9a-f]+ HEAD@\{2\}: commit: c5$/);
  assert.match(reflog.at(-1)!, /HEAD@\{6\}: commit \(initial\): c1$/);
  const branch = (await mg(repo, 'reflog', 'show', 'main')).stdout.trim().split('\n');
  assert.equal(branch.length, 7);
  assert.match(branch[0]!, /main@\{0\}: reset: moving to HEAD@\{1\}/);

  // Selectors compose with ~ and name commits for any command.
  const show = await mg(repo, 'log', '--oneline', '-1', 'main@{2}~1');
  assert.match(show.stdout, / c4$/m);
  const beyond = await mgFail(repo, 'show', 'HEAD@{99}');
  assert.equal(beyond.code, 5);
  assert.match(beyond.stderr, /HEAD@\{99\}/);
});

test('gc keeps reflog-reachable objects only until gc.reflogExpire', async () => {
  const repo = await tempDir('reflog-expire');
  await fiveCommits(repo);
  await mg(repo, 'reset', '--hard', 'HEAD~3');
  await rm(path.join(repo, '.mediagit', 'ORIG_HEAD'));
  const kept = await mg(repo, 'gc', '--prune=now', '--json');
  assert.equal(JSON.parse(kept.stdout).removed, 0, 'the default 90 days keep everything');

  await mg(repo, 'config', 'gc.reflogExpire', 'now');
  const swept = JSON.parse((await mg(repo, 'gc', '--prune=now', '--json')).stdout) as {
    removed: number;
    reflogEntriesExpired: number;
  };
  assert.ok(swept.removed > 0, 'expired entries no longer keep c3..c5');
  assert.ok(swept.reflogEntriesExpired >= 6);
  const gone = await mgFail(repo, 'show', 'HEAD@{1}');
  assert.equal(gone.code, 5);
  assert.equal((await mg(repo, 'fsck')).code, 0, 'what is left is consistent');
});

test('checkout, merge and branch deletion are logged like git', async () => {
  const repo = await tempDir('reflog-moves');
  await mg(repo, 'init', '-q');
  await writeFile(path.join(repo, 'a.bin'), 'a');
  await mg(repo, 'add', '.');
  await mg(repo, 'commit', '-q', '-m', 'one');
  await mg(repo, 'checkout', '-q', '-b', 'side');
  await writeFile(path.join(repo, 'b.bin'), 'b');
  await mg(repo, 'add', '.');
  await mg(repo, 'commit', '-q', '-m', 'two');
  await mg(repo, 'checkout', '-q', 'main');
  await mg(repo, 'merge', '-q', 'side');
  const head = (await mg(repo, 'reflog')).stdout.trim().split('\n');
  assert.deepEqual(
    head.map((l) => l.replace(/^[0-9a-f]+ /, '')),
    [
      "HEAD@{0}: merge branch 'side': Fast-forward",
      'HEAD@{1}: checkout: moving from side to main',
      'HEAD@{2}: commit: two',
      'HEAD@{3}: checkout: moving from main to side',
      'HEAD@{4}: commit (initial): one',
    ],
  );
  const side = (await mg(repo, 'reflog', 'side')).stdout.trim().split('\n');
  assert.equal(side.length, 2);
  assert.match(side[1]!, /side@\{1\}: branch: Created from HEAD/);
  await mg(repo, 'branch', '-m', 'side', 'renamed');
  const moved = (await mg(repo, 'reflog', 'renamed')).stdout.trim().split('\n');
  assert.equal(moved.length, 3, 'the reflog moved with the branch');
  assert.match(
    moved[0]!,
    /renamed@\{0\}: Branch: renamed refs\/heads\/side to refs\/heads\/renamed/,
  );
  await mg(repo, 'branch', '-m', 'renamed', 'side');
  await mg(repo, 'branch', '-D', 'side');
  const none = await runCli(['reflog', 'side'], { cwd: repo, allowFail: true });
  assert.notEqual(none.code, 0);
});

test('an encrypted repository keeps messages and identities out of its reflog, and shows them from the commits', async () => {
  const repo = await tempDir('reflog-encrypted');
  const secret = 'SUBJECT-THAT-MUST-STAY-SEALED';
  const env = {
    MEDIAGIT_NEW_PASSPHRASE: 'correct horse battery',
    MEDIAGIT_PASSPHRASE: 'correct horse battery',
    MEDIAGIT_AUTHOR_NAME: 'Ada Sealed',
    MEDIAGIT_AUTHOR_EMAIL: 'ada@sealed.example',
  };
  await runCli(['init', '-q', '--encrypt'], { cwd: repo, env });
  await writeFile(path.join(repo, 'notes.txt'), 'one\n');
  await runCli(['add', '.'], { cwd: repo, env });
  await runCli(['commit', '-q', '-m', `first ${secret}`], { cwd: repo, env });
  await writeFile(path.join(repo, 'notes.txt'), 'two\n');
  await runCli(['stash', 'push', '-m', `stashed ${secret}`], { cwd: repo, env });

  for (const log of ['HEAD', 'refs/heads/main', 'refs/stash']) {
    const text = await readFile(path.join(repo, '.mediagit', 'logs', ...log.split('/')), 'utf8');
    assert.equal(text.includes(secret), false, `logs/${log} holds the subject`);
    assert.equal(text.includes('Ada'), false, `logs/${log} holds the author`);
    assert.equal(text.includes('sealed.example'), false, `logs/${log} holds the email`);
  }
  const shown = await runCli(['reflog'], { cwd: repo, env });
  assert.match(shown.stdout, new RegExp(`HEAD@\\{0\\}: commit \\(initial\\): first ${secret}`));
  const stashes = await runCli(['stash', 'list'], { cwd: repo, env });
  assert.match(stashes.stdout, new RegExp(`stash@\\{0\\}: On main: stashed ${secret}`));
});

test('fsck counts reflog-named commits as reachable; reflog expire --expire=now --all lets gc take them', async () => {
  const repo = await tempDir('reflog-fsck');
  await fiveCommits(repo);
  await mg(repo, 'reset', '--hard', 'HEAD~3');
  await rm(path.join(repo, '.mediagit', 'ORIG_HEAD'));
  const checked = await mg(repo, 'fsck');
  assert.doesNotMatch(checked.stdout, /unreachable/, 'the reflog still reaches c3..c5');

  const refused = await mgFail(repo, 'reflog', 'expire');
  assert.equal(refused.code, 2);
  const expired = await mg(repo, 'reflog', 'expire', '--expire=now', '--all');
  assert.match(expired.stdout, /^expired \d+ reflog entries$/m);
  assert.match((await mg(repo, 'fsck')).stdout, /unreachable/);
  const swept = JSON.parse((await mg(repo, 'gc', '--prune=now', '--json')).stdout) as {
    removed: number;
  };
  assert.ok(swept.removed > 0);
  assert.match((await mg(repo, 'fsck')).stdout, /no problems found\n$/);
});
