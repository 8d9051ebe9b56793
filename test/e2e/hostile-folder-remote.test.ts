/**
 * A folder remote someone else can write to: a junk or symlinked ref, or a FIFO planted as a ref,
 * must end `clone` and `fetch` with the corrupt-ref exit code (6, E_REF_CORRUPT) and one line that
 * names the ref without echoing the file's content — and a FIFO must not hang the command.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';

const env = {};

async function pushedRemote(label: string): Promise<{ src: string; remote: string }> {
  const base = await tempDir(label);
  const src = path.join(base, 'src');
  const remote = path.join(base, 'remote');
  await mkdir(src, { recursive: true });
  await writeFile(path.join(src, 'a.txt'), 'hello\n');
  await runCli(['init', '-q'], { cwd: src, env });
  await runCli(['add', '.'], { cwd: src, env });
  await runCli(['commit', '-q', '-m', 'one'], { cwd: src, env });
  await runCli(['remote', 'add', 'origin', remote], { cwd: src, env });
  await runCli(['push', '-q', '--create'], { cwd: src, env });
  return { src, remote };
}

function assertCorruptRef(
  res: { code: number; stderr: string },
  label: string,
  secret?: string,
): void {
  assert.equal(res.code, 6, `${label}: exit code; stderr: ${res.stderr}`);
  assert.match(res.stderr, /^error: ref refs\/heads\/main is corrupt/m, label);
  if (secret !== undefined) assert.ok(!res.stderr.includes(secret), `${label}: content echoed`);
}

test('clone and fetch from a folder remote with a junk ref: exit 6, content not echoed', async () => {
  const { src, remote } = await pushedRemote('hostile-junk-ref');
  const secret = 'planted-secret-9f3c';
  await writeFile(path.join(remote, 'refs', 'heads', 'main'), `${secret}\n`);
  const clone = await runCli(['clone', remote, path.join(path.dirname(remote), 'clone')], {
    cwd: path.dirname(remote),
    env,
    allowFail: true,
  });
  assertCorruptRef(clone, 'clone', secret);
  const fetch = await runCli(['fetch'], { cwd: src, env, allowFail: true });
  assertCorruptRef(fetch, 'fetch', secret);
});

test('a symlinked ref and a FIFO ref in a folder remote are refused, not followed or opened', async () => {
  const { src, remote } = await pushedRemote('hostile-special-ref');
  const ref = path.join(remote, 'refs', 'heads', 'main');
  const secret = path.join(path.dirname(remote), 'secret.txt');
  await writeFile(secret, 'top-secret-value\n');
  await rm(ref);
  await symlink(secret, ref);
  assertCorruptRef(
    await runCli(['fetch'], { cwd: src, env, allowFail: true }),
    'symlink',
    'top-secret-value',
  );
  await rm(ref);
  execFileSync('mkfifo', [ref]);
  // Were the FIFO opened for a blocking read, fetch would wait for a writer that never comes.
  const res = await runCli(['fetch'], { cwd: src, env, allowFail: true });
  assertCorruptRef(res, 'FIFO');
  assert.match(res.stderr, /FIFO/);
});
