/**
 * A push whose objects fail to go up reports the failure only once nothing it started is still
 * being sent: trees and the commit go beside the manifests (one wave, not one per kind), so one
 * kind's failure must wait for the other's requests in flight, as mapLimit does for its own.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { StoreUnavailableError } from '../../../src/errors/index.js';
import { silentProgress } from '../../../src/repo/index.js';
import { ForwardingStore, LocalStore, type OperationOptions } from '../../../src/store/index.js';
import { push } from '../../../src/sync/index.js';
import { MAIN, commitFiles, initRepo } from '../../support/sync-fixtures.js';

/** Fails the first structured object's PUT at once and holds every other one a moment. */
class FailingRemote extends ForwardingStore {
  inFlight = 0;
  private failed = false;
  override async put(key: string, data: Uint8Array, options?: OperationOptions): Promise<void> {
    if (!key.startsWith('objects/')) return super.put(key, data, options);
    if (!this.failed) {
      this.failed = true;
      throw new StoreUnavailableError(`refused ${key}`);
    }
    this.inFlight++;
    try {
      await sleep(30);
      await super.put(key, data, options);
    } finally {
      this.inFlight--;
    }
  }
}

test('a push that fails sending its objects reports it once none is still being sent', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-push-settles-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const repo = await initRepo(path.join(root, 'repo'));
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 8; i++) files.set(`d${i % 3}/file-${i}.bin`, Buffer.from(`content ${i}\n`));
  const tip = await commitFiles(repo, [], files, 'v1');
  const folder = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await folder.initialize();
  const remote = new FailingRemote(folder);

  await assert.rejects(
    push(repo, remote, { oid: tip, ref: MAIN, force: false }, silentProgress, {
      hardlinks: false,
    }),
    StoreUnavailableError,
  );
  assert.equal(remote.inFlight, 0, `${remote.inFlight} object PUTs still in flight`);
  assert.equal(await folder.readRef(MAIN), null, 'the ref moved although objects failed');
});
