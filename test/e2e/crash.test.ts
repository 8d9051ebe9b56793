import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';
import { killAfter } from '../support/sync-fixtures.js';
import { assertTreesEqual, hashTree } from '../support/tree.js';

const ROUNDS = 24;

test(
  `SIGKILL during add/commit at ${ROUNDS} random moments never damages the repository`,
  { timeout: 240_000 },
  async () => {
    const repo = await tempDir('crash');
    await runCli(
      ['init', '-q', '--chunk-min', '16K', '--chunk-avg', '64K', '--chunk-max', '256K'],
      { cwd: repo },
    );
    await mkdir(path.join(repo, 'shots'));
    let kills = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const which = round % 3 === 2 ? 'commit' : 'add';
      // Up to four attempts per round, each with a shorter fuse, until the kill lands mid-flight:
      // on a fast machine a fixed delay often fires after the command has already finished.
      let upper = which === 'add' ? 400 : 160;
      for (let attempt = 0; attempt < 4; attempt++, upper = Math.max(10, upper >> 1)) {
        // Fresh edits every attempt, so the command always has real work to do when it is killed.
        await writeFile(
          path.join(repo, 'shots', `shot_${round % 6}.raw`),
          randomBytes(6_000_000 + round * 1000 + attempt),
        );
        await writeFile(
          path.join(repo, `note_${round}.txt`),
          `round ${round} attempt ${attempt}\n`,
        );
        const args = which === 'commit' ? ['commit', '-am', `round ${round}`] : ['add', '.'];
        const delay = 5 + Math.floor(Math.random() * upper);
        const outcome = await killAfter(args, repo, delay);

        const fsck = await runCli(['fsck'], { cwd: repo, allowFail: true });
        assert.equal(
          fsck.code,
          0,
          `round ${round} (${which} ${outcome} after ${delay} ms): fsck\n${fsck.stdout}${fsck.stderr}`,
        );
        const status = await runCli(['status', '--json'], { cwd: repo, allowFail: true });
        assert.equal(status.code, 0, `round ${round}: status\n${status.stderr}`);
        if (outcome === 'killed') {
          kills++;
          break;
        }
      }
    }
    assert.ok(kills >= 20, `only ${kills} of ${ROUNDS} runs were killed mid-flight`);

    // The repository still works: stage and commit everything, then rebuild the tree from the store.
    await runCli(['add', '.'], { cwd: repo });
    await runCli(['commit', '-m', 'after the storm', '--allow-empty'], { cwd: repo });
    const expected = await hashTree(repo);
    await runCli(['rm', '-r', '-q', '--cached', '.'], { cwd: repo });
    await runCli(['reset', '--hard'], { cwd: repo });
    assertTreesEqual(await hashTree(repo), expected, 'tree after crashes');
    const full = await runCli(['fsck', '--full'], { cwd: repo });
    assert.match(full.stdout, /no problems found/);
  },
);
