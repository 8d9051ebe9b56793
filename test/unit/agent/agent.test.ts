import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  agentSocketPath,
  agentStatus,
  cacheKey,
  forgetAllKeys,
  forgetKeys,
  lookupCachedKey,
} from '../../../src/agent/index.js';
import { checkPrivateDir, ensurePrivateDir } from '../../../src/agent/paths.js';
import { MAX_MESSAGE_BYTES, agentVerifier } from '../../../src/agent/protocol.js';
import { KeyAgent } from '../../../src/agent/server.js';
import { formatDuration, parseDuration } from '../../../src/commands/key.js';
import { AgentUnavailableError, AgentUnsafeError, UsageError } from '../../../src/errors/index.js';

const digest = (label: string): string => createHash('sha256').update(label).digest('hex');

/** One raw request line to the socket; resolves with the reply line (or '' if the agent hangs up). */
function raw(socketPath: string, payload: string): Promise<string> {
  return new Promise((done, fail) => {
    const socket = connect({ path: socketPath });
    let text = '';
    socket.on('connect', () => socket.write(payload));
    socket.on('data', (b: Buffer) => (text += b.toString('utf8')));
    socket.on('close', () => done(text.trim()));
    socket.on('error', fail);
  });
}

let runtime: string;
const savedEnv = {
  XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR,
  MEDIAGIT_AGENT: process.env.MEDIAGIT_AGENT,
};

before(async () => {
  runtime = await mkdtemp(path.join(os.tmpdir(), 'mediagit-agent-unit-'));
  await chmod(runtime, 0o700);
});

after(async () => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await rm(runtime, { recursive: true, force: true });
});

test('durations: units, combinations, bounds, and a clear error', () => {
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('15m'), 900_000);
  assert.equal(parseDuration('2h'), 7_200_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  for (const bad of ['', '15', 'm', '-1m', '1.5h', '0s', '8d', '15 minutes', '1w']) {
    assert.throws(
      () => parseDuration(bad),
      (err: unknown) =>
        err instanceof UsageError &&
        err.exitCode === 2 &&
        /invalid duration/.test(err.message) &&
        err.hint !== undefined,
      bad,
    );
  }
  assert.throws(() => parseDuration('15'), /needs a unit/);
  assert.equal(formatDuration(900_000), '15m');
  assert.equal(formatDuration(5_430_000), '1h 30m');
  assert.equal(formatDuration(1_500), '2s');
});

describe('private folder checks', () => {
  test('creates the folder 0700 and accepts it', async () => {
    const dir = path.join(runtime, 'fresh');
    await ensurePrivateDir(dir);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    await ensurePrivateDir(dir);
  });

  test('refuses a folder others can enter, a symbolic link, and a plain file', async () => {
    const open = path.join(runtime, 'open');
    await mkdir(open, { mode: 0o700 });
    await chmod(open, 0o755);
    await assert.rejects(
      checkPrivateDir(open),
      (err: unknown) =>
        err instanceof AgentUnsafeError &&
        err.code === 'E_AGENT_UNSAFE' &&
        /mode 755/.test(err.message) &&
        err.hint !== undefined,
    );
    const target = path.join(runtime, 'target');
    await mkdir(target, { mode: 0o700 });
    const link = path.join(runtime, 'link');
    await symlink(target, link);
    await assert.rejects(ensurePrivateDir(link), /symbolic link/);
    const file = path.join(runtime, 'file');
    await writeFile(file, '');
    await assert.rejects(ensurePrivateDir(file), /not a folder/);
  });
});

describe('agent and client', () => {
  let agent: KeyAgent;
  let socketPath: string;

  beforeEach(async () => {
    process.env.XDG_RUNTIME_DIR = runtime;
    delete process.env.MEDIAGIT_AGENT;
    socketPath = agentSocketPath();
    agent = new KeyAgent({ socketPath, idleExitMs: 60_000 });
    assert.equal(await agent.start(), true);
  });

  after(async () => {
    await agent.stop();
  });

  test('socket is 0600 in a 0700 folder; a key is served only for the key file it was cached under', async () => {
    assert.equal((await lstat(socketPath)).mode & 0o777, 0o600);
    assert.equal((await lstat(path.dirname(socketPath))).mode & 0o777, 0o700);
    const master = randomBytes(32);
    const mine = digest('repo A key file');
    await cacheKey(mine, master, 60_000);
    const hit = await lookupCachedKey([digest('some other key file'), mine]);
    assert.ok(hit);
    assert.deepEqual(hit.master, master);
    assert.equal(hit.digest, mine);
    assert.ok(hit.expiresInMs > 55_000 && hit.expiresInMs <= 60_000);
    assert.equal(await lookupCachedKey([digest('repo B key file')]), null);
    assert.equal(await lookupCachedKey([]), null);
    const status = await agentStatus([mine]);
    assert.equal(status?.entries, 1);
    assert.equal(status?.pid, process.pid);
    assert.equal((await agentStatus([digest('repo B key file')]))?.expiresInMs, null);
    assert.equal(await forgetKeys([digest('repo B key file')]), 0);
    assert.equal(await forgetKeys([mine]), 1);
    assert.equal(await lookupCachedKey([mine]), null);
    await agent.stop();
  });

  test('MEDIAGIT_AGENT=0 skips the lookup', async () => {
    const mine = digest('k');
    await cacheKey(mine, randomBytes(32), 60_000);
    process.env.MEDIAGIT_AGENT = '0';
    assert.equal(await lookupCachedKey([mine]), null);
    delete process.env.MEDIAGIT_AGENT;
    assert.ok(await lookupCachedKey([mine]));
    await agent.stop();
  });

  test('a key whose verifier does not match is not used', async () => {
    const mine = digest('verifier');
    const master = randomBytes(32);
    const reply = await raw(
      socketPath,
      `${JSON.stringify({ v: 1, op: 'add', digest: mine, master: master.toString('base64'), verifier: agentVerifier(randomBytes(32), mine), ttlMs: 60_000 })}\n`,
    );
    assert.deepEqual(JSON.parse(reply), { ok: true, op: 'add' });
    assert.equal(await lookupCachedKey([mine]), null);
    await agent.stop();
  });

  test('entries expire after their timeout', async () => {
    const mine = digest('short');
    await cacheKey(mine, randomBytes(32), 1000);
    assert.ok(await lookupCachedKey([mine]));
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(await lookupCachedKey([mine]), null);
    assert.equal((await agentStatus([mine]))?.entries, 0);
    await agent.stop();
  });

  test('malformed, oversized, unknown and out-of-range requests are refused', async () => {
    const refused = async (payload: string, why: RegExp): Promise<void> => {
      const reply = JSON.parse(await raw(socketPath, payload)) as { ok: boolean; error?: string };
      assert.equal(reply.ok, false, payload.slice(0, 80));
      assert.match(reply.error ?? '', why);
    };
    await refused('not json\n', /not a JSON object/);
    await refused(`${JSON.stringify({ v: 2, op: 'ping' })}\n`, /protocol version/);
    await refused(`${JSON.stringify({ v: 1, op: 'dump' })}\n`, /unknown op/);
    await refused(
      `${JSON.stringify({ v: 1, op: 'get', digests: ['../etc/passwd'] })}\n`,
      /digests/,
    );
    await refused(
      `${JSON.stringify({ v: 1, op: 'add', digest: digest('x'), master: randomBytes(16).toString('base64'), verifier: digest('v'), ttlMs: 60_000 })}\n`,
      /32 bytes/,
    );
    await refused(
      `${JSON.stringify({ v: 1, op: 'add', digest: digest('x'), master: randomBytes(32).toString('base64'), verifier: digest('v'), ttlMs: 8 * 86_400_000 })}\n`,
      /ttlMs/,
    );
    await refused('x'.repeat(MAX_MESSAGE_BYTES + 10), /larger than/);
    await agent.stop();
  });

  test('forget --all wipes everything, stops the agent and removes its socket', async () => {
    await cacheKey(digest('a'), randomBytes(32), 60_000);
    await cacheKey(digest('b'), randomBytes(32), 60_000);
    assert.equal(await forgetAllKeys(), 2);
    await agent.closed;
    await assert.rejects(lstat(socketPath), /ENOENT/);
    await assert.rejects(
      forgetAllKeys(),
      (err: unknown) => err instanceof AgentUnavailableError && err.exitCode === 17,
    );
    assert.equal(await agentStatus([]), null);
  });

  test('a second agent on the same socket steps aside', async () => {
    const second = new KeyAgent({ socketPath });
    assert.equal(await second.start(), false);
    assert.ok(await agentStatus([]));
    await agent.stop();
  });
});

test('a hung agent costs at most the client timeouts, then the lookup gives up', async () => {
  process.env.XDG_RUNTIME_DIR = runtime;
  const socketPath = agentSocketPath();
  await rm(socketPath, { force: true });
  await ensurePrivateDir(path.dirname(socketPath));
  const silent = createServer(() => {});
  await new Promise<void>((done) => silent.listen(socketPath, done));
  try {
    const start = performance.now();
    assert.equal(await lookupCachedKey([digest('x')]), null);
    const elapsed = performance.now() - start;
    assert.ok(elapsed >= 400 && elapsed < 2000, `${elapsed} ms`);
  } finally {
    silent.close();
  }
});
