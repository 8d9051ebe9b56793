import assert from 'node:assert/strict';
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { mg, mgFail, tempDir } from '../support/cli.js';

/** The subjects `log --oneline` prints, without the short IDs and decorations. */
const subjects = (stdout: string): string[] =>
  stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^[0-9a-f]+( \([^)]*\))? /, ''));

async function commit(repo: string, message: string, files: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(repo, name)), { recursive: true });
    await writeFile(path.join(repo, name), content);
  }
  await mg(repo, 'add', '.');
  await mg(repo, 'commit', '-q', '-m', message);
}

test('log and show limited to paths; -N; a..b and a...b ranges', async () => {
  const repo = await tempDir('log-paths');
  await mg(repo, 'init', '-q');
  await commit(repo, 'c1', { 'a.txt': 'a1', 'dir/b.txt': 'b1' });
  await commit(repo, 'c2', { 'a.txt': 'a2' });
  await commit(repo, 'c3', { 'dir/b.txt': 'b2' });
  await commit(repo, 'c4', { 'c.txt': 'c1' });
  await commit(repo, 'c5', { 'a.txt': 'a3', 'dir/b.txt': 'b3' });

  const log = async (...args: string[]): Promise<string[]> =>
    subjects((await mg(repo, 'log', '--oneline', ...args)).stdout);

  assert.deepEqual(await log('--', 'a.txt'), ['c5', 'c2', 'c1']);
  assert.deepEqual(await log('--', 'dir/'), ['c5', 'c3', 'c1']);
  assert.deepEqual(await log('--', 'c.txt', 'dir'), ['c5', 'c4', 'c3', 'c1']);
  assert.deepEqual(await log('a.txt'), ['c5', 'c2', 'c1'], 'an existing file without --');
  assert.deepEqual(await log('HEAD~2', '--', 'a.txt'), ['c2', 'c1']);
  // As git: a path that matches nothing lists nothing and succeeds after --; without -- it is an
  // unknown revision.
  const none = await mg(repo, 'log', '--oneline', '--', 'no/such/path');
  assert.equal(none.stdout, '');
  const typo = await mgFail(repo, 'log', '--oneline', 'no/such/path');
  assert.equal(typo.code, 5);
  assert.match(typo.stderr, /unknown revision or path/);

  const show = await mg(repo, 'show', '--name-status', 'HEAD', '--', 'dir/');
  assert.match(show.stdout, /dir\/b\.txt/);
  assert.doesNotMatch(show.stdout, /a\.txt/);
  const stat = await mg(repo, 'show', '--stat', 'HEAD', '--', 'dir/');
  assert.match(stat.stdout, /dir\/b\.txt/);
  assert.doesNotMatch(stat.stdout, /a\.txt/);
  const whole = await mg(repo, 'show', '--name-status', 'HEAD');
  assert.match(whole.stdout, /a\.txt/);

  assert.deepEqual(await log('-2'), ['c5', 'c4']);
  assert.deepEqual(await log('-n', '1'), ['c5']);
  assert.deepEqual(await log('-1', '--', 'dir'), ['c5']);
  const bogus = await mgFail(repo, 'log', '-x2');
  assert.equal(bogus.code, 2);

  assert.deepEqual(await log('HEAD~3..HEAD'), ['c5', 'c4', 'c3']);
  assert.deepEqual(await log('HEAD~3..'), ['c5', 'c4', 'c3']);
  assert.deepEqual(await log('HEAD~1', '^HEAD~3'), ['c4', 'c3']);
  assert.deepEqual(await log('HEAD..HEAD~2'), []);

  await mg(repo, 'branch', 'side', 'HEAD~1');
  await mg(repo, 'checkout', '-q', 'side');
  await commit(repo, 's1', { 's.txt': 's' });
  assert.deepEqual(await log('main..side'), ['s1']);
  assert.deepEqual(await log('side..main'), ['c5']);
  assert.deepEqual((await log('main...side')).sort(), ['c5', 's1']);
});
