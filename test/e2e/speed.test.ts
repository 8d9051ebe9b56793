import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';

/** Lists the tree and lstat()s every entry, the work no status can avoid. */
const STAT_WALK = `
const fs = require('node:fs'), path = require('node:path');
(function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    fs.lstatSync(full);
    if (entry.isDirectory() && entry.name !== '.mediagit') walk(full);
  }
})('.');
`;

function runNode(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd }, (error) => (error ? reject(error) : resolve()));
  });
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

test(
  'mediagit --version costs little over a bare Node start; status on a clean 10,000-file tree little over lstat of every file',
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

    // Budgets are ratios to floors measured in the same test, interleaved with the command, so
    // a loaded machine slows both sides alike: Node's own start (`node -e 0`) for --version, and
    // a fresh Node process that lstat()s every file of the tree for status.
    const nodeStart: number[] = [];
    const version: number[] = [];
    const statWalk: number[] = [];
    const status: number[] = [];
    for (let i = 0; i < 5; i++) {
      nodeStart.push(await timed(() => runNode(['-e', '0'], repo)));
      version.push(await timed(() => runCli(['--version'], { cwd: repo })));
      statWalk.push(await timed(() => runNode(['-e', STAT_WALK], repo)));
      status.push(await timed(() => runCli(['status', '--porcelain'], { cwd: repo })));
    }
    const [floorStart, versionMs, floorWalk, statusMs] = [nodeStart, version, statWalk, status].map(
      (times) => Math.min(...times),
    ) as [number, number, number, number];
    t.diagnostic(
      `mediagit --version: ${versionMs.toFixed(0)} ms (node -e 0: ${floorStart.toFixed(0)} ms, ` +
        `×${(versionMs / floorStart).toFixed(2)}); status on 10,000 clean files: ${statusMs.toFixed(0)} ms ` +
        `(lstat walk: ${floorWalk.toFixed(0)} ms, ×${(statusMs / floorWalk).toFixed(2)})`,
    );
    // Generous: --version is ~1.2× a bare Node start on a quiet machine (4× seen under a load of 20
    // on 2 cores) and status ~2–3× the walk; a lazy-load regression (an SDK pulled into start-up,
    // +300 ms) or status reading file contents blows well past these.
    assert.ok(
      versionMs < 6 * floorStart,
      `--version took ${versionMs} ms, node -e 0 ${floorStart} ms`,
    );
    assert.ok(
      statusMs < 8 * floorWalk,
      `status took ${statusMs} ms, the lstat walk ${floorWalk} ms`,
    );
    const porcelain = await runCli(['status', '--porcelain'], { cwd: repo });
    assert.equal(porcelain.stdout, '');
  },
);
