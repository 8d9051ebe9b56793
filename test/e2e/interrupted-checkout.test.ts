/**
 * An interrupted switch leaves nothing behind: a real `mediagit switch` process, writing a large
 * file, gets SIGINT, SIGTERM or SIGHUP while its `.tmp-<name>-<pid>-<hex>` exists; afterwards no
 * temporary file is left. And temporary files a killed process (SIGKILL, no chance to clean up)
 * left behind are removed by the next command that walks the tree, unless their writer lives.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { CLI_PATH, cliEnv, mg, pathExists, tempDir } from '../support/cli.js';

const TEMP = /^\.tmp-/;

/** A repository whose `big` branch has a 96 MiB file and whose `main` has none. */
async function repoWithBigBranch(name: string): Promise<string> {
  const repo = await tempDir(name);
  await mg(repo, 'init', '-q');
  await writeFile(path.join(repo, 'readme.txt'), 'hello\n');
  await mg(repo, 'add', '.');
  await mg(repo, 'commit', '-q', '-m', 'start');
  await mg(repo, 'switch', '-q', '-c', 'big');
  const big = Buffer.alloc(96 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 1024 * 1024) randomBytes(1024 * 1024).copy(big, i);
  await writeFile(path.join(repo, 'plate.exr'), big);
  await mg(repo, 'add', '.');
  await mg(repo, 'commit', '-q', '-m', 'plate');
  await mg(repo, 'switch', '-q', 'main');
  return repo;
}

/** Runs `switch big` and sends `signal` once its temporary file appears; the outcome. */
async function interruptSwitch(
  repo: string,
  signal: NodeJS.Signals,
): Promise<'interrupted' | 'finished'> {
  const child = spawn(process.execPath, [CLI_PATH, 'switch', '-q', 'big'], {
    cwd: repo,
    env: cliEnv(),
    stdio: 'ignore',
  });
  const exited = once(child, 'exit');
  let done = false;
  void exited.then(() => (done = true));
  while (!done) {
    if ((await readdir(repo)).some((n) => TEMP.test(n))) {
      child.kill(signal);
      const [code, by] = (await exited) as [number | null, NodeJS.Signals | null];
      return by === signal || code !== 0 ? 'interrupted' : 'finished';
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return 'finished';
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  test(`${signal} during switch of a 96 MiB file leaves no temporary file`, async () => {
    const repo = await repoWithBigBranch(`interrupt-${signal.toLowerCase()}`);
    let interrupted = 0;
    for (let round = 0; round < 3 && interrupted === 0; round++) {
      if ((await interruptSwitch(repo, signal)) === 'interrupted') interrupted++;
      assert.deepEqual(
        (await readdir(repo)).filter((n) => TEMP.test(n)),
        [],
        `round ${round}: a temporary file was left`,
      );
      await mg(repo, 'switch', '-q', '-f', 'main').catch(() => undefined);
    }
    assert.equal(interrupted, 1, 'the switch was never caught mid-write');
  });
}

test('temporary files of a dead writer are removed by the next command; a live writer keeps its own', async () => {
  const repo = await tempDir('stale-temp');
  await mg(repo, 'init', '-q');
  const dead = spawn(process.execPath, ['-e', '0']);
  const deadPid = dead.pid!;
  await once(dead, 'exit');
  const stale = path.join(repo, `.tmp-plate.exr-${deadPid}-${'a1'.repeat(6)}`);
  const live = path.join(repo, `.tmp-plate.exr-${process.pid}-${'b2'.repeat(6)}`);
  await writeFile(stale, randomBytes(4096));
  await writeFile(live, randomBytes(4096));
  const status = await mg(repo, 'status', '--porcelain');
  assert.equal(status.stdout, '', 'temporary files are never shown');
  assert.equal(await pathExists(stale), false, 'the dead writer’s file was swept');
  assert.equal(await pathExists(live), true, 'the live writer’s file was kept');
});
