/**
 * Bytes after an object are refused wherever objects are decoded (issue 15, point 6): after a zstd
 * frame, after a raw payload, after an encrypted record's padding, on the main thread, in the chunk
 * workers' code and in the server's upload verification.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, open, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_CHUNKING } from '../../../src/chunking/index.js';
import { aesGcmSeal, newMasterKey, padme, randomNonce } from '../../../src/crypto/index.js';
import { ObjectCorruptError } from '../../../src/errors/index.js';
import {
  CIPHER_AES_256_GCM,
  ENVELOPE_HEADER_SIZE,
  EncryptedSealer,
  ObjectDatabase,
  deriveSubKeys,
  oidToBytes,
  writeEnvelopeHeader,
  type Oid,
} from '../../../src/objects/index.js';
import { LocalChunks } from '../../../src/workers/index.js';
import { HttpError } from '../../../src/server/errors.js';
import { verifyUpload } from '../../../src/server/verify.js';
import { LocalStore, chunkKey } from '../../../src/store/index.js';

async function freshStore(): Promise<{ dir: string; store: LocalStore }> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-trailing-'));
  const store = new LocalStore(dir);
  await store.initialize();
  return { dir, store };
}

const isCorrupt = (oid: Oid, reason: RegExp) => (err: unknown) =>
  err instanceof ObjectCorruptError && err.oid === oid && reason.test(err.message);

/** Every client-side decoder of a stored chunk: async read, sync open, worker restore and adopt. */
async function assertRefusedEverywhere(
  dir: string,
  store: LocalStore,
  master: Buffer | null,
  oid: Oid,
  stored: Buffer,
  size: number,
  reason: RegExp,
): Promise<void> {
  const sealer = master ? new EncryptedSealer(master) : undefined;
  const odb = new ObjectDatabase(store, { compressionLevel: 1, ...(sealer ? { sealer } : {}) });
  const path = store.pathOf(chunkKey(oid));
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, stored);
  await assert.rejects(odb.read('chunk', oid), isCorrupt(oid, reason));
  await assert.rejects(odb.openStored('chunk', oid, stored), isCorrupt(oid, reason));
  assert.throws(() => odb.openStoredSync('chunk', oid, stored), isCorrupt(oid, reason));
  const chunks = new LocalChunks({
    root: dir,
    fsync: false,
    compressionLevel: 1,
    master,
    chunking: DEFAULT_CHUNKING,
  });
  const target = await open(join(dir, 'restored'), 'w');
  try {
    assert.throws(() => chunks.restoreInto(oid, target.fd, 0, size), isCorrupt(oid, reason));
  } finally {
    await target.close();
  }
  assert.throws(() => chunks.adopt(oid, Buffer.from(stored)), isCorrupt(oid, reason));
}

test('a plain chunk with bytes after its zstd frame or raw payload is corrupt on every read path', async () => {
  const { dir, store } = await freshStore();
  const odb = new ObjectDatabase(store, { compressionLevel: 1 });
  const compressible = Buffer.from('pcm silence '.repeat(30_000));
  const noise = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 251));
  const packed = await odb.putChunk(compressible, { skipCompression: false });
  const raw = await odb.putChunk(noise, { skipCompression: true });
  assert.equal(packed.compressed, true);
  for (const [put, size, reason] of [
    [packed, compressible.length, /6 bytes after the zstd frame/],
    [raw, noise.length, /decoded 100006 bytes, header says 100000/],
  ] as const) {
    const stored = await readFile(store.pathOf(chunkKey(put.oid)));
    const padded = Buffer.concat([stored, Buffer.from('covert')]);
    await assertRefusedEverywhere(dir, store, null, put.oid, padded, size, reason);
  }
});

test('the server refuses an upload with bytes after its zstd frame (422 naming the object)', async () => {
  const { store } = await freshStore();
  const odb = new ObjectDatabase(store, { compressionLevel: 1 });
  const plain = Buffer.from('texture row '.repeat(20_000));
  const { oid } = await odb.putChunk(plain, { skipCompression: false });
  const stored = await readFile(store.pathOf(chunkKey(oid)));
  const options = {
    mode: 'plain',
    maxChunkBytes: 64 * 1024 * 1024,
    maxObjectBytes: 64 * 1024 * 1024,
  } as const;
  assert.equal((await verifyUpload('chunk', oid, stored, options)).canonicalLength, plain.length);
  await assert.rejects(
    verifyUpload('chunk', oid, Buffer.concat([stored, Buffer.alloc(4096)]), options),
    (err: unknown) =>
      err instanceof HttpError &&
      err.status === 422 &&
      err.extra['oid'] === oid &&
      /4096 bytes after the zstd frame/.test(err.message),
  );
});

/**
 * An encrypted chunk sealed the way EncryptedSealer does, but with an inner record of our choosing:
 * what a key holder could write to hide bytes after the payload.
 */
function sealInner(master: Buffer, oid: Oid, inner: Buffer): Buffer {
  const header = Buffer.alloc(ENVELOPE_HEADER_SIZE);
  writeEnvelopeHeader(header, 'chunk', 0, 0, CIPHER_AES_256_GCM);
  const nonce = randomNonce();
  const aad = Buffer.concat([header, oidToBytes(oid)]);
  return Buffer.concat([header, nonce, aesGcmSeal(deriveSubKeys(master).data, nonce, inner, aad)]);
}

function innerRecord(payload: Buffer, length: number): Buffer {
  const inner = Buffer.alloc(length);
  inner.writeUInt8(0, 0);
  inner.writeBigUInt64BE(BigInt(payload.length), 1);
  inner.writeBigUInt64BE(BigInt(payload.length), 9);
  payload.copy(inner, 17);
  return inner;
}

test('an encrypted chunk with bytes after its padding, or nonzero padding, is corrupt', async () => {
  const { dir, store } = await freshStore();
  const master = newMasterKey();
  const sealer = new EncryptedSealer(master);
  // Over 64 KiB, so the async read deciphers on the thread pool (its own parsing path) too.
  const payload = Buffer.from(Array.from({ length: 90_001 }, (_, i) => (i * 31) % 256));
  const oid = sealer.oidOf('chunk', payload);
  const length = padme(17 + payload.length);
  assert.ok(length > 17 + payload.length, 'this size has padding to tamper with');

  const honest = sealInner(master, oid, innerRecord(payload, length));
  assert.ok(sealer.open('chunk', oid, honest).payload.equals(payload));

  const longer = sealInner(master, oid, innerRecord(payload, length + 5));
  await assertRefusedEverywhere(dir, store, master, oid, longer, payload.length, /padded length/);

  const dirty = innerRecord(payload, length);
  dirty[length - 1] = 1;
  const covert = sealInner(master, oid, dirty);
  await assertRefusedEverywhere(dir, store, master, oid, covert, payload.length, /padding/);
});
