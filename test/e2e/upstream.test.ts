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

test('branch -vv: short oid, [upstream: ahead N, behind M] and subject, like git', async () => {
  const dir = await tempDir('branch-vv');
  const hub = path.join(dir, 'hub.mediagit');
  const repo = path.join(dir, 'work');
  await mg(dir, 'init', '--bare', hub);
  await mg(dir, 'init', '-q', repo);
  await mg(repo, 'remote', 'add', 'origin', hub);
  await commit(repo, 'a.txt', 'one');
  await mg(repo, 'push', '-q', '-u', 'origin', 'main');
  const other = path.join(dir, 'other');
  await mg(dir, 'clone', '-q', hub, other);
  await commit(other, 'b.txt', 'theirs');
  await mg(other, 'push', '-q');
  await commit(repo, 'a.txt', 'two');
  await commit(repo, 'a.txt', 'three');
  await mg(repo, 'fetch', '-q');
  await mg(repo, 'branch', 'solo');

  const tip = (await mg(repo, 'log', '--format=%h', '-1')).stdout.trim();
  const lines = (await mg(repo, 'branch', '-vv')).stdout.trimEnd().split('\n');
  assert.deepEqual(lines, [
    `* main ${tip} [origin/main: ahead 2, behind 1] a.txt: three`,
    `  solo ${tip} a.txt: three`,
  ]);
  const single = (await mg(repo, 'branch', '-v')).stdout.split('\n')[0];
  assert.equal(single, `* main ${tip} [ahead 2, behind 1] a.txt: three`);

  await mg(repo, 'reset', '-q', '--hard', 'origin/main');
  assert.match(
    (await mg(repo, 'branch', '-vv')).stdout,
    /^\* main +[0-9a-f]+ \[origin\/main\] b\.txt: theirs$/m,
  );
});

test('remote show: URL, HEAD branch, remote branches, pull and push configuration with push states, like git', async () => {
  const dir = await tempDir('remote-show');
  const hub = path.join(dir, 'hub.mediagit');
  const repo = path.join(dir, 'work');
  await mg(dir, 'init', '--bare', hub);
  await mg(dir, 'init', '-q', repo);
  await mg(repo, 'remote', 'add', 'origin', hub);
  await commit(repo, 'a.txt', 'one');
  await mg(repo, 'push', '-q', '-u', 'origin', 'main');
  for (const branch of ['done', 'topic']) {
    await mg(repo, 'checkout', '-q', '-b', branch);
    await commit(repo, `${branch}.txt`, branch);
    await mg(repo, 'push', '-q', '-u', 'origin', branch);
  }
  // topic falls behind its remote branch; main gains a commit the remote lacks; done stays.
  await mg(repo, 'reset', '-q', '--hard', 'HEAD~1');
  await mg(repo, 'checkout', '-q', 'main');
  await commit(repo, 'a.txt', 'two');
  // Someone else pushes a branch this repository has not fetched.
  const other = path.join(dir, 'other');
  await mg(dir, 'clone', '-q', hub, other);
  await mg(other, 'checkout', '-q', '-b', 'extra');
  await commit(other, 'x.txt', 'x');
  await mg(other, 'push', '-q', 'origin', 'extra');

  const shown = await mg(repo, 'remote', 'show', 'origin');
  assert.equal(
    shown.stdout,
    [
      '* remote origin',
      `  Fetch URL: ${hub}`,
      `  Push  URL: ${hub}`,
      '  HEAD branch: main',
      '  Remote branches:',
      '    done  tracked',
      '    extra new (next fetch will store in remotes/origin)',
      '    main  tracked',
      '    topic tracked',
      "  Local branches configured for 'mediagit pull':",
      '    done  merges with remote done',
      '    main  merges with remote main',
      '    topic merges with remote topic',
      "  Local refs configured for 'mediagit push':",
      '    done  pushes to done  (up to date)',
      '    main  pushes to main  (fast-forwardable)',
      '    topic pushes to topic (local out of date)',
      '',
    ].join('\n'),
  );
  const json = JSON.parse((await mg(repo, 'remote', 'show', 'origin', '--json')).stdout) as {
    push: { branch: string; state: string }[];
  };
  assert.deepEqual(
    json.push.map((p) => `${p.branch}:${p.state}`),
    ['done:up to date', 'main:fast-forwardable', 'topic:local out of date'],
  );
});
