import assert from 'node:assert/strict';
import { createCipheriv, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_CHUNKING, chunkBuffer } from '../../../src/chunking/index.js';
import { GearScan } from '../../../src/chunking/gear-scan.js';
import { newMasterKey } from '../../../src/crypto/index.js';
import { ObjectCorruptError, ObjectMissingError } from '../../../src/errors/index.js';
import { EncryptedSealer, ObjectDatabase } from '../../../src/objects/index.js';
import { ChunkWorkerPool, ingestAlongPrevious } from '../../../src/workers/index.js';
import { Semaphore } from '../../../src/util/limit.js';
import { LocalStore } from '../../../src/store/index.js';

async function freshStore(): Promise<{ dir: string; store: LocalStore }> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-pool-'));
  const store = new LocalStore(dir);
  await store.initialize();
  return { dir, store };
}

/** Chunks of the kinds add sees: compressible text, incompressible noise, tiny, and empty. */
function sampleChunks(): Buffer[] {
  return [
    Buffer.from('la '.repeat(200_000)),
    randomBytes(300_000),
    Buffer.from('x'),
    Buffer.alloc(0),
    Buffer.alloc(70_000, 3),
  ];
}

test('worker-stored chunks match what the object database stores (plain)', async () => {
  const a = await freshStore();
  const b = await freshStore();
  const pool = new ChunkWorkerPool(
    { root: a.dir, fsync: true, compressionLevel: 3, master: null, chunking: DEFAULT_CHUNKING },
    2,
  );
  try {
    const odb = new ObjectDatabase(b.store, { compressionLevel: 3 });
    for (const chunk of sampleChunks()) {
      const viaOdb = await odb.putChunk(Buffer.from(chunk), { skipCompression: false });
      const viaPool = await pool.store(Buffer.from(chunk), false);
      assert.equal(viaPool.oid, viaOdb.oid);
      assert.equal(viaPool.written, true);
      assert.equal(viaPool.compressed, viaOdb.compressed);
      const key = `chunks/${viaPool.oid}`;
      // Raw chunks are byte-identical; zstd frames may differ in optional header fields (the
      // one-shot encoder records the content size), so compressed ones are compared decoded.
      if (!viaPool.compressed) assert.deepEqual(await a.store.get(key), await b.store.get(key));
      assert.equal((await a.store.get(key)).length, viaPool.storedBytes);
      // And it reads back through the verifying path.
      assert.deepEqual(
        await new ObjectDatabase(a.store, { compressionLevel: 3 }).read('chunk', viaPool.oid),
        chunk,
      );
    }
    // Nothing left behind in tmp/.
    assert.deepEqual(await readdir(join(a.dir, 'tmp')), []);
  } finally {
    await pool.close();
    await rm(a.dir, { recursive: true, force: true });
    await rm(b.dir, { recursive: true, force: true });
  }
});

test('worker-stored chunks open under the same master key (encrypted), and dedup by keyed ID', async () => {
  const { dir, store } = await freshStore();
  const master = newMasterKey();
  const pool = new ChunkWorkerPool(
    { root: dir, fsync: false, compressionLevel: 3, master, chunking: DEFAULT_CHUNKING },
    2,
  );
  try {
    const odb = new ObjectDatabase(store, {
      compressionLevel: 3,
      sealer: new EncryptedSealer(master),
    });
    for (const chunk of sampleChunks()) {
      const stored = await pool.store(Buffer.from(chunk), false);
      assert.equal(stored.oid, odb.oidOf('chunk', chunk), 'keyed ID, not plain SHA-256');
      assert.deepEqual(await odb.read('chunk', stored.oid), chunk);
      const again = await pool.store(Buffer.from(chunk), false);
      assert.deepEqual(again, {
        oid: stored.oid,
        written: false,
        storedBytes: 0,
        compressed: false,
      });
    }
    // The marker never reaches the disk in clear.
    const marker = Buffer.from('la la la la la la la la');
    for (const sub of await readdir(join(dir, 'chunks'))) {
      for (const name of await readdir(join(dir, 'chunks', sub)))
        assert.equal((await readFile(join(dir, 'chunks', sub, name))).includes(marker), false);
    }
  } finally {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a chunk the worker cannot write rejects with the errno code, and the pool stays usable', async () => {
  const { dir } = await freshStore();
  // A file where the chunks/ folder should be: every write under it fails with ENOTDIR.
  await rm(join(dir, 'chunks'), { recursive: true });
  await writeFile(join(dir, 'chunks'), 'in the way');
  const pool = new ChunkWorkerPool(
    { root: dir, fsync: false, compressionLevel: 3, master: null, chunking: DEFAULT_CHUNKING },
    1,
  );
  try {
    await assert.rejects(
      pool.store(randomBytes(100_000), true),
      (err: NodeJS.ErrnoException) => err.code === 'ENOTDIR' || err.code === 'EEXIST',
    );
    await rm(join(dir, 'chunks'));
    const ok = await pool.store(randomBytes(100_000), true);
    assert.equal(ok.written, true);
  } finally {
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('restoreInto writes verified chunks at their offsets and names a corrupt or missing chunk, plain and encrypted', async () => {
  for (const master of [null, newMasterKey()]) {
    const { dir, store } = await freshStore();
    const pool = new ChunkWorkerPool(
      { root: dir, fsync: false, compressionLevel: 3, master, chunking: DEFAULT_CHUNKING },
      2,
    );
    const out = join(dir, 'restored.bin');
    try {
      // Compressible and tiny once compressed; incompressible over several cipher steps; text that
      // still spans several cipher steps compressed (joined before decompressing); a short tail.
      const parts = [
        Buffer.from('ab'.repeat(100_000)),
        randomBytes(150_000),
        Buffer.from(randomBytes(200_000).toString('hex')),
        Buffer.from('tail'),
      ];
      const oids: string[] = [];
      for (const p of parts) oids.push((await pool.store(Buffer.from(p), false)).oid);
      const handle = await open(out, 'w');
      try {
        // Out of order on purpose: offsets, not arrival order, decide where bytes land.
        const offsets = parts.map((_, i) =>
          parts.slice(0, i).reduce((sum, p) => sum + p.length, 0),
        );
        const order = [3, 0, 2, 1];
        const sizes = await Promise.all(
          order.map((i) => pool.restoreInto(oids[i]!, handle.fd, offsets[i]!, parts[i]!.length)),
        );
        assert.deepEqual(
          sizes,
          order.map((i) => parts[i]!.length),
        );
      } finally {
        await handle.close();
      }
      assert.ok((await readFile(out)).equals(Buffer.concat(parts)), master ? 'encrypted' : 'plain');

      // Flip one stored bit of the incompressible chunk (payload, or ciphertext when encrypted).
      const victim = store.pathOf(`chunks/${oids[1]}`);
      const bytes = await readFile(victim);
      bytes[100] = bytes[100]! ^ 1;
      await chmod(victim, 0o644);
      await writeFile(victim, bytes);
      const h2 = await open(out, 'r+');
      try {
        await assert.rejects(
          pool.restoreInto(oids[1]!, h2.fd, 0, parts[1]!.length),
          (err: unknown) => err instanceof ObjectCorruptError && err.oid === oids[1],
        );
        await rm(victim);
        await assert.rejects(
          pool.restoreInto(oids[1]!, h2.fd, 0, parts[1]!.length),
          (err: unknown) => err instanceof ObjectMissingError && err.oid === oids[1],
        );
        // A manifest that lies about a chunk's size is refused too.
        await assert.rejects(
          pool.restoreInto(oids[0]!, h2.fd, 0, 5),
          (err: unknown) => err instanceof ObjectCorruptError,
        );
        await assert.rejects(
          pool.restoreInto(oids[2]!, h2.fd, 0, parts[2]!.length - 1),
          (err: unknown) => err instanceof ObjectCorruptError,
        );
      } finally {
        await h2.close();
      }
    } finally {
      await pool.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
});

test('with fsync on, an ingest and a store reply only once every chunk they wrote is in place, nothing left in tmp/', async () => {
  const { dir, store } = await freshStore();
  const file = join(dir, 'many.bin');
  // Small chunks, so one file has more chunks than a worker lets land behind its back.
  const chunking = { minSize: 16 * 1024, avgSize: 32 * 1024, maxSize: 64 * 1024 };
  const data = randomBytes(8_000_000);
  await writeFile(file, data);
  const pool = new ChunkWorkerPool(
    { root: dir, fsync: true, compressionLevel: 1, master: null, chunking },
    2,
  );
  try {
    const [got, single] = await Promise.all([
      pool.ingestFile(file, 'many.bin', data.length, () => undefined),
      pool.store(randomBytes(70_000), true),
    ]);
    assert.ok(got.chunks.length > 150, `${got.chunks.length} chunks`);
    assert.equal(got.newChunks, new Set(got.chunks.map((c) => c.oid)).size);
    // Checked synchronously on arrival of the replies: nothing may still be landing.
    for (const c of [...got.chunks, single])
      assert.ok(store.hasSync(`chunks/${c.oid}`), `chunk ${c.oid} in place`);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    const odb = new ObjectDatabase(store, { compressionLevel: 1 });
    const back = Buffer.concat(await Promise.all(got.chunks.map((c) => odb.read('chunk', c.oid))));
    assert.deepEqual(back, data);
  } finally {
    await pool.close();
  }
});

test('a file ingested whole on a worker gets the chunks the main-thread path would cut (plain and keyed gear)', async () => {
  const { dir, store } = await freshStore();
  const file = join(dir, 'asset.bin');
  // Compressible and random stretches, several MiB: many boundaries, both codecs.
  await writeFile(
    file,
    Buffer.concat([
      randomBytes(3_000_000),
      Buffer.from('pattern '.repeat(400_000)),
      randomBytes(2_500_000),
    ]),
  );
  const data = await readFile(file);
  for (const master of [null, newMasterKey()]) {
    const pool = new ChunkWorkerPool(
      { root: dir, fsync: false, compressionLevel: 3, master, chunking: DEFAULT_CHUNKING },
      2,
    );
    try {
      const sealer = master ? new EncryptedSealer(master) : undefined;
      const odb = new ObjectDatabase(store, { compressionLevel: 3, ...(sealer ? { sealer } : {}) });
      const expected = chunkBuffer(data, DEFAULT_CHUNKING, sealer?.gear).map((c) => ({
        oid: odb.oidOf('chunk', c),
        size: c.length,
      }));
      let reported = 0;
      const got = await pool.ingestFile(
        file,
        'asset.bin',
        data.length,
        (bytes) => (reported += bytes),
      );
      assert.deepEqual(got.chunks, expected);
      assert.equal(got.size, data.length);
      assert.equal(reported, data.length, 'progress adds up to the file size');
      assert.ok(got.newChunks > 3);
      // Every chunk is there and reads back.
      const back = Buffer.concat(
        await Promise.all(got.chunks.map((c) => odb.read('chunk', c.oid))),
      );
      assert.deepEqual(back, data);
      const again = await pool.ingestFile(file, 'asset.bin', data.length, () => undefined);
      assert.equal(again.newChunks, 0, 'a second ingest deduplicates everything');
      assert.equal(again.storedBytes, 0);
    } finally {
      await pool.close();
    }
  }
  await assert.rejects(
    (async () => {
      const pool = new ChunkWorkerPool(
        { root: dir, fsync: false, compressionLevel: 3, master: null, chunking: DEFAULT_CHUNKING },
        1,
      );
      try {
        await pool.ingestFile(join(dir, 'missing.bin'), 'missing.bin', 0, () => undefined);
      } finally {
        await pool.close();
      }
    })(),
    (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
  );
  await rm(dir, { recursive: true, force: true });
});

test('adopt verifies a fetched chunk before writing it; a corrupt one is refused and never lands', async () => {
  const remote = await freshStore();
  const local = await freshStore();
  const master = newMasterKey();
  const sealer = new EncryptedSealer(master);
  const remoteOdb = new ObjectDatabase(remote.store, { compressionLevel: 3, sealer });
  const pool = new ChunkWorkerPool(
    { root: local.dir, fsync: false, compressionLevel: 3, master, chunking: DEFAULT_CHUNKING },
    2,
  );
  try {
    const good = await remoteOdb.putChunk(Buffer.from('fetched '.repeat(50_000)), {
      skipCompression: false,
    });
    const other = await remoteOdb.putChunk(randomBytes(200_000), { skipCompression: false });
    const stored = await remote.store.get(`chunks/${good.oid}`);
    assert.equal(await pool.adopt(good.oid, Buffer.from(stored)), stored.length);
    assert.deepEqual(await local.store.get(`chunks/${good.oid}`), stored);
    // A flipped bit, and another chunk's bytes under this ID (a swap): both refused, nothing written.
    const flipped = Buffer.from(await remote.store.get(`chunks/${other.oid}`));
    flipped[flipped.length - 40] = flipped[flipped.length - 40]! ^ 1;
    await assert.rejects(
      pool.adopt(other.oid, flipped),
      (err: unknown) => err instanceof ObjectCorruptError && err.oid === other.oid,
    );
    await assert.rejects(
      pool.adopt(other.oid, Buffer.from(stored)),
      (err: unknown) => err instanceof ObjectCorruptError && err.oid === other.oid,
    );
    assert.deepEqual(await local.store.has([`chunks/${other.oid}`]), [false]);
  } finally {
    await pool.close();
    await rm(remote.dir, { recursive: true, force: true });
    await rm(local.dir, { recursive: true, force: true });
  }
});

/** Deterministic bytes (AES-CTR keystream of a fixed key): the same file on every run. */
function seededBytes(seed: number, length: number): Buffer {
  const key = Buffer.alloc(32);
  key.writeUInt32BE(seed, 0);
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

type ChunkList = Array<{ oid: string; size: number }>;

/** Small chunks, so a few MiB hold hundreds of boundaries. */
const GUIDED_CHUNKING = { minSize: 4 * 1024, avgSize: 16 * 1024, maxSize: 64 * 1024 };
const GUIDED_BASE = Buffer.concat([
  seededBytes(1, 1_500_000),
  Buffer.alloc(200_000, 9),
  seededBytes(2, 1_300_000),
]);

/** Every way an edit can put two versions' boundaries out of step, and back. */
const GUIDED_EDITS: Array<[string, Buffer]> = ((base) => [
  ['unchanged', base],
  [
    'bytes overwritten in the middle',
    Buffer.concat([base.subarray(0, 900_000), seededBytes(3, 5_000), base.subarray(905_000)]),
  ],
  [
    'bytes inserted near the start',
    Buffer.concat([base.subarray(0, 10_000), seededBytes(4, 777), base.subarray(10_000)]),
  ],
  ['bytes inserted at the start', Buffer.concat([seededBytes(6, 777), base])],
  [
    'bytes deleted twice',
    Buffer.concat([
      base.subarray(0, 400_000),
      base.subarray(420_000, 2_000_000),
      base.subarray(2_000_100),
    ]),
  ],
  ['appended to', Buffer.concat([base, seededBytes(5, 300_000)])],
  ['truncated', base.subarray(0, 2_222_222)],
  [
    'a stretch repeated',
    Buffer.concat([
      base.subarray(0, 1_000_000),
      base.subarray(0, 1_000_000),
      base.subarray(1_000_000),
    ]),
  ],
  ['shorter than one chunk', base.subarray(0, 3_000)],
  ['empty', Buffer.alloc(0)],
])(GUIDED_BASE);

/**
 * For each repository kind (plain, keyed): a pool over a fresh store, GUIDED_BASE ingested, and
 * the guides to try — its real chunk list and every way a guide can mislead — with the chunk list
 * a full scan gives any data. `check` runs every edit under every guide.
 */
async function forEveryGuide(
  workers: number,
  check: (
    env: {
      pool: ChunkWorkerPool;
      odb: ObjectDatabase;
      gear: Uint32Array | undefined;
      previous: ChunkList;
      dir: string;
    },
    file: string,
    data: Buffer,
    expected: ChunkList,
    what: string,
    how: string,
    guide: ChunkList,
  ) => Promise<void>,
): Promise<void> {
  const { dir, store } = await freshStore();
  const chunking = GUIDED_CHUNKING;
  for (const master of [null, newMasterKey()]) {
    const pool = new ChunkWorkerPool(
      { root: dir, fsync: false, compressionLevel: 1, master, chunking },
      workers,
    );
    try {
      const sealer = master ? new EncryptedSealer(master) : undefined;
      const odb = new ObjectDatabase(store, { compressionLevel: 1, ...(sealer ? { sealer } : {}) });
      const canonical = (data: Buffer): ChunkList =>
        chunkBuffer(data, chunking, sealer?.gear).map((c) => ({
          oid: odb.oidOf('chunk', c),
          size: c.length,
        }));
      const baseFile = join(dir, 'base.bin');
      await writeFile(baseFile, GUIDED_BASE);
      const previous = (
        await pool.ingestFile(baseFile, 'base.bin', GUIDED_BASE.length, () => undefined)
      ).chunks;
      assert.deepEqual(previous, canonical(GUIDED_BASE));
      // Real chunks with made-up boundaries: every hash matches, so only the cut check stands guard.
      const resplit: ChunkList = [];
      for (let at = 0; at < GUIDED_BASE.length; at += 10_007) {
        const piece = GUIDED_BASE.subarray(at, Math.min(GUIDED_BASE.length, at + 10_007));
        resplit.push({ oid: odb.oidOf('chunk', piece), size: piece.length });
      }
      const guides: Array<[string, ChunkList]> = [
        ['the real previous version', previous],
        ['the same chunks, shuffled', [...previous].reverse()],
        ['sizes that lie', previous.map((c, i) => ({ oid: c.oid, size: c.size + (i % 3) - 1 }))],
        [
          'sizes past maxSize and zero',
          previous.map((c, i) => ({ oid: c.oid, size: i % 2 ? 10 * chunking.maxSize : 0 })),
        ],
        ['made-up boundaries of real content', resplit],
      ];
      const env = { pool, odb, gear: sealer?.gear, previous, dir };
      for (const [what, data] of GUIDED_EDITS) {
        const file = join(dir, 'edited.bin');
        await writeFile(file, data);
        const expected = canonical(data);
        for (const [how, guide] of guides)
          await check(
            env,
            file,
            data,
            expected,
            what,
            `${how}${master ? ' (encrypted)' : ''}`,
            guide,
          );
      }
      // The guided chunks are stored like any others: an edited file reads back.
      const edited = GUIDED_EDITS[4]![1];
      const file = join(dir, 'edited.bin');
      await writeFile(file, edited);
      const got = await pool.ingestFile(
        file,
        'edited.bin',
        edited.length,
        () => undefined,
        previous,
      );
      assert.ok(
        Buffer.concat(await Promise.all(got.chunks.map((c) => odb.read('chunk', c.oid)))).equals(
          edited,
        ),
      );
      // A chunk the guide names but the store has lost is stored again.
      const lost = previous[5]!;
      await rm(store.pathOf(`chunks/${lost.oid}`));
      const again = await ingestAlongPrevious(
        {
          workers: pool,
          chunking,
          ...(sealer ? { gear: sealer.gear } : {}),
          oidOf: (chunk: Buffer) => odb.oidOf('chunk', chunk),
          limiter: new Semaphore(4),
        },
        baseFile,
        'base.bin',
        previous,
        () => undefined,
      );
      assert.equal(again.newChunks, 1);
      assert.ok(
        Buffer.concat(await Promise.all(again.chunks.map((c) => odb.read('chunk', c.oid)))).equals(
          GUIDED_BASE,
        ),
      );
    } finally {
      await pool.close();
    }
  }
  await rm(dir, { recursive: true, force: true });
}

test('boundaries guided by the previous version are exactly the ones a full scan finds, whatever the guide says', async () => {
  await forEveryGuide(1, async ({ pool }, file, data, expected, what, how, guide) => {
    let reported = 0;
    const got = await pool.ingestFile(
      file,
      'edited.bin',
      data.length,
      (n) => (reported += n),
      guide,
    );
    assert.deepEqual(got.chunks, expected, `${what}, guided by ${how}`);
    assert.equal(got.size, data.length);
    assert.equal(reported, data.length);
  });
});

test("a big file's old chunks proposed to every worker give exactly a full scan's boundaries", async () => {
  await forEveryGuide(2, async ({ pool, odb, gear }, file, data, expected, what, how, guide) => {
    const ctx = {
      workers: pool,
      chunking: GUIDED_CHUNKING,
      ...(gear ? { gear } : {}),
      oidOf: (chunk: Buffer) => odb.oidOf('chunk', chunk),
      limiter: new Semaphore(4),
    };
    let reported = 0;
    const got = await ingestAlongPrevious(ctx, file, 'edited.bin', guide, (n) => (reported += n));
    const label = `${what}, guided by ${how}`;
    assert.deepEqual(got.chunks, expected, label);
    assert.equal(got.size, data.length, label);
    assert.equal(reported, data.length, label);
    // The proposals must carry the work wherever the versions agree, not the scan.
    const truthful = how.startsWith('the real previous version');
    if (truthful && what === 'unchanged') assert.equal(got.followedBytes, data.length, label);
    if (truthful && data.length > 1_000_000)
      assert.ok(
        got.followedBytes > data.length - 12 * GUIDED_CHUNKING.maxSize,
        `${label}: only ${got.followedBytes} bytes followed`,
      );
    if (how.startsWith('made-up boundaries')) assert.equal(got.followedBytes, 0, label);
  });
});

test('where the guide fails, a guided ingest scans its window in WebAssembly, not in JavaScript', async () => {
  const { dir, store } = await freshStore();
  const pool = new ChunkWorkerPool(
    { root: dir, fsync: false, compressionLevel: 1, master: null, chunking: GUIDED_CHUNKING },
    1,
  );
  // Counted on this thread only: the workers' own scans (the proposals they check) are not.
  const scan = GearScan.prototype.scan;
  let scannedInWasm = 0;
  GearScan.prototype.scan = function (
    this: GearScan,
    data: Uint8Array,
    from: number,
    end: number,
    hash: number,
    limit: number,
  ): number {
    scannedInWasm += end - from;
    return scan.call(this, data, from, end, hash, limit);
  };
  try {
    const odb = new ObjectDatabase(store, { compressionLevel: 1 });
    const listOf = (data: Buffer): ChunkList =>
      chunkBuffer(data, GUIDED_CHUNKING).map((c) => ({
        oid: odb.oidOf('chunk', c),
        size: c.length,
      }));
    // A file rewritten throughout: no old chunk holds, so this thread cuts all of it.
    const rewritten = seededBytes(7, 1_000_000);
    const file = join(dir, 'rewritten.bin');
    await writeFile(file, rewritten);
    const got = await ingestAlongPrevious(
      {
        workers: pool,
        chunking: GUIDED_CHUNKING,
        oidOf: (chunk: Buffer) => odb.oidOf('chunk', chunk),
        limiter: new Semaphore(4),
      },
      file,
      'rewritten.bin',
      listOf(GUIDED_BASE),
      () => undefined,
    );
    assert.deepEqual(got.chunks, listOf(rewritten));
    assert.equal(got.followedBytes, 0);
    // Every byte past each chunk's minSize is scanned: most of the file.
    assert.ok(
      scannedInWasm > rewritten.length / 2,
      `${scannedInWasm} of ${rewritten.length} bytes scanned in WebAssembly`,
    );
  } finally {
    GearScan.prototype.scan = scan;
    await pool.close();
    await rm(dir, { recursive: true, force: true });
  }
});
