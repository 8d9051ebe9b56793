import assert from 'node:assert/strict';
import { cp, readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';

import { tempDir } from '../../support/cli.js';
import { makeCorpus, V2_EDITS } from '../../support/corpus.js';
import { assertTreesEqual, diffTrees, hashTree, type TreeHashes } from '../../support/tree.js';

const MIB = 1024 * 1024;

async function tinyV1(): Promise<{ dir: string; hashes: TreeHashes }> {
  const dir = await tempDir('corpus-v1');
  await makeCorpus(dir, 1, 'tiny');
  return { dir, hashes: await hashTree(dir) };
}

async function tinyV2FromCopyOf(v1Dir: string): Promise<string> {
  const dir = await tempDir('corpus-v2');
  await cp(v1Dir, dir, { recursive: true });
  await makeCorpus(dir, 2, 'tiny');
  return dir;
}

async function filesUnder(dir: string, ext: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith(ext))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

// Independent readers: they check the generator against the formats, not against itself.

function checkWav(file: string, buf: Buffer): void {
  const ascii = (o: number): string => buf.toString('ascii', o, o + 4);
  assert.equal(ascii(0), 'RIFF', `${file}: RIFF magic`);
  assert.equal(buf.readUInt32LE(4), buf.length - 8, `${file}: RIFF size field`);
  assert.equal(ascii(8), 'WAVE', `${file}: WAVE form`);
  // Walk the chunks rather than assume the canonical 44-byte layout.
  let pos = 12;
  let fmt:
    | {
        format: number;
        channels: number;
        rate: number;
        byteRate: number;
        align: number;
        bits: number;
      }
    | undefined;
  let dataBytes: number | undefined;
  while (pos + 8 <= buf.length) {
    const id = ascii(pos);
    const size = buf.readUInt32LE(pos + 4);
    const body = pos + 8;
    if (id === 'fmt ') {
      fmt = {
        format: buf.readUInt16LE(body),
        channels: buf.readUInt16LE(body + 2),
        rate: buf.readUInt32LE(body + 4),
        byteRate: buf.readUInt32LE(body + 8),
        align: buf.readUInt16LE(body + 12),
        bits: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      dataBytes = size;
      assert.equal(body + size, buf.length, `${file}: data chunk runs to the end of the file`);
    }
    pos = body + size + (size & 1);
  }
  assert.equal(pos, buf.length, `${file}: chunks cover the file exactly`);
  assert.deepEqual(
    fmt,
    { format: 1, channels: 2, rate: 48_000, byteRate: 48_000 * 6, align: 6, bits: 24 },
    `${file}: fmt`,
  );
  assert.ok(
    dataBytes !== undefined && dataBytes > 0 && dataBytes % 6 === 0,
    `${file}: whole frames of data`,
  );
}

function checkTiff(
  file: string,
  buf: Buffer,
): { width: number; height: number; pixelOffset: number } {
  assert.equal(buf.toString('ascii', 0, 2), 'II', `${file}: byte order`);
  assert.equal(buf.readUInt16LE(2), 42, `${file}: TIFF magic`);
  const ifd = buf.readUInt32LE(4);
  const count = buf.readUInt16LE(ifd);
  const tags = new Map<number, number[]>();
  let prevTag = -1;
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + i * 12;
    const tag = buf.readUInt16LE(e);
    const type = buf.readUInt16LE(e + 2);
    const n = buf.readUInt32LE(e + 4);
    assert.ok(tag > prevTag, `${file}: tags ascending`);
    prevTag = tag;
    const width = type === 3 ? 2 : type === 4 ? 4 : type === 5 ? 8 : 1;
    const at = n * width <= 4 ? e + 8 : buf.readUInt32LE(e + 8);
    const values: number[] = [];
    if (type === 3) for (let k = 0; k < n; k++) values.push(buf.readUInt16LE(at + k * 2));
    else if (type === 4) for (let k = 0; k < n; k++) values.push(buf.readUInt32LE(at + k * 4));
    tags.set(tag, values);
  }
  assert.equal(buf.readUInt32LE(ifd + 2 + count * 12), 0, `${file}: single IFD`);

  const one = (tag: number): number => {
    const v = tags.get(tag);
    assert.ok(v && v.length === 1 && v[0] !== undefined, `${file}: tag ${tag} has one value`);
    return v[0];
  };
  const width = one(256);
  const height = one(257);
  assert.deepEqual(tags.get(258), [8, 8, 8], `${file}: 8 bits per sample`);
  assert.equal(one(259), 1, `${file}: uncompressed`);
  assert.equal(one(262), 2, `${file}: RGB`);
  assert.equal(one(277), 3, `${file}: 3 samples per pixel`);
  const offsets = tags.get(273) ?? [];
  const counts = tags.get(279) ?? [];
  const rowsPerStrip = one(278);
  assert.equal(offsets.length, Math.ceil(height / rowsPerStrip), `${file}: strip count`);
  assert.equal(counts.length, offsets.length, `${file}: one byte count per strip`);
  assert.equal(
    counts.reduce((a, b) => a + b, 0),
    width * height * 3,
    `${file}: strip byte counts add up to the image`,
  );
  for (let i = 0; i < offsets.length; i++) {
    assert.ok(
      (offsets[i] ?? 0) + (counts[i] ?? 0) <= buf.length,
      `${file}: strip ${i} inside the file`,
    );
  }
  const lastOffset = offsets.at(-1) ?? 0;
  const lastCount = counts.at(-1) ?? 0;
  assert.equal(lastOffset + lastCount, buf.length, `${file}: last strip ends the file`);
  return { width, height, pixelOffset: offsets[0] ?? 0 };
}

function mp4Boxes(file: string, buf: Buffer): { type: string; start: number; size: number }[] {
  const boxes: { type: string; start: number; size: number }[] = [];
  for (let pos = 0; pos < buf.length;) {
    const size = buf.readUInt32BE(pos);
    assert.ok(size >= 8, `${file}: box size at ${pos}`);
    boxes.push({ type: buf.toString('latin1', pos + 4, pos + 8), start: pos, size });
    pos += size;
    assert.ok(pos <= buf.length, `${file}: box ends inside the file`);
  }
  return boxes;
}

describe('test corpus generator', () => {
  test('tiny profile is deterministic and about 2-4 MiB', async () => {
    const a = await tempDir('corpus-a');
    const b = await tempDir('corpus-b');
    const statsA = await makeCorpus(a, 1, 'tiny');
    const statsB = await makeCorpus(b, 1, 'tiny');
    assert.deepEqual(statsA, statsB);
    assert.ok(
      statsA.bytes >= 2 * MIB && statsA.bytes <= 4 * MIB,
      `tiny v1 is ${statsA.bytes} bytes`,
    );
    // 4 WAV + 12 TIFF + 2 MP4 + 2 scenes + 40 JSON + README
    assert.equal(statsA.files, 61);
    assertTreesEqual(await hashTree(a), await hashTree(b), 'two tiny v1 corpora');

    await makeCorpus(a, 2, 'tiny');
    await makeCorpus(b, 2, 'tiny');
    assertTreesEqual(await hashTree(a), await hashTree(b), 'two tiny v2 corpora');
  });

  test('version 2 changes exactly the intended files', async () => {
    const v1 = await tinyV1();
    const v2Dir = await tinyV2FromCopyOf(v1.dir);
    const v2 = await hashTree(v2Dir);

    // Compare against v1 as it would look after the folder rename alone.
    const { from, to } = V2_EDITS.renamedDir;
    const renamed: TreeHashes = new Map(
      [...v1.hashes].map(([p, h]) => [
        p.startsWith(`${from}/`) ? `${to}/${p.slice(from.length + 1)}` : p,
        h,
      ]),
    );
    const d = diffTrees(v2, renamed);
    assert.deepEqual(d.onlyInActual, ['audio/sfx_impact.wav']);
    assert.deepEqual(d.onlyInExpected, ['video/teaser.mp4']);

    const expectedChanged = [
      'audio/vo_intro.wav',
      ...V2_EDITS.paintedTextures,
      'scenes/level01.scene',
      'video/trailer.mp4',
      ...V2_EDITS.rewrittenMeta,
    ].sort();
    assert.deepEqual(d.changed, expectedChanged);

    const byExt = (ext: string): number => d.changed.filter((p) => p.endsWith(ext)).length;
    assert.equal(byExt('.wav'), 1);
    assert.equal(byExt('.tif'), 2);
    assert.equal(byExt('.scene'), 1);
    assert.equal(byExt('.mp4'), 1);
    assert.equal(byExt('.json'), 10, 'every 4th of 40 metadata files');
    assert.ok(
      !v2.has('meta/asset_000.json') && v2.has('metadata/asset_001.json'),
      'meta/ renamed to metadata/',
    );
    assert.equal(v2.get('README.txt'), v1.hashes.get('README.txt'));
  });

  test('version 2 edits have the intended shape', async () => {
    const v1 = await tinyV1();
    const v2Dir = await tinyV2FromCopyOf(v1.dir);
    const read = (dir: string, rel: string): Promise<Buffer> => readFile(path.join(dir, rel));

    // Appended audio: the old samples are a prefix of the new data.
    const w1 = await read(v1.dir, 'audio/vo_intro.wav');
    const w2 = await read(v2Dir, 'audio/vo_intro.wav');
    assert.ok(w2.length > w1.length);
    assert.ok(
      w2.subarray(44, w1.length).equals(w1.subarray(44)),
      'v1 audio data is kept as a prefix',
    );

    // Inserted 1 KiB: same head and tail, shifted by 1024 bytes.
    const s1 = await read(v1.dir, 'scenes/level01.scene');
    const s2 = await read(v2Dir, 'scenes/level01.scene');
    assert.equal(s2.length, s1.length + 1024);
    const mid = Math.floor(s1.length / 2);
    assert.ok(s2.subarray(0, mid).equals(s1.subarray(0, mid)), 'head unchanged');
    assert.ok(s2.subarray(mid + 1024).equals(s1.subarray(mid)), 'tail unchanged, shifted');
    assert.equal((await read(v1.dir, 'scenes/level01.scene')).length, s1.length);
    assert.ok(
      (await stat(path.join(v1.dir, 'scenes/level02.scene'))).size < s1.length,
      'level01 is the biggest scene',
    );

    // Retitled video: the header grows a little, the payload is the same bytes, shifted.
    const m1 = await read(v1.dir, 'video/trailer.mp4');
    const m2 = await read(v2Dir, 'video/trailer.mp4');
    const grew = m2.length - m1.length;
    assert.ok(grew > 0 && grew < 64, `header grew by ${grew} bytes`);
    const mdat1 = mp4Boxes('v1 trailer', m1).find((b) => b.type === 'mdat');
    const mdat2 = mp4Boxes('v2 trailer', m2).find((b) => b.type === 'mdat');
    assert.ok(mdat1 && mdat2);
    assert.equal(mdat2.start - mdat1.start, grew);
    assert.ok(m2.subarray(mdat2.start).equals(m1.subarray(mdat1.start)), 'mdat box unchanged');
    assert.ok(m2.includes(Buffer.from(V2_EDITS.retitledTo, 'utf8')), 'new title in the header');

    // Painted textures: same size, only a rectangle of pixels differs.
    for (const rel of V2_EDITS.paintedTextures) {
      const t1 = await read(v1.dir, rel);
      const t2 = await read(v2Dir, rel);
      assert.equal(t2.length, t1.length, `${rel}: size unchanged`);
      const { width, height, pixelOffset } = checkTiff(rel, t2);
      assert.ok(
        t2.subarray(0, pixelOffset).equals(t1.subarray(0, pixelOffset)),
        `${rel}: header unchanged`,
      );
      let minX = width;
      let maxX = -1;
      let minY = height;
      let maxY = -1;
      let changed = 0;
      for (let i = pixelOffset; i < t1.length; i++) {
        if (t1[i] === t2[i]) continue;
        changed++;
        const px = Math.floor((i - pixelOffset) / 3);
        const x = px % width;
        const y = Math.floor(px / width);
        minX = Math.min(minX, x);
        maxX = Math.max(maxX, x);
        minY = Math.min(minY, y);
        maxY = Math.max(maxY, y);
      }
      assert.ok(changed > 0, `${rel}: some pixels changed`);
      const area = (maxX - minX + 1) * (maxY - minY + 1);
      assert.ok(
        area < width * height * 0.25,
        `${rel}: the edit is a rectangle covering under a quarter of the image`,
      );
    }

    // Rewritten metadata is still JSON, marked as revision 2.
    for (const rel of V2_EDITS.rewrittenMeta) {
      const doc: unknown = JSON.parse((await read(v2Dir, rel)).toString('utf8'));
      assert.ok(
        typeof doc === 'object' && doc !== null && 'revision' in doc && doc.revision === 2,
        `${rel}: revision 2`,
      );
    }
  });

  test('WAV, TIFF and MP4 headers agree with file lengths in v1 and v2', async () => {
    const v1 = await tinyV1();
    const v2Dir = await tinyV2FromCopyOf(v1.dir);
    for (const dir of [v1.dir, v2Dir]) {
      const wavs = await filesUnder(dir, '.wav');
      const tifs = await filesUnder(dir, '.tif');
      const mp4s = await filesUnder(dir, '.mp4');
      assert.equal(wavs.length, dir === v1.dir ? 4 : 5);
      assert.equal(tifs.length, 12);
      assert.equal(mp4s.length, dir === v1.dir ? 2 : 1);
      for (const f of wavs) checkWav(f, await readFile(f));
      for (const f of tifs) checkTiff(f, await readFile(f));
      for (const f of mp4s) {
        const types = mp4Boxes(f, await readFile(f)).map((b) => b.type);
        assert.deepEqual(types, ['ftyp', 'moov', 'mdat'], `${f}: box layout`);
      }
      for (const f of await filesUnder(dir, '.json')) JSON.parse(await readFile(f, 'utf8'));
    }
  });

  test('version 2 refuses a folder that does not hold version 1', async () => {
    const v1 = await tinyV1();
    const v2Dir = await tinyV2FromCopyOf(v1.dir);
    await assert.rejects(makeCorpus(v2Dir, 2, 'tiny'), /does not hold version 1/);
    await assert.rejects(makeCorpus(v1.dir, 2, 'small'), /does not hold version 1/);
    // The refused attempts left both trees as they were.
    assertTreesEqual(await hashTree(v1.dir), v1.hashes, 'v1 after a refused v2');
  });
});
