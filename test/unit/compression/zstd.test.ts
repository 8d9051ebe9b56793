import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { constants, zstdCompressSync } from 'node:zlib';
import {
  Codec,
  decodePayload,
  decodePayloadSync,
  zstdFrameLength,
} from '../../../src/compression/index.js';
import { encodePayload, encodePayloadSync } from '../../../src/objects/index.js';

const MIB = 1024 * 1024;

test('a chunk decodes to exactly its stated length, sync and on the thread pool', async () => {
  const plain = Buffer.concat([Buffer.alloc(MIB / 2, 'pcm-frame '), randomBytes(MIB / 2)]);
  const sync = encodePayloadSync('chunk', plain, { level: 1, skip: false });
  const pooled = await encodePayload('chunk', plain, { level: 1, skip: false });
  assert.equal(sync.codec, Codec.zstd);
  assert.equal(pooled.codec, Codec.zstd);
  for (const payload of [sync.payload, pooled.payload]) {
    assert.ok(decodePayloadSync(Codec.zstd, payload, plain.length).equals(plain));
    assert.ok((await decodePayload(Codec.zstd, payload, plain.length)).equals(plain));
  }
});

test('a payload that inflates beyond its stated length is refused, not decoded without bound', async () => {
  const bomb = encodePayloadSync('chunk', Buffer.alloc(8 * MIB), { level: 1, skip: false });
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
  const encoded = encodePayloadSync('chunk', noise, { level: 1, skip: false });
  assert.equal(encoded.codec, Codec.raw);
  assert.equal(encoded.payload, noise);
  assert.throws(() => decodePayloadSync(7, noise, noise.length), /unknown codec 7/);
});

test('a zstd payload is exactly one frame: bytes after it are refused on every path', async () => {
  const plain = Buffer.alloc(300_000, 'wav-sample ');
  const frame = encodePayloadSync('chunk', plain, { level: 1, skip: false }).payload;
  const skippable = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]);
  for (const after of [
    Buffer.from('covert'),
    Buffer.alloc(1),
    zstdCompressSync(Buffer.from('a second frame')),
    skippable,
  ]) {
    const padded = Buffer.concat([frame, after]);
    const expected = new RegExp(`${after.length} bytes after the zstd frame`);
    assert.throws(() => decodePayloadSync(Codec.zstd, padded, plain.length), expected);
    await assert.rejects(decodePayload(Codec.zstd, padded, plain.length), expected);
  }
  assert.throws(
    () => decodePayloadSync(Codec.zstd, frame.subarray(0, frame.length - 1), plain.length),
    /truncated zstd frame/,
  );
});

test('zstdFrameLength walks every kind of frame and block without decoding', () => {
  const inputs = [
    Buffer.alloc(0),
    Buffer.from('x'),
    Buffer.alloc(5 * 128 * 1024 + 3, 7), // run-length blocks
    randomBytes(200_000), // raw blocks
    Buffer.from('scene graph node '.repeat(40_000)), // compressed blocks, several
  ];
  for (const input of inputs) {
    for (const checksum of [0, 1]) {
      const params = {
        [constants.ZSTD_c_compressionLevel]: 3,
        [constants.ZSTD_c_checksumFlag]: checksum,
      };
      // One-shot (content size in the header, often single-segment) and streamed (neither).
      const frames = [
        zstdCompressSync(input, { params }),
        zstdCompressSync(input, { params, chunkSize: 1024 }),
      ];
      for (const frame of frames) {
        assert.equal(zstdFrameLength(frame), frame.length, `${input.length} bytes, ${checksum}`);
        assert.ok(decodePayloadSync(Codec.zstd, frame, input.length).equals(input));
      }
    }
  }
  assert.throws(() => zstdFrameLength(Buffer.from('MGOB')), /truncated zstd frame/);
  assert.throws(() => zstdFrameLength(Buffer.from('not zstd at all')), /not a zstd frame/);
});
