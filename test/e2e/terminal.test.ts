import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { CLI_PATH, cliEnv, runCli, tempDir } from '../support/cli.js';

const hasScript =
  spawnSync('sh', ['-c', 'command -v script'], { encoding: 'utf8' }).stdout.trim() !== '';

test(
  'on a pseudo-terminal (even one reporting no width) add finishes and draws no runaway output',
  { skip: hasScript ? false : 'util-linux script(1) not installed', timeout: 60_000 },
  async () => {
    const repo = await tempDir('tty');
    await runCli(['init', '-q'], { cwd: repo });
    await writeFile(path.join(repo, 'plate.raw'), randomBytes(20_000_000));
    const log = path.join(repo, '..', `${path.basename(repo)}.typescript`);
    const env = { ...cliEnv(), TERM: 'xterm' } as NodeJS.ProcessEnv;
    delete env['CI'];
    const started = Date.now();
    const r = spawnSync(
      'script',
      ['-qec', `"${process.execPath}" "${CLI_PATH}" add plate.raw`, log],
      { cwd: repo, env, encoding: 'utf8', timeout: 45_000 },
    );
    assert.equal(r.error, undefined, `script failed or timed out: ${String(r.error)}`);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.ok(Date.now() - started < 45_000);
    const status = JSON.parse((await runCli(['status', '--json'], { cwd: repo })).stdout) as {
      staged: { path: string }[];
    };
    assert.deepEqual(
      status.staged.map((s) => s.path),
      ['plate.raw'],
    );
  },
);
