/**
 * Refs through mediagit server: compare-and-swap semantics (409 with the current value), races
 * between clients of one server, and statelessness — two server processes over one storage
 * (a shared folder; Azurite when MEDIAGIT_TEST_AZURE_ENDPOINT is set) behave as one server:
 * exactly one winner per round, no acknowledged update lost.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  describeRepository,
  http,
  startTestServer,
  uploadCommit,
  type TestServer,
} from '../support/server-harness.js';
import { skipUnlessServer } from '../support/test-servers.js';

const env = process.env;

interface RefValue {
  oid: string;
  version: string;
}

async function readRef(base: string, token: string, name: string): Promise<RefValue | null> {
  const res = await http(`${base}/refs?prefix=${encodeURIComponent(name)}`, { token });
  assert.equal(res.status, 200);
  const refs = res.json?.['refs'] as Record<string, RefValue>;
  return refs[name] ?? null;
}

function cas(
  base: string,
  token: string,
  name: string,
  expected: RefValue | null,
  next: string | null,
) {
  return http(`${base}/refs`, { token, json: { name, expected, next } });
}

describe('mediagit server: refs', () => {
  let server: TestServer;
  let token: string;
  let admin: string;
  before(async () => {
    server = await startTestServer();
    token = await server.token('*', 'write', 'pusher');
    admin = await server.token('*', 'admin', 'boss');
    for (const repo of ['cas', 'listed', 'race'])
      await describeRepository(`${server.url}/${repo}`, token);
  });
  after(() => server.close());

  test('create, advance, stale expected → 409 with the current value, delete', async () => {
    const base = `${server.url}/cas`;
    const name = 'refs/heads/main';
    const a = await uploadCommit(base, token);
    assert.equal((await cas(base, token, name, null, a)).status, 200);
    const first = await readRef(base, token, name);
    assert.equal(first?.oid, a);
    // Creating again (expected null) is stale now.
    const again = await cas(base, token, name, null, await uploadCommit(base, token));
    assert.equal(again.status, 409);
    assert.equal(again.json?.['error'], 'ref_conflict');
    assert.deepEqual(again.json?.['current'], first);
    const b = await uploadCommit(base, token, [a]);
    assert.deepEqual((await cas(base, token, name, first, b)).json, { ok: true });
    const stale = await cas(base, token, name, first, await uploadCommit(base, token, [a]));
    assert.equal(stale.status, 409);
    assert.equal((stale.json?.['current'] as RefValue).oid, b);
    const second = await readRef(base, token, name);
    assert.equal((await cas(base, admin, name, second, null)).status, 200);
    assert.equal(await readRef(base, token, name), null);
    const gone = await cas(base, token, name, second, await uploadCommit(base, token, [b]));
    assert.equal(gone.status, 409);
    assert.equal(gone.json?.['current'], null);
  });

  test('GET /refs lists by prefix', async () => {
    const base = `${server.url}/listed`;
    for (const name of ['refs/heads/main', 'refs/heads/dev', 'refs/tags/v1'])
      assert.equal(
        (await cas(base, token, name, null, await uploadCommit(base, token))).status,
        200,
      );
    const heads = (await http(`${base}/refs?prefix=refs/heads/`, { token })).json?.[
      'refs'
    ] as Record<string, RefValue>;
    assert.deepEqual(Object.keys(heads), ['refs/heads/dev', 'refs/heads/main']);
    const all = (await http(`${base}/refs`, { token })).json?.['refs'] as Record<string, RefValue>;
    assert.deepEqual(Object.keys(all), ['refs/heads/dev', 'refs/heads/main', 'refs/tags/v1']);
  });

  test('8 clients race POST /refs from the same state: exactly one 200, seven 409', async () => {
    const base = `${server.url}/race`;
    const name = 'refs/heads/main';
    const tokens = await Promise.all(
      Array.from({ length: 8 }, (_, i) => server.token('race', 'write', `client-${i}`)),
    );
    for (const expected of [null, 'read'] as const) {
      const current = expected === null ? null : await readRef(base, token, name);
      const nexts = await Promise.all(
        tokens.map(() => uploadCommit(base, token, current === null ? [] : [current.oid])),
      );
      const answers = await Promise.all(
        tokens.map((t, i) => cas(base, t, name, current, nexts[i]!)),
      );
      const winners = answers.flatMap((a, i) => (a.status === 200 ? [i] : []));
      assert.equal(winners.length, 1, `statuses ${answers.map((a) => a.status).join(',')}`);
      assert.equal(answers.filter((a) => a.status === 409).length, 7);
      assert.equal((await readRef(base, token, name))?.oid, nexts[winners[0]!]);
    }
  });
});

/** 4 clients × 20 rounds through alternating servers over one storage. */
async function raceThroughReplicas(servers: readonly TestServer[], repo: string): Promise<void> {
  const name = 'refs/heads/main';
  const clients = await Promise.all(
    Array.from({ length: 4 }, (_, i) => servers[0]!.token(repo, 'write', `artist-${i}`)),
  );
  await describeRepository(`${servers[0]!.url}/${repo}`, clients[0]!);
  const acknowledged: string[] = [];
  for (let round = 0; round < 20; round++) {
    const via = (i: number): string => `${servers[(i + round) % servers.length]!.url}/${repo}`;
    // Everyone reads (through their own replica), then everyone pushes from what they read.
    const seen = await Promise.all(clients.map((t, i) => readRef(via(i), t, name)));
    for (const s of seen)
      assert.deepEqual(
        s?.oid ?? null,
        acknowledged.at(-1) ?? null,
        `round ${round}: a replica served a stale or lost ref`,
      );
    const nexts = await Promise.all(
      clients.map((t, i) => uploadCommit(via(i), t, seen[i] ? [seen[i].oid] : [])),
    );
    const answers = await Promise.all(
      clients.map((t, i) => cas(via(i), t, name, seen[i]!, nexts[i]!)),
    );
    const winners = answers.flatMap((a, i) => (a.status === 200 ? [i] : []));
    assert.equal(
      winners.length,
      1,
      `round ${round}: statuses ${answers.map((a) => a.status).join(',')}`,
    );
    for (const a of answers) if (a.status !== 200) assert.equal(a.status, 409);
    acknowledged.push(nexts[winners[0]!]!);
    for (const s of servers)
      assert.equal(
        (await readRef(`${s.url}/${repo}`, clients[0]!, name))?.oid,
        acknowledged.at(-1),
      );
  }
  assert.equal(acknowledged.length, 20);
}

describe('mediagit server: two server processes over one storage', () => {
  test('shared local folder: exactly one winner per round, no acknowledged update lost', async () => {
    const first = await startTestServer({ child: true });
    const second = await startTestServer({
      child: true,
      storage: { url: first.dataDir!, options: { fsync: false } },
      env: { MEDIAGIT_JWT_SECRET: first.secret },
    });
    try {
      await raceThroughReplicas([first, second], 'shared');
    } finally {
      await second.close();
      await first.close();
    }
  });

  test(
    'Azurite: exactly one winner per round, no acknowledged update lost',
    {
      skip: skipUnlessServer('azure'),
    },
    async () => {
      const container = `mg-server-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
      const { BlobServiceClient, StorageSharedKeyCredential } = await import('@azure/storage-blob');
      const account = env['MEDIAGIT_TEST_AZURE_ACCOUNT'] ?? 'devstoreaccount1';
      const key = env['MEDIAGIT_TEST_AZURE_KEY'] ?? '';
      await new BlobServiceClient(
        env['MEDIAGIT_TEST_AZURE_ENDPOINT']!,
        new StorageSharedKeyCredential(account, key),
      ).createContainer(container);
      const storage = {
        url: `azure://${container}/replicas`,
        options: {
          endpoint: env['MEDIAGIT_TEST_AZURE_ENDPOINT']!,
          account_name: account,
          account_key: key,
        },
      };
      const first = await startTestServer({ child: true, storage });
      const second = await startTestServer({
        child: true,
        storage,
        env: { MEDIAGIT_JWT_SECRET: first.secret },
      });
      try {
        await raceThroughReplicas([first, second], 'studio/shared');
      } finally {
        await second.close();
        await first.close();
      }
    },
  );
});
