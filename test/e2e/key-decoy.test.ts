/**
 * A decoy key file planted in an encrypted repository (it came with a clone, or someone wrote it
 * into a shared remote): Argon2 parameters of 4 GiB and 64 passes. Unlocking must refuse it before
 * Argon2 runs, keep working with the real key, name it when no key opens, and let it be removed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';

const ID = '00dec0y000000000';

function decoyKeyFile(): string {
  return JSON.stringify({
    version: 1,
    id: ID,
    created: '2000-01-01T00:00:00.000Z',
    label: 'decoy',
    kdf: {
      name: 'argon2id',
      memoryKiB: 4 * 1024 * 1024,
      iterations: 64,
      parallelism: 4,
      salt: randomBytes(16).toString('base64'),
    },
    wrapped: {
      cipher: 'aes-256-gcm',
      nonce: randomBytes(12).toString('base64'),
      ciphertext: randomBytes(48).toString('base64'),
    },
  });
}

test('a decoy key file (m = 4 GiB, t = 64) is refused at once; the real key still opens; key remove deletes it', async () => {
  const repo = await tempDir('key-decoy');
  const env = { MEDIAGIT_PASSPHRASE: 'right one', MEDIAGIT_NEW_PASSPHRASE: 'right one' };
  await writeFile(path.join(repo, 'a.txt'), 'secret data\n');
  await runCli(['init', '-q', '--encrypt'], { cwd: repo, env });
  await runCli(['add', '.'], { cwd: repo, env });
  await runCli(['commit', '-q', '-m', 'one'], { cwd: repo, env });
  await writeFile(path.join(repo, '.mediagit', 'keys', ID), decoyKeyFile());

  // Were the decoy run, each of these would allocate 4 GiB for minutes.
  const wrong = await runCli(['log', '--oneline'], {
    cwd: repo,
    env: { MEDIAGIT_PASSPHRASE: 'wrong one' },
    allowFail: true,
  });
  assert.equal(wrong.code, 14, wrong.stderr);
  assert.match(wrong.stderr, new RegExp(`keys/${ID} \\(Argon2 parameters out of range`));

  const log = await runCli(['log', '--oneline'], { cwd: repo, env });
  assert.match(log.stdout, /one/);
  const list = await runCli(['key', 'list'], { cwd: repo, env });
  assert.match(list.stdout, new RegExp(`^! ${ID}  refused: Argon2 parameters out of range`, 'm'));

  await runCli(['key', 'remove', ID], { cwd: repo, env });
  const after = await runCli(['key', 'list'], { cwd: repo, env });
  assert.doesNotMatch(after.stdout, /refused/);
});
