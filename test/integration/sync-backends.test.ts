/**
 * The remotes scenarios against every backend a test server exists for (docs/testing.md):
 * push corpus v1, clone into an empty folder (byte-identical), push v2 (bytes sent ≈ stored
 * growth: only new chunks travel), and the four-client push race with exactly one winner per
 * round. Backends whose server is not running are skipped with a message.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NonFastForwardError } from '../../src/errors/index.js';
import type { Oid } from '../../src/objects/index.js';
import { Repository, silentProgress, walkHistory } from '../../src/repo/index.js';
import { openStore, type Store, type StoreOptions } from '../../src/store/index.js';
import { fetchObjects, push } from '../../src/sync/index.js';
import { runCli, tempDir } from '../support/cli.js';
import { commitFiles } from '../support/sync-fixtures.js';
import { makeCorpus } from '../support/corpus.js';
import { assertTreesEqual, hashTree } from '../support/tree.js';
import { createS3TestBucket, s3TestOptions } from '../support/s3-bucket.js';
import { skipUnlessServer } from '../support/test-servers.js';

const RUN = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const env = process.env;

interface Backend {
  name: string;
  skip: string | false;
  /** Creates what the URL needs (bucket, container) and returns URL + options. */
  prepare(id: string): Promise<{ url: string; options: StoreOptions }>;
}

const backends: Backend[] = [
  {
    name: 'local folder',
    skip: false,
    async prepare(id) {
      return { url: path.join(await tempDir(`remote-${id}`), 'repo.mediagit'), options: {} };
    },
  },
  {
    name: 'S3 (radosgw)',
    skip: skipUnlessServer('s3'),
    async prepare(id) {
      const bucket = `mg-sync-${RUN}-${id}`.toLowerCase();
      await createS3TestBucket(bucket);
      return { url: `s3://${bucket}/team/project`, options: s3TestOptions() };
    },
  },
  {
    name: 'Azure Blob (Azurite)',
    skip: skipUnlessServer('azure'),
    async prepare(id) {
      const container = `mg-sync-${RUN}-${id}`.toLowerCase();
      const { BlobServiceClient, StorageSharedKeyCredential } = await import('@azure/storage-blob');
      const account = env['MEDIAGIT_TEST_AZURE_ACCOUNT'] ?? 'devstoreaccount1';
      const key = env['MEDIAGIT_TEST_AZURE_KEY'] ?? '';
      await new BlobServiceClient(
        env['MEDIAGIT_TEST_AZURE_ENDPOINT']!,
        new StorageSharedKeyCredential(account, key),
      ).createContainer(container);
      return {
        url: `azure://${container}/project`,
        options: {
          endpoint: env['MEDIAGIT_TEST_AZURE_ENDPOINT']!,
          account_name: account,
          account_key: key,
        },
      };
    },
  },
  {
    name: 'GCS (test server)',
    skip: skipUnlessServer('gcs'),
    async prepare(id) {
      const bucket = `mg-sync-${RUN}-${id}`.toLowerCase();
      const { Storage } = await import('@google-cloud/storage');
      await new Storage({
        apiEndpoint: env['MEDIAGIT_TEST_GCS_ENDPOINT']!,
        projectId: 'test',
      }).createBucket(bucket);
      return {
        url: `gs://${bucket}/project`,
        options: { endpoint: env['MEDIAGIT_TEST_GCS_ENDPOINT']!, project: 'test' },
      };
    },
  },
  {
    name: 'multi (local + S3)',
    skip: skipUnlessServer('s3'),
    async prepare(id) {
      const bucket = `mg-sync-${RUN}-${id}`.toLowerCase();
      await createS3TestBucket(bucket);
      const local = path.join(await tempDir(`multi-${id}`), 'primary.mediagit');
      return {
        url: 'multi:',
        options: { ...s3TestOptions(), primary: local, secondary: `s3://${bucket}/mirror` },
      };
    },
  },
];

const optionArgs = (options: StoreOptions): string[] =>
  Object.entries(options).flatMap(([k, v]) => ['-o', `${k}=${String(v)}`]);

async function storedBytes(store: Store): Promise<number> {
  let total = 0;
  for await (const entry of store.list('')) total += entry.size;
  return total;
}

async function listAll(store: Store): Promise<number> {
  let total = 0;
  for (const prefix of ['chunks/', 'objects/', 'keys/', 'meta/'])
    for await (const e of store.list(prefix)) total += e.size;
  return total;
}

/** A commit made directly in the object database: one small file unique to this client and round. */
function commitOn(repo: Repository, parent: Oid | null, label: string): Promise<Oid> {
  return commitFiles(
    repo,
    parent ? [parent] : [],
    new Map([[`${label}.txt`, Buffer.from(`${label}\n${randomBytes(8).toString('hex')}\n`)]]),
    label,
  );
}

for (const backend of backends) {
  describe(`remotes over ${backend.name}`, { skip: backend.skip }, () => {
    test(
      'push v1, clone byte-identical, push v2 sends only new chunks',
      { timeout: 300_000 },
      async (t) => {
        const { url, options } = await backend.prepare('corpus');
        const work = await tempDir('sync-corpus');
        const repo = path.join(work, 'artist');
        await makeCorpus(repo, 1, 'small');
        const v1 = await hashTree(repo);
        await runCli(['init', '-q'], { cwd: repo });
        await runCli(['add', '.'], { cwd: repo });
        await runCli(['commit', '-q', '-m', 'v1'], { cwd: repo });
        await runCli(['remote', 'add', 'origin', url, ...optionArgs(options)], { cwd: repo });
        await runCli(['push', '-q', '--create'], { cwd: repo });

        const clone = path.join(work, 'build');
        await runCli(['clone', '-q', url, clone, ...optionArgs(options)], { cwd: work });
        assertTreesEqual(await hashTree(clone), v1, `${backend.name}: clone of v1`);

        const remote = (await openStore(url, options, work)).store;
        const before = await listAll(remote);
        await makeCorpus(repo, 2, 'small');
        const v2 = await hashTree(repo);
        await runCli(['add', '.'], { cwd: repo });
        await runCli(['commit', '-q', '-m', 'v2'], { cwd: repo });
        const report = JSON.parse((await runCli(['push', '--json'], { cwd: repo })).stdout) as {
          bytesSent: number;
        };
        const growth = (await listAll(remote)) - before;
        t.diagnostic(`${backend.name}: v2 bytes sent ${report.bytesSent}, stored growth ${growth}`);
        assert.ok(growth > 0);
        const sentForObjects = report.bytesSent;
        assert.ok(
          Math.abs(sentForObjects - growth) <= growth * 0.1,
          `bytes sent ${sentForObjects} vs stored growth ${growth}`,
        );

        await runCli(['pull', '-q'], { cwd: clone });
        assertTreesEqual(await hashTree(clone), v2, `${backend.name}: clone after pull of v2`);
        void storedBytes;
      },
    );

    test(
      '4 clients race to push one branch, 20 rounds: one winner per round, nothing lost',
      { timeout: 300_000 },
      async () => {
        const { url, options } = await backend.prepare('race');
        const clients: { repo: Repository; store: Store; tip: Oid | null }[] = [];
        for (let i = 0; i < 4; i++) {
          const dir = await tempDir(`race-client-${i}`);
          await Repository.init(dir);
          clients.push({
            repo: await Repository.open(dir),
            store: (await openStore(url, options, dir)).store,
            tip: null,
          });
        }
        const ref = 'refs/heads/main';
        const acknowledged: Oid[] = [];
        const first = clients[0]!;
        first.tip = await commitOn(first.repo, null, 'base');
        await push(first.repo, first.store, { oid: first.tip, ref, force: false }, silentProgress);
        acknowledged.push(first.tip);
        for (let round = 0; round < 20; round++) {
          // Everyone starts the round from the remote tip, then races.
          await Promise.all(
            clients.map(async (c, i) => {
              const remoteTip = (await c.store.readRef(ref))!.oid;
              await fetchObjects(c.repo, c.store, [remoteTip], { progress: silentProgress });
              c.tip = await commitOn(c.repo, remoteTip, `client${i}-round${round}`);
            }),
          );
          const results = await Promise.allSettled(
            clients.map((c) =>
              push(c.repo, c.store, { oid: c.tip!, ref, force: false }, silentProgress),
            ),
          );
          const winners = results.filter((r) => r.status === 'fulfilled');
          assert.equal(winners.length, 1, `round ${round}: ${winners.length} winners`);
          for (const r of results)
            if (r.status === 'rejected')
              assert.ok(
                r.reason instanceof NonFastForwardError,
                `round ${round}: ${String(r.reason)}`,
              );
          acknowledged.push((winners[0] as PromiseFulfilledResult<{ new: Oid }>).value.new);
        }
        const checker = clients[1]!;
        const finalTip = (await checker.store.readRef(ref))!.oid;
        await fetchObjects(checker.repo, checker.store, [finalTip], { progress: silentProgress });
        const history = new Set<Oid>();
        for await (const entry of walkHistory(checker.repo, [finalTip])) history.add(entry.oid);
        for (const oid of acknowledged)
          assert.ok(
            history.has(oid),
            `acknowledged commit ${oid} is missing from the final history`,
          );
      },
    );
  });
}
