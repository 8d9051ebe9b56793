import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { newMasterKey } from '../../../src/crypto/index.js';
import { EncryptedSealer, sha256Hex } from '../../../src/objects/index.js';

const sealer = new EncryptedSealer(newMasterKey());
const payload = Buffer.from('texture bytes '.repeat(100));
const oid = sealer.oidOf('chunk', payload);

test('keyed OIDs differ from plain SHA-256 and between repositories', () => {
  assert.notEqual(oid, sha256Hex(payload));
  assert.notEqual(new EncryptedSealer(newMasterKey()).oidOf('chunk', payload), oid);
  assert.equal(sealer.oidOf('chunk', payload), oid);
});

test('sealed objects round-trip and hide their plaintext and exact size', () => {
  const stored = sealer.seal('chunk', oid, 0, payload.length, payload);
  assert.equal(stored.includes(Buffer.from('texture bytes')), false);
  const opened = sealer.open('chunk', oid, stored);
  assert.deepEqual(opened.payload, payload);
  assert.equal(opened.plainLength, payload.length);
  assert.ok(stored.length > payload.length + 16);
  // Two seals of the same object differ (fresh nonce), so equal content is not linkable at rest.
  assert.notDeepEqual(sealer.seal('chunk', oid, 0, payload.length, payload), stored);
});

test('tampering, swapping, retyping, truncation and foreign keys are all detected', () => {
  const stored = sealer.seal('chunk', oid, 0, payload.length, payload);
  const flipped = Buffer.from(stored);
  flipped[60]! ^= 0x10;
  assert.throws(() => sealer.open('chunk', oid, flipped), /authentication failed/);
  const otherOid = sealer.oidOf('chunk', Buffer.from('other'));
  assert.throws(() => sealer.open('chunk', otherOid, stored), /authentication failed/);
  const retyped = Buffer.from(stored);
  retyped[5] = 3;
  assert.throws(() => sealer.open('tree', oid, retyped), /authentication failed/);
  assert.throws(
    () => sealer.open('chunk', oid, stored.subarray(0, stored.length - 1)),
    /authentication failed/,
  );
  assert.throws(() => sealer.open('chunk', oid, stored.subarray(0, 20)), /truncated/);
  assert.throws(
    () => new EncryptedSealer(newMasterKey()).open('chunk', oid, stored),
    /authentication failed/,
  );
});

test('the thread-pool paths (sealAsync/openAsync) produce and accept the same format as seal/open', async () => {
  const viaPool = await sealer.sealAsync('chunk', oid, 0, payload.length, payload);
  assert.deepEqual(sealer.open('chunk', oid, viaPool).payload, payload);
  const viaSync = sealer.seal('chunk', oid, 0, payload.length, payload);
  assert.deepEqual((await sealer.openAsync('chunk', oid, viaSync)).payload, payload);
  assert.equal(viaPool.length, viaSync.length);
  const flipped = Buffer.from(viaPool);
  flipped[40]! ^= 0x04;
  await assert.rejects(sealer.openAsync('chunk', oid, flipped), /authentication failed/);
  await assert.rejects(
    sealer.openAsync('chunk', sealer.oidOf('chunk', Buffer.from('x')), viaPool),
    /authentication failed/,
  );
  await assert.rejects(
    sealer.openAsync('chunk', oid, viaPool.subarray(0, viaPool.length - 3)),
    /authentication failed/,
  );
});

test('objects spanning many cipher steps round-trip through every path, and as pieces', async () => {
  // An odd size, so the last 64 KiB step is partial; big enough that openAsync takes WebCrypto.
  const big = randomBytes(300_001);
  const bigOid = sealer.oidOf('chunk', big);
  const stored = sealer.seal('chunk', bigOid, 0, big.length, big);
  assert.ok(sealer.open('chunk', bigOid, stored).payload.equals(big));
  assert.ok((await sealer.openAsync('chunk', bigOid, stored)).payload.equals(big));
  const viaParts = Buffer.concat(sealer.sealParts('chunk', bigOid, 0, big.length, big));
  assert.ok((await sealer.openAsync('chunk', bigOid, viaParts)).payload.equals(big));

  const opened = sealer.openPieces('chunk', bigOid, viaParts);
  assert.ok(opened.pieces.length > 1, 'left in the pieces the cipher produced');
  assert.ok(Buffer.concat(opened.pieces).equals(big));
  assert.equal(sealer.oidOfPieces('chunk', opened.pieces), bigOid);

  const flipped = Buffer.from(viaParts);
  flipped[flipped.length - 5000]! ^= 0x01;
  assert.throws(() => sealer.openPieces('chunk', bigOid, flipped), /authentication failed/);
  assert.throws(() => sealer.open('chunk', bigOid, flipped), /authentication failed/);
  await assert.rejects(sealer.openAsync('chunk', bigOid, flipped), /authentication failed/);
});

test('openPieces gives exactly the payload whatever its size against the cipher steps and padding', () => {
  const step = 64 * 1024;
  for (const codec of [0, 1]) {
    for (const size of [
      0,
      1,
      16,
      step - 18,
      step - 17,
      step - 16,
      step,
      step + 1,
      2 * step - 17,
      3 * step + 12_345,
    ]) {
      const payload = randomBytes(size);
      const oid = sealer.oidOf('chunk', payload);
      const stored = sealer.seal('chunk', oid, codec, size + 7, payload);
      const opened = sealer.openPieces('chunk', oid, stored);
      const label = `codec ${codec}, ${size} bytes`;
      assert.equal(opened.codec, codec, `codec survives (${label})`);
      assert.equal(opened.plainLength, size + 7, `canonical length survives (${label})`);
      assert.ok(Buffer.concat(opened.pieces).equals(payload), `payload (${label})`);
      assert.ok(opened.pieces.every((piece) => piece.length > 0));
      // Raw payloads come in cipher steps (hashed and written as they are); a compressed one in a
      // single piece, so zstd reads it without a joined copy.
      if (codec === 0)
        assert.ok(
          opened.pieces.every((piece) => piece.length <= step),
          label,
        );
      else assert.equal(opened.pieces.length, size > 0 ? 1 : 0, label);
      assert.ok(sealer.open('chunk', oid, stored).payload.equals(payload));
    }
  }
});
