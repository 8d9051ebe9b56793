/**
 * A push to a remote without its own negotiator (a bucket, a folder) sends its first reads while
 * it is still walking its local history, and asks its local store for the sizes of what it will
 * send while the remote answers, not after: the order of the calls, recorded on both stores.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { silentProgress } from '../../../src/repo/index.js';
import {
  ForwardingStore,
  LocalStore,
  type OperationOptions,
  type RefValue,
} from '../../../src/store/index.js';
import { SWEEPER_REF } from '../../../src/sync/gc/lease.js';
import { push } from '../../../src/sync/index.js';
import { MAIN, commitFiles, initRepo } from '../../support/sync-fixtures.js';

/** A remote that writes down the calls the negotiation makes, in the order they are made. */
class RecordingRemote extends ForwardingStore {
  constructor(
    inner: LocalStore,
    private readonly events: string[],
  ) {
    super(inner);
  }
  override readRef(name: string, options?: OperationOptions): Promise<RefValue | null> {
    this.events.push(`remote readRef ${name}`);
    return super.readRef(name, options);
  }
  override has(keys: readonly string[], options?: OperationOptions): Promise<boolean[]> {
    this.events.push('remote has');
    return super.has(keys, options);
  }
}

test('the lease read goes out during the walk, and sizes are asked before the existence check', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-negotiate-early-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const repo = await initRepo(path.join(root, 'repo'));
  // Nested folders: the walk reads commit, trees and manifests one level after another.
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 12; i++)
    files.set(`d${i % 3}/e${i % 2}/file-${i}.bin`, Buffer.from(`content ${i}\n`.repeat(50 + i)));
  const tip = await commitFiles(repo, [], files, 'v1');

  const events: string[] = [];
  const local = repo.store;
  const get = local.get.bind(local);
  local.get = (key, options) => {
    events.push(`local get ${key}`);
    return get(key, options);
  };
  const statSize = local.statSize.bind(local);
  local.statSize = (key) => {
    events.push(`local size ${key}`);
    return statSize(key);
  };
  const folder = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await folder.initialize();
  const remote = new RecordingRemote(folder, events);

  const outcome = await push(repo, remote, { oid: tip, ref: MAIN, force: false }, silentProgress);
  assert.equal(outcome.status, 'created');

  const lease = events.indexOf(`remote readRef ${SWEEPER_REF}`);
  const lastWalkRead = events.findLastIndex(
    (e, i) => e.startsWith('local get objects/') && i < events.indexOf('remote has'),
  );
  assert.ok(lease >= 0 && lastWalkRead >= 0, events.join('\n'));
  assert.ok(
    lease < lastWalkRead,
    `the lease was read only after the walk's last read (${lease} > ${lastWalkRead})`,
  );
  const firstSize = events.findIndex((e) => e.startsWith('local size '));
  const has = events.indexOf('remote has');
  assert.ok(
    firstSize >= 0 && firstSize < has,
    `sizes were asked only after the existence check (${firstSize} > ${has})`,
  );
  // And the remote holds what was pushed: a clone-like read of every object.
  for (const e of events.filter((x) => x.startsWith('local size ')))
    assert.ok(await folder.statSize(e.slice('local size '.length)));
});
