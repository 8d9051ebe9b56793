import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';
import { makeCorpus } from '../support/corpus.js';

test('fsck --remote: a multi remote reports divergence between primary and secondary', async () => {
  const work = await tempDir('fsck-remote');
  const repo = path.join(work, 'repo');
  await makeCorpus(repo, 1, 'tiny');
  await runCli(['init', '-q'], { cwd: repo });
  await runCli(['add', '.'], { cwd: repo });
  await runCli(['commit', '-q', '-m', 'v1'], { cwd: repo });
  const primary = path.join(work, 'primary');
  const secondary = path.join(work, 'secondary');
  await runCli(
    [
      'remote',
      'add',
      'backup',
      'multi:',
      '-o',
      `primary=${primary}`,
      '-o',
      `secondary=${secondary}`,
    ],
    { cwd: repo },
  );
  await runCli(['push', '-q', 'backup'], { cwd: repo });
  const clean = await runCli(['fsck', '--remote', 'backup', '--json'], { cwd: repo });
  assert.equal((JSON.parse(clean.stdout) as { ok: boolean }).ok, true);

  const fan = (await readdir(path.join(secondary, 'chunks')))[0]!;
  const file = (await readdir(path.join(secondary, 'chunks', fan)))[0]!;
  await rm(path.join(secondary, 'chunks', fan, file));
  const diverged = await runCli(['fsck', '--remote', 'backup'], { cwd: repo, allowFail: true });
  assert.equal(diverged.code, 6, diverged.stderr);
  assert.match(diverged.stdout, new RegExp(`divergence chunks/${fan}${file}: only on the primary`));

  // A chunk gone from both sides is a missing object, named.
  await rm(path.join(primary, 'chunks', fan, file));
  const missing = await runCli(['fsck', '--remote', 'backup'], { cwd: repo, allowFail: true });
  assert.equal(missing.code, 6);
  assert.match(missing.stdout, new RegExp(`chunk ${fan}${file}: missing from the remote`));
});
