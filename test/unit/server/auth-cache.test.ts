/**
 * Verified JWTs are remembered until they expire: the same token on every request of a push is
 * checked once, its expiry is still honoured on each, and nothing else is ever taken on trust.
 */
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { test } from 'node:test';
import { AuthFailure, Authenticator, mintToken } from '../../../src/server/auth.js';

const SECRET = 'a-test-secret-of-some-length-0123456789';

function authenticator(clock: { now: number }): Authenticator {
  return new Authenticator({
    jwtSecret: SECRET,
    apiKeysEnabled: false,
    anonymousRead: false,
    systemStore: () => Promise.reject(new Error('no system store in this test')),
    now: () => clock.now,
  });
}

const failsWith =
  (reason: string) =>
  (err: unknown): boolean => {
    assert.ok(err instanceof AuthFailure, String(err));
    assert.equal(err.reason, reason);
    return true;
  };

test('a verified token is served from the cache until its expiry, then refused as expired', async () => {
  const clock = { now: Date.now() };
  const auth = authenticator(clock);
  const token = await mintToken(SECRET, { sub: 'alice', repo: 'game', role: 'write' }, 60);
  const first = await auth.authenticate(`Bearer ${token}`);
  assert.equal(first.sub, 'alice');
  assert.equal(first.repos.get('game'), 'write');
  // Cached: the same identity object, no second verification.
  assert.equal(await auth.authenticate(`Bearer ${token}`), first);
  clock.now += 61_000;
  await assert.rejects(auth.authenticate(`Bearer ${token}`), failsWith('expired'));
  // And stays refused (the entry is gone, the token itself is expired).
  await assert.rejects(auth.authenticate(`Bearer ${token}`), failsWith('expired'));
});

test('the cache never vouches for another token: a tampered or foreign one is still checked', async () => {
  const clock = { now: Date.now() };
  const auth = authenticator(clock);
  const token = await mintToken(SECRET, { sub: 'alice', repo: 'game', role: 'read' }, 60);
  await auth.authenticate(`Bearer ${token}`);
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
  claims['repos'] = { game: 'admin' };
  const forged = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
  await assert.rejects(auth.authenticate(`Bearer ${forged}`), failsWith('bad_signature'));
  const foreign = await mintToken(
    'another-secret-entirely-0123456789abcdef',
    {
      sub: 'mallory',
      repo: '*',
      role: 'admin',
    },
    60,
  );
  await assert.rejects(auth.authenticate(`Bearer ${foreign}`), failsWith('bad_signature'));
});

test('the secret is imported as a key once, by warm(), not again for each token checked', async (t) => {
  const auth = authenticator({ now: Date.now() });
  const tokens = await Promise.all(
    ['alice', 'bob', 'carol'].map((sub) =>
      mintToken(SECRET, { sub, repo: 'game', role: 'read' }, 60),
    ),
  );
  // Counted on the Web Crypto object jose and the server share (globalThis.crypto).
  const subtle = webcrypto.subtle;
  const importKey = subtle.importKey;
  let imports = 0;
  Object.defineProperty(subtle, 'importKey', {
    configurable: true,
    value: (...args: unknown[]): unknown => {
      imports++;
      return Reflect.apply(importKey, subtle, args);
    },
  });
  t.after(() => delete (subtle as { importKey?: unknown }).importKey);
  await auth.warm();
  assert.equal(imports, 1, 'warm() imports the key');
  for (const token of tokens) await auth.authenticate(`Bearer ${token}`);
  assert.equal(imports, 1, `${imports - 1} more imports for 3 tokens`);
});
