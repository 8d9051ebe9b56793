/**
 * GCS custom endpoints with default credentials (issue 16, item 9): the SDK sends anonymous
 * requests to any non-default endpoint unless told to authenticate, so a regional or Private
 * Service Connect endpoint would be refused. Only a local test server goes anonymous.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authenticatesEndpoint } from '../../../src/store/gcs/gcs-store.js';

test('regional and Private Service Connect endpoints authenticate with default credentials', () => {
  for (const endpoint of [
    'https://storage.europe-west3.rep.googleapis.com',
    'https://storage-myendpoint.p.googleapis.com',
    'https://gcs.internal.example.com',
  ])
    assert.equal(authenticatesEndpoint(endpoint, undefined), true, endpoint);
});

test('a local test server stays anonymous unless a credentials file is given', () => {
  for (const endpoint of ['http://127.0.0.1:4443', 'http://localhost:4443', 'http://[::1]:4443']) {
    assert.equal(authenticatesEndpoint(endpoint, undefined), false, endpoint);
    assert.equal(authenticatesEndpoint(endpoint, '/etc/key.json'), true, endpoint);
  }
});
