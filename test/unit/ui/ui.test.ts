/**
 * The web view's pieces without a server: Range parsing, escaping, path checks, file types, and
 * the read model and archives over an in-memory repository (history, summaries, tar and zip
 * layouts checked byte for byte against the formats).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crc32 } from 'node:zlib';
import { ObjectDatabase, type TreeEntry } from '../../../src/objects/index.js';
import { archivePieces } from '../../../src/ui/archive.js';
import { contentPieces, parseRange } from '../../../src/ui/content.js';
import { html, escapeHtml } from '../../../src/ui/html.js';
import { contentDisposition, mediaTypeOf, sniffMediaType } from '../../../src/ui/media.js';
import { RepositoryReader, pathSegments } from '../../../src/ui/reader.js';
import { safeNext } from '../../../src/ui/session.js';
import { MemoryStore } from '../store/memory-store.js';

describe('Range headers', () => {
  const size = 1000;
  const cases: [string | undefined, ReturnType<typeof parseRange>][] = [
    [undefined, { kind: 'whole' }],
    ['bytes=0-99', { kind: 'partial', range: { start: 0, end: 99 } }],
    ['bytes=990-', { kind: 'partial', range: { start: 990, end: 999 } }],
    ['bytes=990-5000', { kind: 'partial', range: { start: 990, end: 999 } }],
    ['bytes=-10', { kind: 'partial', range: { start: 990, end: 999 } }],
    ['bytes=-5000', { kind: 'partial', range: { start: 0, end: 999 } }],
    ['BYTES=5-5', { kind: 'partial', range: { start: 5, end: 5 } }],
    ['bytes=1000-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=99999999999999999-', { kind: 'unsatisfiable' }],
    ['bytes=0-1,5-6', { kind: 'whole' }],
    ['bytes=5-1', { kind: 'malformed' }],
    ['bytes=abc', { kind: 'malformed' }],
    ['bytes=-', { kind: 'malformed' }],
    ['items=0-1', { kind: 'malformed' }],
    ['bytes=0-1,x', { kind: 'malformed' }],
  ];
  for (const [header, expected] of cases)
    test(String(header), () => assert.deepEqual(parseRange(header, size), expected));
});

test('html escapes every interpolated value, and only Html passes through', () => {
  const evil = `<script>alert("x")</script>&'`;
  assert.equal(escapeHtml(evil), '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
  assert.equal(html`<p>${evil}</p>`.text, `<p>${escapeHtml(evil)}</p>`);
  assert.equal(html`<p>${html`<b>${evil}</b>`}</p>`.text, `<p><b>${escapeHtml(evil)}</b></p>`);
  assert.equal(html`${['a', '<', null, false, undefined, 3]}`.text, 'a&lt;3');
});

test('paths: traversal, separators and control characters are refused', () => {
  assert.deepEqual(pathSegments(''), []);
  assert.deepEqual(pathSegments('a/b c/d.tif'), ['a', 'b c', 'd.tif']);
  assert.deepEqual(pathSegments('folder/'), ['folder']);
  for (const bad of ['..', 'a/../b', './a', 'a//b', '/a', 'a\\b', 'c:', 'a/\u0000', '.mediagit/x'])
    assert.throws(() => pathSegments(bad), { status: 400 }, bad);
});

test('sign-in redirects go only to pages of the web view', () => {
  assert.equal(safeNext('/ui/art/-/tree?rev=main'), '/ui/art/-/tree?rev=main');
  for (const bad of [
    null,
    undefined,
    '//evil.example/ui/',
    'https://evil.example/',
    '/ui\\..',
    '/api',
    '/ui/ x',
  ])
    assert.equal(safeNext(bad), '/ui/', String(bad));
});

test('types and dispositions', () => {
  assert.equal(mediaTypeOf('plate.TIF').contentType, 'image/tiff');
  assert.equal(mediaTypeOf('vo.wav').preview, 'audio');
  assert.equal(mediaTypeOf('x.webm').preview, 'video');
  assert.equal(mediaTypeOf('level.scene').preview, 'none');
  assert.equal(sniffMediaType('notes', Buffer.from('plain words\n')).preview, 'text');
  assert.equal(sniffMediaType('blob', Buffer.from([1, 0, 2])).preview, 'none');
  assert.equal(
    sniffMediaType('blob', Buffer.from([0xff, 0xfe, 0x41, 0x42, 0x43, 0x44])).preview,
    'none',
  );
  assert.equal(
    contentDisposition('attachment', 'ünï "x".txt'),
    `attachment; filename="_n_ _x_.txt"; filename*=UTF-8''%C3%BCn%C3%AF%20%22x%22.txt`,
  );
});

/** A repository in memory: files by path, committed as `messages.length` commits. */
async function repository(versions: Record<string, Buffer>[]): Promise<{
  reader: RepositoryReader;
  commits: string[];
}> {
  const store = new MemoryStore();
  const odb = new ObjectDatabase(store, { compressionLevel: 1 });
  const commits: string[] = [];
  for (const [i, files] of versions.entries()) {
    const writeDir = async (prefix: string): Promise<TreeEntry> => {
      const names = new Map<string, string | null>();
      for (const p of Object.keys(files).filter((p) => p.startsWith(prefix))) {
        const rest = p.slice(prefix.length);
        const slash = rest.indexOf('/');
        names.set(slash < 0 ? rest : rest.slice(0, slash), slash < 0 ? p : null);
      }
      const entries: TreeEntry[] = [];
      for (const [name, file] of names) {
        if (file === null) {
          const sub = await writeDir(`${prefix}${name}/`);
          entries.push({ ...sub, name });
          continue;
        }
        const bytes = files[file]!;
        const chunks = [];
        for (let at = 0; at < bytes.length; at += 1000) {
          const piece = bytes.subarray(at, at + 1000);
          chunks.push({
            oid: (await odb.putChunk(piece, { skipCompression: false })).oid,
            size: piece.length,
          });
        }
        const manifest = await odb.writeManifest({ size: bytes.length, chunks });
        entries.push({ name, type: 'file', oid: manifest.oid, size: bytes.length });
      }
      const tree = await odb.writeTree(entries);
      return {
        name: '',
        type: 'dir',
        oid: tree.oid,
        size: entries.reduce((s, e) => s + e.size, 0),
      };
    };
    const root = await writeDir('');
    const who = { name: 'Ada', email: 'ada@example.com', time: 1_800_000_000 + i, tzOffset: 0 };
    const commit = await odb.writeCommit({
      tree: root.oid,
      parents: commits.slice(-1),
      author: who,
      committer: who,
      message: `version ${i + 1}\n`,
    });
    commits.push(commit.oid);
  }
  await store.compareAndSwapRef('refs/heads/main', null, commits[commits.length - 1]!);
  return { reader: new RepositoryReader(store, new AbortController().signal), commits };
}

const bytes = (n: number, seed: number): Buffer =>
  Buffer.from(Array.from({ length: n }, (_, i) => (i * seed + (i >> 7)) & 0xff));

describe('the read model', () => {
  test('history, summaries and ranges', async () => {
    const a1 = bytes(3500, 7);
    const a2 = Buffer.concat([a1, bytes(600, 11)]);
    const { reader, commits } = await repository([
      { 'art/a.bin': a1, 'art/b.txt': Buffer.from('b'), 'c.json': Buffer.from('{}') },
      { 'art/a.bin': a1, 'art/b.txt': Buffer.from('b'), 'c.json': Buffer.from('{"x":1}') },
      { 'art/a.bin': a2, 'art/b.txt': Buffer.from('b') },
    ]);
    assert.equal((await reader.resolve(undefined)).commit, commits[2]);
    assert.equal((await reader.resolve(commits[0]!.slice(0, 12))).commit, commits[0]);
    await assert.rejects(reader.resolve('nope'), { status: 404 });

    const history = await reader.fileHistory(commits[2]!, ['art', 'a.bin'], 0, 10, 100);
    assert.deepEqual(
      history.versions.map((v) => [v.commit, v.entry?.size, v.previous?.size ?? null]),
      [
        [commits[2], a2.length, a1.length],
        [commits[0], a1.length, null],
      ],
    );
    assert.equal(history.next, null);
    const page = await reader.fileHistory(commits[2]!, ['art', 'a.bin'], 0, 1, 100);
    assert.equal(page.versions.length, 1);
    assert.equal(page.next, 1);

    const last = await reader.summarize(await reader.readCommit(commits[2]!));
    assert.deepEqual(
      last.changes.map((c) => [c.path, c.status]),
      [
        ['art/a.bin', 'modified'],
        ['c.json', 'deleted'],
      ],
    );
    // Only the chunks the old version did not hold: the 500-byte tail chunk and the new 100.
    assert.equal(last.bytesAdded, a2.length - 3000);

    const entry = await reader.entryAt(commits[2]!, ['art', 'a.bin']);
    const manifest = await reader.readManifest(entry!.oid);
    const signal = new AbortController().signal;
    const pieces: Buffer[] = [];
    for await (const p of contentPieces(
      reader.odb,
      manifest,
      { start: 998, end: 2001 },
      { signal },
    ))
      pieces.push(p);
    assert.deepEqual(Buffer.concat(pieces), a2.subarray(998, 2002));
    assert.equal(pieces.length, 3, 'only the chunks that overlap the range');
  });

  test('tar and zip archives hold the folder, byte for byte', async () => {
    const files = {
      'art/a.bin': bytes(2500, 3),
      [`art/${'long-name-'.repeat(12)}.txt`]: Buffer.from('long'),
      'art/sub/ünï.txt': Buffer.from('utf8 name'),
      'other.txt': Buffer.from('not in art'),
    };
    const { reader, commits } = await repository([files]);
    const folder = await reader.entryAt(commits[0]!, ['art']);
    const collect = async (format: 'tar' | 'zip'): Promise<Buffer> => {
      const out: Buffer[] = [];
      for await (const p of archivePieces(
        reader,
        folder!.oid,
        '',
        format,
        1_800_000_000,
        new AbortController().signal,
      ))
        out.push(p);
      return Buffer.concat(out);
    };

    const tar = await collect('tar');
    assert.equal(tar.length % 512, 0);
    const found = new Map<string, Buffer>();
    let pax: string | null = null;
    for (let at = 0; at + 512 <= tar.length;) {
      const header = tar.subarray(at, at + 512);
      if (header.every((b) => b === 0)) break;
      const size = parseInt(header.toString('latin1', 124, 135), 8);
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i]!;
      assert.equal(parseInt(header.toString('latin1', 148, 154), 8), sum, 'header checksum');
      const body = tar.subarray(at + 512, at + 512 + size);
      const type = header.toString('latin1', 156, 157);
      if (type === 'x') {
        const record = body.toString('utf8');
        assert.equal(Number(record.slice(0, record.indexOf(' '))), Buffer.byteLength(record));
        pax = /path=(.*)\n/.exec(record)![1]!;
      } else {
        const name = pax ?? header.toString('utf8', 0, 100).replace(/\0.*$/s, '');
        found.set(name, Buffer.from(body));
        pax = null;
      }
      at += 512 + Math.ceil(size / 512) * 512;
    }
    const expected = new Map(
      Object.entries(files)
        .filter(([p]) => p.startsWith('art/'))
        .map(([p, b]) => [p.slice(4), b]),
    );
    assert.deepEqual(new Map([...found].sort()), new Map([...expected].sort()));

    // Zip: walk the central directory from the end record, then each local entry it points at.
    const zip = await collect('zip');
    const end = zip.length - 22;
    assert.equal(zip.readUInt32LE(end), 0x06054b50);
    const count = zip.readUInt16LE(end + 10);
    let cd = zip.readUInt32LE(end + 16);
    const unzipped = new Map<string, Buffer>();
    for (let i = 0; i < count; i++) {
      assert.equal(zip.readUInt32LE(cd), 0x02014b50);
      assert.equal(zip.readUInt16LE(cd + 8) & 0x0800, 0x0800, 'UTF-8 names');
      const crc = zip.readUInt32LE(cd + 16);
      const size = zip.readUInt32LE(cd + 24);
      const nameLength = zip.readUInt16LE(cd + 28);
      const extra = zip.readUInt16LE(cd + 30);
      const offset = zip.readUInt32LE(cd + 42);
      const name = zip.toString('utf8', cd + 46, cd + 46 + nameLength);
      assert.equal(zip.readUInt32LE(offset), 0x04034b50);
      const dataAt = offset + 30 + zip.readUInt16LE(offset + 26) + zip.readUInt16LE(offset + 28);
      const data = zip.subarray(dataAt, dataAt + size);
      assert.equal(crc32(data) >>> 0, crc, name);
      assert.equal(zip.readUInt32LE(dataAt + size), 0x08074b50, 'data descriptor');
      unzipped.set(name, Buffer.from(data));
      cd += 46 + nameLength + extra;
    }
    assert.deepEqual(new Map([...unzipped].sort()), new Map([...expected].sort()));
  });
});
