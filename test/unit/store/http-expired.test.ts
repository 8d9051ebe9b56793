/**
 * A mediagit server answers a read of content a retention policy deleted with 410 (docs/protocol.md);
 * the client turns it into the same E_EXPIRED (exit 18) a bucket remote gives, never a retry.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ExpiredError } from '../../../src/errors/index.js';
import { statusError } from '../../../src/store/http/index.js';
import { isTransientError } from '../../../src/store/index.js';

test('410 expired is ExpiredError with the date of the sweep, not retried', () => {
  const body = Buffer.from(
    JSON.stringify({
      error: 'expired',
      message: 'chunks/ab expired by retention policy on 2026-12-06',
      expired_at: '2026-12-06T04:11:00.000Z',
    }),
  );
  const err = statusError(410, { 'content-type': 'application/json' }, body, {
    action: 'GET chunks/ab',
    key: 'chunks/ab',
    where: 'http://127.0.0.1:1/repo',
    loginUrl: 'http://127.0.0.1:1/repo',
    authenticated: true,
    secrets: [],
  });
  assert.ok(err instanceof ExpiredError);
  assert.equal(err.code, 'E_EXPIRED');
  assert.equal(err.exitCode, 18);
  assert.equal(err.expiredAt, '2026-12-06T04:11:00.000Z');
  assert.equal(err.message, 'chunks/ab expired by retention policy on 2026-12-06');
  assert.equal(isTransientError(err), false);
});
