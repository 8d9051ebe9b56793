#!/usr/bin/env node
// Assembles the WebAssembly gear scan used by src/chunking/fastcdc.ts and writes it, base64, to
// src/chunking/gear-scan-wasm.ts. The listing below is the module's source: a few dozen stack
// instructions, assembled by the small encoder in this file so no toolchain is needed.
//
//   node scripts/gen-gear-scan.mjs          # rewrite src/chunking/gear-scan-wasm.ts
//   node scripts/gen-gear-scan.mjs --check  # exit 1 if the committed bytes differ from the listing
//
// The module imports one memory ("m" "memory") laid out as:
//   [0, 1024)     the gear table, 256 little-endian i32 (entry b at b * 4)
//   [1024, 1028)  the hash left by a scan that found no cut
//   [65536, ...)  the caller's window (WINDOW_BASE in src/chunking/gear-scan.ts)
//
// scan(i, end, h, limit) -> i32 runs the cut loop of docs/chunking.md section 4 over the bytes at
// addresses [i, end): h = (h << 1) + G[byte] (mod 2^32), and the first byte after which h is
// below `limit` (unsigned; the same as (h & mask) == 0 for a mask of top bits, limit =
// 2^(32 - bits)) ends the chunk: its address + 1 is returned. Without a cut it stores h at 1024
// and returns 0 (never a valid answer: windows start above the table).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HASH_SLOT = 1024;

// G[mem[i + k]], the gear word of the byte at i + k.
const gearOf = (k) => [
  ['local.get', '$i'],
  ['i32.load8_u', { offset: k }],
  ['i32.const', 2],
  'i32.shl',
  ['i32.load', { offset: 0, align: 2 }],
];

// if (value on the stack <u limit) return i + past. With the mask a run of top bits (docs/chunking.md
// section 3), (h & mask) == 0 is exactly h <u 2^(32 - bits): one compare instead of and + test.
const cutIfBelow = (past) => [
  ['local.get', '$limit'],
  'i32.lt_u',
  'if',
  ['local.get', '$i'],
  ['i32.const', past],
  'i32.add',
  'return',
  'end',
];

// Two bytes: h1 = (h << 1) + G[a] is tested, and h2 = (h << 2) + ((G[a] << 1) + G[b]), which is
// (h1 << 1) + G[b], is computed from h directly, so the loop-carried chain is one shift and one add
// per two bytes; the rest runs beside it.
const pair = (k) => [
  ...gearOf(k),
  ['local.set', '$g'],
  ['local.get', '$h'],
  ['i32.const', 1],
  'i32.shl',
  ['local.get', '$g'],
  'i32.add',
  ...cutIfBelow(k + 1),
  ['local.get', '$h'],
  ['i32.const', 2],
  'i32.shl',
  ['local.get', '$g'],
  ['i32.const', 1],
  'i32.shl',
  ...gearOf(k + 1),
  'i32.add',
  'i32.add',
  ['local.tee', '$h'],
  ...cutIfBelow(k + 2),
];

// One byte: h = (h << 1) + G[mem[i]].
const single = [
  ['local.get', '$h'],
  ['i32.const', 1],
  'i32.shl',
  ...gearOf(0),
  'i32.add',
  ['local.tee', '$h'],
  ...cutIfBelow(1),
];

// Four bytes per turn of the loop while four remain (the end test once per four bytes), then
// one at a time.
const UNROLL = 4;
const listing = [
  'block $tail',
  'loop $wide',
  // while (i + UNROLL <= end)
  ['local.get', '$i'],
  ['i32.const', UNROLL],
  'i32.add',
  ['local.get', '$end'],
  'i32.gt_u',
  ['br_if', '$tail'],
  ...Array.from({ length: UNROLL / 2 }, (_, k) => pair(2 * k)).flat(),
  ['local.get', '$i'],
  ['i32.const', UNROLL],
  'i32.add',
  ['local.set', '$i'],
  ['br', '$wide'],
  'end',
  'end',
  'block $done',
  'loop $one',
  // while (i < end)
  ['local.get', '$i'],
  ['local.get', '$end'],
  'i32.ge_u',
  ['br_if', '$done'],
  ...single,
  ['local.get', '$i'],
  ['i32.const', 1],
  'i32.add',
  ['local.set', '$i'],
  ['br', '$one'],
  'end',
  'end',
  // No cut: leave h for the next call.
  ['i32.const', HASH_SLOT],
  ['local.get', '$h'],
  ['i32.store', { offset: 0, align: 2 }],
  ['i32.const', 0],
];

const PARAMS = ['$i', '$end', '$h', '$limit'];
/** Locals beyond the parameters, all i32. */
const LOCALS = ['$g'];
const LOCAL_NAMES = [...PARAMS, ...LOCALS];

const OPCODES = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  return: 0x0f,
  'local.get': 0x20,
  'local.set': 0x21,
  'local.tee': 0x22,
  'i32.load': 0x28,
  'i32.load8_u': 0x2d,
  'i32.store': 0x36,
  'i32.const': 0x41,
  'i32.eqz': 0x45,
  'i32.ge_u': 0x4f,
  'i32.gt_u': 0x4b,
  'i32.lt_u': 0x49,
  'i32.add': 0x6a,
  'i32.and': 0x71,
  'i32.shl': 0x74,
};

function uleb(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n) {
  const out = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const name = (s) => [...uleb(s.length), ...Buffer.from(s, 'utf8')];
const vec = (items) => [...uleb(items.length), ...items.flat()];
const section = (id, body) => [id, ...uleb(body.length), ...body];

function assemble(instructions) {
  const labels = [];
  const out = [];
  for (const ins of instructions) {
    const [op, arg] = typeof ins === 'string' ? ins.split(' ') : ins;
    const code = OPCODES[op];
    if (code === undefined) throw new Error(`unknown instruction ${op}`);
    out.push(code);
    if (op === 'block' || op === 'loop' || op === 'if') {
      out.push(0x40); // no result
      labels.push(arg ?? null);
    } else if (op === 'end') {
      if (labels.pop() === undefined) throw new Error('unbalanced end');
    } else if (op === 'br' || op === 'br_if') {
      const depth = labels.length - 1 - labels.lastIndexOf(arg);
      if (depth >= labels.length) throw new Error(`unknown label ${arg}`);
      out.push(...uleb(depth));
    } else if (op.startsWith('local.')) {
      const index = LOCAL_NAMES.indexOf(arg);
      if (index < 0) throw new Error(`unknown local ${arg}`);
      out.push(...uleb(index));
    } else if (op === 'i32.const') {
      out.push(...sleb(arg));
    } else if (op.includes('.load') || op.includes('.store')) {
      out.push(...uleb(arg.align ?? 0), ...uleb(arg.offset));
    }
  }
  if (labels.length !== 0) throw new Error('unclosed block');
  return out;
}

const I32 = 0x7f;
const body = [...vec([[...uleb(LOCALS.length), I32]]), ...assemble(listing), OPCODES.end];
const bytes = Buffer.from([
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
  ...section(1, vec([[0x60, ...vec(PARAMS.map(() => [I32])), ...vec([[I32]])]])),
  ...section(2, vec([[...name('m'), ...name('memory'), 0x02, 0x00, ...uleb(1)]])),
  ...section(3, vec([uleb(0)])),
  ...section(7, vec([[...name('scan'), 0x00, ...uleb(0)]])),
  ...section(10, vec([[...uleb(body.length), ...body]])),
]);
if (!globalThis.WebAssembly.validate(bytes)) throw new Error('assembled module does not validate');

const here = path.dirname(fileURLToPath(import.meta.url));
const target = path.join(here, '..', 'src', 'chunking', 'gear-scan-wasm.ts');
const text = `// Generated by scripts/gen-gear-scan.mjs from the listing there; do not edit by hand.
/** The gear scan module (see scripts/gen-gear-scan.mjs for its source and memory layout). */
export const GEAR_SCAN_WASM =
  '${bytes.toString('base64')}';
/** Where a scan that found no cut leaves its hash (a byte address in the module's memory). */
export const GEAR_SCAN_HASH_SLOT = ${HASH_SLOT};
`;
if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(target, 'utf8');
  } catch {
    // missing counts as different
  }
  if (committed !== text) {
    console.error(`${target} differs from the listing in ${path.basename(import.meta.url)}`);
    process.exit(1);
  }
} else {
  writeFileSync(target, text);
  console.log(`wrote ${target} (${bytes.length} bytes of WebAssembly)`);
}
