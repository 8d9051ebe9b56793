/**
 * Server configuration (docs/server.md): mediagit.toml and environment variables, defaults,
 * every storage form, per-repository storage locations, and the errors for bad settings.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { RepositoryStorage, createServer, loadServerConfig } from '../../src/server/index.js';
import { tempDir } from '../support/cli.js';

const SECRET = 'x'.repeat(32);

describe('mediagit server: configuration', () => {
  test('defaults: port 3000, a local ./mediagit-data, limits of docs/protocol.md', async () => {
    const cwd = await tempDir('config-defaults');
    const config = await loadServerConfig({ env: {}, cwd });
    assert.equal(config.port, 3000);
    assert.equal(config.host, '0.0.0.0');
    assert.deepEqual(config.storage, {
      kind: 'single',
      url: path.join(cwd, 'mediagit-data'),
      options: {},
    });
    assert.equal(config.maxObjectBytes, 16 * 1024 * 1024);
    assert.equal(config.maxPackBytes, 64 * 1024 * 1024);
    assert.equal(config.requestTimeoutMs, 300_000);
    assert.deepEqual(config.metrics, { enabled: false, port: 9090 });
    assert.equal(config.jwtSecret, null);
    assert.equal(config.anonymousRead, false);
    assert.equal(config.tls, null);
    assert.deepEqual(config.presign, { get: true, expiryS: 300, endpoint: null });
    const presigning = await loadServerConfig({
      configText:
        '[server]\npresign = "off"\npresign_expiry_s = 60\npresign_endpoint = "https://s3.example:9000"\n',
      env: {},
      cwd,
    });
    assert.deepEqual(presigning.presign, {
      get: false,
      expiryS: 60,
      endpoint: 'https://s3.example:9000',
    });
  });

  test('environment variables win over the file', async () => {
    const cwd = await tempDir('config-env');
    const file = path.join(cwd, 'mediagit.toml');
    await writeFile(
      file,
      '[server]\nhost = "10.0.0.1"\nport = 4000\nmax_object_bytes = 2048\n[auth]\nanonymous_read = true\napi_keys = false\n[metrics]\nenabled = false\nport = 9999\n',
    );
    const config = await loadServerConfig({
      configPath: file,
      cwd,
      env: {
        MEDIAGIT_HOST: '127.0.0.1',
        MEDIAGIT_PORT: '0',
        MEDIAGIT_JWT_SECRET: SECRET,
        MEDIAGIT_API_KEY_ENABLED: 'true',
        MEDIAGIT_METRICS_ENABLED: 'true',
        MEDIAGIT_METRICS_PORT: '9191',
        MEDIAGIT_AUDIT_LOG: 'audit.jsonl',
      },
    });
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 0);
    assert.equal(config.maxObjectBytes, 2048);
    assert.equal(config.anonymousRead, true);
    assert.equal(config.apiKeysEnabled, true);
    assert.deepEqual(config.metrics, { enabled: true, port: 9191 });
    assert.equal(config.jwtSecret, SECRET);
    assert.equal(config.auditLog, path.join(cwd, 'audit.jsonl'));
  });

  test('[storage] backends: local, s3, azure, gcs, multi with named tables, and url + options', async () => {
    const cwd = await tempDir('config-storage');
    const load = (configText: string) => loadServerConfig({ configText, env: {}, cwd });
    assert.deepEqual(
      (await load('[storage]\nbackend = "local"\n[storage.local]\npath = "repos"\n')).storage,
      { kind: 'single', url: path.join(cwd, 'repos'), options: {} },
    );
    assert.deepEqual(
      (
        await load(
          '[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "media"\nprefix = "team"\nregion = "eu-west-1"\nforce_path_style = true\npart_size = 8388608\n',
        )
      ).storage,
      {
        kind: 'single',
        url: 's3://media/team',
        options: { region: 'eu-west-1', force_path_style: true, part_size: 8388608 },
      },
    );
    assert.deepEqual(
      (
        await load(
          '[storage]\nbackend = "azure"\n[storage.azure]\naccount_name = "acct"\ncontainer = "repos"\nuse_managed_identity = true\n',
        )
      ).storage,
      {
        kind: 'single',
        url: 'azure://repos/',
        options: { account_name: 'acct', use_managed_identity: true },
      },
    );
    assert.deepEqual(
      (await load('[storage]\nbackend = "gcs"\n[storage.gcs]\nbucket = "media"\nproject = "p"\n'))
        .storage,
      { kind: 'single', url: 'gs://media/', options: { project: 'p' } },
    );
    const multi = await load(
      '[storage]\nbackend = "multi"\n[storage.multi]\nprimary = "local"\nsecondary = "backup"\n[storage.multi.local]\npath = "/fast"\n[storage.multi.backup]\nbackend = "s3"\nbucket = "mediagit-backup"\nregion = "us-west-2"\n',
    );
    assert.deepEqual(multi.storage, {
      kind: 'multi',
      primary: { kind: 'single', url: '/fast', options: {} },
      secondary: { kind: 'single', url: 's3://mediagit-backup/', options: { region: 'us-west-2' } },
    });
    assert.deepEqual(
      (
        await load(
          '[storage]\nurl = "azure://cont/p"\n[storage.options]\nendpoint = "http://127.0.0.1:1"\naccount_name = "a"\naccount_key = "k"\n',
        )
      ).storage,
      {
        kind: 'single',
        url: 'azure://cont/p',
        options: { endpoint: 'http://127.0.0.1:1', account_name: 'a', account_key: 'k' },
      },
    );
  });

  test('each repository gets its own folder or prefix; the _system area is separate', async () => {
    const cwd = await tempDir('config-areas');
    const local = new RepositoryStorage(
      { kind: 'single', url: path.join(cwd, 'data'), options: {} },
      cwd,
    );
    assert.equal(
      (await local.forRepository('studio/hero-game')).description,
      path.join(cwd, 'data', 'studio', 'hero-game'),
    );
    assert.equal((await local.system()).description, path.join(cwd, 'data', '_system'));
    const s3 = new RepositoryStorage(
      {
        kind: 'single',
        url: 's3://media/team',
        options: { region: 'us-east-1', access_key: 'a', secret_key: 'b' },
      },
      cwd,
    );
    assert.match((await s3.forRepository('hero')).description, /^s3:\/\/media\/team\/hero\//);
    assert.equal(s3.backend, 's3');
    await Promise.all([local.close(), s3.close()]);
  });

  test('open stores are kept per repository, the least recently used beyond maxOpen are let go', async () => {
    const cwd = await tempDir('config-lru');
    const storage = new RepositoryStorage(
      { kind: 'single', url: path.join(cwd, 'data'), options: {} },
      cwd,
      { maxOpen: 2, closeDelayMs: 0 },
    );
    const a = storage.forRepository('a');
    assert.equal(storage.forRepository('a'), a);
    const b = storage.forRepository('b');
    storage.forRepository('a');
    storage.forRepository('c');
    assert.equal(storage.forRepository('a'), a, 'a was used more recently than b');
    assert.notEqual(storage.forRepository('b'), b, 'b was let go and is opened afresh');
    await storage.close();
  });

  test('bad settings are ConfigErrors naming the setting, never echoing secrets', async () => {
    const cwd = await tempDir('config-bad');
    const bad = async (
      configText: string,
      env: Record<string, string> = {},
      match?: RegExp,
    ): Promise<void> => {
      await assert.rejects(
        loadServerConfig({ configText, env, cwd }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'E_CONFIG', err.message);
          if (match) assert.match(err.message, match);
          return true;
        },
      );
    };
    await bad('[server\n');
    await bad('[server]\nport = "3000"\n', {}, /port/);
    await bad('[server]\nprot = 3000\n', {}, /prot/);
    await bad('[server]\nmax_object_bytes = 10\n', {}, /max_object_bytes/);
    await bad('[surver]\n', {}, /surver/);
    await bad('[server]\npresign = "yes"\n', {}, /presign/);
    await bad('[server]\npresign_expiry_s = 0\n', {}, /presign_expiry_s/);
    await bad('[server]\npresign_endpoint = "http://k:s@s3.example"\n', {}, /presign_endpoint/);
    await bad('[server]\npresign_endpoint = "ftp://s3.example"\n', {}, /presign_endpoint/);
    await bad('[storage]\nbackend = "ftp"\n', {}, /backend/);
    await bad('[storage]\nbackend = "s3"\n[storage.s3]\nregion = "x"\n', {}, /bucket/);
    await bad(
      '[storage]\nbackend = "multi"\n[storage.multi]\nprimary = "a"\nsecondary = "b"\n[storage.multi.a]\npath = "/x"\n',
      {},
      /multi/,
    );
    await bad('[storage]\nurl = "https://other.example/repo"\n', {}, /mediagit server/);
    await bad('', { MEDIAGIT_PORT: '70000' }, /MEDIAGIT_PORT/);
    await bad('', { MEDIAGIT_METRICS_ENABLED: 'maybe' }, /MEDIAGIT_METRICS_ENABLED/);
    await bad('', { MEDIAGIT_JWT_SECRET: 'short-secret' }, /too short/);
    await assert.rejects(
      loadServerConfig({ configText: '', env: { MEDIAGIT_JWT_SECRET: 'short-secret' }, cwd }),
      (err: Error) => !err.message.includes('short-secret'),
    );
    await assert.rejects(
      loadServerConfig({ configPath: 'missing.toml', requireFile: true, env: {}, cwd }),
      { code: 'E_CONFIG' },
    );
    // A missing default file is fine.
    await loadServerConfig({ configPath: 'mediagit.toml', env: {}, cwd });
    // A server nobody can authenticate to is refused.
    const noAuth = await loadServerConfig({ env: {}, cwd });
    assert.throws(() => createServer(noAuth), { code: 'E_CONFIG' });
  });
});
