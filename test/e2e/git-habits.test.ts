/**
 * git habits on history: `log --follow` across renames, rename detection in `diff` and `show`
 * (same manifest, or shared chunks above the threshold), `diff --exit-code` / `--quiet`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { mg, mgFail, tempDir } from '../support/cli.js';

const subjects = (stdout: string): string[] =>
  stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^[0-9a-f]+( \([^)]*\))? /, ''));

/** The same bytes with a few KiB in the middle replaced: most chunks survive. */
function edited(data: Buffer): Buffer {
  const out = Buffer.from(data);
  randomBytes(4096).copy(out, Math.floor(out.length / 2));
  return out;
}

test('log --follow lists a file’s commits across renames; diff and show report renames; diff --exit-code/--quiet', async () => {
  const repo = await tempDir('habits');
  // Small chunks, so an edit leaves most of a 400 KB file's chunks shared.
  await mg(repo, 'init', '-q', '--chunk-min', '4K', '--chunk-avg', '16K', '--chunk-max', '64K');
  const commit = async (message: string): Promise<void> => {
    await mg(repo, 'add', '.');
    await mg(repo, 'commit', '-q', '-m', message);
  };
  let hero: Buffer = randomBytes(400_000);
  await writeFile(path.join(repo, 'hero.bin'), hero);
  await writeFile(path.join(repo, 'notes.txt'), 'notes\n');
  await commit('c1 add hero');
  hero = edited(hero);
  await writeFile(path.join(repo, 'hero.bin'), hero);
  await commit('c2 paint hero');
  await writeFile(path.join(repo, 'notes.txt'), 'more notes\n');
  await commit('c3 notes only');
  await mkdir(path.join(repo, 'art'));
  await mg(repo, 'mv', 'hero.bin', 'art/hero.bin');
  await commit('c4 move hero');
  hero = edited(hero);
  await writeFile(path.join(repo, 'art/hero.bin'), hero);
  await commit('c5 paint again');
  // Renamed and edited in one commit: found by the chunks the two versions share.
  hero = edited(hero);
  await writeFile(path.join(repo, 'art/hero.bin'), hero);
  await rename(path.join(repo, 'art/hero.bin'), path.join(repo, 'art/hero-final.bin'));
  await commit('c6 final hero');

  const log = async (...args: string[]): Promise<string[]> =>
    subjects((await mg(repo, 'log', '--oneline', ...args)).stdout);
  assert.deepEqual(await log('--', 'art/hero-final.bin'), ['c6 final hero']);
  assert.deepEqual(await log('--follow', '--', 'art/hero-final.bin'), [
    'c6 final hero',
    'c5 paint again',
    'c4 move hero',
    'c2 paint hero',
    'c1 add hero',
  ]);
  assert.deepEqual(
    await log('--follow', 'art/hero-final.bin'),
    await log('--follow', '--', 'art/hero-final.bin'),
  );
  assert.deepEqual(await log('--follow', '-2', '--', 'art/hero-final.bin'), [
    'c6 final hero',
    'c5 paint again',
  ]);
  const two = await mgFail(repo, 'log', '--follow', '--', 'notes.txt', 'art');
  assert.equal(two.code, 2);

  // An exact rename is R100; a rename with an edit is R<similarity> under 100 but above 50.
  assert.equal(
    (await mg(repo, 'diff', '--name-status', 'HEAD~3', 'HEAD~2')).stdout,
    'R100\thero.bin\tart/hero.bin\n',
  );
  const moved = (await mg(repo, 'show', '--name-status', 'HEAD')).stdout;
  const m = /^R(\d{3})\tart\/hero\.bin\tart\/hero-final\.bin$/m.exec(moved);
  assert.ok(m, moved);
  assert.ok(Number(m[1]) >= 50 && Number(m[1]) < 100, moved);
  assert.match(
    (await mg(repo, 'diff', '--stat', 'HEAD~3', 'HEAD~2')).stdout,
    /^ hero\.bin => art\/hero\.bin \| 0$/m,
  );
  const patch = (await mg(repo, 'diff', 'HEAD~1', 'HEAD')).stdout;
  assert.match(patch, /^diff --mediagit a\/art\/hero\.bin b\/art\/hero-final\.bin$/m);
  assert.match(patch, /^rename from art\/hero\.bin\nrename to art\/hero-final\.bin$/m);
  // Different content entirely is an add and a delete, not a rename.
  await writeFile(path.join(repo, 'other.bin'), randomBytes(400_000));
  await mg(repo, 'rm', '-q', 'art/hero-final.bin');
  await mg(repo, 'add', 'other.bin');
  assert.equal(
    (await mg(repo, 'diff', '--cached', '--name-status')).stdout,
    'D\tart/hero-final.bin\nA\tother.bin\n',
  );
  await mg(repo, 'reset', '-q', '--hard');

  // --exit-code and --quiet: 0 without differences, 1 with; --quiet prints nothing.
  assert.equal((await mg(repo, 'diff', '--exit-code')).code, 0);
  assert.equal((await mg(repo, 'diff', '--quiet', 'HEAD~1', 'HEAD~1')).code, 0);
  await writeFile(path.join(repo, 'notes.txt'), 'changed\n');
  const dirty = await mgFail(repo, 'diff', '--exit-code', '--name-only');
  assert.deepEqual([dirty.code, dirty.stdout], [1, 'notes.txt\n']);
  const quiet = await mgFail(repo, 'diff', '--quiet');
  assert.deepEqual([quiet.code, quiet.stdout, quiet.stderr], [1, '', '']);
  assert.equal((await mgFail(repo, 'diff', '--quiet', 'HEAD~1', 'HEAD')).code, 1);
  assert.equal((await mg(repo, 'diff', '--quiet', '--cached')).code, 0);
  assert.equal(await readFile(path.join(repo, 'notes.txt'), 'utf8'), 'changed\n');
});

test("clone and pull from another person's working repository; a push there is refused", async () => {
  const work = await tempDir('clone-working');
  const alice = path.join(work, 'alice');
  await mkdir(alice);
  await mg(alice, 'init', '-q');
  await writeFile(path.join(alice, 'scene.bin'), randomBytes(300_000));
  await mg(alice, 'add', '.');
  await mg(alice, 'commit', '-q', '-m', 'alice 1');

  const bob = path.join(work, 'bob');
  await mg(work, 'clone', '-q', alice, bob);
  assert.ok(
    (await readFile(path.join(bob, 'scene.bin'))).equals(
      await readFile(path.join(alice, 'scene.bin')),
    ),
  );
  await writeFile(path.join(alice, 'notes.txt'), 'from alice\n');
  await mg(alice, 'add', '.');
  await mg(alice, 'commit', '-q', '-m', 'alice 2');
  await mg(bob, 'pull', '-q');
  assert.equal(await readFile(path.join(bob, 'notes.txt'), 'utf8'), 'from alice\n');
  assert.deepEqual(subjects((await mg(bob, 'log', '--oneline')).stdout), ['alice 2', 'alice 1']);

  assert.equal((await mg(bob, 'branch', '-r')).stdout, '  origin/main\n');
  assert.equal((await mg(bob, 'branch', '-a')).stdout, '* main\n  remotes/origin/main\n');
  await writeFile(path.join(bob, 'notes.txt'), 'from bob\n');
  await mg(bob, 'commit', '-q', '-a', '-m', 'bob 1');
  const refused = await mgFail(bob, 'push');
  assert.equal(refused.code, 11, refused.stderr);
  assert.match(refused.stderr, /working repository/);
  assert.equal(await readFile(path.join(alice, 'notes.txt'), 'utf8'), 'from alice\n');
  // Alice pulls from Bob's working repository instead, as in git.
  await mg(alice, 'remote', 'add', 'bob', bob);
  await mg(alice, 'pull', '-q', 'bob', 'main');
  assert.equal(await readFile(path.join(alice, 'notes.txt'), 'utf8'), 'from bob\n');
});
