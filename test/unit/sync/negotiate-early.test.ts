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
import { makeDescriptor, writeDescriptor } from '../../../src/sync/descriptor.js';
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
  // A remote pushed to before: one without a descriptor has nothing to find, and is not asked.
  await writeDescriptor(folder, makeDescriptor(repo.settings.chunking, false));
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

test('a first push to a remote without a descriptor asks it nothing about existence, and a second does', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-negotiate-fresh-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const repo = await initRepo(path.join(root, 'repo'));
  const files = new Map<string, Buffer>();
  for (let i = 0; i < 6; i++) files.set(`d${i % 2}/file-${i}.bin`, Buffer.from(`first ${i}\n`));
  const v1 = await commitFiles(repo, [], files, 'v1');
  const events: string[] = [];
  const folder = new LocalStore(path.join(root, 'remote'), { fsync: false });
  await folder.initialize();
  const remote = new RecordingRemote(folder, events);

  const first = await push(repo, remote, { oid: v1, ref: MAIN, force: false }, silentProgress);
  assert.equal(first.status, 'created');
  assert.deepEqual(
    events.filter((e) => e === 'remote has'),
    [],
    'a remote that never had a push was asked which objects it holds',
  );
  // Now it has a descriptor: the next push asks, and sends only what is new.
  files.set('d0/file-0.bin', Buffer.from('second\n'));
  const v2 = await commitFiles(repo, [v1], files, 'v2');
  const second = await push(repo, remote, { oid: v2, ref: MAIN, force: false }, silentProgress);
  assert.equal(second.status, 'fast-forward');
  assert.ok(events.includes('remote has'), events.join('\n'));
  assert.ok(
    second.stats.objects < first.stats.objects,
    `${second.stats.objects} objects sent again of ${first.stats.objects}`,
  );
});
