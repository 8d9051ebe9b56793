/**
 * The repository operations behind add, commit, reset, restore, switch, merge and gc, called
 * directly on repositories in temporary folders: no CLI, no CommandIo.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  abortMerge,
  addPaths,
  collectGarbage,
  commitIndex,
  mergeCommit,
  movePaths,
  parseGracePeriod,
  removePaths,
  resetHead,
  restorePaths,
  switchToBranch,
  switchToNewBranch,
  type Repository,
} from '../../../src/repo/index.js';
import { initRepo } from '../../support/sync-fixtures.js';

async function setup(t: TestContext): Promise<Repository> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mediagit-operations-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const repo = await initRepo(dir);
  repo.config.set('user.name', 'Operations Test');
  repo.config.set('user.email', 'ops@example.com');
  await repo.config.save();
  return repo;
}

const write = (repo: Repository, file: string, text: string): Promise<void> =>
  writeFile(repo.absPath(file), text);
const read = (repo: Repository, file: string): Promise<string> =>
  readFile(repo.absPath(file), 'utf8');

/** Stages everything and commits it; returns the commit. */
async function commitAll(repo: Repository, message: string): Promise<string> {
  await addPaths(repo, ['']);
  return (await commitIndex(repo, { message })).oid;
}

test('addPaths stages new, changed and deleted files, and a dry run changes nothing', async (t) => {
  const repo = await setup(t);
  await write(repo, 'a.txt', 'alpha\n');
  await write(repo, 'b.txt', 'beta\n');

  const dry = await addPaths(repo, [''], { dryRun: true });
  assert.deepEqual(dry.wouldStage.sort(), ['a.txt', 'b.txt']);
  assert.equal((await repo.readIndex()).entries.size, 0);

  const first = await addPaths(repo, ['']);
  assert.equal(first.summary.staged, 2);
  assert.equal(first.summary.bytes, 11);
  assert.deepEqual([...(await repo.readIndex()).entries.keys()].sort(), ['a.txt', 'b.txt']);

  // Unchanged files are not read again; a changed one is, and a deleted one leaves the index.
  await write(repo, 'a.txt', 'alpha, longer\n');
  await unlink(repo.absPath('b.txt'));
  const second = await addPaths(repo, ['']);
  assert.deepEqual([second.summary.staged, second.summary.removed], [1, 1]);
  const index = await repo.readIndex();
  assert.deepEqual([...index.entries.keys()], ['a.txt']);
  assert.equal(index.entries.get('a.txt')!.size, 14);
});

test('addPaths refuses an ignored path unless forced, and a path that names nothing', async (t) => {
  const repo = await setup(t);
  await write(repo, '.mediagitignore', '*.tmp\n');
  await write(repo, 'scratch.tmp', 'x');
  await assert.rejects(addPaths(repo, ['scratch.tmp']), { code: 'E_PATHSPEC' });
  await assert.rejects(addPaths(repo, ['missing.bin']), { code: 'E_PATHSPEC' });
  const forced = await addPaths(repo, ['scratch.tmp'], { force: true });
  assert.equal(forced.summary.staged, 1);
});

test('commitIndex records the index, refuses an empty commit, and -a restages tracked files', async (t) => {
  const repo = await setup(t);
  await write(repo, 'a.txt', 'one\n');
  await addPaths(repo, ['']);
  const first = await commitIndex(repo, { message: '\nFirst  \n\n', countChanges: true });
  assert.deepEqual(
    [first.root, first.branch, first.subject, first.changes],
    [true, 'main', 'First', 1],
  );
  assert.equal((await repo.readHead()).oid, first.oid);
  assert.equal((await repo.odb.readCommit(first.oid)).message, 'First\n');

  await assert.rejects(commitIndex(repo, { message: 'again' }), { code: 'E_NOTHING_TO_COMMIT' });

  await write(repo, 'a.txt', 'two\n');
  const second = await commitIndex(repo, { message: 'Second', all: true });
  assert.deepEqual((await repo.odb.readCommit(second.oid)).parents, [first.oid]);
  assert.notEqual(second.tree, first.tree);
});

test('resetHead: soft moves HEAD only, mixed also the index, hard also the files', async (t) => {
  const repo = await setup(t);
  await write(repo, 'a.txt', 'v1\n');
  const v1 = await commitAll(repo, 'v1');
  await write(repo, 'a.txt', 'v2 longer\n');
  const v2 = await commitAll(repo, 'v2');
  const v2Entry = (await repo.readIndex()).entries.get('a.txt')!;

  assert.equal(await resetHead(repo, v1, 'soft'), v1);
  assert.equal((await repo.readHead()).oid, v1);
  assert.equal((await repo.readIndex()).entries.get('a.txt')!.oid, v2Entry.oid);
  assert.equal(await repo.readStateOid('ORIG_HEAD'), v2);

  await resetHead(repo, v2, 'soft');
  await resetHead(repo, v1, 'mixed');
  assert.notEqual((await repo.readIndex()).entries.get('a.txt')!.oid, v2Entry.oid);
  assert.equal(await read(repo, 'a.txt'), 'v2 longer\n');

  await resetHead(repo, v2, 'mixed');
  await resetHead(repo, v1, 'hard');
  assert.equal(await read(repo, 'a.txt'), 'v1\n');
  assert.equal((await repo.readHead()).oid, v1);
});

test('resetHead refuses a branch without commits', async (t) => {
  const repo = await setup(t);
  await assert.rejects(resetHead(repo, null, 'mixed'), { code: 'E_USAGE' });
});

test('restorePaths brings files back from the index or a commit, and unstages', async (t) => {
  const repo = await setup(t);
  await write(repo, 'a.txt', 'committed\n');
  const first = await commitAll(repo, 'first');
  await write(repo, 'a.txt', 'edited\n');
  await restorePaths(repo, ['a.txt'], { source: null, staged: false, worktree: true });
  assert.equal(await read(repo, 'a.txt'), 'committed\n');

  await write(repo, 'a.txt', 'staged edit\n');
  await addPaths(repo, ['a.txt']);
  // `reset -- a.txt`: the index goes back to HEAD, the file keeps the edit.
  await restorePaths(repo, ['a.txt'], {
    source: first,
    staged: true,
    worktree: false,
    stagedFromHeadWhenNull: true,
  });
  assert.equal(await read(repo, 'a.txt'), 'staged edit\n');
  await restorePaths(repo, ['a.txt'], { source: first, staged: true, worktree: true });
  assert.equal(await read(repo, 'a.txt'), 'committed\n');

  await assert.rejects(
    restorePaths(repo, ['nothing-here'], { source: null, staged: false, worktree: true }),
    { code: 'E_PATHSPEC' },
  );
});

test('switching branches moves files, says when already there, and protects local edits', async (t) => {
  const repo = await setup(t);
  await write(repo, 'a.txt', 'main\n');
  const base = await commitAll(repo, 'base');
  await switchToNewBranch(repo, 'topic', base);
  assert.equal((await repo.readHead()).ref, 'refs/heads/topic');
  await assert.rejects(switchToNewBranch(repo, 'topic', base), { code: 'E_ALREADY_EXISTS' });
  await write(repo, 'a.txt', 'topic\n');
  const topic = await commitAll(repo, 'topic');

  assert.equal(await switchToBranch(repo, 'main', base), 'switched');
  assert.equal(await read(repo, 'a.txt'), 'main\n');
  assert.equal(await switchToBranch(repo, 'main', base), 'already');

  await write(repo, 'a.txt', 'unsaved\n');
  await assert.rejects(switchToBranch(repo, 'topic', topic), { code: 'E_DIRTY_WORKTREE' });
  assert.equal(await read(repo, 'a.txt'), 'unsaved\n');
  assert.equal(await switchToBranch(repo, 'topic', topic, { force: true }), 'switched');
  assert.equal(await read(repo, 'a.txt'), 'topic\n');
});

test('mergeCommit: up to date, fast-forward, three-way, and conflicts that abortMerge undoes', async (t) => {
  const repo = await setup(t);
  await write(repo, 'shared.txt', 'base\n');
  const base = await commitAll(repo, 'base');
  await switchToNewBranch(repo, 'topic', base);
  await write(repo, 'topic.txt', 'topic\n');
  const topic = await commitAll(repo, 'topic');
  await switchToBranch(repo, 'main', base);

  assert.deepEqual(await mergeCommit(repo, base, 'base'), { kind: 'up-to-date' });
  const ff = await mergeCommit(repo, topic, "branch 'topic'");
  assert.deepEqual(ff, { kind: 'fast-forward', from: base, to: topic, filesChanged: 1 });
  assert.equal(await read(repo, 'topic.txt'), 'topic\n');

  // Diverged, different files: a merge commit with both parents.
  await write(repo, 'main.txt', 'main\n');
  const ours = await commitAll(repo, 'main work');
  await switchToBranch(repo, 'topic', topic);
  await write(repo, 'more.txt', 'more\n');
  const theirs = await commitAll(repo, 'topic work');
  await switchToBranch(repo, 'main', ours);
  const merged = await mergeCommit(repo, theirs, "branch 'topic'");
  assert.equal(merged.kind, 'merged');
  const commit = await repo.odb.readCommit((await repo.readHead()).oid!);
  assert.deepEqual(commit.parents, [ours, theirs]);
  assert.equal(commit.message, "Merge branch 'topic' into main\n");

  // Both sides change the same file: conflicts, recorded for commit; abort goes back.
  await write(repo, 'shared.txt', 'ours\n');
  await commitAll(repo, 'ours');
  const oursTip = (await repo.readHead()).oid!;
  await switchToBranch(repo, 'topic', theirs);
  await write(repo, 'shared.txt', 'theirs\n');
  const theirsTip = await commitAll(repo, 'theirs');
  await switchToBranch(repo, 'main', oursTip);
  const conflicted = await mergeCommit(repo, theirsTip, "branch 'topic'");
  assert.equal(conflicted.kind, 'conflicts');
  assert.deepEqual(conflicted.kind === 'conflicts' ? conflicted.conflicts.map((c) => c.path) : [], [
    'shared.txt',
  ]);
  assert.equal(await repo.readStateOid('MERGE_HEAD'), theirsTip);
  await assert.rejects(mergeCommit(repo, theirsTip, 'again'), { code: 'E_USAGE' });
  await abortMerge(repo);
  assert.equal(await repo.readStateOid('MERGE_HEAD'), null);
  assert.equal((await repo.readHead()).oid, oursTip);
  assert.equal(await read(repo, 'shared.txt'), 'ours\n');
  assert.equal((await repo.readIndex()).conflicts.size, 0);
  await assert.rejects(abortMerge(repo), { code: 'E_USAGE' });
});

test('mergeCommit with ffOnly refuses diverged history', async (t) => {
  const repo = await setup(t);
  await write(repo, 'a.txt', 'a\n');
  const base = await commitAll(repo, 'base');
  await switchToNewBranch(repo, 'topic', base);
  await write(repo, 'b.txt', 'b\n');
  const topic = await commitAll(repo, 'topic');
  await switchToBranch(repo, 'main', base);
  await write(repo, 'c.txt', 'c\n');
  await commitAll(repo, 'main');
  await assert.rejects(mergeCommit(repo, topic, 'topic', { ffOnly: true }), { code: 'E_USAGE' });
});

test('collectGarbage deletes only unreachable objects past the grace period', async (t) => {
  const repo = await setup(t);
  await write(repo, 'keep.txt', 'kept content\n');
  await commitAll(repo, 'keep');
  // Staged, then unstaged: its manifest and chunk are stored but nothing reaches them.
  await write(repo, 'drop.txt', 'dropped content that nothing reaches\n');
  await addPaths(repo, ['drop.txt']);
  await unlink(repo.absPath('drop.txt'));
  await addPaths(repo, ['drop.txt']);

  const young = await collectGarbage(repo, { graceMs: parseGracePeriod('1.hour') });
  assert.equal(young.removed, 0);
  assert.equal(young.keptUnreachable, 2);

  const dry = await collectGarbage(repo, { graceMs: 0, dryRun: true });
  assert.deepEqual([dry.dryRun, dry.removed], [true, 2]);

  const done = await collectGarbage(repo, { graceMs: 0 });
  assert.deepEqual([done.removed, done.keptUnreachable], [2, 0]);
  assert.equal(done.reachable.commits, 1);
  const again = await collectGarbage(repo, { graceMs: 0 });
  assert.equal(again.removed, 0);
  // Everything HEAD needs is still there.
  await restorePaths(repo, ['keep.txt'], { source: null, staged: false, worktree: true });
  assert.equal(await read(repo, 'keep.txt'), 'kept content\n');
});

test('parseGracePeriod reads git-style periods and refuses others', () => {
  assert.equal(parseGracePeriod('now'), 0);
  assert.equal(parseGracePeriod('never'), Number.POSITIVE_INFINITY);
  assert.equal(parseGracePeriod('2.hours.ago'), 7_200_000);
  assert.equal(parseGracePeriod('14.days'), 14 * 86_400_000);
  assert.throws(() => parseGracePeriod('soon'), { code: 'E_USAGE' });
});

test('removePaths and movePaths change the index and the disk, refusing to lose changes', async (t) => {
  const repo = await setup(t);
  await mkdir(repo.absPath('art'));
  await write(repo, 'art/a.png', 'a');
  await write(repo, 'art/b.png', 'b');
  await write(repo, 'notes.txt', 'notes');
  await commitAll(repo, 'first');

  await assert.rejects(removePaths(repo, ['art']), { code: 'E_USAGE' });
  await write(repo, 'notes.txt', 'edited');
  await assert.rejects(removePaths(repo, ['notes.txt']), { code: 'E_DIRTY_WORKTREE' });
  assert.deepEqual(await removePaths(repo, ['notes.txt'], { cached: true }), ['notes.txt']);
  assert.equal(await read(repo, 'notes.txt'), 'edited');
  assert.equal((await repo.readIndex()).entries.has('notes.txt'), false);

  await movePaths(repo, ['art'], 'images');
  assert.deepEqual([...(await repo.readIndex()).entries.keys()].sort(), [
    'images/a.png',
    'images/b.png',
  ]);
  assert.equal(await read(repo, 'images/b.png'), 'b');
  await assert.rejects(movePaths(repo, ['missing'], 'x'), { code: 'E_PATHSPEC' });

  // Staged under new names and not committed: only with force.
  await assert.rejects(removePaths(repo, ['images'], { recursive: true }), {
    code: 'E_DIRTY_WORKTREE',
  });
  assert.deepEqual(await removePaths(repo, ['images'], { recursive: true, force: true }), [
    'images/a.png',
    'images/b.png',
  ]);
  await assert.rejects(readFile(repo.absPath('images/a.png')), { code: 'ENOENT' });
});
