import assert from 'node:assert/strict';
import { test } from 'node:test';

import { startFakeGcs } from '../../servers/gcs/fake-gcs.js';

async function upload(base: string, bucket: string, name: string, body: string) {
  const url = `${base}/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${encodeURIComponent(name)}`;
  return fetch(url, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
}

async function bucket(base: string, name: string, extra: Record<string, unknown> = {}) {
  const res = await fetch(`${base}/storage/v1/b?project=test`, {
    method: 'POST',
    body: JSON.stringify({ name, ...extra }),
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(res.status, 200);
}

test('the GCS test server limits writes to one object name, as GCS does (429 rateLimitExceeded)', async () => {
  const gcs = await startFakeGcs({ objectWriteIntervalMs: 60_000 });
  try {
    await bucket(gcs.url, 'limits');
    assert.equal((await upload(gcs.url, 'limits', 'refs/main', 'a')).status, 200);
    const second = await upload(gcs.url, 'limits', 'refs/main', 'b');
    assert.equal(second.status, 429);
    assert.match(await second.text(), /rateLimitExceeded/);
    // Other names are not limited by it, and a refused write changed nothing.
    assert.equal((await upload(gcs.url, 'limits', 'refs/other', 'c')).status, 200);
    const read = await fetch(
      `${gcs.url}/storage/v1/b/limits/o/${encodeURIComponent('refs/main')}?alt=media`,
    );
    assert.equal(await read.text(), 'a');
  } finally {
    await gcs.close();
  }
});

test('a bucket retention policy refuses overwrite and delete with 403 retentionPolicyNotMet', async () => {
  const gcs = await startFakeGcs();
  try {
    await bucket(gcs.url, 'retained', { retentionPolicy: { retentionPeriod: '3600' } });
    assert.equal((await upload(gcs.url, 'retained', 'k', 'first')).status, 200);
    const overwrite = await upload(gcs.url, 'retained', 'k', 'second');
    assert.equal(overwrite.status, 403);
    assert.match(await overwrite.text(), /retentionPolicyNotMet/);
    const del = await fetch(`${gcs.url}/storage/v1/b/retained/o/k`, { method: 'DELETE' });
    assert.equal(del.status, 403);
    // New names are still writable: retention protects what exists.
    assert.equal((await upload(gcs.url, 'retained', 'k2', 'x')).status, 200);
  } finally {
    await gcs.close();
  }
});
