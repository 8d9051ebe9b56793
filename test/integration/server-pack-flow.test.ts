/**
 * A pack's body keeps flowing while it is read: the server pauses the request only where a piece
 * completes a record (to hand it to verification, which may make it wait), not for every piece
 * of the socket. A pause per piece cost a turn of the event loop per 64 KiB, and the bytes left
 * unread meanwhile held the connection's receive window at its first size: through a server over
 * S3 the first packs of a push, on new connections, arrived at ~10 MB/s while the server was busy
 * storing the one before (docs/bench.md, session 9).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  describeRepository,
  encodeTestPack,
  http,
  startTestServer,
  storedObject,
  type TestServer,
} from '../support/server-harness.js';

describe('mediagit server: reading a pack', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  test('pauses the request at most once per record, not once per piece of the body', async () => {
    const token = await server.token('*', 'write');
    const base = `${server.url}/flow`;
    await describeRepository(base, token);
    // Two records of 2 MiB: ~64 pieces of the socket.
    const records = await Promise.all(
      [0, 1].map(async () => ({
        kind: 'chunk' as const,
        ...(await storedObject('chunk', randomBytes(2 * 1024 * 1024))),
      })),
    );
    let pauses = 0;
    const original = IncomingMessage.prototype.pause;
    IncomingMessage.prototype.pause = function (this: IncomingMessage) {
      if (this.url?.endsWith('/objects/pack') === true) pauses++;
      return original.call(this);
    };
    try {
      const res = await http(`${base}/objects/pack`, {
        method: 'POST',
        token,
        body: encodeTestPack(records),
      });
      assert.equal(res.status, 200, res.body.toString());
      assert.deepEqual(res.json, { stored: 2, existing: 0 });
    } finally {
      IncomingMessage.prototype.pause = original;
    }
    assert.ok(pauses <= records.length, `the request paused ${pauses} times`);
  });
});
