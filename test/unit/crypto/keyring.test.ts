/**
 * Key files are planted as easily as any other file in a remote: a decoy with huge Argon2
 * parameters must be refused before Argon2 runs, the rest tried in a bounded, deterministic order,
 * and an unlock that cannot succeed must end with E_BAD_PASSPHRASE naming what it refused.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  ARGON2_BOUNDS,
  MAX_KEY_FILE_BYTES,
  MAX_KEY_FILES_TRIED,
  addKey,
  inspectKeyFiles,
  newMasterKey,
  removeKey,
  unlock,
  type Argon2Params,
} from '../../../src/crypto/index.js';
import { MemoryStore } from '../store/memory-store.js';

/** Cheap enough to run dozens of times in a test. */
const CHEAP: Argon2Params = { memoryKiB: 8 * 1024, iterations: 1, parallelism: 1 };

/** A well-formed key file with the given Argon2 parameters (its wrapped key opens nothing). */
function decoy(
  id: string,
  kdf: { memoryKiB: number; iterations: number; parallelism: number },
): Buffer {
  return Buffer.from(
    JSON.stringify({
      version: 1,
      id,
      created: '2000-01-01T00:00:00.000Z',
      label: 'decoy',
      kdf: { name: 'argon2id', ...kdf, salt: randomBytes(16).toString('base64') },
      wrapped: {
        cipher: 'aes-256-gcm',
        nonce: randomBytes(12).toString('base64'),
        ciphertext: randomBytes(48).toString('base64'),
      },
    }),
  );
}

const HUGE = { memoryKiB: 4 * 1024 * 1024, iterations: 64, parallelism: 4 };

describe('key files against decoys', () => {
  test('a decoy with m = 4 GiB, t = 64 is refused before Argon2 runs: E_BAD_PASSPHRASE naming it', async () => {
    const store = new MemoryStore();
    await store.put('keys/00decoy000000000', decoy('00decoy000000000', HUGE));
    await assert.rejects(unlock(store, 'anything'), (err: unknown) => {
      assert.equal((err as { code?: unknown }).code, 'E_BAD_PASSPHRASE');
      assert.equal((err as { exitCode?: unknown }).exitCode, 14);
      const message = String((err as Error).message);
      assert.match(message, /keys\/00decoy000000000 \(Argon2 parameters out of range/);
      assert.match(message, /m=4194304 KiB, t=64/);
      return true;
    });
  });

  test('beside a decoy, the real key still unlocks (the decoy is never run)', async () => {
    const store = new MemoryStore();
    const master = newMasterKey();
    const real = await addKey(store, master, 'right', 'real', CHEAP);
    await store.put('keys/00decoy000000000', decoy('00decoy000000000', HUGE));
    await store.put('keys/junk', Buffer.from('not json at all'));
    const unlocked = await unlock(store, 'right');
    assert.equal(unlocked.keyId, real.id);
    assert.ok(unlocked.master.equals(master));
  });

  test('bounds: memory 8 MiB-1 GiB, t 1-16, p 1-16, m×t at most 2 GiB; lengths checked', async () => {
    const store = new MemoryStore();
    const cases: [
      string,
      { memoryKiB: number; iterations: number; parallelism: number },
      boolean,
    ][] = [
      ['0000000000000001', { memoryKiB: 1024 * 1024, iterations: 2, parallelism: 4 }, true],
      ['0000000000000002', { memoryKiB: 1024 * 1024, iterations: 3, parallelism: 4 }, false],
      ['0000000000000003', { memoryKiB: 2 * 1024 * 1024, iterations: 1, parallelism: 4 }, false],
      ['0000000000000004', { memoryKiB: 64 * 1024, iterations: 17, parallelism: 4 }, false],
      ['0000000000000005', { memoryKiB: 64 * 1024, iterations: 3, parallelism: 17 }, false],
      ['0000000000000006', { memoryKiB: 4 * 1024, iterations: 3, parallelism: 4 }, false],
      ['0000000000000007', { memoryKiB: 64 * 1024, iterations: 16, parallelism: 16 }, true],
      ['0000000000000008', { memoryKiB: 65536.5, iterations: 3, parallelism: 4 }, false],
    ];
    for (const [id, kdf] of cases) await store.put(`keys/${id}`, decoy(id, kdf));
    const short = JSON.parse(decoy('0000000000000009', CHEAP).toString()) as {
      kdf: { salt: string };
    };
    short.kdf.salt = randomBytes(4).toString('base64');
    await store.put('keys/0000000000000009', Buffer.from(JSON.stringify(short)));
    const { usable, refused } = await inspectKeyFiles(store);
    assert.deepEqual(
      usable.map((f) => f.id).sort(),
      cases.filter(([, , ok]) => ok).map(([id]) => id),
    );
    assert.equal(refused.length, cases.filter(([, , ok]) => !ok).length + 1);
    assert.equal(ARGON2_BOUNDS.maxMemoryKiB, 1024 * 1024);
  });

  test('key files are tried cheapest first, then by ID, and at most 16 of them', async () => {
    const store = new MemoryStore();
    const master = newMasterKey();
    // The real key is the most expensive of 17: it sorts last, past the limit.
    const real = await addKey(store, master, 'right', 'real', { ...CHEAP, iterations: 2 });
    for (let i = 0; i < MAX_KEY_FILES_TRIED; i++) {
      const id = `d${String(i).padStart(15, '0')}`;
      await store.put(`keys/${id}`, decoy(id, CHEAP));
    }
    const { usable } = await inspectKeyFiles(store);
    assert.equal(usable.at(-1)!.id, real.id);
    assert.deepEqual(
      usable.slice(0, -1).map((f) => f.id),
      usable
        .slice(0, -1)
        .map((f) => f.id)
        .sort(),
    );
    await assert.rejects(unlock(store, 'right'), (err: unknown) => {
      assert.equal((err as { code?: unknown }).code, 'E_BAD_PASSPHRASE');
      assert.match(String((err as Error).message), /1 more key files were not tried/);
      return true;
    });
    // With one decoy gone, the real key is within the limit again.
    await removeKey(store, 'd000000000000000', 'none');
    assert.equal((await unlock(store, 'right')).keyId, real.id);
  });

  test('a key file too large to be one is never read; a decoy can be removed', async () => {
    const store = new MemoryStore();
    const master = newMasterKey();
    const real = await addKey(store, master, 'right', 'real', CHEAP);
    await store.put('keys/00big0000000000', Buffer.alloc(MAX_KEY_FILE_BYTES + 1, 0x20));
    await store.put('keys/00decoy000000000', decoy('00decoy000000000', HUGE));
    const { refused } = await inspectKeyFiles(store);
    assert.deepEqual(
      refused.map((r) => r.key),
      ['keys/00big0000000000', 'keys/00decoy000000000'],
    );
    assert.match(refused[0]!.reason, /more than a key file can be/);
    await removeKey(store, '00decoy000000000', real.id);
    assert.equal((await inspectKeyFiles(store)).refused.length, 1);
    assert.equal((await unlock(store, 'right')).keyId, real.id);
  });
});
