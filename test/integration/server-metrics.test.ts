/**
 * Prometheus metrics of mediagit server: served on their own listener, valid for `promtool check
 * metrics` (skipped with a message when promtool is not installed: `apt-get install prometheus`),
 * and counting exactly what the test sent and received.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  describeRepository,
  encodeTestPack,
  http,
  startTestServer,
  storedObject,
  type TestServer,
} from '../support/server-harness.js';

const promtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

function value(text: string, series: string): number {
  const escaped = series.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  assert.ok(match, `no series ${series}`);
  return Number(match[1]);
}

async function scrape(server: TestServer): Promise<string> {
  const res = await fetch(server.metricsUrl!);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return res.text();
}

describe('mediagit server: metrics', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { MEDIAGIT_METRICS_ENABLED: 'true' } });
  });
  after(() => server.close());

  test('metrics listen on their own port; the API port has no /metrics', async () => {
    assert.ok(server.metricsUrl);
    assert.notEqual(new URL(server.metricsUrl).port, new URL(server.url).port);
    assert.equal(new URL(server.metricsUrl).hostname, '127.0.0.1');
    assert.notEqual((await http(`${server.url}/metrics`)).status, 200);
  });

  test('counters match what was uploaded, stored, deduplicated and downloaded', async () => {
    const token = await server.token('*', 'write', 'metrics');
    await describeRepository(`${server.url}/metered`, token);
    const before = await scrape(server);
    const base0 = value(before, 'mediagit_bytes_uploaded_total');
    let sent = 0;
    const compressible = await Promise.all(
      Array.from({ length: 5 }, (_, i) => storedObject('chunk', Buffer.alloc(50_000, i + 1), true)),
    );
    for (const c of compressible) {
      assert.equal(
        (
          await http(`${server.url}/metered/chunks/${c.oid}`, {
            method: 'PUT',
            token,
            body: c.stored,
          })
        ).status,
        201,
      );
      sent += c.stored.length;
    }
    // The same chunk again (deduplicated), and a pack of new random ones.
    assert.equal(
      (
        await http(`${server.url}/metered/chunks/${compressible[0]!.oid}`, {
          method: 'PUT',
          token,
          body: compressible[0]!.stored,
        })
      ).status,
      200,
    );
    sent += compressible[0]!.stored.length;
    const random = await Promise.all(
      Array.from({ length: 3 }, () => storedObject('chunk', randomBytes(1000))),
    );
    const pack = encodeTestPack(random.map((r) => ({ kind: 'chunk' as const, ...r })));
    assert.deepEqual(
      (await http(`${server.url}/metered/objects/pack`, { token, body: pack })).json,
      { stored: 3, existing: 0 },
    );
    sent += pack.length;
    const got = await http(`${server.url}/metered/chunks/${random[0]!.oid}`, { token });
    assert.equal(got.status, 200);

    const text = await scrape(server);
    assert.equal(value(text, 'mediagit_bytes_uploaded_total') - base0, sent);
    assert.equal(value(text, 'mediagit_objects_stored_total'), 8);
    assert.equal(value(text, 'mediagit_bytes_downloaded_total'), random[0]!.stored.length);
    const storedBytes =
      compressible.reduce((n, c) => n + c.stored.length, 0) +
      random.reduce((n, r) => n + r.stored.length, 0);
    assert.equal(value(text, 'mediagit_bytes_stored_total'), storedBytes);
    assert.equal(
      value(text, 'mediagit_dedup_ratio'),
      (storedBytes + compressible[0]!.stored.length) / storedBytes,
    );
    assert.ok(
      value(text, 'mediagit_compression_ratio') > 10,
      'runs of one byte compress very well',
    );
    assert.ok(
      value(
        text,
        'mediagit_request_duration_seconds_count{route="/:repo/chunks/:oid",method="PUT",status="201"}',
      ) >= 5,
    );
    assert.ok(
      value(
        text,
        'mediagit_request_duration_seconds_count{route="/:repo/objects/pack",method="POST",status="200"}',
      ) >= 1,
    );
  });

  test(
    '`promtool check metrics` accepts the exposition',
    { skip: promtool ? false : 'promtool not installed (apt-get install -y prometheus)' },
    async () => {
      // Make every label combination appear, errors included.
      await http(`${server.url}/r/refs`);
      await http(`${server.url}/Bad/refs`);
      const text = await scrape(server);
      const result = await new Promise<{ code: number | null; output: string }>(
        (resolve, reject) => {
          const child = spawn('promtool', ['check', 'metrics'], {
            stdio: ['pipe', 'pipe', 'pipe'],
          });
          let output = '';
          child.stdout.on('data', (b: Buffer) => (output += b.toString()));
          child.stderr.on('data', (b: Buffer) => (output += b.toString()));
          child.on('error', reject);
          child.on('close', (code) => resolve({ code, output }));
          child.stdin.end(text);
        },
      );
      assert.equal(result.code, 0, result.output);
      assert.equal(result.output.trim(), '', result.output);
    },
  );

  test('two servers in one process keep separate registries', async () => {
    const other = await startTestServer({ env: { MEDIAGIT_METRICS_ENABLED: 'true' } });
    try {
      const text = await scrape(other);
      assert.equal(value(text, 'mediagit_bytes_uploaded_total'), 0);
      assert.equal(value(text, 'mediagit_objects_stored_total'), 0);
    } finally {
      await other.close();
    }
  });
});
