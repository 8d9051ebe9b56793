/**
 * Locks that protect before work is lost (issue 19), with the built CLI, for two artists, Ada and
 * Bob, cloning a repository whose `.mediagitattributes` marks `*.scene` lockable. The same story
 * runs over a folder remote, an S3 bucket on the radosgw test server and a `mediagit server`:
 * read-only checkout, lock/unlock and the write bit, the lock refused naming the holder, commit
 * refused with E_LOCK_HELD naming the holder (unless --no-verify-locks), status showing holders
 * from the cached view, release on push, lock refused while the remote has a newer version, globs.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { runCli, tempDir, type CliResult } from '../support/cli.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';
import { createS3TestBucket } from '../support/s3-bucket.js';
import { skipUnlessServer } from '../support/test-servers.js';

const RUN = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

type Cli = (args: string[], allowFail?: boolean) => Promise<CliResult>;

interface Remote {
  readonly url: string;
  /** Backend options (`-o key=value` pairs) for `remote add` and `clone`. */
  readonly options: string[];
  /** Environment for an artist (identity, token). */
  userEnv(name: string): Promise<Record<string, string | undefined>>;
}

async function baseEnv(name: string): Promise<Record<string, string | undefined>> {
  return {
    XDG_CONFIG_HOME: await tempDir('xdg'),
    MEDIAGIT_AUTHOR_NAME: name,
    MEDIAGIT_AUTHOR_EMAIL: `${name.toLowerCase()}@studio.example`,
  };
}

function cli(cwd: string, userEnv: Record<string, string | undefined>): Cli {
  return (args, allowFail = false) =>
    runCli(args, { cwd, env: userEnv, allowFail, timeoutMs: 120_000 });
}

const mode = async (file: string): Promise<number> => (await stat(file)).mode & 0o777;

interface StatusJson {
  locks: {
    view: { remote: string; refreshed_at: string; stale: boolean } | null;
    files: { path: string; holder: string | null; ours: boolean; writableWithoutLock: boolean }[];
  };
}

/** Every point of the "Must show" on one remote. */
async function story(remote: Remote): Promise<void> {
  const work = await tempDir('locks-story');
  const setupDir = path.join(work, 'setup');
  await mkdir(path.join(setupDir, 'scenes'), { recursive: true });
  await writeFile(
    path.join(setupDir, '.mediagitattributes'),
    '# binary scenes\n*.scene lockable\n',
  );
  await writeFile(path.join(setupDir, 'scenes', 'level.scene'), 'scene v1\n');
  await writeFile(path.join(setupDir, 'scenes', 'intro.scene'), 'intro v1\n');
  await writeFile(path.join(setupDir, 'notes.txt'), 'notes\n');
  const setup = cli(setupDir, await remote.userEnv('Setup'));
  await setup(['init', '-q']);
  await setup(['add', '.']);
  await setup(['commit', '-q', '-m', 'v1']);
  await setup(['remote', 'add', 'origin', remote.url, ...remote.options]);
  await setup(['push', '-q', '--create']);

  const adaEnv = await remote.userEnv('Ada');
  const bobEnv = await remote.userEnv('Bob');
  const adaDir = path.join(work, 'ada');
  const bobDir = path.join(work, 'bob');
  await cli(work, adaEnv)(['clone', '-q', remote.url, adaDir, ...remote.options]);
  await cli(work, bobEnv)(['clone', '-q', remote.url, bobDir, ...remote.options]);
  const ada = cli(adaDir, adaEnv);
  const bob = cli(bobDir, bobEnv);
  const scene = 'scenes/level.scene';

  // A fresh checkout: lockable files read-only, the rest writable.
  for (const dir of [adaDir, bobDir]) {
    assert.equal(await mode(path.join(dir, scene)), 0o444, `${dir}: ${scene} is 0444`);
    assert.equal(await mode(path.join(dir, 'scenes', 'intro.scene')), 0o444);
    assert.ok((await mode(path.join(dir, 'notes.txt'))) & 0o200, 'notes.txt stays writable');
  }

  // Ada locks: writable for her.
  assert.match((await ada(['lock', scene])).stdout, /Locked scenes\/level\.scene/);
  assert.ok((await mode(path.join(adaDir, scene))) & 0o200, 'writable for the holder');

  // Bob's lock of the same path fails naming Ada; his file stays read-only.
  const bobLock = await bob(['lock', scene], true);
  assert.equal(bobLock.code, 9, bobLock.stderr);
  assert.match(bobLock.stderr, /Ada/);
  assert.equal(await mode(path.join(bobDir, scene)), 0o444);

  // Bob's status says who holds it (from the view his lock attempt refreshed).
  const bobStatus = JSON.parse((await bob(['status', '--json'])).stdout) as StatusJson;
  const held = bobStatus.locks.files.find((f) => f.path === scene);
  assert.ok(held, JSON.stringify(bobStatus.locks));
  assert.match(held.holder ?? '', /Ada/);
  assert.equal(held.ours, false);
  assert.equal(bobStatus.locks.view?.stale, false);
  assert.match((await bob(['status'])).stdout, /scenes\/level\.scene\s+locked by Ada/);

  // Bob edits anyway: status flags the writable file, commit is refused naming Ada.
  await chmod(path.join(bobDir, scene), 0o644);
  await writeFile(path.join(bobDir, 'scenes', 'intro.scene'), 'intro v2 by bob\n');
  await chmod(path.join(bobDir, 'scenes', 'intro.scene'), 0o644);
  const flagged = JSON.parse((await bob(['status', '--json'])).stdout) as StatusJson;
  assert.ok(
    flagged.locks.files.some((f) => f.path === 'scenes/intro.scene' && f.writableWithoutLock),
    JSON.stringify(flagged.locks),
  );
  await writeFile(path.join(bobDir, scene), 'scene v2 by bob\n');
  const refused = await bob(['commit', '-a', '-m', 'bob edits the scene'], true);
  assert.equal(refused.code, 20, refused.stderr);
  assert.match(refused.stderr, /scenes\/level\.scene/);
  assert.match(refused.stderr, /Ada/);
  assert.match(refused.stderr, /--no-verify-locks/);
  // --no-verify-locks lets the commit through; the push is still refused while Ada holds it.
  await bob(['commit', '-q', '-a', '--no-verify-locks', '-m', 'bob edits anyway']);
  const pushRefused = await bob(['push'], true);
  assert.equal(pushRefused.code, 9, pushRefused.stderr);
  assert.match(pushRefused.stderr, /Ada/);
  await bob(['reset', '-q', '--hard', 'origin/main']);

  // Ada edits and pushes with release_on_push: the lock goes, her file is read-only again.
  await writeFile(path.join(adaDir, scene), 'scene v2 by ada\n');
  const adaCommit = JSON.parse(
    (await ada(['commit', '--json', '-a', '-m', 'Ada reworks the level'])).stdout,
  ) as { oid: string };
  await ada(['config', 'lock.release_on_push', 'true']);
  const pushed = await ada(['push']);
  assert.match(pushed.stderr, /Released the lock on scenes\/level\.scene/);
  assert.deepEqual(JSON.parse((await ada(['locks', '--json'])).stdout), []);
  assert.equal(await mode(path.join(adaDir, scene)), 0o444, 'read-only after the release');

  // Bob's checkout is now stale: his lock is refused naming Ada's commit.
  const stale = await bob(['lock', scene], true);
  assert.equal(stale.code, 10, stale.stderr);
  assert.match(stale.stderr, new RegExp(adaCommit.oid.slice(0, 7)));
  assert.match(stale.stderr, /pull/);
  assert.deepEqual(JSON.parse((await bob(['locks', '--json'])).stdout), []);

  // After pulling, Bob's lock succeeds, and everyone sees it.
  await bob(['pull', '-q']);
  assert.equal(await readFile(path.join(bobDir, scene), 'utf8'), 'scene v2 by ada\n');
  assert.equal(await mode(path.join(bobDir, scene)), 0o444);
  await bob(['lock', scene]);
  assert.ok((await mode(path.join(bobDir, scene))) & 0o200);
  const listed = JSON.parse((await ada(['locks', '--json'])).stdout) as {
    path: string;
    owner: string;
    id: string;
    locked_at: string;
  }[];
  assert.deepEqual(
    listed.map((l) => l.path),
    [scene],
  );
  assert.match(listed[0]!.owner, /Bob/);
  assert.match(listed[0]!.id, /^[0-9a-f]{64}$/);

  // Several paths and globs at once; unlock makes them read-only again.
  await bob(['unlock', scene]);
  assert.equal(await mode(path.join(bobDir, scene)), 0o444);
  const both = await bob(['lock', 'scenes/*.scene']);
  assert.match(both.stdout, /Locked scenes\/intro\.scene/);
  assert.match(both.stdout, /Locked scenes\/level\.scene/);
  const owners = JSON.parse((await ada(['locks', '--json'])).stdout) as { path: string }[];
  assert.deepEqual(
    owners.map((l) => l.path),
    ['scenes/intro.scene', scene],
  );
  await bob(['unlock', '*.scene']);
  assert.deepEqual(JSON.parse((await ada(['locks', '--json'])).stdout), []);
  assert.equal(await mode(path.join(bobDir, 'scenes', 'intro.scene')), 0o444);
}

describe('locks on a folder remote', () => {
  test(
    'Ada and Bob: read-only checkout, lock, refusals, release on push, stale lock, globs',
    { timeout: 180_000 },
    async () => {
      const remoteDir = path.join(await tempDir('locks-remote'), 'studio.mediagit');
      await story({ url: remoteDir, options: [], userEnv: baseEnv });
    },
  );

  test(
    "unlock --force releases someone else's lock; offline, lock fails clearly and status uses the cached view (marked stale)",
    { timeout: 120_000 },
    async () => {
      const work = await tempDir('locks-offline');
      const remoteDir = path.join(work, 'remote.mediagit');
      const dir = path.join(work, 'ada');
      await mkdir(dir);
      await writeFile(path.join(dir, 'a.scene'), 'a\n');
      await writeFile(path.join(dir, '.mediagitattributes'), '*.scene lockable\n');
      const ada = cli(dir, await baseEnv('Ada'));
      const bobEnv = await baseEnv('Bob');
      await ada(['init', '-q']);
      await ada(['add', '.']);
      await ada(['commit', '-q', '-m', 'v1']);
      await ada(['remote', 'add', 'origin', remoteDir]);
      await ada(['push', '-q', '--create']);
      await ada(['lock', 'a.scene']);
      const bobDir = path.join(work, 'bob');
      await cli(work, bobEnv)(['clone', '-q', remoteDir, bobDir]);
      const bob = cli(bobDir, bobEnv);
      assert.match((await bob(['unlock', '--force', 'a.scene'])).stdout, /was held by Ada/);
      assert.deepEqual(JSON.parse((await ada(['locks', '--json'])).stdout), []);

      // Ada locks again, then loses the network: her remote now points at a closed port.
      await ada(['lock', 'a.scene']);
      await ada(['remote', 'set-url', 'origin', 'http://127.0.0.1:9/studio']);
      await ada(['config', 'lock.cache_ttl', '0']);
      const offline = await ada(['lock', 'a.scene'], true);
      assert.equal(offline.code, 12, offline.stderr);
      assert.match(offline.stderr, /127\.0\.0\.1:9/);
      const status = await ada(['status']);
      assert.match(status.stdout, /a\.scene\s+locked by you/);
      assert.match(status.stdout, /STALE/);
      await writeFile(path.join(dir, 'a.scene'), 'a2\n');
      await ada(['commit', '-q', '-a', '-m', 'offline commit']);
    },
  );
});

describe('locks on an S3 bucket remote (radosgw)', { skip: skipUnlessServer('s3') }, () => {
  test('Ada and Bob over s3://', { timeout: 240_000 }, async () => {
    const bucket = `mg-locks-${RUN}`.toLowerCase();
    const s3 = await createS3TestBucket(bucket);
    const options = [
      `endpoint=${s3.endpoint}`,
      `region=${s3.region}`,
      'force_path_style=true',
      `access_key=${s3.access_key}`,
      `secret_key=${s3.secret_key}`,
    ].flatMap((o) => ['-o', o]);
    await story({ url: `s3://${bucket}/studio`, options, userEnv: baseEnv });
  });
});

describe('locks through mediagit server', () => {
  test('Ada and Bob over http://', { timeout: 180_000 }, async () => {
    const srv = await startTestServer();
    servers.push(srv);
    const name = 'locks-story';
    await story({
      url: `${srv.url}/${name}`,
      options: [],
      async userEnv(user) {
        return { ...(await baseEnv(user)), MEDIAGIT_TOKEN: await srv.token(name, 'write', user) };
      },
    });
    // The server wrote an audit line for every lock change.
    const events = srv.auditLines.filter((l) => l['event'] === 'lock' || l['event'] === 'unlock');
    assert.ok(events.length >= 6, JSON.stringify(events));
    assert.ok(events.every((l) => typeof l['identity'] === 'string' && l['target'] !== undefined));
  });
});
