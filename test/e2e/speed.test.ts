import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

test(
  'mediagit --version and status on a clean 10,000-file tree are well under a second',
  { timeout: 300_000 },
  async (t) => {
    const repo = await tempDir('speed');
    await runCli(['init', '-q'], { cwd: repo });
    await runCli(['config', 'core.fsync', 'false'], { cwd: repo });
    for (let d = 0; d < 100; d++) {
      const dir = path.join(repo, `set_${d}`);
      await mkdir(dir);
      await Promise.all(
        Array.from({ length: 100 }, (_, f) =>
          writeFile(path.join(dir, `asset_${f}.meta`), `asset ${d}/${f}\n`),
        ),
      );
    }
    await runCli(['add', '.'], { cwd: repo });
    await runCli(['commit', '-q', '-m', '10k files'], { cwd: repo });
    await runCli(['status'], { cwd: repo });

    const version = Math.min(
      ...(await Promise.all(
        [0, 1, 2].map(() => timed(() => runCli(['--version'], { cwd: repo }))),
      )),
    );
    const statusTimes: number[] = [];
    for (let i = 0; i < 3; i++)
      statusTimes.push(await timed(() => runCli(['status', '--porcelain'], { cwd: repo })));
    const status = Math.min(...statusTimes);
    t.diagnostic(
      `mediagit --version: ${version.toFixed(0)} ms; status on 10,000 clean files: ${status.toFixed(0)} ms`,
    );
    // Generous bounds: this guards against regressions on a loaded CI machine; the figures are reported above.
    assert.ok(version < 800, `--version took ${version} ms`);
    assert.ok(status < 1500, `status took ${status} ms`);
    const porcelain = await runCli(['status', '--porcelain'], { cwd: repo });
    assert.equal(porcelain.stdout, '');
  },
);
