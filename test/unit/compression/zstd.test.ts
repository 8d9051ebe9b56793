import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  Codec,
  decodePayload,
  decodePayloadSync,
  encodePayload,
  encodePayloadSync,
} from '../../../src/compression/index.js';

const MIB = 1024 * 1024;

test('a chunk decodes to exactly its stated length, sync and on the thread pool', async () => {
  const plain = Buffer.concat([Buffer.alloc(MIB / 2, 'pcm-frame '), randomBytes(MIB / 2)]);
  const sync = encodePayloadSync(plain, { level: 1, skip: false });
  const pooled = await encodePayload(plain, { level: 1, skip: false });
  assert.equal(sync.codec, Codec.zstd);
  assert.equal(pooled.codec, Codec.zstd);
  for (const payload of [sync.payload, pooled.payload]) {
    assert.ok(decodePayloadSync(Codec.zstd, payload, plain.length).equals(plain));
    assert.ok((await decodePayload(Codec.zstd, payload, plain.length)).equals(plain));
  }
});

test('a payload that inflates beyond its stated length is refused, not decoded without bound', async () => {
  const bomb = encodePayloadSync(Buffer.alloc(8 * MIB), { level: 1, skip: false });
  assert.equal(bomb.codec, Codec.zstd);
  assert.ok(bomb.payload.length < 4096);
  assert.throws(
    () => decodePayloadSync(Codec.zstd, bomb.payload, MIB),
    /(exceed|larger|too large|maxOutputLength|Cannot create a Buffer)/i,
  );
  await assert.rejects(
    decodePayload(Codec.zstd, bomb.payload, MIB),
    /(exceed|larger|too large|maxOutputLength|Cannot create a Buffer)/i,
  );
});

test('incompressible chunks stay raw, and an unknown codec is an error', () => {
  const noise = randomBytes(256 * 1024);
  const encoded = encodePayloadSync(noise, { level: 1, skip: false });
  assert.equal(encoded.codec, Codec.raw);
  assert.equal(encoded.payload, noise);
  assert.throws(() => decodePayloadSync(7, noise, noise.length), /unknown codec 7/);
});
