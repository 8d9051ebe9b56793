import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Codec } from '../../../src/compression/index.js';
import { newMasterKey } from '../../../src/crypto/index.js';
import {
  ObjectSealing,
  STRUCTURED_RAW_BELOW,
  decodeEnvelopeHeader,
  sealerFor,
  type ObjectKind,
} from '../../../src/objects/index.js';

/** What add and commit store, and whether the policy compresses it. */
const samples: Array<{ kind: ObjectKind; plain: Buffer; skip?: boolean; compressed: boolean }> = [
  { kind: 'chunk', plain: Buffer.from('frame '.repeat(50_000)), compressed: true },
  // The file's policy said not to try (a known-compressed format, or a run of refusals).
  { kind: 'chunk', plain: Buffer.from('frame '.repeat(50_000)), skip: true, compressed: false },
  // zstd would not save 3 %.
  { kind: 'chunk', plain: randomBytes(200_000), compressed: false },
  { kind: 'chunk', plain: Buffer.from('a'.repeat(100)), compressed: true },
  // Structured objects under the threshold stay raw, at it they are compressed like chunks.
  { kind: 'tree', plain: Buffer.from('a'.repeat(STRUCTURED_RAW_BELOW - 1)), compressed: false },
  { kind: 'manifest', plain: Buffer.from('a'.repeat(STRUCTURED_RAW_BELOW)), compressed: true },
];

test('the main-thread and worker sealing paths make the same decisions and read each other', async () => {
  for (const master of [null, newMasterKey()]) {
    const sealing = new ObjectSealing(sealerFor(master), 1);
    for (const { kind, plain, skip, compressed } of samples) {
      const label = `${kind} of ${plain.length} bytes${skip ? ', skipped' : ''}, ${master ? 'encrypted' : 'plain'}`;
      const oid = sealing.sealer.oidOf(kind, plain);
      const pooled = await sealing.seal(kind, oid, plain, skip);
      const parts = sealing.sealSync(kind, oid, plain, skip);
      const threaded = Buffer.concat(parts.parts);
      assert.equal(pooled.compressed, compressed, label);
      assert.equal(parts.compressed, compressed, label);
      if (!master)
        for (const stored of [pooled.stored, threaded])
          assert.equal(decodeEnvelopeHeader(stored).codec, compressed ? Codec.zstd : Codec.raw);
      for (const stored of [pooled.stored, threaded]) {
        assert.ok((await sealing.open(kind, oid, stored)).equals(plain), label);
        assert.ok(Buffer.concat(sealing.openSync(kind, oid, stored)).equals(plain), label);
      }
    }
  }
});

test('compression level 0 stores everything raw', async () => {
  const sealing = new ObjectSealing(sealerFor(null), 0);
  const plain = Buffer.from('frame '.repeat(50_000));
  const oid = sealing.sealer.oidOf('chunk', plain);
  assert.equal((await sealing.seal('chunk', oid, plain)).compressed, false);
  assert.equal(sealing.sealSync('chunk', oid, plain).compressed, false);
});
