import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';
import { repoWithMirror } from '../support/sync-fixtures.js';
import { LocalStore } from '../../src/store/index.js';

test('fsck --remote: a multi remote reports divergence between primary and secondary', async () => {
  const work = await tempDir('fsck-remote');
  const primary = path.join(work, 'primary');
  const secondary = path.join(work, 'secondary');
  const repo = await repoWithMirror(work, primary, secondary);
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

test('fsck --remote --repair: a lagging, incomplete secondary is reported with the hint, then made whole', async () => {
  const work = await tempDir('fsck-repair');
  const primary = path.join(work, 'primary');
  const secondary = path.join(work, 'secondary');
  const repo = await repoWithMirror(work, primary, secondary);
  await runCli(['push', '-q', 'backup'], { cwd: repo });
  const main = 'refs/heads/main';
  const v1 = (await new LocalStore(primary).readRef(main))!.oid;
  await writeFile(path.join(repo, 'new.bin'), Buffer.alloc(70_000, 7));
  await runCli(['add', '.'], { cwd: repo });
  await runCli(['commit', '-q', '-m', 'v2'], { cwd: repo });
  await runCli(['push', '-q', 'backup'], { cwd: repo });
  const v2 = (await new LocalStore(primary).readRef(main))!.oid;

  // The secondary lost a chunk and its main went back to v1, as after a mirror write that failed.
  const side = new LocalStore(secondary);
  assert.ok(await side.compareAndSwapRef(main, await side.readRef(main), v1));
  const fan = (await readdir(path.join(secondary, 'chunks')))[0]!;
  const file = (await readdir(path.join(secondary, 'chunks', fan)))[0]!;
  await rm(path.join(secondary, 'chunks', fan, file));

  const found = await runCli(['fsck', '--remote', 'backup'], { cwd: repo, allowFail: true });
  assert.equal(found.code, 6, found.stderr);
  assert.match(found.stdout, new RegExp(`divergence chunks/${fan}${file}: only on the primary`));
  assert.match(
    found.stdout,
    new RegExp(`divergence ${main}: ref differs: primary ${v2}, secondary ${v1}`),
  );
  assert.match(found.stderr, /mediagit fsck --remote backup --repair/);

  const repaired = await runCli(['fsck', '--remote', 'backup', '--repair'], { cwd: repo });
  assert.match(
    repaired.stdout,
    new RegExp(`repaired: copied chunks/${fan}${file} to the secondary`),
  );
  assert.match(repaired.stdout, new RegExp(`repaired: ${main} on the secondary ${v1} -> ${v2}`));
  assert.match(repaired.stdout, /no problems found/);
  assert.equal((await side.readRef(main))?.oid, v2);
  const clean = await runCli(['fsck', '--remote', 'backup', '--json'], { cwd: repo });
  assert.equal((JSON.parse(clean.stdout) as { ok: boolean }).ok, true);

  // --repair needs a multi remote named with --remote.
  const bare = await runCli(['fsck', '--repair'], { cwd: repo, allowFail: true });
  assert.equal(bare.code, 2, bare.stderr);
  await runCli(['remote', 'add', 'plain', primary], { cwd: repo });
  const plain = await runCli(['fsck', '--remote', 'plain', '--repair'], {
    cwd: repo,
    allowFail: true,
  });
  assert.equal(plain.code, 2, plain.stderr);
});
