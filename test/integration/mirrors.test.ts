/**
 * Multi remotes stay whole against a real cloud backend (issue 16, item 3): a folder primary and a
 * radosgw (S3) or Azurite secondary reached through the fault proxy, which refuses chosen writes
 * on the secondary. The CLI is run as a user runs it; what landed is read back from each side.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { LocalStore, MultiStore, openStore, unwrapStore } from '../../src/store/index.js';
import { runCli, tempDir } from '../support/cli.js';
import { makeCorpus } from '../support/corpus.js';
import { startFaultProxy, type ProxiedRequest } from '../support/fault-proxy.js';
import { PROXIED_BACKENDS, type ProxiedBackend } from '../support/proxied-backends.js';
import { oidFor, patternBytes } from '../support/store-contract.js';
import { repoWithMirror, storedChunks } from '../support/sync-fixtures.js';

const backend = (prefix: string): ProxiedBackend =>
  PROXIED_BACKENDS.find((b) => b.name.startsWith(prefix))!;
const S3 = backend('S3');
const AZURE = backend('Azure');
const MAIN = 'refs/heads/main';

/** A proxy whose plan refuses (503, as a throttling or failing service does) what `refusing` picks. */
async function refusingProxy(target: string) {
  let refusing: ((r: ProxiedRequest) => boolean) | null = null;
  const proxy = await startFaultProxy({
    target,
    plan: (r) => (refusing?.(r) ? { kind: 'refuse', status: 503, retryAfter: '0' } : undefined),
  });
  return {
    proxy,
    refuse(pick: ((r: ProxiedRequest) => boolean) | null): void {
      refusing = pick;
    },
  };
}

const writes = (needle: string) => (r: ProxiedRequest) =>
  r.method === 'PUT' && decodeURIComponent(r.url).includes(needle);

test(
  'CLI, folder primary + radosgw secondary through the fault proxy: a refused chunk and a refused ref are recorded, then repaired by push and fsck --repair',
  {
    skip: S3.skip,
  },
  async (t) => {
    const prepared = await S3.prepare('mirror');
    const { proxy, refuse } = await refusingProxy(prepared.target);
    t.after(async () => {
      await proxy.close();
      await prepared.close?.();
    });
    const { url, options } = prepared.remote(proxy.url, 'hero');
    const work = await tempDir('mirror-cloud');
    const primaryDir = path.join(work, 'primary');
    const sideOptions = Object.entries({ ...options, max_retries: 0 }).flatMap(([k, v]) => [
      '-o',
      `secondary.${k}=${String(v)}`,
    ]);
    const repo = await repoWithMirror(work, primaryDir, url, sideOptions);
    const secondary = (await openStore(url, { ...options })).store;
    t.after(() => secondary.close());
    const primary = new LocalStore(primaryDir);

    // 1. The secondary refuses one chunk: the push fails, and says nothing moved.
    // A stored chunk, not the first fan-out folder (init makes all 256).
    const victim = `chunks/${(await storedChunks(path.join(repo, '.mediagit')))[0]!.oid}`;
    refuse(writes(victim));
    const failed = await runCli(['push', 'backup'], { cwd: repo, allowFail: true });
    assert.equal(failed.code, 12, failed.stderr);
    assert.ok((proxy.injected.get('refuse') ?? 0) > 0);
    assert.deepEqual(await primary.has([victim]), [true]);
    assert.deepEqual(await secondary.has([victim]), [false]);
    const ledger = JSON.parse(
      await readFile(path.join(repo, '.mediagit', 'mirrors.json'), 'utf8'),
    ) as { remotes: Record<string, { objects: Record<string, string> }> };
    assert.deepEqual(ledger.remotes['backup']!.objects, { [victim]: 'secondary' });

    // 2. The secondary takes writes again: the next push repairs, then publishes; both sides whole.
    refuse(null);
    const pushed = await runCli(['push', 'backup'], { cwd: repo });
    assert.match(pushed.stderr, /Repaired the mirror of 'backup'/);
    const v1 = (await primary.readRef(MAIN))!.oid;
    assert.equal((await secondary.readRef(MAIN))?.oid, v1);
    assert.deepEqual(await secondary.has([victim]), [true]);
    const clean = await runCli(['fsck', '--remote', 'backup', '--json'], { cwd: repo });
    assert.equal((JSON.parse(clean.stdout) as { ok: boolean }).ok, true, clean.stdout);

    // 3. The secondary refuses the ref update of v2: the push succeeds (the primary moved) and warns.
    await makeCorpus(repo, 2, 'tiny');
    await runCli(['add', '.'], { cwd: repo });
    await runCli(['commit', '-q', '-m', 'v2'], { cwd: repo });
    refuse(writes(`/${MAIN}`));
    const lagging = await runCli(['push', 'backup'], { cwd: repo });
    assert.match(lagging.stderr, /warning: 'backup' is a mirror with one side missing 1 ref/);
    const v2 = (await primary.readRef(MAIN))!.oid;
    assert.notEqual(v2, v1);
    assert.equal((await secondary.readRef(MAIN))?.oid, v1, 'the secondary lags');
    refuse(null);
    const found = await runCli(['fsck', '--remote', 'backup'], { cwd: repo, allowFail: true });
    assert.equal(found.code, 6, found.stderr);
    assert.match(found.stderr, /fsck --remote backup --repair/);
    const repaired = await runCli(['fsck', '--remote', 'backup', '--repair'], { cwd: repo });
    assert.match(repaired.stdout, new RegExp(`repaired: ${MAIN} on the secondary ${v1} -> ${v2}`));
    assert.match(repaired.stdout, /no problems found/);
    assert.equal((await secondary.readRef(MAIN))?.oid, v2);
  },
);

test(
  'read repair both ways, folder + Azurite through the fault proxy: whichever side is read first gets what it lacked; a failed copy is remembered',
  {
    skip: AZURE.skip,
  },
  async (t) => {
    const prepared = await AZURE.prepare('readrepair');
    const { proxy, refuse } = await refusingProxy(prepared.target);
    t.after(async () => {
      await proxy.close();
      await prepared.close?.();
    });
    const { url, options } = prepared.remote(proxy.url, 'hero');
    const work = await tempDir('mirror-read-repair');
    const folderDir = path.join(work, 'folder');
    const folder = new LocalStore(folderDir);
    await folder.initialize();
    const cloud = (await openStore(url, options)).store;
    t.after(() => cloud.close());
    const sides = (readFirst: 'primary' | 'secondary') =>
      openStore('multi:', {
        primary: folderDir,
        secondary: url,
        read_first: readFirst,
        ...Object.fromEntries(Object.entries(options).map(([k, v]) => [`secondary.${k}`, v])),
      });

    // Read first from the primary (the folder): an object only in the cloud is copied to the folder.
    const a = { key: `chunks/${oidFor('cloud only')}`, data: patternBytes('cloud only', 40_000) };
    await cloud.put(a.key, a.data);
    const byPrimary = await sides('primary');
    assert.ok((await byPrimary.store.get(a.key)).equals(a.data));
    assert.ok((await folder.get(a.key)).equals(a.data), 'copied to the primary');

    // Read first from the secondary (the cloud): an object only in the folder is copied to the cloud.
    const b = { key: `chunks/${oidFor('folder only')}`, data: patternBytes('folder only', 40_000) };
    await folder.put(b.key, b.data);
    const bySecondary = await sides('secondary');
    assert.ok((await bySecondary.store.get(b.key)).equals(b.data));
    assert.ok((await cloud.get(b.key)).equals(b.data), 'copied to the secondary');

    // The cloud refuses the copy: the read still succeeds, and the store remembers what is missing.
    const c = { key: `chunks/${oidFor('refused')}`, data: patternBytes('refused', 40_000) };
    await folder.put(c.key, c.data);
    refuse(writes(c.key.slice('chunks/'.length)));
    assert.ok((await bySecondary.store.get(c.key)).equals(c.data));
    assert.ok((proxy.injected.get('refuse') ?? 0) > 0);
    assert.deepEqual(await cloud.has([c.key]), [false]);
    const multi = unwrapStore(bySecondary.store, MultiStore)!;
    assert.deepEqual([...multi.failures().objects], [[c.key, 'secondary']]);
    await byPrimary.store.close();
    await bySecondary.store.close();
  },
);
