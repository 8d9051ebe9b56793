#!/usr/bin/env node
// Throughput of src/chunking on pseudo-random data, optionally against the fastcdc-wasm package.
//
//   npx tsc -p tsconfig.json && node scripts/bench-chunking.mjs [--mib 512] [--runs 5] [--warmup 2] [--wasm]
//
// --wasm: compare with fastcdc-wasm. It is loaded from $FASTCDC_WASM_DIR (a directory containing
// node_modules/fastcdc-wasm) if set, else installed with `npm install --no-save` into a fresh temp
// directory. It is never added to package.json: it can't stream and can't take a gear table.
import { createCipheriv } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const { Chunker, CutFinder, chunkBoundaries, chunkBuffer, chunkStream, DEFAULT_CHUNKING } =
  await import(join(here, '..', 'dist', 'src', 'chunking', 'index.js'));

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? Number(process.argv[i + 1]) : fallback;
}
const MIB = 1024 * 1024;
const sizeMiB = arg('--mib', 512);
const runs = arg('--runs', 5);
const warmups = arg('--warmup', 2);
const wantWasm = process.argv.includes('--wasm');
const P = DEFAULT_CHUNKING;

// AES-256-CTR keystream: incompressible, deterministic and generated at GB/s, so setup stays cheap.
function pseudoRandom(bytes) {
  const c = createCipheriv('aes-256-ctr', Buffer.alloc(32, 0x6d), Buffer.alloc(16, 0));
  return c.update(Buffer.alloc(bytes));
}

function summarize(name, seconds, chunks) {
  seconds.sort((a, b) => a - b);
  const best = sizeMiB / seconds[0];
  const median = sizeMiB / seconds[Math.floor(seconds.length / 2)];
  console.log(
    `${name.padEnd(40)} best ${best.toFixed(0).padStart(5)} MiB/s   median ${median.toFixed(0).padStart(5)} MiB/s   ` +
      `${chunks} chunks, mean ${(sizeMiB / chunks).toFixed(2)} MiB`,
  );
  return best;
}

async function measure(name, fn) {
  // V8 needs a few hundred MiB through the scan loop before its top tier kicks in; time steady state.
  for (let w = 0; w < warmups; w++) await fn();
  const seconds = [];
  let chunks = 0;
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    chunks = await fn();
    seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return summarize(name, seconds, chunks);
}

function pushIn(data, piece) {
  const c = new Chunker(P);
  let count = 0;
  for (let off = 0; off < data.length; off += piece)
    count += c.push(data.subarray(off, off + piece)).length;
  return count + c.finish().length;
}

/**
 * add's reader: 4 MiB reads into a window (here copied in from `data`), the unfinished chunk moved
 * to the front before each refill, cut by a CutFinder. `wasm`: the window is the finder's own
 * (WebAssembly memory, scanned in place); otherwise an ordinary buffer (scanned in JavaScript).
 */
function windowed(data, wasm) {
  const read = 4 * MIB;
  const finder = new CutFinder(P);
  const window = wasm ? finder.window(P.maxSize + read) : Buffer.allocUnsafeSlow(P.maxSize + read);
  let count = 0;
  let consumed = 0;
  let start = 0;
  let scanned = 0;
  let filled = 0;
  for (;;) {
    const n = Math.min(read, window.length - filled, data.length - consumed);
    window.set(data.subarray(consumed, consumed + n), filled);
    consumed += n;
    filled += n;
    const view = window.subarray(0, filled);
    for (let cut = finder.find(view, start, scanned); cut >= 0;) {
      count++;
      start = scanned = cut;
      cut = finder.find(view, start, scanned);
    }
    scanned = filled;
    if (n === 0) return count + (start < filled ? 1 : 0);
    window.copyWithin(0, start, filled);
    filled -= start;
    scanned -= start;
    start = 0;
  }
}

async function* pieces(data, piece) {
  for (let off = 0; off < data.length; off += piece) yield data.subarray(off, off + piece);
}

function loadWasm() {
  let dir = process.env.FASTCDC_WASM_DIR;
  let cleanup = () => {};
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), 'fastcdc-wasm-'));
    cleanup = () => rmSync(dir, { recursive: true, force: true });
    writeFileSync(join(dir, 'package.json'), '{"name":"bench-tmp","private":true}\n');
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', 'fastcdc-wasm'], {
      cwd: dir,
      stdio: 'ignore',
    });
  }
  const require = createRequire(join(dir, 'package.json'));
  return { mod: require('fastcdc-wasm'), cleanup };
}

console.log(
  `node ${process.version}, ${sizeMiB} MiB pseudo-random, params min/avg/max = ${P.minSize}/${P.avgSize}/${P.maxSize}, ${runs} timed runs after ${warmups} warm-up runs`,
);
const data = pseudoRandom(sizeMiB * MIB);

// Boundaries only is the like-for-like comparison with fastcdc-wasm, which also returns offsets.
const ours = await measure(
  'mediagit chunkBoundaries (scan only)',
  () => chunkBoundaries(data, P).length,
);
await measure('mediagit CutFinder, 4 MiB reads, plain window', () => windowed(data, false));
await measure('mediagit CutFinder, 4 MiB reads, own window', () => windowed(data, true));
await measure('mediagit chunkBuffer (scan + copy chunks)', () => chunkBuffer(data, P).length);
await measure('mediagit Chunker.push, 64 KiB pieces', () => pushIn(data, 64 * 1024));
await measure('mediagit Chunker.push, 1 MiB pieces', () => pushIn(data, MIB));
await measure('mediagit chunkStream, 64 KiB pieces', async () => {
  let count = 0;
  for await (const chunk of chunkStream(pieces(data, 64 * 1024), P))
    count += chunk.length > 0 ? 1 : 0;
  return count;
});

if (wantWasm) {
  let wasm;
  try {
    wasm = loadWasm();
  } catch (err) {
    console.log(`fastcdc-wasm: could not install/load (${err.message}); skipped`);
  }
  if (wasm) {
    try {
      // get_chunks copies the whole input into wasm memory and returns cut offsets; it has no
      // streaming entry point and uses its own fixed gear table.
      const theirs = await measure(
        'fastcdc-wasm get_chunks (whole buffer)',
        () => wasm.mod.get_chunks(data, P.minSize, P.avgSize, P.maxSize).length,
      );
      console.log(`ratio ours/fastcdc-wasm: ${(ours / theirs).toFixed(2)}x`);
    } catch (err) {
      console.log(`fastcdc-wasm: failed on ${sizeMiB} MiB (${err.message})`);
    } finally {
      wasm.cleanup();
    }
  }
}
