/**
 * The server's bounds in isolation: JSON nesting measured without parsing, bytes in flight per
 * client and per server, and the audit log's throttle on failure lines.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuditLog } from '../../../src/server/audit.js';
import { nestingDepth } from '../../../src/server/body.js';
import { HttpError } from '../../../src/server/errors.js';
import { InFlightBudget } from '../../../src/server/inflight.js';

test('nestingDepth counts arrays and objects, not brackets inside strings', () => {
  assert.equal(nestingDepth('{}'), 1);
  assert.equal(nestingDepth('{"a":[1,{"b":[]}]}'), 4);
  assert.equal(nestingDepth('{"a":"[[[[{{{{\\"[[["}'), 1);
  assert.equal(nestingDepth('['.repeat(100_000) + ']'.repeat(100_000)), 100_000);
  assert.equal(nestingDepth('"plain"'), 0);
});

test('InFlightBudget: 429 past a client budget, 503 past the server budget, released once', () => {
  const budget = new InFlightBudget({ perIdentity: 100, total: 150 });
  const a1 = budget.reserve('a', 60);
  const status = (fn: () => unknown): number => {
    try {
      fn();
      return 200;
    } catch (err) {
      assert.ok(err instanceof HttpError);
      assert.equal(err.headers['retry-after'], '1');
      return err.status;
    }
  };
  assert.equal(
    status(() => budget.reserve('a', 60)),
    429,
  );
  const b1 = budget.reserve('b', 80);
  assert.equal(
    status(() => budget.reserve('c', 20)),
    503,
  );
  a1();
  a1();
  assert.equal(budget.reserved, 80);
  const c1 = budget.reserve('c', 20);
  // A single body larger than a budget may go alone (it is bounded by the endpoint's limit).
  b1();
  c1();
  const big = budget.reserve('d', 1000);
  assert.equal(budget.reserved, 1000);
  big();
  assert.equal(budget.reserved, 0);
});

test('AuditLog: writes always logged; failures throttled per client and cause, with one summary line', async () => {
  const lines: Record<string, unknown>[] = [];
  let now = 1_000_000;
  const log = new AuditLog(
    {
      write: (text) => lines.push(JSON.parse(text) as Record<string, unknown>),
      close: async () => {},
    },
    { linesPerInterval: 3, intervalMs: 60_000 },
    () => now,
  );
  const failure = (ip: string, reason: string) =>
    log.record({
      event: 'auth_failure',
      repo: null,
      identity: null,
      ip,
      target: 'GET /:repo/refs',
      status: 401,
      reason,
    });
  for (let i = 0; i < 100; i++) failure('10.0.0.1', 'bad_signature');
  failure('10.0.0.1', 'expired');
  failure('10.0.0.2', 'bad_signature');
  for (let i = 0; i < 10; i++)
    log.record({
      event: 'put',
      repo: 'r',
      identity: 'ada',
      ip: '10.0.0.1',
      target: 'chunks/x',
      status: 201,
    });
  assert.equal(lines.filter((l) => l['event'] === 'auth_failure').length, 5);
  assert.equal(lines.filter((l) => l['event'] === 'put').length, 10);
  now += 60_000;
  failure('10.0.0.1', 'bad_signature');
  const summary = lines.find((l) => l['event'] === 'failures_suppressed');
  assert.deepEqual(
    { ip: summary?.['ip'], reason: summary?.['reason'], count: summary?.['count'] },
    { ip: '10.0.0.1', reason: 'bad_signature', count: 97 },
  );
  assert.equal(lines.at(-1)?.['event'], 'auth_failure');
  await log.close();
});
