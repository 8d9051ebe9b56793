/**
 * `gc --remote` with a retention policy, through the CLI, on every backend a test server exists
 * for and through `mediagit server` (docs/remote-gc.md): 5 versions of renders/shot.exr pushed on
 * two branches; `--keep 'renders/**=2' --grace 0 --dry-run` lists exactly the chunks unique to
 * versions 1-3; the real run frees exactly those bytes, measured on the remote; `fsck --remote
 * --full` is clean; a fresh clone of each branch tip is byte-identical; `show` of an expired
 * version exits 18 with the documented message. Backends whose server is not running are skipped.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { decodeManifest, type Oid } from '../../src/objects/index.js';
import { Repository } from '../../src/repo/index.js';
import { HttpStore } from '../../src/store/http/index.js';
import { openStore, type Store, type StoreOptions } from '../../src/store/index.js';
import { clone, type RemoteGcReport } from '../../src/sync/index.js';
import { CLI_PATH, cliEnv, runCli, tempDir } from '../support/cli.js';
import { raceRounds } from '../support/gc-race.js';
import { startTestServer, http, type TestServer } from '../support/server-harness.js';
import { SMALL_CHUNK_ARGS } from '../support/sync-fixtures.js';
import { createS3TestBucket, s3TestOptions } from '../support/s3-bucket.js';
import { skipUnlessServer } from '../support/test-servers.js';

const RUN = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const env = process.env;

interface Remote {
  url: string;
  options: StoreOptions;
  /** Environment for the CLI (a server's token). */
  env: Record<string, string | undefined>;
  /** The remote's store as the test measures it. */
  open(): Promise<Store>;
  /** A multi remote's two sides, each measured on its own. */
  sides?: () => Promise<Store[]>;
}

interface Backend {
  name: string;
  skip: string | false;
  prepare(id: string): Promise<Remote>;
}

/** A bucket-like remote: the test opens the same URL the CLI uses. */
function direct(url: string, options: StoreOptions): Remote {
  return {
    url,
    options,
    env: {},
    open: async () => (await openStore(url, options)).store,
  };
}

let server: TestServer | null = null;
after(() => server?.close());
const backends: Backend[] = [
  {
    name: 'local folder',
    skip: false,
    async prepare(id) {
      return direct(path.join(await tempDir(`gc-${id}`), 'remote.mediagit'), {});
    },
  },
  {
    name: 'S3 (radosgw)',
    skip: skipUnlessServer('s3'),
    async prepare(id) {
      const bucket = `mg-gc-${RUN}-${id}`.toLowerCase();
      await createS3TestBucket(bucket);
      return direct(`s3://${bucket}/project`, s3TestOptions());
    },
  },
  {
    name: 'Azure Blob (Azurite)',
    skip: skipUnlessServer('azure'),
    async prepare(id) {
      const container = `mg-gc-${RUN}-${id}`.toLowerCase();
      const { BlobServiceClient, StorageSharedKeyCredential } = await import('@azure/storage-blob');
      const account = env['MEDIAGIT_TEST_AZURE_ACCOUNT'] ?? 'devstoreaccount1';
      const key = env['MEDIAGIT_TEST_AZURE_KEY'] ?? '';
      await new BlobServiceClient(
        env['MEDIAGIT_TEST_AZURE_ENDPOINT']!,
        new StorageSharedKeyCredential(account, key),
      ).createContainer(container);
      return direct(`azure://${container}/project`, {
        endpoint: env['MEDIAGIT_TEST_AZURE_ENDPOINT']!,
        account_name: account,
        account_key: key,
      });
    },
  },
  {
    name: 'GCS (test server)',
    skip: skipUnlessServer('gcs'),
    async prepare(id) {
      const bucket = `mg-gc-${RUN}-${id}`.toLowerCase();
      const { Storage } = await import('@google-cloud/storage');
      await new Storage({
        apiEndpoint: env['MEDIAGIT_TEST_GCS_ENDPOINT']!,
        projectId: 'test',
      }).createBucket(bucket);
      return direct(`gs://${bucket}/project`, {
        endpoint: env['MEDIAGIT_TEST_GCS_ENDPOINT']!,
        project: 'test',
      });
    },
  },
  {
    name: 'multi (local + S3)',
    skip: skipUnlessServer('s3'),
    async prepare(id) {
      const bucket = `mg-gc-${RUN}-${id}`.toLowerCase();
      await createS3TestBucket(bucket);
      const primary = path.join(await tempDir(`gc-multi-${id}`), 'primary.mediagit');
      return {
        ...direct('multi:', { ...s3TestOptions(), primary, secondary: `s3://${bucket}/mirror` }),
        sides: async () => [
          (await openStore(primary, {})).store,
          (await openStore(`s3://${bucket}/mirror`, s3TestOptions())).store,
        ],
      };
    },
  },
  {
    name: 'mediagit server (admin token)',
    skip: false,
    async prepare(id) {
      server ??= await startTestServer();
      const repo = `gc-${id}`;
      const token = await server.token(repo, 'admin', 'admin');
      const origin = server.url;
      return {
        url: `${origin}/${repo}`,
        options: {},
        env: { MEDIAGIT_TOKEN: token, XDG_CONFIG_HOME: await tempDir('xdg') },
        open: () => Promise.resolve(new HttpStore({ origin, repo, token })),
      };
    },
  },
];

const optionArgs = (options: StoreOptions): string[] =>
  Object.entries(options).flatMap(([k, v]) => ['-o', `${k}=${String(v)}`]);

async function remoteKeys(store: Store): Promise<Map<string, number>> {
  const keys = new Map<string, number>();
  for (const prefix of ['objects/', 'chunks/'])
    for await (const { key, size } of store.list(prefix)) keys.set(key, size);
  return keys;
}

const total = (keys: Map<string, number>): number => [...keys.values()].reduce((a, b) => a + b, 0);

/** The chunk keys of `path` in each commit of main's first-parent history, oldest first. */
async function versionChunks(dir: string, file: string): Promise<Set<string>[]> {
  const repo = await Repository.open(dir);
  const out: Set<string>[] = [];
  let commit: Oid | null = await repo.readRef('refs/heads/main');
  while (commit !== null) {
    const c = await repo.odb.readCommit(commit);
    let tree = c.tree;
    const parts = file.split('/');
    let manifest: Oid | null = null;
    for (const [i, name] of parts.entries()) {
      const entry = (await repo.odb.readTree(tree)).find((e) => e.name === name)!;
      if (i === parts.length - 1) manifest = entry.oid;
      else tree = entry.oid;
    }
    const m = decodeManifest(await repo.odb.read('manifest', manifest!));
    out.unshift(new Set(m.chunks.map((ch) => `chunks/${ch.oid}`)));
    commit = c.parents[0] ?? null;
  }
  return out;
}

for (const backend of backends) {
  describe(`gc --remote over ${backend.name}`, { skip: backend.skip }, () => {
    test(
      "--keep 'renders/**=2' --grace 0: dry run lists the chunks unique to v1-3, the real run frees exactly their bytes, clones stay whole, v1 is expired (exit 18)",
      { timeout: 600_000 },
      async (t) => {
        const remote = await backend.prepare('flow');
        const cli = (args: string[], cwd: string, allowFail = false) =>
          runCli(args, { cwd, env: remote.env, allowFail });
        const work = await tempDir('gc-flow');
        const repo = path.join(work, 'artist');
        await mkdir(path.join(repo, 'renders'), { recursive: true });
        await cli(['init', '-q', ...SMALL_CHUNK_ARGS], repo);
        // Every version shares a prefix (chunks reused by all) and adds its own part.
        const shared = randomBytes(200_000);
        const versions: Buffer[] = [];
        for (let v = 1; v <= 5; v++) {
          versions.push(Buffer.concat([shared, randomBytes(150_000)]));
          await writeFile(path.join(repo, 'renders', 'shot.exr'), versions[v - 1]!);
          await writeFile(path.join(repo, 'notes.txt'), `version ${v}\n`);
          await cli(['add', '.'], repo);
          await cli(['commit', '-q', '-m', `v${v}`], repo);
        }
        await cli(['branch', 'side'], repo);
        await cli(['switch', '-q', 'side'], repo);
        const sideFile = randomBytes(50_000);
        await writeFile(path.join(repo, 'side.bin'), sideFile);
        await cli(['add', 'side.bin'], repo);
        await cli(['commit', '-q', '-m', 'side'], repo);
        await cli(['remote', 'add', 'origin', remote.url, ...optionArgs(remote.options)], repo);
        await cli(['push', '-q', '--create', 'origin', 'main'], repo);
        await cli(['push', '-q', 'origin', 'side'], repo);

        const chunks = await versionChunks(repo, 'renders/shot.exr');
        assert.equal(chunks.length, 5);
        const kept = new Set([...chunks[3]!, ...chunks[4]!]);
        const expected = new Set<string>();
        for (const set of chunks.slice(0, 3))
          for (const k of set) if (!kept.has(k)) expected.add(k);
        assert.ok(expected.size >= 3);

        const store = await remote.open();
        t.after(() => store.close());
        const before = await remoteKeys(store);
        const sides = (await remote.sides?.()) ?? [];
        t.after(() => Promise.all(sides.map((side) => side.close())));
        const sidesBefore = await Promise.all(sides.map(remoteKeys));
        const expectedBytes = [...expected].reduce((n, k) => n + before.get(k)!, 0);
        const gc = ['gc', '--remote', 'origin', '--keep', 'renders/**=2', '--grace', '0'];

        const dry = JSON.parse(
          (await cli([...gc, '--dry-run', '--json'], repo)).stdout,
        ) as RemoteGcReport;
        assert.deepEqual(new Set(dry.keys.map((k) => k.key)), expected);
        assert.ok(dry.keys.every((k) => k.reason === 'expired'));
        assert.equal(dry.deleted.expired.bytes, expectedBytes);
        assert.equal(dry.deleted.unreachable.count, 0);
        assert.deepEqual(await remoteKeys(store), before, 'a dry run deletes nothing');

        const real = JSON.parse((await cli([...gc, '--json'], repo)).stdout) as RemoteGcReport;
        const after = await remoteKeys(store);
        const measured = total(before) - total(after);
        t.diagnostic(
          `${backend.name}: listed ${dry.keys.length} chunks / ${dry.deleted.expired.bytes} bytes, ` +
            `freed ${real.freedBytes} bytes, measured on the remote ${measured} bytes`,
        );
        assert.equal(real.freedBytes, expectedBytes);
        assert.equal(measured, expectedBytes, 'measured on the remote');
        for (const k of expected) assert.ok(!after.has(k), `${k} deleted`);
        for (const [i, side] of sides.entries()) {
          const freed = total(sidesBefore[i]!) - total(await remoteKeys(side));
          t.diagnostic(`${backend.name}: side ${i + 1} freed ${freed} bytes`);
          assert.equal(freed, expectedBytes, `side ${i + 1} of the multi remote`);
        }

        assert.equal((await cli(['fsck', '--remote', 'origin', '--full'], repo, true)).code, 0);

        for (const [branch, files] of [
          ['main', { 'renders/shot.exr': versions[4]!, 'notes.txt': Buffer.from('version 5\n') }],
          [
            'side',
            {
              'renders/shot.exr': versions[4]!,
              'notes.txt': Buffer.from('version 5\n'),
              'side.bin': sideFile,
            },
          ],
        ] as const) {
          const dir = path.join(work, `clone-${branch}`);
          await cli(
            ['clone', '-q', '-b', branch, remote.url, dir, ...optionArgs(remote.options)],
            work,
          );
          for (const [file, bytes] of Object.entries(files))
            assert.deepEqual(await readFile(path.join(dir, file)), bytes, `${branch}: ${file}`);
        }

        const clone = path.join(work, 'clone-main');
        const shown = await cli(['show', 'HEAD~4:renders/shot.exr'], clone, true);
        assert.equal(shown.code, 18, shown.stderr);
        assert.match(
          shown.stderr,
          /renders\/shot\.exr expired by retention policy on \d{4}-\d{2}-\d{2}/,
        );
        assert.doesNotMatch(shown.stderr, /corrupt/i);
        assert.equal((await cli(['show', 'HEAD~1:notes.txt'], clone)).stdout, 'version 4\n');
      },
    );
  });
}

describe('gc race on S3 (radosgw)', { skip: skipUnlessServer('s3') }, () => {
  const bucketRemote = async (id: string): Promise<{ url: string; store: Store }> => {
    const bucket = `mg-gc-${RUN}-${id}`.toLowerCase();
    await createS3TestBucket(bucket);
    const url = `s3://${bucket}/project`;
    return { url, store: (await openStore(url, s3TestOptions())).store };
  };

  test(
    '4 clients push reused chunks while sweeps with 2 s of grace delete them, 10 rounds: every acknowledged push clones byte-identical',
    { timeout: 600_000 },
    async (t) => {
      const { url, store } = await bucketRemote('race');
      t.after(() => store.close());
      const root = await tempDir('gc-race-s3');
      const outcome = await raceRounds({
        remote: store,
        root,
        rounds: 10,
        sweepGuard: true,
        graceMs: 2000,
      });
      assert.equal(outcome.acknowledged, 40);
      assert.equal(outcome.broken, 0);
      for (const [i, tip] of outcome.tips.entries()) {
        const dir = path.join(root, `clone-${i}`);
        const branch = tip.ref.slice('refs/heads/'.length);
        await clone({ url, directory: dir, branch, options: s3TestOptions() });
        assert.deepEqual(await readFile(path.join(dir, tip.file)), tip.data, branch);
      }
    },
  );

  test(
    'SIGKILL of the sweeper while it deletes from S3, 4 times: nothing reachable is lost, a re-run converges',
    { timeout: 600_000 },
    async (t) => {
      const { url, store } = await bucketRemote('sigkill');
      t.after(() => store.close());
      const options = s3TestOptions();
      const work = await tempDir('gc-sigkill-s3');
      const repo = path.join(work, 'artist');
      await mkdir(path.join(repo, 'renders'), { recursive: true });
      await runCli(['init', '-q', '--chunk-min', '2K', '--chunk-avg', '8K', '--chunk-max', '32K'], {
        cwd: repo,
      });
      const shared = randomBytes(200_000);
      const versions: Buffer[] = [];
      for (let v = 1; v <= 5; v++) {
        versions.push(Buffer.concat([shared, randomBytes(800_000)]));
        await writeFile(path.join(repo, 'renders', 'shot.exr'), versions[v - 1]!);
        await runCli(['add', '.'], { cwd: repo });
        await runCli(['commit', '-q', '-m', `v${v}`], { cwd: repo });
      }
      await runCli(['remote', 'add', 'origin', url, ...optionArgs(options)], { cwd: repo });
      await runCli(['push', '-q'], { cwd: repo });
      const chunks = await versionChunks(repo, 'renders/shot.exr');
      const kept = new Set([...chunks[3]!, ...chunks[4]!]);
      const expected = new Set<string>();
      for (const set of chunks.slice(0, 3)) for (const k of set) if (!kept.has(k)) expected.add(k);
      const before = await remoteKeys(store);
      const gc = ['gc', '--remote', 'origin', '--keep', 'renders/**=2', '--grace', '0'];
      const outcomes: string[] = [];
      for (let round = 0; round < 4; round++) {
        const left = [...expected].filter((k) => before.has(k));
        const child = spawn(process.execPath, [CLI_PATH, ...gc, '--lease', '2s'], {
          cwd: repo,
          env: cliEnv(),
          stdio: 'ignore',
        });
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        // Deleting once any of a sample of the expired chunks is gone; then a random moment later.
        const sample = left.slice(0, 16);
        const present = async (): Promise<number> =>
          (await store.has(sample)).filter(Boolean).length;
        const start = await present();
        while (child.exitCode === null && (await present()) === start)
          await new Promise((resolve) => setTimeout(resolve, 5));
        await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 400)));
        const killed = child.exitCode === null;
        child.kill('SIGKILL');
        await exited;
        const now = await remoteKeys(store);
        const gone = [...expected].filter((k) => !now.has(k)).length;
        outcomes.push(`${killed ? 'killed' : 'finished'} with ${gone}/${expected.size} deleted`);
        for (const k of before.keys()) if (!expected.has(k)) assert.ok(now.has(k), `${k} kept`);
        const fsck = await runCli(['fsck', '--remote', 'origin', '--full'], {
          cwd: repo,
          allowFail: true,
        });
        assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
        // A killed sweeper keeps its lease (2 s) until it runs out, also when it had deleted
        // everything before it died: the next gc, and the final one below, wait that out.
        if (killed) await new Promise((resolve) => setTimeout(resolve, 2100));
        if (gone === expected.size) break;
      }
      t.diagnostic(`S3 sweeper kills: ${outcomes.join('; ')}`);
      await runCli([...gc, '--lease', '2s'], { cwd: repo });
      const after = await remoteKeys(store);
      assert.deepEqual(
        new Set(after.keys()),
        new Set([...before.keys()].filter((k) => !expected.has(k))),
      );
      const dir = path.join(work, 'clone');
      await runCli(['clone', '-q', url, dir, ...optionArgs(options)], { cwd: work });
      assert.deepEqual(await readFile(path.join(dir, 'renders', 'shot.exr')), versions[4]);
    },
  );

  test('the same race with the sweep guard switched off loses chunks (the test above has teeth)', async (t) => {
    const { store } = await bucketRemote('race-off');
    t.after(() => store.close());
    const outcome = await raceRounds({
      remote: store,
      root: await tempDir('gc-race-s3-off'),
      rounds: 1,
      sweepGuard: false,
      graceMs: 2000,
    });
    assert.ok(outcome.broken > 0);
  });
});

describe('gc --remote through mediagit server: roles and the wire', () => {
  test('a write token gets 403 from the sweep; a read of an expired chunk is HTTP 410', async () => {
    server ??= await startTestServer();
    const repo = 'gc-roles';
    const admin = await server.token(repo, 'admin', 'admin');
    const writer = await server.token(repo, 'write', 'ana');
    const work = await tempDir('gc-roles');
    const dir = path.join(work, 'artist');
    const userEnv = async (token: string) => ({
      MEDIAGIT_TOKEN: token,
      XDG_CONFIG_HOME: await tempDir('xdg'),
    });
    const asWriter = await userEnv(writer);
    const asAdmin = await userEnv(admin);
    await mkdir(dir);
    await runCli(['init', '-q', ...SMALL_CHUNK_ARGS], { cwd: dir });
    for (let v = 1; v <= 2; v++) {
      await writeFile(path.join(dir, 'a.bin'), randomBytes(100_000));
      await runCli(['add', '.'], { cwd: dir });
      await runCli(['commit', '-q', '-m', `v${v}`], { cwd: dir });
    }
    await runCli(['remote', 'add', 'origin', `${server.url}/${repo}`], { cwd: dir });
    await runCli(['push', '-q'], { cwd: dir, env: asWriter });
    const old = (await versionChunks(dir, 'a.bin'))[0]!;

    const gc = ['gc', '--remote', 'origin', '--keep', '**=1', '--grace', '0'];
    const refused = await runCli(gc, { cwd: dir, env: asWriter, allowFail: true });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /403/);

    await runCli(gc, { cwd: dir, env: asAdmin });
    const [first] = old;
    const answer = await http(`${server.url}/${repo}/${first}`, { token: writer });
    assert.equal(answer.status, 410);
    assert.equal(answer.json?.['error'], 'expired');
    assert.match(
      String(answer.json?.['message']),
      /expired by retention policy on \d{4}-\d{2}-\d{2}/,
    );
    assert.match(String(answer.json?.['expired_at']), /^\d{4}-\d{2}-\d{2}T/);
  });
});
