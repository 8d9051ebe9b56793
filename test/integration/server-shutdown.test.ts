/**
 * Graceful shutdown of `mediagit server` (a real process): on SIGTERM it stops accepting
 * connections, lets an upload in flight finish and answer, then exits 0.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  describeRepository,
  http,
  startTestServer,
  storedObject,
} from '../support/server-harness.js';

describe('mediagit server: graceful shutdown', () => {
  test('an upload in flight at SIGTERM completes; new connections are refused; exit code 0', async () => {
    const server = await startTestServer({ child: true });
    const child = server.process!;
    try {
      const token = await server.token('shutdown', 'write', 'slow-client');
      await describeRepository(`${server.url}/shutdown`, token);
      const { oid, stored } = await storedObject('chunk', randomBytes(256 * 1024));
      const pieces = 10;
      const size = Math.ceil(stored.length / pieces);

      let signalled = false;
      let uploaded = false;
      const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`${server.url}/shutdown/chunks/${oid}`, {
          method: 'PUT',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/octet-stream',
            'content-length': String(stored.length),
          },
        });
        req.on('response', (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (t: string) => (body += t));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        void (async () => {
          for (let i = 0; i < pieces; i++) {
            req.write(stored.subarray(i * size, (i + 1) * size));
            await sleep(150);
            if (i === 2) {
              child.kill('SIGTERM');
              signalled = true;
            }
          }
          req.end();
          uploaded = true;
        })();
      });

      // Once the signal is handled, the listener is closed: new connections are refused (or told
      // 503) while the upload is still going on.
      while (!signalled) await sleep(20);
      let turnedAway = false;
      while (!uploaded && !turnedAway) {
        const late = await http(`${server.url}/health`).then(
          (r) => r.status,
          () => 'refused' as const,
        );
        turnedAway = late === 'refused' || late === 503;
        if (!turnedAway) await sleep(50);
      }
      assert.ok(turnedAway, 'new requests were still served while shutting down');

      const { status, body } = await answer;
      assert.equal(status, 201, body);
      assert.equal(await server.exited, 0);
    } finally {
      await server.close();
    }
  });
});
