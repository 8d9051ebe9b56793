/**
 * `fsck --remote` checks the remote's descriptor against the objects it reads: an encrypted
 * descriptor over plain objects (what a lost first-push race used to leave), or the reverse, is a
 * problem (exit 6), named once with the first offending object and a count.
 */
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';
import { makeCorpus } from '../support/corpus.js';

/** Replaces a folder remote's descriptor, keeping its chunking, with the other encryption. */
async function flipDescriptor(remote: string, encrypted: boolean): Promise<void> {
  const file = path.join(remote, 'meta', 'repository');
  const descriptor = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  descriptor['encryption'] = encrypted ? 'aes-256-gcm' : null;
  await chmod(file, 0o644);
  await writeFile(file, JSON.stringify(descriptor, null, 2) + '\n');
}

test('fsck --remote: a descriptor that disagrees with the objects is a problem, both ways', async () => {
  const work = await tempDir('fsck-remote-descriptor');
  const pass = { MEDIAGIT_PASSPHRASE: 'descriptor check passphrase', MEDIAGIT_AGENT: '0' };

  // Plain objects under a descriptor that says encrypted.
  const plain = path.join(work, 'plain');
  const plainRemote = path.join(work, 'plain-remote');
  await makeCorpus(plain, 1, 'tiny');
  await runCli(['init', '-q'], { cwd: plain });
  await runCli(['add', '.'], { cwd: plain });
  await runCli(['commit', '-q', '-m', 'v1'], { cwd: plain });
  await runCli(['remote', 'add', 'origin', plainRemote], { cwd: plain });
  await runCli(['push', '-q', '--create'], { cwd: plain });
  const clean = await runCli(['fsck', '--remote', 'origin'], { cwd: plain });
  assert.match(clean.stdout, /no problems found/);
  await flipDescriptor(plainRemote, true);
  const flipped = await runCli(['fsck', '--remote', 'origin', '--json'], {
    cwd: plain,
    allowFail: true,
  });
  assert.equal(flipped.code, 6, flipped.stderr);
  const report = JSON.parse(flipped.stdout) as {
    ok: boolean;
    problems: { kind: string; oid: string; problem: string }[];
  };
  assert.equal(report.ok, false);
  const problem = report.problems.find((p) => p.kind === 'descriptor');
  assert.ok(problem, JSON.stringify(report.problems));
  assert.equal(problem.oid, 'meta/repository');
  assert.match(
    problem.problem,
    /objects\/[0-9a-f]{64} is plain \(not encrypted\), but the repository descriptor says objects are encrypted \(and \d+ more\)/,
  );

  // Encrypted objects under a descriptor that says plain.
  const secret = path.join(work, 'secret');
  const secretRemote = path.join(work, 'secret-remote');
  await makeCorpus(secret, 1, 'tiny');
  await runCli(['init', '-q', '--encrypt'], {
    cwd: secret,
    env: { ...pass, MEDIAGIT_NEW_PASSPHRASE: pass.MEDIAGIT_PASSPHRASE },
  });
  await runCli(['add', '.'], { cwd: secret, env: pass });
  await runCli(['commit', '-q', '-m', 'v1'], { cwd: secret, env: pass });
  await runCli(['remote', 'add', 'origin', secretRemote], { cwd: secret, env: pass });
  await runCli(['push', '-q', '--create'], { cwd: secret, env: pass });
  await runCli(['fsck', '--remote', 'origin'], { cwd: secret, env: pass });
  await flipDescriptor(secretRemote, false);
  const reverse = await runCli(['fsck', '--remote', 'origin'], {
    cwd: secret,
    env: pass,
    allowFail: true,
  });
  assert.equal(reverse.code, 6, reverse.stderr);
  assert.match(
    reverse.stdout,
    /descriptor meta\/repository: disagrees with the objects: objects\/[0-9a-f]{64} is encrypted, but the repository descriptor says objects are plain/,
  );
});
