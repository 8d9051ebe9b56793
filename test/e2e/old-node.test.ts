import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CLI_PATH, tempDir } from '../support/cli.js';

const NEEDS =
  /^error: mediagit needs Node\.js 22\.19 or newer \(this is [\d.]+\)\nhint: install Node 24 LTS\n$/;

/** A node binary older than 22.19 on this machine (Debian's, on the CI image), if there is one. */
function olderNode(): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), '/usr/bin', '/usr/local/bin'];
  for (const dir of new Set(dirs)) {
    const candidate = path.join(dir, 'node');
    if (!dir || !existsSync(candidate)) continue;
    const version = spawnSync(candidate, ['-p', 'process.versions.node'], {
      encoding: 'utf8',
    }).stdout.trim();
    const [major = 0, minor = 0] = version.split('.').map(Number);
    if (version && (major < 22 || (major === 22 && minor < 19))) return candidate;
  }
  return undefined;
}

test(
  'a real older Node gets the one-line requirement, not a link error from the entry point',
  { skip: olderNode() === undefined && 'no Node older than 22.19 on this machine' },
  () => {
    const result = spawnSync(olderNode()!, [CLI_PATH, 'status'], { encoding: 'utf8' });
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, NEEDS);
    assert.equal(result.stdout, '');
  },
);

test('the version check runs before the CLI loads (simulated old version)', async () => {
  const dir = await tempDir('old-node');
  const preload = path.join(dir, 'pretend-20.mjs');
  writeFileSync(
    preload,
    "Object.defineProperty(process.versions, 'node', { value: '20.11.1' });\n",
  );
  const result = spawnSync(process.execPath, ['--import', preload, CLI_PATH, 'status'], {
    encoding: 'utf8',
    cwd: dir,
  });
  assert.equal(result.status, 1, result.stderr);
  assert.match(result.stderr, NEEDS);
  assert.match(result.stderr, /this is 20\.11\.1/);
});

test(
  'npm test and npm run demo on an older Node stop at once with the same line, running nothing else',
  { skip: olderNode() === undefined && 'no Node older than 22.19 on this machine' },
  () => {
    const dir = path.dirname(olderNode()!);
    const npm = path.join(dir, 'npm');
    if (!existsSync(npm)) return;
    for (const script of [['test'], ['run', 'demo']]) {
      const result = spawnSync(npm, script, {
        cwd: path.join(CLI_PATH, '..', '..'),
        encoding: 'utf8',
        // Only the old Node on PATH, as on a machine that has nothing newer.
        env: {
          ...process.env,
          PATH: `${dir}${path.delimiter}/bin`,
          npm_config_update_notifier: 'false',
        },
      });
      assert.notEqual(result.status, 0, `npm ${script.join(' ')}`);
      assert.match(
        result.stderr,
        /^error: mediagit needs Node\.js 22\.19 or newer \(this is [\d.]+\)$/m,
      );
      // Stopped before lint, build or any test ran.
      assert.doesNotMatch(
        `${result.stdout}${result.stderr}`,
        /> mediagit@\S+ (lint|build)|# tests|SyntaxError/,
      );
    }
  },
);
