import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { mg, tempDir } from '../support/cli.js';

async function commit(repo: string, file: string, text: string): Promise<void> {
  await writeFile(path.join(repo, file), text);
  await mg(repo, 'add', file);
  await mg(repo, 'commit', '-q', '-m', `${file}: ${text}`);
}

test('push -u records the upstream (branch names with / too); a bare push then goes there and status counts ahead', async () => {
  const dir = await tempDir('upstream');
  const hub = path.join(dir, 'hub.mediagit');
  const repo = path.join(dir, 'work');
  await mg(dir, 'init', '--bare', hub);
  await mg(dir, 'init', '-q', repo);
  await mg(repo, 'remote', 'add', 'hub', hub);
  await commit(repo, 'a.txt', 'one');
  await mg(repo, 'checkout', '-q', '-b', 'feature/rig.v2');

  await mg(repo, 'push', '-u', 'hub', 'feature/rig.v2:review/rig');
  assert.equal((await mg(repo, 'config', 'branch.feature/rig.v2.remote')).stdout.trim(), 'hub');
  assert.equal(
    (await mg(repo, 'config', 'branch.feature/rig.v2.merge')).stdout.trim(),
    'refs/heads/review/rig',
  );
  const config = await readFile(path.join(repo, '.mediagit', 'config.toml'), 'utf8');
  assert.match(config, /\[branch\."feature\/rig\.v2"\]/);

  await commit(repo, 'a.txt', 'two');
  const status = await mg(repo, 'status');
  assert.match(status.stdout, /Your branch is ahead of 'hub\/review\/rig' by 1 commit\./);

  // No remote named origin and none named: only the recorded upstream can tell push where to go.
  await mg(repo, 'remote', 'add', 'other', path.join(dir, 'nowhere'));
  const pushed = await mg(repo, 'push');
  assert.match(pushed.stdout, /review\/rig/);
  assert.match(
    (await mg(repo, 'status')).stdout,
    /Your branch is up to date with 'hub\/review\/rig'/,
  );
  const copy = path.join(dir, 'copy');
  await mg(dir, 'clone', '-q', hub, copy);
  const hubLog = await mg(copy, 'log', '--oneline', 'origin/review/rig');
  assert.equal(hubLog.stdout.trim().split('\n').length, 2);
});
