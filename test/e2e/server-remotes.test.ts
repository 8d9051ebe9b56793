/**
 * The built CLI against a real `mediagit server` (test/support/server-harness.ts, in-process, on
 * 127.0.0.1): push / clone / pull over http remotes, non-fast-forward refusal, sparse clone,
 * encrypted repositories, cloud storage behind the server (when Azurite / radosgw run), a rate
 * limit that forces the client to back off, login and the credentials file, and locks between
 * two users.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { runCli, tempDir, type CliResult } from '../support/cli.js';
import { makeCorpus, Prng } from '../support/corpus.js';
import {
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from '../support/server-harness.js';
import { SMALL_CHUNK_ARGS, folderSize } from '../support/sync-fixtures.js';
import { assertTreesEqual, hashTree } from '../support/tree.js';
import { createS3TestBucket } from '../support/s3-bucket.js';
import { skipUnlessServer } from '../support/test-servers.js';

const env = process.env;
const RUN = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function server(options: TestServerOptions = {}): Promise<TestServer> {
  const s = await startTestServer(options);
  servers.push(s);
  return s;
}

/** Per test: its own XDG config home, so no test reads or writes the developer's credentials. */
async function userEnv(
  token: string | undefined,
  extra: Record<string, string> = {},
): Promise<Record<string, string | undefined>> {
  return { XDG_CONFIG_HOME: await tempDir('xdg'), MEDIAGIT_TOKEN: token, ...extra };
}

function cli(cwd: string, userEnvironment: Record<string, string | undefined>) {
  return (args: string[], allowFail = false): Promise<CliResult> =>
    runCli(args, { cwd, env: userEnvironment, allowFail, timeoutMs: 300_000 });
}

async function writeRandomFiles(
  dir: string,
  seed: string,
  count: number,
  bytes: number,
): Promise<void> {
  const prng = new Prng(seed);
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < count; i++)
    await writeFile(path.join(dir, `asset_${i}.bin`), prng.fill(Buffer.alloc(bytes)));
}

describe('http remotes through mediagit server (local folder storage)', () => {
  test(
    'push v1, clone byte-identical, push v2 sends ≈ stored growth, pull; non-fast-forward refused; clone --include',
    { timeout: 300_000 },
    async (t) => {
      const srv = await server();
      const url = `${srv.url}/hero-game`;
      const alice = await userEnv(await srv.token('hero-game', 'write', 'alice'));
      const work = await tempDir('srv-corpus');
      const artist = path.join(work, 'artist');
      await makeCorpus(artist, 1, 'small');
      const v1 = await hashTree(artist);
      const a = cli(artist, alice);
      await a(['init', '-q']);
      await a(['add', '.']);
      await a(['commit', '-q', '-m', 'v1']);
      await a(['remote', 'add', 'origin', url]);
      await a(['push', '-q']);

      const clone = path.join(work, 'build');
      await cli(work, alice)(['clone', '-q', url, clone]);
      assertTreesEqual(await hashTree(clone), v1, 'clone of v1 through the server');

      const before = (await folderSize(srv.dataDir!)).bytes;
      await makeCorpus(artist, 2, 'small');
      const v2 = await hashTree(artist);
      await a(['add', '.']);
      await a(['commit', '-q', '-m', 'v2']);
      const report = JSON.parse((await a(['push', '--json'])).stdout) as {
        bytesSent: number;
        requests: number;
      };
      const growth = (await folderSize(srv.dataDir!)).bytes - before;
      t.diagnostic(
        `v2: bytes sent ${report.bytesSent} in ${report.requests} requests, server folder grew ${growth}`,
      );
      assert.ok(growth > 0);
      assert.ok(
        Math.abs(report.bytesSent - growth) <= growth * 0.1,
        `bytes sent ${report.bytesSent} vs stored growth ${growth}`,
      );

      const b = cli(clone, alice);
      await b(['pull', '-q']);
      assertTreesEqual(await hashTree(clone), v2, 'clone after pull of v2');

      // Two writers diverge: the second push is a non-fast-forward, refused by the ref CAS's 409.
      await writeFile(path.join(clone, 'from-build.txt'), 'build machine\n');
      await b(['add', 'from-build.txt']);
      await b(['commit', '-q', '-m', 'build note']);
      await b(['push', '-q']);
      await writeFile(path.join(artist, 'from-artist.txt'), 'artist\n');
      await a(['add', 'from-artist.txt']);
      await a(['commit', '-q', '-m', 'artist note']);
      const refused = await a(['push'], true);
      assert.equal(refused.code, 10, refused.stderr);
      assert.match(refused.stderr, /non-fast-forward/);

      // Sparse clone: only audio/ is materialised, byte-identical.
      const sparse = path.join(work, 'sound');
      await cli(work, alice)(['clone', '-q', url, sparse, '--include', 'audio/**']);
      const files = await hashTree(sparse);
      const audio = new Map([...(await hashTree(clone))].filter(([p]) => p.startsWith('audio/')));
      assert.ok(audio.size > 0);
      assertTreesEqual(files, audio, 'clone --include audio/**');
    },
  );

  test(
    'encrypted repository: push and clone through the server, which never sees plaintext',
    { timeout: 300_000 },
    async () => {
      const srv = await server();
      const url = `${srv.url}/secret-project`;
      const pass = 'correct horse battery staple';
      const user = await userEnv(await srv.token('secret-project', 'write', 'ana'), {
        MEDIAGIT_PASSPHRASE: pass,
        MEDIAGIT_NEW_PASSPHRASE: pass,
      });
      const work = await tempDir('srv-enc');
      const repo = path.join(work, 'repo');
      await makeCorpus(repo, 1, 'tiny');
      const marker = 'PLAINTEXT-MARKER-9f8e7d6c5b4a';
      await writeFile(path.join(repo, 'notes.txt'), `${marker}\n`.repeat(200));
      const tree = await hashTree(repo);
      const r = cli(repo, user);
      await r(['init', '-q', '--encrypt']);
      await r(['add', '.']);
      await r(['commit', '-q', '-m', 'secret v1']);
      await r(['remote', 'add', 'origin', url]);
      await r(['push', '-q']);
      const clone = path.join(work, 'clone');
      await cli(work, user)(['clone', '-q', url, clone]);
      assertTreesEqual(await hashTree(clone), tree, 'encrypted clone through the server');
      for (const entry of await readdir(srv.dataDir!, { recursive: true, withFileTypes: true })) {
        if (!entry.isFile()) continue;
        const bytes = await readFile(path.join(entry.parentPath, entry.name));
        assert.ok(!bytes.includes(marker), `plaintext in ${entry.name}`);
      }
    },
  );

  test(
    'a rate-limited burst still completes: the client backs off on 429 and Retry-After',
    { timeout: 300_000 },
    async (t) => {
      const srv = await server({
        // Chunk transfers count only when they fail, so the limit is set where the rest of a
        // push runs into it: a first push is now two requests (negotiate, then one pack carrying
        // the descriptor, the structured objects and the ref update), so one at a time.
        config: '[server]\nrate_limit_rps = 1\nrate_limit_burst = 1\n',
        env: { MEDIAGIT_METRICS_ENABLED: 'true' },
      });
      const url = `${srv.url}/burst`;
      const user = await userEnv(await srv.token('burst', 'write', 'ci'));
      const work = await tempDir('srv-burst');
      const repo = path.join(work, 'repo');
      await writeRandomFiles(path.join(repo, 'data'), 'burst', 4, 512 * 1024);
      const tree = await hashTree(repo);
      const r = cli(repo, user);
      await r(['init', '-q', ...SMALL_CHUNK_ARGS]);
      await r(['add', '.']);
      await r(['commit', '-q', '-m', 'burst']);
      await r(['remote', 'add', 'origin', url]);
      const started = Date.now();
      const push = await r(['push', '--json']);
      const report = JSON.parse(push.stdout) as { requests: number };
      await cli(work, user)(['clone', '-q', url, path.join(work, 'clone')]);
      assertTreesEqual(
        await hashTree(path.join(work, 'clone')),
        tree,
        'clone after a throttled push',
      );
      assert.ok(srv.metricsUrl, 'metrics enabled');
      const metrics = await (await fetch(srv.metricsUrl)).text();
      const throttled = metrics
        .split('\n')
        .filter(
          (l) =>
            l.startsWith('mediagit_request_duration_seconds_count') && l.includes('status="429"'),
        )
        .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
      t.diagnostic(
        `push: ${report.requests} requests in ${Date.now() - started} ms; the server answered 429 ${throttled} times`,
      );
      assert.ok(throttled > 0, 'the burst was actually rate limited');
    },
  );

  test(
    'login stores a checked token (0600) that later commands use; bad tokens and loose file modes are refused',
    { timeout: 300_000 },
    async () => {
      const srv = await server();
      const url = `${srv.url}/team/assets`;
      const token = await srv.token('team/assets', 'write', 'ana');
      const xdg = await tempDir('xdg-login');
      const work = await tempDir('srv-login');
      const noToken = { XDG_CONFIG_HOME: xdg, MEDIAGIT_TOKEN: undefined };
      const bad = await runCli(['login', url], {
        cwd: work,
        env: { ...noToken, MEDIAGIT_TOKEN: 'not-a-valid-token-123' },
        allowFail: true,
      });
      assert.equal(bad.code, 13, bad.stderr);
      assert.ok(!(bad.stdout + bad.stderr).includes('not-a-valid-token-123'));
      await assert.rejects(stat(path.join(xdg, 'mediagit', 'credentials.toml')), {
        code: 'ENOENT',
      });

      const tokenFile = path.join(work, 'token.txt');
      await writeFile(tokenFile, `${token}\n`);
      const ok = await runCli(['login', url, '--token-file', tokenFile], {
        cwd: work,
        env: noToken,
      });
      assert.ok(!(ok.stdout + ok.stderr).includes(token));
      const file = path.join(xdg, 'mediagit', 'credentials.toml');
      assert.equal((await stat(file)).mode & 0o777, 0o600);

      const repo = path.join(work, 'repo');
      await writeRandomFiles(repo, 'login', 2, 10_000);
      const r = cli(repo, noToken);
      await r(['init', '-q']);
      await r(['add', '.']);
      await r(['commit', '-q', '-m', 'with stored token']);
      await r(['remote', 'add', 'origin', url]);
      const pushed = await r(['push']);
      assert.ok(!(pushed.stdout + pushed.stderr).includes(token));

      await chmod(file, 0o644);
      const loose = await r(['fetch'], true);
      assert.equal(loose.code, 11, loose.stderr);
      assert.match(loose.stderr, /chmod 600/);
      assert.ok(!loose.stderr.includes(token));

      // No token at all: 401, with the way out in the hint.
      const anonymous = await runCli(['clone', url, path.join(work, 'anon')], {
        cwd: work,
        env: { XDG_CONFIG_HOME: await tempDir('xdg-empty'), MEDIAGIT_TOKEN: undefined },
        allowFail: true,
      });
      assert.equal(anonymous.code, 13, anonymous.stderr);
      assert.match(anonymous.stderr, /mediagit login/);
    },
  );

  test(
    'locks: B cannot push a change to the file A locked (the refusal names A); after A unlocks it goes through',
    { timeout: 300_000 },
    async () => {
      const srv = await server();
      const url = `${srv.url}/locks-demo`;
      const alice = await userEnv(await srv.token('locks-demo', 'write', 'alice'));
      const bob = await userEnv(await srv.token('locks-demo', 'write', 'bob'));
      const work = await tempDir('srv-locks');
      const aDir = path.join(work, 'alice');
      const bDir = path.join(work, 'bob');
      await mkdir(path.join(aDir, 'scenes'), { recursive: true });
      await writeFile(path.join(aDir, 'scenes', 'level01.blend'), 'scene v1\n');
      await writeFile(path.join(aDir, 'notes.txt'), 'notes\n');
      const a = cli(aDir, alice);
      const b = cli(bDir, bob);
      await a(['init', '-q']);
      await a(['config', 'lock.lockable', '*.blend']);
      await a(['add', '.']);
      await a(['commit', '-q', '-m', 'v1']);
      await a(['remote', 'add', 'origin', url]);
      await a(['push', '-q']);
      await cli(work, bob)(['clone', '-q', url, bDir]);
      await b(['config', 'lock.lockable', '*.blend']);

      const scene = 'scenes/level01.blend';
      const mode = async (dir: string, file: string): Promise<number> =>
        (await stat(path.join(dir, file))).mode & 0o777;
      // Alice locks and pushes her change (her own lock does not stop her).
      assert.match((await a(['lock', scene])).stdout, /Locked scenes\/level01\.blend/);
      assert.ok((await mode(aDir, scene)) & 0o200, 'locked file is writable for its holder');
      await writeFile(path.join(aDir, scene), 'scene v2 by alice\n');
      await a(['commit', '-q', '-a', '-m', 'alice edits the scene']);
      await a(['push', '-q']);

      // Bob pulls: checkout writes the lockable file read-only, other files stay writable.
      await b(['pull', '-q']);
      assert.equal(
        (await mode(bDir, scene)) & 0o222,
        0,
        'lockable file is read-only after checkout',
      );
      assert.ok((await mode(bDir, 'notes.txt')) & 0o200);
      const listed = JSON.parse((await b(['locks', '--json'])).stdout) as {
        path: string;
        owner: string;
      }[];
      assert.deepEqual(
        listed.map((l) => [l.path, l.owner]),
        [[scene, 'alice']],
      );
      const bobLocks = await b(['lock', scene], true);
      assert.equal(bobLocks.code, 9, bobLocks.stderr);
      assert.match(bobLocks.stderr, /alice/);

      // Bob edits anyway and commits past the lock check; his push is refused before anything is uploaded, naming alice.
      await chmod(path.join(bDir, scene), 0o644);
      await writeFile(path.join(bDir, scene), 'scene v3 by bob\n');
      await b(['commit', '-q', '-a', '--no-verify-locks', '-m', 'bob edits the scene']);
      const refused = await b(['push'], true);
      assert.equal(refused.code, 9, refused.stderr);
      assert.match(refused.stderr, /level01\.blend/);
      assert.match(refused.stderr, /alice/);
      const unlockOther = await b(['unlock', scene], true);
      assert.equal(unlockOther.code, 9, unlockOther.stderr);
      assert.match(unlockOther.stderr, /alice/);

      // Alice unlocks: her copy goes read-only again, and Bob's same push now succeeds.
      await a(['unlock', scene]);
      assert.equal((await mode(aDir, scene)) & 0o222, 0, 'read-only again after unlock');
      await b(['push', '-q']);
      await a(['pull', '-q']);
      assert.equal(await readFile(path.join(aDir, scene), 'utf8'), 'scene v3 by bob\n');
      assert.equal((await b(['locks'])).stdout, '');
    },
  );
});

interface CloudBackend {
  name: string;
  skip: string | false;
  storage(): Promise<{ url: string; options: Record<string, string | number | boolean> }>;
}

const clouds: CloudBackend[] = [
  {
    name: 'Azure Blob (Azurite)',
    skip: skipUnlessServer('azure'),
    async storage() {
      const container = `mg-srv-${RUN}`.toLowerCase();
      const { BlobServiceClient, StorageSharedKeyCredential } = await import('@azure/storage-blob');
      const account = env['MEDIAGIT_TEST_AZURE_ACCOUNT'] ?? 'devstoreaccount1';
      const key = env['MEDIAGIT_TEST_AZURE_KEY'] ?? '';
      await new BlobServiceClient(
        env['MEDIAGIT_TEST_AZURE_ENDPOINT']!,
        new StorageSharedKeyCredential(account, key),
      ).createContainer(container);
      return {
        url: `azure://${container}/server`,
        options: {
          endpoint: env['MEDIAGIT_TEST_AZURE_ENDPOINT']!,
          account_name: account,
          account_key: key,
        },
      };
    },
  },
  {
    name: 'S3 (radosgw)',
    skip: skipUnlessServer('s3'),
    async storage() {
      const bucket = `mg-srv-${RUN}`.toLowerCase();
      const options = await createS3TestBucket(bucket);
      return { url: `s3://${bucket}/server`, options };
    },
  },
];

for (const cloud of clouds) {
  describe(
    `http remotes through mediagit server storing into ${cloud.name}`,
    { skip: cloud.skip },
    () => {
      test(
        'push and clone (plain and encrypted) byte-identical',
        { timeout: 300_000 },
        async () => {
          const srv = await server({ storage: await cloud.storage() });
          const pass = 'cloud passphrase';
          const work = await tempDir('srv-cloud');
          for (const encrypted of [false, true]) {
            const name = encrypted ? 'cloud-enc' : 'cloud-plain';
            const user = await userEnv(await srv.token(name, 'write', 'ci'), {
              MEDIAGIT_PASSPHRASE: pass,
              MEDIAGIT_NEW_PASSPHRASE: pass,
            });
            const repo = path.join(work, `${name}-src`);
            await makeCorpus(repo, 1, 'tiny');
            const tree = await hashTree(repo);
            const r = cli(repo, user);
            await r(['init', '-q', ...(encrypted ? ['--encrypt'] : [])]);
            await r(['add', '.']);
            await r(['commit', '-q', '-m', 'v1']);
            await r(['remote', 'add', 'origin', `${srv.url}/${name}`]);
            await r(['push', '-q']);
            const clone = path.join(work, `${name}-clone`);
            await cli(work, user)(['clone', '-q', `${srv.url}/${name}`, clone]);
            assertTreesEqual(await hashTree(clone), tree, `${cloud.name}: ${name}`);
          }
        },
      );
    },
  );
}
