/**
 * The same script of everyday git operations run side by side with the real `git` and with
 * mediagit, on the same files. After every step the two must agree on the working tree (every
 * file's bytes), HEAD's history (first-parent subjects in order, and every reachable subject) and
 * whether the step succeeded. Files hold a NUL byte so git treats them as binary, as mediagit
 * treats media: conflicts are per file, never line merges.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';

type Step =
  | { readonly run: readonly string[]; readonly mg?: readonly string[]; readonly output?: true }
  | { readonly write: Record<string, string> }
  | { readonly remove: readonly string[] };

/** Content git recognises as binary (a NUL byte), distinct per label. */
const media = (label: string): Buffer => Buffer.concat([Buffer.from([0]), Buffer.from(label)]);

const STEPS: readonly Step[] = [
  { write: { 'a.bin': 'a1', 'b.bin': 'b1', 'notes.bin': 'n1' } },
  { run: ['add', '.'] },
  { run: ['commit', '-q', '-m', 'c1'] },
  { write: { 'a.bin': 'a2' } },
  { run: ['commit', '-q', '-a', '-m', 'c2'] },
  { run: ['branch', 'side'] },
  { run: ['checkout', '-q', 'side'] },
  { write: { 'b.bin': 'b-side' } },
  { run: ['commit', '-q', '-a', '-m', 'side: b'] },
  { write: { 'c.bin': 'c1' } },
  { run: ['add', 'c.bin'] },
  { run: ['commit', '-q', '-m', 'side: c'] },
  { run: ['checkout', '-q', 'main'] },
  { write: { 'notes.bin': 'n-main' } },
  { run: ['commit', '-q', '-a', '-m', 'main: notes'] },
  { run: ['merge', '-q', '-m', 'merge side', 'side'] },
  { run: ['merge', '-q', 'no-such-branch'] },
  { run: ['checkout', '-q', '-b', 'feature'] },
  { write: { 'a.bin': 'a-feature' } },
  { run: ['commit', '-q', '-a', '-m', 'feature: a'] },
  { run: ['checkout', '-q', 'main'] },
  { write: { 'a.bin': 'a-main' } },
  { run: ['commit', '-q', '-a', '-m', 'main: a'] },
  // Both sides changed a.bin: a conflict, then a refused commit, an abort, the conflict again.
  { run: ['merge', '-q', '-m', 'merge feature', 'feature'] },
  { run: ['commit', '-q', '-m', 'too early'] },
  { run: ['merge', '--abort'] },
  { run: ['merge', '-q', '-m', 'merge feature', 'feature'] },
  { run: ['checkout', '--theirs', 'a.bin'] },
  { run: ['add', 'a.bin'] },
  { run: ['commit', '-q', '-m', 'merge feature, theirs'] },
  { run: ['revert', 'side~1'] },
  // Stash: put local edits aside, commit something else, bring them back.
  { write: { 'b.bin': 'b-wip', 'notes.bin': 'n-wip' } },
  { run: ['stash', 'push', '-q', '-m', 'wip'] },
  { run: ['stash', 'list'], output: true },
  { write: { 'c.bin': 'c-main' } },
  { run: ['commit', '-q', '-a', '-m', 'main: c'] },
  { run: ['stash', 'pop', '-q'] },
  { run: ['stash', 'pop', '-q'] },
  { run: ['commit', '-q', '-a', '-m', 'after stash'] },
  // Cherry-pick: clean, then a conflict aborted, then the same conflict resolved and continued.
  { run: ['checkout', '-q', 'side'] },
  { write: { 'd.bin': 'd1' } },
  { run: ['add', 'd.bin'] },
  { run: ['commit', '-q', '-m', 'side: d'] },
  { run: ['checkout', '-q', 'main'] },
  { run: ['cherry-pick', 'side'] },
  { run: ['checkout', '-q', 'side'] },
  { write: { 'notes.bin': 'n-side' } },
  { run: ['commit', '-q', '-a', '-m', 'side: notes'] },
  { run: ['checkout', '-q', 'main'] },
  { run: ['cherry-pick', 'side'] },
  { run: ['cherry-pick', '--abort'] },
  { run: ['cherry-pick', 'side'] },
  { run: ['checkout', '--theirs', 'notes.bin'] },
  { run: ['add', 'notes.bin'] },
  { run: ['cherry-pick', '--continue'] },
  // Rename and removal.
  { run: ['mv', 'c.bin', 'renamed.bin'] },
  { run: ['commit', '-q', '-m', 'rename c'] },
  { run: ['rm', '-q', 'b.bin'] },
  { run: ['commit', '-q', '-m', 'remove b'] },
  // Reset, and recovery through the reflog.
  { run: ['reset', '-q', '--hard', 'HEAD~3'] },
  { run: ['reset', '-q', '--hard', 'HEAD@{1}'] },
  { run: ['reset', '-q', '--soft', 'HEAD~1'] },
  { run: ['commit', '-q', '-m', 'remove b, again'] },
  { run: ['reset', '-q', 'HEAD~1'] },
  { run: ['commit', '-q', '-a', '-m', 'remove b, third time'] },
  { run: ['commit', '-q', '-m', 'nothing staged'] },
  { run: ['checkout', '-q', 'no-such-branch'] },
  { run: ['tag', 'v1'] },
  // Rebase: a clean one, then one that stops on a conflict and is continued.
  { run: ['checkout', '-q', '-b', 'topic'] },
  { write: { 'e.bin': 'e1' } },
  { run: ['add', 'e.bin'] },
  { run: ['commit', '-q', '-m', 'topic: e'] },
  { write: { 'e.bin': 'e2' } },
  { run: ['commit', '-q', '-a', '-m', 'topic: e2'] },
  { run: ['checkout', '-q', 'main'] },
  { write: { 'f.bin': 'f1' } },
  { run: ['add', 'f.bin'] },
  { run: ['commit', '-q', '-m', 'main: f'] },
  { run: ['checkout', '-q', 'topic'] },
  { run: ['rebase', '-q', 'main'] },
  { run: ['checkout', '-q', 'main'] },
  { write: { 'a.bin': 'a-main-2' } },
  { run: ['commit', '-q', '-a', '-m', 'main: a again'] },
  { run: ['checkout', '-q', 'topic'] },
  { write: { 'a.bin': 'a-topic' } },
  { run: ['commit', '-q', '-a', '-m', 'topic: a'] },
  { run: ['rebase', '-q', 'main'] },
  { run: ['rebase', '--abort'] },
  { run: ['rebase', '-q', 'main'] },
  { run: ['checkout', '--theirs', 'a.bin'] },
  { run: ['add', 'a.bin'] },
  { run: ['rebase', '--continue'] },
  { run: ['checkout', '-q', 'main'] },
  { run: ['merge', '-q', 'topic'] },
  { run: ['reset', '-q', '--hard', 'v1'] },
  { run: ['reset', '-q', '--hard', 'HEAD@{1}'] },
  { run: ['revert', 'HEAD'] },
];

interface Result {
  ok: boolean;
  stdout: string;
}

function runGit(cwd: string, home: string, args: readonly string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: home,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_AUTHOR_NAME: 'Test',
        GIT_AUTHOR_EMAIL: 'test@example.com',
        GIT_COMMITTER_NAME: 'Test',
        GIT_COMMITTER_EMAIL: 'test@example.com',
        // --continue and revert accept the prepared message, as mediagit does.
        GIT_EDITOR: 'true',
        LC_ALL: 'C',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.resume();
    child.on('error', reject);
    child.on('exit', (code) => resolve({ ok: code === 0, stdout: Buffer.concat(out).toString() }));
  });
}

async function runMg(cwd: string, args: readonly string[]): Promise<Result> {
  const r = await runCli([...args], { cwd, allowFail: true });
  return { ok: r.code === 0, stdout: r.stdout };
}

/** Every file under `root` (the repository folder left out) with its bytes, as hex digests would. */
async function snapshot(root: string, skip: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const d of await readdir(dir, { withFileTypes: true })) {
      if (prefix === '' && d.name === skip) continue;
      const rel = prefix === '' ? d.name : `${prefix}/${d.name}`;
      if (d.isDirectory()) await walk(path.join(dir, d.name), rel);
      else files.set(rel, (await readFile(path.join(dir, d.name))).toString('hex'));
    }
  };
  await walk(root, '');
  return new Map([...files].sort(([a], [b]) => (a < b ? -1 : 1)));
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');

async function history(
  repoDir: string,
  kind: 'git' | 'mg',
  home: string,
): Promise<{ firstParent: string[]; all: string[] }> {
  if (kind === 'git') {
    const fp = await runGit(repoDir, home, ['log', '--first-parent', '--format=%s']);
    const all = await runGit(repoDir, home, ['log', '--format=%s']);
    return { firstParent: lines(fp.stdout), all: lines(all.stdout).sort() };
  }
  // One `log --json` gives both views: the tip is the one commit no other names as a parent.
  const out = await runMg(repoDir, ['log', '--json']);
  if (!out.ok) return { firstParent: [], all: [] };
  const commits = JSON.parse(out.stdout) as { oid: string; parents: string[]; message: string }[];
  const byOid = new Map(commits.map((c) => [c.oid, c]));
  const named = new Set(commits.flatMap((c) => c.parents));
  const subject = (c: { message: string }): string => c.message.split('\n')[0] ?? '';
  const firstParent: string[] = [];
  for (let c = commits.find((x) => !named.has(x.oid)); c; c = byOid.get(c.parents[0] ?? '')) {
    firstParent.push(subject(c));
  }
  return { firstParent, all: commits.map(subject).sort() };
}

test('a script of git operations gives the same trees, histories and exit statuses as git', async () => {
  const base = await tempDir('git-parity');
  const gitDir = path.join(base, 'git');
  const mgDir = path.join(base, 'mg');
  const home = path.join(base, 'home');
  await Promise.all([mkdir(gitDir), mkdir(mgDir), mkdir(home)]);
  assert.ok((await runGit(gitDir, home, ['init', '-q', '-b', 'main'])).ok, 'git init');
  assert.ok((await runMg(mgDir, ['init', '-q'])).ok, 'mediagit init');

  let commands = 0;
  for (const [i, step] of STEPS.entries()) {
    let what: string;
    if ('write' in step) {
      what = `write ${Object.keys(step.write).join(', ')}`;
      for (const dir of [gitDir, mgDir])
        for (const [name, label] of Object.entries(step.write))
          await writeFile(path.join(dir, name), media(label));
    } else if ('remove' in step) {
      what = `remove ${step.remove.join(', ')}`;
      for (const dir of [gitDir, mgDir])
        for (const name of step.remove) await rm(path.join(dir, name), { force: true });
    } else {
      commands++;
      what = step.run.join(' ');
      const g = await runGit(gitDir, home, step.run);
      const m = await runMg(mgDir, step.mg ?? step.run);
      assert.equal(
        m.ok,
        g.ok,
        `step ${i} (${what}): git ${g.ok ? 'succeeded' : 'failed'}, mediagit ${m.ok ? 'succeeded' : 'failed'}`,
      );
      if (step.output) assert.equal(m.stdout, g.stdout, `step ${i} (${what}): output`);
    }
    assert.deepEqual(
      await snapshot(mgDir, '.mediagit'),
      await snapshot(gitDir, '.git'),
      `step ${i} (${what}): working tree`,
    );
    // Writing files changes no history: only commands are followed by the (slower) log comparison.
    if ('run' in step)
      assert.deepEqual(
        await history(mgDir, 'mg', home),
        await history(gitDir, 'git', home),
        `step ${i} (${what}): HEAD history`,
      );
  }
  assert.ok(commands >= 40, `${commands} git operations compared`);
  // The comparisons above saw real content, not two empty answers.
  const final = await history(mgDir, 'mg', home);
  assert.ok(final.all.length >= 20, `${final.all.length} commits in the final history`);
  assert.ok((await snapshot(mgDir, '.mediagit')).size >= 5);
});
