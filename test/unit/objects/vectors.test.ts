import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  ENVELOPE_HEADER_SIZE,
  decodeCommit,
  decodeEnvelopeHeader,
  decodeManifest,
  decodeTag,
  decodeTree,
  encodeCommit,
  encodeEnvelope,
  encodeManifest,
  encodeTag,
  encodeTree,
  sha256Hex,
  type Commit,
  type Manifest,
  type Tag,
  type TreeEntry,
} from '../../../src/objects/index.js';
import { Codec, decodePayload, zstd } from '../../../src/compression/index.js';

const VECTORS = new URL('../../../../fixtures/vectors/objects.json', import.meta.url);

interface Vector {
  name: string;
  kind: 'chunk' | 'manifest' | 'tree' | 'commit' | 'tag';
  input: unknown;
  canonicalHex: string;
  oid: string;
  storedRawHex: string;
  storedZstdHex?: string;
}

const h = (c: string): string => c.repeat(64);
const sig = { name: 'Ada Artist', email: 'ada@studio.example', time: 1767225600, tzOffset: 60 };

function samples(): { name: string; kind: Vector['kind']; input: unknown; bytes: Buffer }[] {
  const manifest: Manifest = {
    size: 1_310_720 + 12,
    chunks: [
      { oid: h('a'), size: 1_310_720 },
      { oid: h('b'), size: 12 },
    ],
  };
  const tree: TreeEntry[] = [
    { name: 'textures', type: 'dir', oid: h('c'), size: 40_000_000 },
    { name: 'README.txt', type: 'file', oid: h('d'), size: 57 },
    { name: 'build.sh', type: 'exec', oid: h('e'), size: 120 },
    { name: 'héros.wav', type: 'file', oid: h('f'), size: 1_000_000 },
  ];
  const commit: Commit = {
    tree: h('1'),
    parents: [h('2'), h('3')],
    author: sig,
    committer: { ...sig, time: sig.time + 5, tzOffset: -300 },
    message: 'Merge lighting pass\n\nAll textures repainted.\n',
  };
  const root: Commit = {
    tree: h('4'),
    parents: [],
    author: sig,
    committer: sig,
    message: 'first\n',
  };
  const tag: Tag = {
    object: h('5'),
    objectKind: 'commit',
    name: 'v1.0',
    tagger: sig,
    message: 'Milestone 1\n',
  };
  return [
    {
      name: 'chunk: text',
      kind: 'chunk',
      input: { utf8: 'mediagit test vector chunk\n'.repeat(8) },
      bytes: Buffer.from('mediagit test vector chunk\n'.repeat(8)),
    },
    {
      name: 'chunk: empty-ish single byte',
      kind: 'chunk',
      input: { utf8: 'x' },
      bytes: Buffer.from('x'),
    },
    {
      name: 'manifest: two chunks',
      kind: 'manifest',
      input: manifest,
      bytes: encodeManifest(manifest),
    },
    {
      name: 'tree: mixed entries (sorted by UTF-8 bytes)',
      kind: 'tree',
      input: tree,
      bytes: encodeTree(tree),
    },
    {
      name: 'commit: merge with two parents',
      kind: 'commit',
      input: commit,
      bytes: encodeCommit(commit),
    },
    { name: 'commit: root', kind: 'commit', input: root, bytes: encodeCommit(root) },
    { name: 'tag: annotated', kind: 'tag', input: tag, bytes: encodeTag(tag) },
  ];
}

async function build(): Promise<Vector[]> {
  const out: Vector[] = [];
  for (const s of samples()) {
    const z = await zstd(s.bytes, 3);
    out.push({
      name: s.name,
      kind: s.kind,
      input: s.input,
      canonicalHex: s.bytes.toString('hex'),
      oid: sha256Hex(s.bytes),
      storedRawHex: encodeEnvelope(s.kind, Codec.raw, s.bytes.length, s.bytes).toString('hex'),
      storedZstdHex: encodeEnvelope(s.kind, Codec.zstd, s.bytes.length, z).toString('hex'),
    });
  }
  return out;
}

if (process.env.MEDIAGIT_UPDATE_VECTORS === '1')
  writeFileSync(VECTORS, JSON.stringify(await build(), null, 2) + '\n');

const committed = JSON.parse(readFileSync(VECTORS, 'utf8')) as Vector[];

test('object encodings match the committed vectors byte for byte', async () => {
  const fresh = await build();
  assert.equal(fresh.length, committed.length);
  for (const [i, v] of committed.entries()) {
    const f = fresh[i]!;
    assert.equal(f.name, v.name);
    assert.equal(f.canonicalHex, v.canonicalHex, `${v.name}: canonical bytes`);
    assert.equal(f.oid, v.oid, `${v.name}: OID`);
    assert.equal(f.storedRawHex, v.storedRawHex, `${v.name}: stored envelope (raw codec)`);
  }
});

test('committed stored forms (raw and zstd) decode back to the canonical bytes and OID', async () => {
  for (const v of committed) {
    for (const hex of [v.storedRawHex, v.storedZstdHex]) {
      if (!hex) continue;
      const stored = Buffer.from(hex, 'hex');
      const header = decodeEnvelopeHeader(stored);
      assert.equal(header.kind, v.kind);
      const plain = await decodePayload(
        header.codec,
        stored.subarray(ENVELOPE_HEADER_SIZE),
        header.plainLength,
      );
      assert.equal(plain.toString('hex'), v.canonicalHex);
      assert.equal(sha256Hex(plain), v.oid);
    }
  }
});

test('decoders accept every canonical vector and re-encode it identically', () => {
  for (const v of committed) {
    const bytes = Buffer.from(v.canonicalHex, 'hex');
    if (v.kind === 'manifest') assert.deepEqual(encodeManifest(decodeManifest(bytes)), bytes);
    if (v.kind === 'tree') assert.deepEqual(encodeTree(decodeTree(bytes)), bytes);
    if (v.kind === 'commit') assert.deepEqual(encodeCommit(decodeCommit(bytes)), bytes);
    if (v.kind === 'tag') assert.deepEqual(encodeTag(decodeTag(bytes)), bytes);
  }
});
