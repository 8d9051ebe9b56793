/**
 * Two `mediagit server` replicas over one shared store (a local folder; and Azurite when its test
 * server runs): four clients push commits to one branch through alternating replicas for 20
 * rounds. Exactly one push wins each round, no acknowledged commit is lost, and a clone through
 * either replica is identical.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { describe, test } from 'node:test';
import { NonFastForwardError } from '../../src/errors/index.js';
import type { Oid } from '../../src/objects/index.js';
import { Repository, silentProgress, walkHistory } from '../../src/repo/index.js';
import { HttpStore } from '../../src/store/http/index.js';
import { RetryingStore, type Store } from '../../src/store/index.js';
import { fetchObjects, push } from '../../src/sync/index.js';
import { runCli, tempDir } from '../support/cli.js';
import { commitFiles } from '../support/sync-fixtures.js';
import {
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from '../support/server-harness.js';
import { assertTreesEqual, hashTree } from '../support/tree.js';
import { skipUnlessServer } from '../support/test-servers.js';

const REPO = 'shared-project';

/** A commit made directly in the object database: one small file unique to this client and round. */
function commitOn(repo: Repository, parent: Oid | null, label: string): Promise<Oid> {
  return commitFiles(
    repo,
    parent ? [parent] : [],
    new Map([[`${label}.txt`, Buffer.from(`${label}\n${randomBytes(8).toString('hex')}\n`)]]),
    label,
  );
}

async function twoReplicas(
  storage: (first: TestServer | null) => Promise<TestServerOptions['storage']>,
): Promise<[TestServer, TestServer]> {
  const a = await startTestServer({ storage: await storage(null) });
  const b = await startTestServer({
    storage: await storage(a),
    env: { MEDIAGIT_JWT_SECRET: a.secret },
  });
  return [a, b];
}

const variants: {
  name: string;
  skip: string | false;
  storage: (first: TestServer | null) => Promise<TestServerOptions['storage']>;
}[] = [
  {
    name: 'a shared local folder',
    skip: false,
    storage: async (first) => (first ? { url: first.dataDir!, options: {} } : 'local'),
  },
  {
    name: 'Azurite',
    skip: skipUnlessServer('azure'),
    storage: (() => {
      let container: string | undefined;
      return async () => {
        const endpoint = process.env['MEDIAGIT_TEST_AZURE_ENDPOINT']!;
        const account = process.env['MEDIAGIT_TEST_AZURE_ACCOUNT'] ?? 'devstoreaccount1';
        const key = process.env['MEDIAGIT_TEST_AZURE_KEY'] ?? '';
        if (!container) {
          container = `mg-replicas-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
          const { BlobServiceClient, StorageSharedKeyCredential } =
            await import('@azure/storage-blob');
          await new BlobServiceClient(
            endpoint,
            new StorageSharedKeyCredential(account, key),
          ).createContainer(container);
        }
        return {
          url: `azure://${container}/servers`,
          options: { endpoint, account_name: account, account_key: key },
        };
      };
    })(),
  },
];

for (const variant of variants) {
  describe(`two server replicas over ${variant.name}`, { skip: variant.skip }, () => {
    test(
      '4 clients × 20 rounds through alternating replicas: one winner per round, nothing lost; clones through either replica identical',
      { timeout: 300_000 },
      async () => {
        const servers = await twoReplicas(variant.storage);
        try {
          const token = await servers[0].token(REPO, 'write');
          const stores: Store[] = [];
          const clients: { repo: Repository; tip: Oid | null }[] = [];
          for (let i = 0; i < 4; i++) {
            const dir = await tempDir(`replica-client-${i}`);
            await Repository.init(dir);
            clients.push({ repo: await Repository.open(dir), tip: null });
          }
          // Client i talks to replica (i + round) % 2: every client alternates, and each round both replicas serve pushes.
          const storeFor = (client: number, round: number): Store => {
            const key = (client + round) % 2;
            stores[key] ??= new RetryingStore(
              new HttpStore({ origin: servers[key]!.url, repo: REPO, token }),
              { maxRetries: 5, baseDelayMs: 5 },
            );
            return stores[key]!;
          };
          const ref = 'refs/heads/main';
          const acknowledged: Oid[] = [];
          const first = clients[0]!;
          first.tip = await commitOn(first.repo, null, 'base');
          await push(
            first.repo,
            storeFor(0, 0),
            { oid: first.tip, ref, force: false },
            silentProgress,
          );
          acknowledged.push(first.tip);
          for (let round = 0; round < 20; round++) {
            await Promise.all(
              clients.map(async (c, i) => {
                const store = storeFor(i, round);
                const remoteTip = (await store.readRef(ref))!.oid;
                await fetchObjects(c.repo, store, [remoteTip], { progress: silentProgress });
                c.tip = await commitOn(c.repo, remoteTip, `client${i}-round${round}`);
              }),
            );
            const results = await Promise.allSettled(
              clients.map((c, i) =>
                push(
                  c.repo,
                  storeFor(i, round),
                  { oid: c.tip!, ref, force: false },
                  silentProgress,
                ),
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
          const checker = clients[2]!;
          const finalTip = (await storeFor(2, 1).readRef(ref))!.oid;
          await fetchObjects(checker.repo, storeFor(2, 1), [finalTip], {
            progress: silentProgress,
          });
          const history = new Set<Oid>();
          for await (const entry of walkHistory(checker.repo, [finalTip])) history.add(entry.oid);
          for (const oid of acknowledged)
            assert.ok(history.has(oid), `acknowledged commit ${oid} is missing`);

          // Clones through either replica, with the real CLI, are identical.
          const work = await tempDir('replica-clones');
          const env = { MEDIAGIT_TOKEN: token };
          for (const [i, server] of servers.entries())
            await runCli(['clone', '-q', `${server.url}/${REPO}`, path.join(work, `via-${i}`)], {
              cwd: work,
              env,
            });
          assertTreesEqual(
            await hashTree(path.join(work, 'via-0')),
            await hashTree(path.join(work, 'via-1')),
            'clones through the two replicas',
          );
          const log0 = (await runCli(['log', '--oneline'], { cwd: path.join(work, 'via-0') }))
            .stdout;
          const log1 = (await runCli(['log', '--oneline'], { cwd: path.join(work, 'via-1') }))
            .stdout;
          assert.equal(log0, log1);
          assert.equal(log0.trim().split('\n').length, acknowledged.length);
        } finally {
          await Promise.all(servers.map((s) => s.close()));
        }
      },
    );
  });
}
