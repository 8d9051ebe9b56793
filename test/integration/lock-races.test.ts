/**
 * Two lockers racing on one path, 20 rounds: through two `mediagit server` replicas sharing one
 * storage folder, and straight to an S3 bucket on the radosgw test server (StoredLocks, the lock
 * client of folder and bucket remotes). Each round exactly one wins, the other is told who did,
 * and the stored lock names the winner.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { LockedError } from '../../src/errors/index.js';
import { StoredLocks, openStore } from '../../src/store/index.js';
import { tempDir } from '../support/cli.js';
import {
  describeRepository,
  http,
  startTestServer,
  type TestServer,
} from '../support/server-harness.js';
import { createS3TestBucket } from '../support/s3-bucket.js';
import { skipUnlessServer } from '../support/test-servers.js';

const ROUNDS = 20;
const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('lock races', () => {
  test('two server replicas on one storage: exactly one of two lockers wins, 20 rounds', async () => {
    const data = path.join(await tempDir('lock-race-srv'), 'data');
    const secret = randomBytes(32).toString('hex');
    const config = `[storage]\nbackend = "local"\n[storage.local]\npath = ${JSON.stringify(data)}\nfsync = false\n`;
    for (let i = 0; i < 2; i++) {
      servers.push(await startTestServer({ config, env: { MEDIAGIT_JWT_SECRET: secret } }));
    }
    const [one, two] = servers as [TestServer, TestServer];
    const repo = 'race';
    const ada = await one.token(repo, 'write', 'ada');
    const bob = await two.token(repo, 'write', 'bob');
    await describeRepository(`${one.url}/${repo}`, ada);
    for (let round = 0; round < ROUNDS; round++) {
      const lockPath = `scenes/round-${round}.scene`;
      const answers = await Promise.all([
        http(`${one.url}/${repo}/locks`, { token: ada, json: { path: lockPath } }),
        http(`${two.url}/${repo}/locks`, { token: bob, json: { path: lockPath } }),
      ]);
      const statuses = answers.map((a) => a.status).sort();
      assert.deepEqual(statuses, [201, 409], `round ${round}: ${JSON.stringify(statuses)}`);
      const winner = answers[0]!.status === 201 ? 'ada' : 'bob';
      const loser = answers.find((a) => a.status === 409)!;
      assert.equal((loser.json?.['lock'] as { owner: string }).owner, winner);
      // Both replicas see the same single holder.
      for (const srv of [one, two]) {
        const listed = await http(`${srv.url}/${repo}/locks?path=${encodeURIComponent(lockPath)}`, {
          token: ada,
        });
        const locks = listed.json?.['locks'] as { path: string; owner: string }[];
        assert.deepEqual(
          locks.map((l) => [l.path, l.owner]),
          [[lockPath, winner]],
        );
      }
    }
    // Every lock change was audited on the replica that made it.
    const created = [...one.auditLines, ...two.auditLines].filter((l) => l['event'] === 'lock');
    assert.equal(created.length, ROUNDS * 2);
  });

  test(
    'an S3 bucket remote (radosgw): exactly one of two lockers wins, 20 rounds',
    { skip: skipUnlessServer('s3') },
    async () => {
      const bucket = `mg-lock-race-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
      const options = await createS3TestBucket(bucket);
      // Two separate clients, as two artists' machines would have.
      const a = await openStore(`s3://${bucket}/studio`, options);
      const b = await openStore(`s3://${bucket}/studio`, options);
      try {
        const ada = new StoredLocks(a.store, 'Ada');
        const bob = new StoredLocks(b.store, 'Bob');
        for (let round = 0; round < ROUNDS; round++) {
          const lockPath = `scenes/round-${round}.scene`;
          const results = await Promise.allSettled([
            ada.createLock(lockPath),
            bob.createLock(lockPath),
          ]);
          const won = results.filter((r) => r.status === 'fulfilled');
          const lost = results.filter((r) => r.status === 'rejected');
          assert.equal(won.length, 1, `round ${round}: ${won.length} winners`);
          assert.ok(lost[0]!.reason instanceof LockedError, String(lost[0]!.reason));
          const winner = won[0]!.value.owner;
          assert.match((lost[0]!.reason as LockedError).message, new RegExp(winner));
          const listed = await bob.listLocks(lockPath);
          assert.deepEqual(
            listed.map((l) => [l.path, l.owner]),
            [[lockPath, winner]],
          );
        }
        // Releasing races too: of the holder's unlock and a forced one, exactly one releases.
        const held = (await ada.listLocks('scenes/round-0.scene'))[0]!;
        const releases = await Promise.allSettled([
          ada.unlock(held.id, true),
          bob.unlock(held.id, true),
        ]);
        assert.equal(releases.filter((r) => r.status === 'fulfilled').length, 1);
        assert.deepEqual(await ada.listLocks('scenes/round-0.scene'), []);
      } finally {
        await a.store.close();
        await b.store.close();
      }
    },
  );
});
