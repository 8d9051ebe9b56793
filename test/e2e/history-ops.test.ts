/**
 * revert, cherry-pick, stash, rebase / pull --rebase and bisect beyond what the git parity script
 * compares: messages, state files, conflicts that keep the stash, remotes, `bisect run`'s exit codes.
 */
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { mg, mgFail, pathExists, tempDir } from '../support/cli.js';

const subjects = (stdout: string): string[] =>
  stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^[0-9a-f]+( \([^)]*\))? /, ''));

async function commitFiles(repo: string, message: string, files: Record<string, string>) {
  for (const [name, content] of Object.entries(files))
    await writeFile(path.join(repo, name), content);
  await mg(repo, 'add', '.');
  await mg(repo, 'commit', '-q', '-m', message);
}

const read = (repo: string, name: string): Promise<string> =>
  readFile(path.join(repo, name), 'utf8');

test("revert writes git's message; cherry-pick takes ranges; an empty pick is refused", async () => {
  const repo = await tempDir('history-pick');
  await mg(repo, 'init', '-q');
  await commitFiles(repo, 'one', { 'a.bin': 'a1' });
  await mg(repo, 'switch', '-q', '-c', 'side');
  await commitFiles(repo, 'side 1', { 's1.bin': 's1' });
  await commitFiles(repo, 'side 2', { 's2.bin': 's2' });
  await commitFiles(repo, 'side 3', { 's3.bin': 's3' });
  await mg(repo, 'switch', '-q', 'main');
  await mg(repo, 'cherry-pick', '-q', 'side~2..side~0');
  assert.deepEqual(subjects((await mg(repo, 'log', '--oneline')).stdout), [
    'side 3',
    'side 2',
    'one',
  ]);
  assert.equal(await read(repo, 's3.bin'), 's3');

  const target = (await mg(repo, 'log', '--json', '-1', 'HEAD~1')).stdout;
  const oid = (JSON.parse(target) as { oid: string }[])[0]!.oid;
  await mg(repo, 'revert', '-q', 'HEAD~1');
  assert.equal(await pathExists(path.join(repo, 's2.bin')), false);
  const show = await mg(repo, 'log', '-1');
  assert.match(show.stdout, /Revert "side 2"/);
  assert.match(show.stdout, new RegExp(`This reverts commit ${oid}\\.`));

  // A commit whose change HEAD already has would make an empty commit: refused with exit 1.
  const again = await mgFail(repo, 'cherry-pick', 'side');
  assert.equal(again.code, 1);
  assert.match(again.stderr, /changes nothing/);
  const none = await mgFail(repo, 'cherry-pick', '--continue');
  assert.equal(none.code, 2);
});

test('cherry-pick conflicts: state files, commit finishes the step, abort restores', async () => {
  const repo = await tempDir('history-pick-conflict');
  await mg(repo, 'init', '-q');
  await commitFiles(repo, 'one', { 'a.bin': 'a1' });
  await mg(repo, 'switch', '-q', '-c', 'side');
  await commitFiles(repo, 'side a', { 'a.bin': 'a-side' });
  await mg(repo, 'switch', '-q', 'main');
  await commitFiles(repo, 'main a', { 'a.bin': 'a-main' });

  const stopped = await mgFail(repo, 'cherry-pick', 'side');
  assert.equal(stopped.code, 8);
  assert.match(stopped.stdout, /CONFLICT \(content\): Merge conflict in a\.bin/);
  assert.ok(await pathExists(path.join(repo, '.mediagit', 'CHERRY_PICK_HEAD')));
  assert.match((await mg(repo, 'status')).stdout, /You are currently cherry-picking/);
  const busy = await mgFail(repo, 'revert', 'HEAD');
  assert.equal(busy.code, 2);
  assert.match(busy.stderr, /cherry-pick is in progress/);
  await mg(repo, 'cherry-pick', '--abort');
  assert.equal(await read(repo, 'a.bin'), 'a-main');
  assert.equal(await pathExists(path.join(repo, '.mediagit', 'CHERRY_PICK_HEAD')), false);
  assert.deepEqual(subjects((await mg(repo, 'log', '--oneline')).stdout), ['main a', 'one']);

  // `commit` may finish the step instead of --continue: the message is the picked commit's.
  await mgFail(repo, 'cherry-pick', 'side');
  await mg(repo, 'checkout', '--theirs', 'a.bin');
  await mg(repo, 'add', 'a.bin');
  await mg(repo, 'commit', '-q');
  await mg(repo, 'cherry-pick', '--continue');
  assert.deepEqual(subjects((await mg(repo, 'log', '--oneline')).stdout), [
    'side a',
    'main a',
    'one',
  ]);
  assert.equal(await read(repo, 'a.bin'), 'a-side');
});

test('stash: list, show, drop, apply keeps the stash, a conflicting pop keeps it too', async () => {
  const repo = await tempDir('history-stash');
  await mg(repo, 'init', '-q');
  await commitFiles(repo, 'one', { 'a.bin': 'a1', 'b.bin': 'b1' });
  const nothing = await mg(repo, 'stash');
  assert.match(nothing.stdout, /No local changes to save/);

  await writeFile(path.join(repo, 'a.bin'), 'a-wip1');
  await mg(repo, 'stash', 'push', '-q');
  await writeFile(path.join(repo, 'b.bin'), 'b-wip2');
  await writeFile(path.join(repo, 'new.bin'), 'new');
  await mg(repo, 'add', 'new.bin');
  await mg(repo, 'stash', 'push', '-q', '-m', 'second');
  assert.equal(await read(repo, 'b.bin'), 'b1');
  assert.equal(await pathExists(path.join(repo, 'new.bin')), false);
  const list = (await mg(repo, 'stash', 'list')).stdout.trim().split('\n');
  assert.equal(list.length, 2);
  assert.equal(list[0], 'stash@{0}: On main: second');
  assert.match(list[1]!, /^stash@\{1\}: WIP on main: [0-9a-f]+ one$/);
  assert.equal((await mg(repo, 'stash', 'show', 'stash@{0}')).stdout, 'M\tb.bin\nA\tnew.bin\n');
  assert.equal((await mg(repo, 'reflog', 'stash')).stdout.trim().split('\n').length, 2);

  // apply leaves the stash listed; the new file comes back staged, the edit unstaged.
  await mg(repo, 'stash', 'apply', '-q');
  assert.equal(await read(repo, 'new.bin'), 'new');
  const status = (await mg(repo, 'status')).stdout;
  assert.match(status, /new file:\s+new\.bin/);
  assert.match(status, /modified:\s+b\.bin/);
  assert.equal((await mg(repo, 'stash', 'list')).stdout.trim().split('\n').length, 2);
  await mg(repo, 'commit', '-q', '-a', '-m', 'took second');

  // stash@{1} changed a.bin; HEAD changes it too: a conflict, and the stash survives the pop.
  await commitFiles(repo, 'a on main', { 'a.bin': 'a-main' });
  const pop = await mgFail(repo, 'stash', 'pop', 'stash@{1}');
  assert.equal(pop.code, 8);
  assert.match(pop.stderr, /the stash is kept/);
  assert.equal((await mg(repo, 'stash', 'list')).stdout.trim().split('\n').length, 2);
  await mg(repo, 'reset', '-q', '--hard');
  await mg(repo, 'stash', 'drop', 'stash@{1}');
  await mg(repo, 'stash', 'drop');
  assert.equal((await mg(repo, 'stash', 'list')).stdout, '');
  const empty = await mgFail(repo, 'stash', 'pop');
  assert.equal(empty.code, 2);
  assert.equal(await pathExists(path.join(repo, '.mediagit', 'refs', 'stash')), false);
});

test('stashes survive gc --prune=now whatever gc.reflogExpire says', async () => {
  const repo = await tempDir('history-stash-gc');
  await mg(repo, 'init', '-q');
  await commitFiles(repo, 'one', { 'a.bin': 'a1' });
  await writeFile(path.join(repo, 'a.bin'), 'precious unsaved work');
  await mg(repo, 'stash', '-q');
  await mg(repo, 'config', 'gc.reflogExpire', 'now');
  await mg(repo, 'gc', '--prune=now');
  await mg(repo, 'stash', 'pop', '-q');
  assert.equal(await read(repo, 'a.bin'), 'precious unsaved work');
});

test('pull --rebase replays local commits onto the remote branch; conflicts continue like rebase', async () => {
  const base = await tempDir('history-pull-rebase');
  const remote = path.join(base, 'remote.mediagit');
  const alice = path.join(base, 'alice');
  const bob = path.join(base, 'bob');
  await mg(base, 'init', '-q', 'alice');
  await commitFiles(alice, 'base', { 'a.bin': 'a1', 'b.bin': 'b1' });
  await mg(alice, 'remote', 'add', 'origin', remote);
  await mg(alice, 'push', '-q', '--create', 'origin', 'main').catch(async () =>
    mg(alice, 'push', '-q', 'origin', 'main'),
  );
  await mg(base, 'clone', '-q', remote, 'bob');
  await commitFiles(alice, 'alice a', { 'a.bin': 'a-alice' });
  await mg(alice, 'push', '-q', 'origin', 'main');
  await commitFiles(bob, 'bob b', { 'b.bin': 'b-bob' });

  await mg(bob, 'pull', '-q', '--rebase');
  assert.deepEqual(subjects((await mg(bob, 'log', '--oneline')).stdout), [
    'bob b',
    'alice a',
    'base',
  ]);
  assert.equal(await read(bob, 'a.bin'), 'a-alice');
  assert.equal(await read(bob, 'b.bin'), 'b-bob');
  assert.match((await mg(bob, 'status')).stdout, /On branch main/);
  await mg(bob, 'push', '-q', 'origin', 'main');

  // Both change a.bin: the pull stops, and continues once a side is picked.
  await mg(alice, 'pull', '-q');
  await commitFiles(alice, 'alice a2', { 'a.bin': 'a-alice-2' });
  await mg(alice, 'push', '-q', 'origin', 'main');
  await commitFiles(bob, 'bob a', { 'a.bin': 'a-bob' });
  const stopped = await mgFail(bob, 'pull', '--rebase');
  assert.equal(stopped.code, 8);
  assert.match(stopped.stderr, /rebase --continue/);
  await mg(bob, 'checkout', '--theirs', 'a.bin');
  await mg(bob, 'add', 'a.bin');
  await mg(bob, 'rebase', '-q', '--continue');
  assert.deepEqual(subjects((await mg(bob, 'log', '--oneline', '-3')).stdout), [
    'bob a',
    'alice a2',
    'bob b',
  ]);
  assert.equal(await read(bob, 'a.bin'), 'a-bob');
  assert.match((await mg(bob, 'status')).stdout, /On branch main/);
  await mg(bob, 'push', '-q', 'origin', 'main');
});

test('bisect run finds the first bad commit, skipping on 125; bisect reset returns', async () => {
  const repo = await tempDir('history-bisect');
  await mg(repo, 'init', '-q');
  for (let i = 1; i <= 16; i++) {
    const files: Record<string, string> = { 'n.txt': `${i}` };
    if (i >= 11) files['bug.txt'] = 'broken';
    await commitFiles(repo, `c${i}`, files);
  }
  await mg(repo, 'switch', '-q', '-c', 'work');
  const tools = await tempDir('history-bisect-script');
  const script = path.join(tools, 'check.sh');
  const mark = path.join(tools, 'skipped');
  // The first commit tested (a midpoint, far from c11) cannot be tested: exit 125, and the search
  // must step around it.
  await writeFile(
    script,
    `#!/bin/sh\nif [ ! -f '${mark}' ]; then touch '${mark}'; exit 125; fi\n[ -f bug.txt ] && exit 1\nexit 0\n`,
  );
  await chmod(script, 0o755);
  await mg(repo, 'bisect', 'start', 'HEAD', 'HEAD~15');
  const run = await mg(repo, 'bisect', 'run', script);
  assert.match(run.stdout, /^[0-9a-f]{64} is the first bad commit$/m);
  assert.match(run.stdout, /^ {4}c11$/m);
  const log = (await mg(repo, 'bisect', 'log')).stdout;
  assert.match(log, /# first bad commit: \[[0-9a-f]+\] c11/);
  assert.match(log, /^mediagit bisect skip [0-9a-f]{64}$/m);
  await mg(repo, 'bisect', 'reset');
  assert.match((await mg(repo, 'status')).stdout, /On branch work/);
  assert.equal(await read(repo, 'n.txt'), '16');

  // By hand: good/bad marks, then a script that cannot run stops the run (exit outside 0-127).
  await mg(repo, 'bisect', 'start');
  await mg(repo, 'bisect', 'bad');
  const step = await mg(repo, 'bisect', 'good', 'HEAD~15');
  assert.match(step.stdout, /Bisecting: \d+ revisions? left to test/);
  assert.match((await mg(repo, 'status')).stdout, /You are currently bisecting/);
  await writeFile(script, '#!/bin/sh\nkill -9 $$\n');
  const killed = await mgFail(repo, 'bisect', 'run', script);
  assert.equal(killed.code, 2);
  await mg(repo, 'bisect', 'reset');
  const notStarted = await mgFail(repo, 'bisect', 'good');
  assert.equal(notStarted.code, 2);
});
