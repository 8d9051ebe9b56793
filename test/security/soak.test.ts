/**
 * A 10 s run of scripts/soak-server.mjs (the full 60 s one is run by hand): 4 honest pushers and
 * a hostile client firing resets, bombs and stalled uploads at one real server.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../support/cli.js';

function withoutTestContext(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['NODE_TEST_CONTEXT'];
  return env;
}

test('soak, 10 s: the server stays up under 400 MiB, honest pushes land, fsck --full is clean', async () => {
  const child = spawn(
    process.execPath,
    [path.join(REPO_ROOT, 'scripts', 'soak-server.mjs'), '--seconds', '10', '--json'],
    // Not a test file itself: without the runner's context its helpers report nothing on stdout.
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: withoutTestContext() },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const line = stdout.split('\n').find((l) => l.startsWith('{"seconds"')) ?? '{}';
  const figures = JSON.parse(line) as Record<string, unknown>;
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  assert.equal(figures['server_alive'], true);
  assert.ok((figures['peak_rss_mib'] as number) < 400);
  assert.ok((figures['honest_pushes'] as number) >= 4);
  assert.deepEqual(figures['fsck_failures'], []);
});
