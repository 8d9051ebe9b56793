/**
 * Ref updates through mediagit server tell the truth about the storage's answer: a backend that
 * cannot tell whether an update took effect (RefConflictError) is a 409 ref_conflict with the
 * ref's current value — the client re-reads and decides — never a 500.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { RefConflictError } from '../../src/errors/index.js';
import { loadServerConfig, mintToken, startServer } from '../../src/server/index.js';
import type { Store } from '../../src/store/index.js';
import { describeRepository, http, uploadCommit } from '../support/server-harness.js';

/** The store, with compareAndSwapRef failing as `failure()` says while it returns an error. */
function failingCas(store: Store, failure: () => Error | undefined): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (prop === 'compareAndSwapRef')
        return (...args: unknown[]) => {
          const err = failure();
          return err
            ? Promise.reject(err)
            : (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

test('a RefConflictError from the storage is a 409 ref_conflict with the current value, not a 500', async () => {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'mediagit-ref-truth-'));
  let fail = false;
  const config = await loadServerConfig({
    configText: `[server]\nhost = "127.0.0.1"\nport = 0\n[storage]\nbackend = "local"\n[storage.local]\npath = "${scratch}/data"\nfsync = false\n`,
    env: { MEDIAGIT_JWT_SECRET: randomBytes(32).toString('hex') },
    cwd: scratch,
  });
  const server = await startServer(config, {
    log: () => {},
    audit: { write: () => {}, close: async () => {} },
    wrapStore: (store) =>
      failingCas(store, () =>
        fail
          ? new RefConflictError('ref refs/heads/main: update could not be confirmed')
          : undefined,
      ),
  });
  try {
    const token = await mintToken(config.jwtSecret!, { repo: '*', role: 'write', sub: 'w' }, 600);
    const base = `${server.url}/truth`;
    await describeRepository(base, token);
    const a = await uploadCommit(base, token, [], 'a');
    const b = await uploadCommit(base, token, [a], 'b');
    const created = await http(`${base}/refs`, {
      token,
      json: { name: 'refs/heads/main', expected: null, next: a },
    });
    assert.equal(created.status, 200);
    fail = true;
    const res = await http(`${base}/refs`, {
      token,
      json: { name: 'refs/heads/main', expected: { oid: a, version: a }, next: b },
    });
    assert.equal(res.status, 409, res.body.toString('utf8'));
    assert.equal(res.json?.['error'], 'ref_conflict');
    assert.equal((res.json?.['current'] as { oid?: string } | null)?.oid, a);
  } finally {
    await server.close();
    await rm(scratch, { recursive: true, force: true });
  }
});
