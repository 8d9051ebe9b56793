/**
 * mediagit server verifies uploads off its event loop (src/server/verifier.ts): a pack's records
 * go to worker threads while the rest of its body is still arriving, /health answers meanwhile,
 * and a record that does not match its ID, found on a worker, still refuses the whole pack.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import {
  describeRepository,
  encodeTestPack,
  http,
  startTestServer,
  storedObject,
  type TestServer,
} from '../support/server-harness.js';

const MiB = 1024 * 1024;

/** A chunk stored zstd-compressed (the worker decodes as well as hashing). */
async function chunk(size: number): Promise<{ kind: 'chunk'; oid: string; stored: Buffer }> {
  // Random halves and zero halves: zstd halves it, so there is a real payload to decode.
  const canonical = randomBytes(size);
  for (let at = 0; at < size; at += 8192) canonical.fill(0, at, Math.min(at + 4096, size));
  return { kind: 'chunk', ...(await storedObject('chunk', canonical, true)) };
}

/** Where record `i` of `records` ends in their pack. */
function recordEnd(records: readonly { stored: Buffer }[], i: number): number {
  let at = 9;
  for (let j = 0; j <= i; j++) at += 37 + records[j]!.stored.length;
  return at;
}

/** Starts a pack upload whose body the test writes itself; resolves with the answer. */
function openUpload(
  url: string,
  token: string,
  length: number,
): { req: ReturnType<typeof request>; answer: Promise<{ status: number; body: string }> } {
  const req = request(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/octet-stream',
      'content-length': String(length),
    },
  });
  const answer = once(req, 'response').then(async (args: unknown[]) => {
    const res = args[0] as IncomingMessage;
    const parts: Buffer[] = [];
    for await (const part of res) parts.push(part as Buffer);
    return { status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') };
  });
  req.on('error', () => undefined);
  return { req, answer };
}

interface VerificationHealth {
  workers: number;
  jobs_in_flight: number;
  queued_bytes: number;
  max_queued_bytes: number;
  verified_on_workers: number;
}

async function verification(server: TestServer): Promise<VerificationHealth> {
  const res = await http(`${server.url}/health/detailed`);
  assert.equal(res.status, 200);
  return res.json!['verification'] as VerificationHealth;
}

describe('mediagit server: verification on worker threads', () => {
  let server: TestServer;
  let write: string;

  before(async () => {
    server = await startTestServer({ config: '[server]\nverify_workers = 2\n' });
    write = await server.token('*', 'write', 'writer');
    await describeRepository(`${server.url}/pool`, write);
    await describeRepository(`${server.url}/pool-bad`, write);
  });
  after(() => server.close());

  test('records are verified while the pack is still arriving, and /health answers meanwhile', async () => {
    const records = await Promise.all(Array.from({ length: 6 }, () => chunk(2 * MiB)));
    const pack = encodeTestPack(records);
    const before = await verification(server);
    assert.equal(before.workers, 2);
    const { req, answer } = openUpload(`${server.url}/pool/objects/pack`, write, pack.length);
    // Half the pack: three whole records, then a part of the fourth.
    const half = recordEnd(records, 2) + 1000;
    req.write(pack.subarray(0, half));
    let seen = before;
    let healthAnswers = 0;
    while (seen.verified_on_workers < before.verified_on_workers + 3) {
      // Counted, not timed: a server that waits for the whole body never gets there.
      assert.ok(healthAnswers < 20_000, 'records were not verified while the body was arriving');
      assert.equal((await http(`${server.url}/health`)).status, 200);
      healthAnswers++;
      seen = await verification(server);
      await tick();
    }
    // The body is not complete, so the pack cannot have been answered: verification ran ahead of it.
    assert.ok(healthAnswers > 0);
    req.end(pack.subarray(half));
    const done = await answer;
    assert.equal(done.status, 200, done.body);
    assert.deepEqual(JSON.parse(done.body), { stored: 6, existing: 0 });
    const after = await verification(server);
    assert.equal(after.verified_on_workers, before.verified_on_workers + 6);
    assert.equal(after.jobs_in_flight, 0);
    assert.equal(after.queued_bytes, 0);
    for (const r of [records[0]!, records[5]!]) {
      const got = await http(`${server.url}/pool/chunks/${r.oid}`, { token: write });
      assert.equal(got.status, 200);
      assert.ok(got.body.equals(r.stored), 'the stored bytes are the uploaded ones');
    }
  });

  test('a record that does not match its ID, found on a worker, refuses the pack and stores nothing', async () => {
    const good = await chunk(MiB);
    const other = await chunk(MiB);
    const lying = { ...other, oid: randomBytes(32).toString('hex') };
    const res = await http(`${server.url}/pool-bad/objects/pack`, {
      token: write,
      body: encodeTestPack([good, lying]),
    });
    assert.equal(res.status, 422);
    assert.equal(res.json!['error'], 'invalid_object');
    assert.equal(res.json!['oid'], lying.oid);
    const check = await http(`${server.url}/pool-bad/chunks/check`, {
      token: write,
      json: { chunks: [good.oid, lying.oid] },
    });
    assert.deepEqual(check.json!['chunks'], [good.oid, lying.oid]);
  });

  test('a single PUT is verified on a worker: right bytes stored, wrong bytes a 422', async () => {
    const one = await chunk(3 * MiB);
    const before = await verification(server);
    const put = await http(`${server.url}/pool/chunks/${one.oid}`, {
      method: 'PUT',
      token: write,
      body: one.stored,
    });
    assert.equal(put.status, 201);
    assert.equal((await verification(server)).verified_on_workers, before.verified_on_workers + 1);
    const got = await http(`${server.url}/pool/chunks/${one.oid}`, { token: write });
    assert.ok(got.body.equals(one.stored));
    const wrong = await chunk(MiB);
    const bad = await http(`${server.url}/pool/chunks/${randomBytes(32).toString('hex')}`, {
      method: 'PUT',
      token: write,
      body: wrong.stored,
    });
    assert.equal(bad.status, 422);
    assert.equal(bad.json!['error'], 'invalid_object');
  });
});

/** Threads of a process (Linux: one folder per thread under /proc/<pid>/task). */
function threadsOf(server: TestServer): number {
  return readdirSync(`/proc/${server.process!.pid}/task`).length;
}

describe('mediagit server: verification threads start with the server', () => {
  test(
    '`mediagit server` has its verification threads before any request, not at the first push',
    {
      skip: !existsSync('/proc/self/task'),
    },
    async () => {
      // The same server with and without verification threads, each right after it printed its
      // address and before any request: the difference is the threads it started while starting.
      const counts: number[] = [];
      for (const workers of [2, 0]) {
        const server = await startTestServer({
          child: true,
          config: `[server]\nverify_workers = ${workers}\n`,
        });
        try {
          counts.push(threadsOf(server));
        } finally {
          await server.close();
        }
      }
      assert.equal(counts[0]! - counts[1]!, 2, `threads with 2 workers and with none: ${counts}`);
    },
  );
});
