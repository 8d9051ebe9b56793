/**
 * git habits on output: `diff` and `show` print a unified diff for small text files (hunks as
 * git prints them, checked against git on the same edits) and keep "Binary files differ" for media.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { mg, tempDir } from '../support/cli.js';

const run = promisify(execFile);

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, {
    cwd,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: cwd,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'Test',
      GIT_AUTHOR_EMAIL: 'test@example.com',
      GIT_COMMITTER_NAME: 'Test',
      GIT_COMMITTER_EMAIL: 'test@example.com',
      LC_ALL: 'C',
    },
  });
  return stdout;
}

/** The ---/+++ header and hunks of one file's patch, dropping the lines that name objects. */
function hunksOf(patch: string, file: string): string[] {
  const lines = patch.split('\n');
  const start = lines.findIndex((l) => l.startsWith('diff --') && l.endsWith(` b/${file}`));
  assert.ok(start >= 0, `no patch for ${file} in:\n${patch}`);
  const out: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('diff --')) break;
    if (/^(index|new file mode|deleted file mode) /.test(line)) continue;
    // git appends the enclosing "function" after a hunk header; mediagit does not look for one.
    out.push(line.replace(/^(@@ [^@]+ @@).*$/, '$1'));
  }
  while (out.at(-1) === '') out.pop();
  return out;
}

const scene = (edits: Record<number, string>, count = 30): string =>
  Array.from({ length: count }, (_, i) => edits[i] ?? `  "node${i}": { "x": ${i}, "y": ${i * 2} },`)
    .join('\n')
    .concat('\n');

test('diff and show print unified hunks for small text files, as git does; media stays binary', async () => {
  const mgRepo = await tempDir('textdiff-mg');
  const gitRepo = await tempDir('textdiff-git');
  await mg(mgRepo, 'init', '-q');
  await git(gitRepo, 'init', '-q');
  const both = async (file: string, content: string | Buffer): Promise<void> => {
    await writeFile(path.join(mgRepo, file), content);
    await writeFile(path.join(gitRepo, file), content);
  };
  const commitBoth = async (message: string): Promise<void> => {
    await mg(mgRepo, 'add', '.');
    await mg(mgRepo, 'commit', '-q', '-m', message);
    await git(gitRepo, 'add', '.');
    await git(gitRepo, 'commit', '-q', '-m', message);
  };
  await both('scene.json', scene({}));
  await both('notes.txt', 'one\ntwo\nthree\n');
  await both('gone.txt', 'soon gone\n');
  const media = randomBytes(64 * 1024);
  await both('hero.bin', media);
  await commitBoth('c1');

  // Two hunks far apart, one change near the end, a line without newline, a deleted file.
  await both('scene.json', scene({ 2: '  "hero": true,', 14: '  "changed": 14,', 28: '' }, 31));
  await both('notes.txt', 'one\nTWO\nthree\nfour');
  const edited = Buffer.from(media);
  edited[100] = edited[100]! ^ 0xff;
  await both('hero.bin', edited);
  await both('new.txt', 'brand new\nfile\n');
  await both('gone.txt', '');

  // Working tree against the index: the edited files are not stored, only hashed.
  const worktree = (await mg(mgRepo, 'diff')).stdout;
  const gitWorktree = await git(gitRepo, 'diff');
  for (const file of ['scene.json', 'notes.txt', 'gone.txt'])
    assert.deepEqual(hunksOf(worktree, file), hunksOf(gitWorktree, file), file);
  assert.ok(hunksOf(worktree, 'scene.json').filter((l) => l.startsWith('@@')).length >= 2);
  assert.ok(hunksOf(worktree, 'notes.txt').includes('\\ No newline at end of file'));
  assert.match(worktree, /^Binary files a\/hero\.bin and b\/hero\.bin differ/m);

  await commitBoth('c2');
  const shown = (await mg(mgRepo, 'show', '-p', 'HEAD')).stdout;
  const gitShown = await git(gitRepo, 'show', 'HEAD');
  for (const file of ['scene.json', 'notes.txt', 'gone.txt', 'new.txt'])
    assert.deepEqual(hunksOf(shown, file), hunksOf(gitShown, file), file);
  assert.deepEqual(hunksOf(shown, 'new.txt'), [
    '--- /dev/null',
    '+++ b/new.txt',
    '@@ -0,0 +1,2 @@',
    '+brand new',
    '+file',
  ]);
  assert.match(shown, /^Binary files a\/hero\.bin and b\/hero\.bin differ/m);
  const between = (await mg(mgRepo, 'diff', 'HEAD~1', 'HEAD', '--', 'notes.txt')).stdout;
  assert.deepEqual(hunksOf(between, 'notes.txt'), hunksOf(gitShown, 'notes.txt'));
});

test('text diff leaves big text and text with NUL bytes binary', async () => {
  const repo = await tempDir('textdiff-big');
  await mg(repo, 'init', '-q');
  const big = 'x'.repeat(80) + '\n';
  await writeFile(path.join(repo, 'big.txt'), big.repeat(14_000));
  await writeFile(path.join(repo, 'nul.txt'), 'a\0b\n');
  await mg(repo, 'add', '.');
  await mg(repo, 'commit', '-q', '-m', 'c1');
  await writeFile(path.join(repo, 'big.txt'), big.repeat(14_001));
  await writeFile(path.join(repo, 'nul.txt'), 'a\0c\n');
  const out = (await mg(repo, 'diff')).stdout;
  assert.match(out, /^Binary files a\/big\.txt and b\/big\.txt differ/m);
  assert.match(out, /^Binary files a\/nul\.txt and b\/nul\.txt differ/m);
  assert.doesNotMatch(out, /^@@/m);
});

test('log --graph draws the same graph as git for a history with branches and merges', async () => {
  const mgRepo = await tempDir('graph-mg');
  const gitRepo = await tempDir('graph-git');
  await mg(mgRepo, 'init', '-q');
  await git(gitRepo, 'init', '-q', '-b', 'main');
  const both = async (...args: string[]): Promise<void> => {
    await mg(mgRepo, ...args);
    await git(gitRepo, ...args);
  };
  const commit = async (file: string, message: string): Promise<void> => {
    await writeFile(path.join(mgRepo, file), `${message}\n`);
    await writeFile(path.join(gitRepo, file), `${message}\n`);
    await both('add', '.');
    await both('commit', '-q', '-m', message);
  };
  await commit('a.txt', 'A');
  await commit('b.txt', 'B');
  await both('checkout', '-q', '-b', 'feature');
  await commit('d.txt', 'D1');
  await commit('d.txt', 'D2');
  await both('checkout', '-q', 'main');
  await commit('c.txt', 'C1');
  await commit('c.txt', 'C2');
  await both('merge', '-q', '--no-ff', '-m', 'M1', 'feature');
  await both('checkout', '-q', '-b', 'topic');
  await commit('t.txt', 'T1');
  await both('checkout', '-q', 'main');
  await commit('e.txt', 'E');
  await both('merge', '-q', '--no-ff', '-m', 'M2', 'topic');
  await commit('f.txt', 'F');

  const trimmed = (out: string): string[] =>
    out
      .split('\n')
      .map((l) => l.trimEnd())
      .filter((l) => l !== '');
  const expected = trimmed(await git(gitRepo, 'log', '--graph', '--format=%s'));
  const graph = trimmed((await mg(mgRepo, 'log', '--graph', '--format=%s')).stdout);
  assert.deepEqual(graph, expected);
  assert.ok(graph.includes('|\\') && graph.includes('|/'), graph.join('\n'));
  // --oneline: the same graph, with short IDs and decorations before the subjects.
  const oneline = trimmed((await mg(mgRepo, 'log', '--graph', '--oneline')).stdout).map((l) =>
    l.replace(/[0-9a-f]{7,}( \([^)]*\))? /, ''),
  );
  assert.deepEqual(oneline, expected);
  // The default format: each commit's block behind its columns, the merge naming two parents.
  const full = (await mg(mgRepo, 'log', '--graph', '-n', '3')).stdout.split('\n');
  assert.match(full[0]!, /^\* commit [0-9a-f]+/);
  assert.ok(full.some((l) => /^\* {3}commit /.test(l)));
  // As in git, a merge's new column opens beside its second line.
  assert.ok(
    full.some((l) => /^\|\\ {2}Merge: [0-9a-f]+ [0-9a-f]+$/.test(l)),
    full.join('\n'),
  );
});

test('status shows a staged rename as git does: renamed: old -> new, porcelain R old -> new', async () => {
  const repo = await tempDir('status-rename');
  await mg(repo, 'init', '-q');
  await writeFile(path.join(repo, 'hero.bin'), randomBytes(100_000));
  await writeFile(path.join(repo, 'notes.txt'), 'notes\n');
  await mg(repo, 'add', '.');
  await mg(repo, 'commit', '-q', '-m', 'c1');
  await mg(repo, 'mv', 'hero.bin', 'hero-final.bin');
  await writeFile(path.join(repo, 'extra.txt'), 'extra\n');
  await mg(repo, 'add', 'extra.txt');
  const long = (await mg(repo, 'status')).stdout;
  assert.match(long, /^\trenamed: {4}hero\.bin -> hero-final\.bin$/m);
  assert.match(long, /^\tnew file: {3}extra\.txt$/m);
  assert.doesNotMatch(long, /deleted:/);
  const porcelain = (await mg(repo, 'status', '--porcelain')).stdout.split('\n').filter(Boolean);
  assert.deepEqual(porcelain, ['A  extra.txt', 'R  hero.bin -> hero-final.bin']);
});

test('log --stat lists each commit’s files as show --stat does, renames as old => new', async () => {
  const repo = await tempDir('log-stat');
  await mg(repo, 'init', '-q');
  await writeFile(path.join(repo, 'hero.bin'), randomBytes(100_000));
  await mg(repo, 'add', '.');
  await mg(repo, 'commit', '-q', '-m', 'c1');
  await mg(repo, 'mv', 'hero.bin', 'hero-final.bin');
  await mg(repo, 'commit', '-q', '-m', 'c2');
  const out = (await mg(repo, 'log', '--stat')).stdout;
  const shown = (await mg(repo, 'show', '--stat', 'HEAD')).stdout;
  assert.match(out, /^ hero\.bin => hero-final\.bin \| 0$/m);
  assert.match(shown, /^ hero\.bin => hero-final\.bin \| 0$/m);
  assert.match(out, /^ hero\.bin \| Bin 0 -> 100000 bytes$/m);
});
