/**
 * File locks through mediagit server: two identities, conflicts naming the holder, verify by
 * identity, release by the owner, force-release by an admin, racing lockers (one server and two
 * replicas over one folder).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  describeRepository,
  http,
  startTestServer,
  type TestServer,
} from '../support/server-harness.js';

interface Lock {
  id: string;
  path: string;
  owner: string;
  locked_at: string;
}

describe('mediagit server: locks', () => {
  let server: TestServer;
  let alice: string;
  let bob: string;
  let admin: string;
  let base: string;

  before(async () => {
    server = await startTestServer();
    alice = await server.token('art', 'write', 'alice');
    bob = await server.token('art', 'write', 'bob');
    admin = await server.token('art', 'admin', 'carol');
    base = `${server.url}/art`;
    await describeRepository(base, alice);
  });
  after(() => server.close());

  const lock = (token: string, path: string) => http(`${base}/locks`, { token, json: { path } });
  const unlock = (token: string, id: string, force?: boolean) =>
    http(`${base}/locks/${id}/unlock`, { token, json: force === undefined ? {} : { force } });
  const verify = async (token: string): Promise<{ ours: Lock[]; theirs: Lock[] }> => {
    const res = await http(`${base}/locks/verify`, { token, json: {} });
    assert.equal(res.status, 200);
    return res.json as unknown as { ours: Lock[]; theirs: Lock[] };
  };

  test('lock, conflict naming the holder, verify ours/theirs, list by path, unlock by owner, force by admin', async () => {
    const a = await lock(alice, 'scenes/level01.blend');
    assert.equal(a.status, 201);
    const aliceLock = a.json?.['lock'] as Lock;
    assert.equal(aliceLock.path, 'scenes/level01.blend');
    assert.equal(aliceLock.owner, 'alice');
    assert.match(aliceLock.id, /^[0-9a-f]{64}$/);
    assert.ok(!Number.isNaN(Date.parse(aliceLock.locked_at)));

    const conflict = await lock(bob, 'scenes/level01.blend');
    assert.equal(conflict.status, 409);
    assert.equal(conflict.json?.['error'], 'lock_exists');
    assert.match(String(conflict.json?.['message']), /alice/);
    assert.deepEqual(conflict.json?.['lock'], aliceLock);

    const b = await lock(bob, 'textures/hero.tif');
    assert.equal(b.status, 201);
    const bobLock = b.json?.['lock'] as Lock;

    assert.deepEqual(await verify(alice), { ours: [aliceLock], theirs: [bobLock] });
    assert.deepEqual(await verify(bob), { ours: [bobLock], theirs: [aliceLock] });
    assert.deepEqual((await http(`${base}/locks?path=scenes/`, { token: bob })).json, {
      locks: [aliceLock],
    });
    assert.deepEqual((await http(`${base}/locks`, { token: bob })).json, {
      locks: [aliceLock, bobLock],
    });

    // Bob cannot release Alice's lock, not even with force (he is no admin).
    assert.equal((await unlock(bob, aliceLock.id)).status, 403);
    assert.equal((await unlock(bob, aliceLock.id, true)).status, 403);
    const released = await unlock(alice, aliceLock.id);
    assert.equal(released.status, 200);
    assert.deepEqual(released.json?.['lock'], aliceLock);
    assert.equal((await unlock(alice, aliceLock.id)).status, 404);
    assert.deepEqual(await verify(alice), { ours: [], theirs: [bobLock] });

    // An admin needs force to release someone else's lock.
    assert.equal((await unlock(admin, bobLock.id)).status, 403);
    assert.equal((await unlock(admin, bobLock.id, true)).status, 200);
    assert.deepEqual((await http(`${base}/locks`, { token: bob })).json, { locks: [] });
    // The path is free again.
    assert.equal((await lock(bob, 'scenes/level01.blend')).status, 201);

    const events = server.auditLines
      .filter((l) => l['repo'] === 'art')
      .map((l) => `${String(l['event'])} ${String(l['identity'])} ${String(l['status'])}`);
    assert.ok(events.includes('lock alice 201'));
    assert.ok(events.includes('lock bob 409'));
    assert.ok(events.includes('unlock carol 200'));
  });

  test('eight identities race for one path: exactly one gets it', async () => {
    const tokens = await Promise.all(
      Array.from({ length: 8 }, (_, i) => server.token('art', 'write', `racer-${i}`)),
    );
    const answers = await Promise.all(tokens.map((t) => lock(t, 'audio/theme.wav')));
    assert.equal(answers.filter((a) => a.status === 201).length, 1);
    assert.equal(answers.filter((a) => a.status === 409).length, 7);
    const winner = answers.find((a) => a.status === 201)!.json?.['lock'] as Lock;
    for (const a of answers.filter((x) => x.status === 409))
      assert.equal((a.json?.['lock'] as Lock).owner, winner.owner);
  });

  test('two replicas over one folder see the same locks', async () => {
    const replica = await startTestServer({
      storage: { url: server.dataDir!, options: { fsync: false } },
      env: { MEDIAGIT_JWT_SECRET: server.secret },
    });
    try {
      const a = await lock(alice, 'shared/asset.psd');
      assert.equal(a.status, 201);
      const viaReplica = await http(`${replica.url}/art/locks`, {
        token: bob,
        json: { path: 'shared/asset.psd' },
      });
      assert.equal(viaReplica.status, 409);
      assert.equal((viaReplica.json?.['lock'] as Lock).owner, 'alice');
      const id = (a.json?.['lock'] as Lock).id;
      assert.equal(
        (await http(`${replica.url}/art/locks/${id}/unlock`, { token: alice, json: {} })).status,
        200,
      );
      assert.equal((await lock(bob, 'shared/asset.psd')).status, 201);
    } finally {
      await replica.close();
    }
  });
});
