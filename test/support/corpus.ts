/**
 * Deterministic media corpus: a small game/film asset project in two versions, for end-to-end
 * tests and benchmarks of chunking, deduplication and compression.
 *
 * The file kinds are picked for how a content-addressed store sees them: PCM audio and
 * uncompressed textures compress a little, video payloads not at all, scene files partly, JSON
 * a lot. Version 2 applies the edits an artist would make to version 1, each exercising a
 * different dedup case: data appended at the end, bytes changed in place, bytes inserted in the
 * middle (everything after shifts), a header that grows, a renamed folder, a deletion, an
 * addition, and small text rewrites.
 *
 * Determinism: every byte comes from generators seeded by a fixed string (no clock, no OS
 * randomness), so the same arguments yield the same bytes on every machine. (The audio and
 * texture maths uses Math.sin/exp/log, which V8 implements in software, not with the CPU's.)
 * Memory: large files are produced piece by piece into scratch buffers that are reused once the
 * piece is on disk, so even the full profile (~600 MiB) runs in a few MiB beyond Node's own.
 * (Allocating a fresh Buffer per piece instead lets external memory climb past 100 MiB before V8
 * bothers to collect.)
 */
import { createHash } from 'node:crypto';
import {
  mkdir,
  open,
  readdir,
  rename,
  rm,
  stat,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import path from 'node:path';

export type CorpusVersion = 1 | 2;
export type CorpusProfile = 'small' | 'full' | 'tiny';

export interface CorpusStats {
  files: number;
  bytes: number;
}

/** Fraction of the full profile's bytes that each profile produces, file by file. */
export const PROFILE_SCALE: Readonly<Record<CorpusProfile, number>> = {
  full: 1,
  small: 1 / 16,
  tiny: 1 / 200,
};

const MIB = 1024 * 1024;
/** Upper bound for one generated piece: keeps memory flat whatever the file size. */
const PIECE_BYTES = 1 * MIB;

// ---------------------------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------------------------

function seedDigest(label: string, seed: string): Buffer {
  return createHash('sha256').update(`mediagit-corpus/${label}/${seed}`).digest();
}

/** xoshiro128** over 32-bit words; seeded from a SHA-256 of the seed text so seeds never collide in practice. */
export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: string) {
    const d = seedDigest('prng', seed);
    this.s0 = d.readUInt32LE(0);
    this.s1 = d.readUInt32LE(4);
    this.s2 = d.readUInt32LE(8);
    this.s3 = d.readUInt32LE(12);
    // The all-zero state is the one state xoshiro never leaves.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  u32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 0x1_0000_0000;
  }

  /** Uniform in [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.float();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new Error('Prng.pick: empty list');
    return item;
  }

  /**
   * Fills `buf` with the next bytes of the stream (little-endian words, so the bytes do not depend
   * on the host). Uniform bytes are incompressible, like encoded video.
   */
  fill(buf: Buffer): Buffer {
    const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
    const whole = buf.length - (buf.length % 4);
    for (let i = 0; i < whole; i += 4) view.setUint32(i, this.u32(), true);
    if (whole < buf.length) {
      let w = this.u32();
      for (let i = whole; i < buf.length; i++, w >>>= 8) buf[i] = w & 0xff;
    }
    return buf;
  }

  hex(chars: number): string {
    let out = '';
    while (out.length < chars) out += this.u32().toString(16).padStart(8, '0');
    return out.slice(0, chars);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

// ---------------------------------------------------------------------------------------------
// Output helpers
// ---------------------------------------------------------------------------------------------

/**
 * A file's content as a sequence of pieces. A piece may be a view of a scratch buffer that the
 * producer overwrites once the next piece is requested: writePieces finishes writing each piece
 * before asking for the next, which is what makes that reuse safe.
 */
type Pieces = Iterable<Buffer> | AsyncIterable<Buffer>;

async function writePieces(file: string, pieces: Pieces): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const fh = await open(file, 'w');
  try {
    let pos = 0;
    for await (const piece of pieces) {
      await writeFully(fh, piece, pos);
      pos += piece.length;
    }
  } finally {
    await fh.close();
  }
}

async function writeFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, position + off);
    off += bytesWritten;
  }
}

/** Replaces `file` only once the new content is complete, so a failed edit leaves v1 intact. */
async function replaceWithPieces(file: string, pieces: Pieces): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.corpus-tmp`);
  try {
    await writePieces(tmp, pieces);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function* copyRange(
  file: string,
  start: number,
  endExclusive?: number,
): AsyncGenerator<Buffer> {
  const fh = await open(file, 'r');
  try {
    const end = endExclusive ?? (await fh.stat()).size;
    const scratch = Buffer.allocUnsafe(PIECE_BYTES);
    for (let pos = start; pos < end;) {
      const { bytesRead } = await fh.read(scratch, 0, Math.min(scratch.length, end - pos), pos);
      if (bytesRead === 0) throw new Error(`${file}: ended at ${pos}, expected ${end} bytes`);
      pos += bytesRead;
      yield scratch.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------------------------
// WAV: 24-bit stereo 48 kHz PCM
// ---------------------------------------------------------------------------------------------

export const WAV_SAMPLE_RATE = 48_000;
export const WAV_CHANNELS = 2;
export const WAV_BITS = 24;
export const WAV_HEADER_BYTES = 44;
const WAV_FRAME_BYTES = WAV_CHANNELS * (WAV_BITS / 8);
const INT24_MAX = 0x7f_ffff;

function wavHeader(dataBytes: number): Buffer {
  const h = Buffer.alloc(WAV_HEADER_BYTES);
  h.write('RIFF', 0, 'ascii');
  h.writeUInt32LE(WAV_HEADER_BYTES - 8 + dataBytes, 4);
  h.write('WAVE', 8, 'ascii');
  h.write('fmt ', 12, 'ascii');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(WAV_CHANNELS, 22);
  h.writeUInt32LE(WAV_SAMPLE_RATE, 24);
  h.writeUInt32LE(WAV_SAMPLE_RATE * WAV_FRAME_BYTES, 28);
  h.writeUInt16LE(WAV_FRAME_BYTES, 32);
  h.writeUInt16LE(WAV_BITS, 34);
  h.write('data', 36, 'ascii');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/**
 * Exponential sine sweep with a few harmonics, a slow tremolo, a slightly different right
 * channel and low-level seeded noise: compresses about as poorly as real recordings do.
 */
function* pcmFrames(seed: string, frames: number): Generator<Buffer> {
  const rng = new Prng(`wav:${seed}`);
  const f0 = rng.between(60, 400);
  const f1 = f0 * rng.between(2, 12);
  const step = Math.exp(Math.log(f1 / f0) / Math.max(1, frames));
  const tremoloHz = rng.between(0.2, 3);
  const noiseBits = 8 + rng.int(4);
  const noiseMask = (1 << noiseBits) - 1;
  const noiseOffset = 1 << (noiseBits - 1);
  const gain = rng.between(0.35, 0.6) * INT24_MAX;
  const rightGain = rng.between(0.7, 1);
  const twoPi = 2 * Math.PI;

  let freq = f0;
  let phase = 0;
  let tremoloPhase = rng.float() * twoPi;
  const tremoloStep = (twoPi * tremoloHz) / WAV_SAMPLE_RATE;
  const framesPerPiece = Math.floor(PIECE_BYTES / WAV_FRAME_BYTES);
  const scratch = Buffer.allocUnsafe(Math.min(frames, framesPerPiece) * WAV_FRAME_BYTES);

  for (let done = 0; done < frames;) {
    const n = Math.min(framesPerPiece, frames - done);
    const buf = scratch.subarray(0, n * WAV_FRAME_BYTES);
    let o = 0;
    for (let i = 0; i < n; i++) {
      const tone =
        0.62 * Math.sin(phase) + 0.24 * Math.sin(2 * phase + 0.5) + 0.1 * Math.sin(3 * phase);
      const env = 0.65 + 0.35 * Math.sin(tremoloPhase);
      const noise = rng.u32();
      const left = tone * env * gain + ((noise & noiseMask) - noiseOffset);
      const right = tone * env * gain * rightGain + (((noise >>> 16) & noiseMask) - noiseOffset);
      o = writeInt24(buf, o, left);
      o = writeInt24(buf, o, right);
      phase += (twoPi * freq) / WAV_SAMPLE_RATE;
      if (phase > twoPi) phase -= twoPi;
      tremoloPhase += tremoloStep;
      freq *= step;
    }
    done += n;
    yield buf;
  }
}

function writeInt24(buf: Buffer, o: number, value: number): number {
  let v = Math.round(value);
  if (v > INT24_MAX) v = INT24_MAX;
  else if (v < -INT24_MAX - 1) v = -INT24_MAX - 1;
  buf[o] = v & 0xff;
  buf[o + 1] = (v >> 8) & 0xff;
  buf[o + 2] = (v >> 16) & 0xff;
  return o + 3;
}

function framesFor(seconds: number): number {
  return Math.max(1, Math.round(seconds * WAV_SAMPLE_RATE));
}

async function writeWav(file: string, seed: string, seconds: number): Promise<void> {
  const frames = framesFor(seconds);
  await writePieces(
    file,
    (function* () {
      yield wavHeader(frames * WAV_FRAME_BYTES);
      yield* pcmFrames(seed, frames);
    })(),
  );
}

/** Appends audio after the data chunk and rewrites the two RIFF length fields. */
async function appendToWav(file: string, seed: string, seconds: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const header = Buffer.alloc(WAV_HEADER_BYTES);
    await fh.read(header, 0, WAV_HEADER_BYTES, 0);
    const { size } = await fh.stat();
    const dataBytes = header.readUInt32LE(40);
    if (header.toString('ascii', 0, 4) !== 'RIFF' || header.toString('ascii', 36, 40) !== 'data') {
      throw new Error(`${file}: not a corpus WAV`);
    }
    if (WAV_HEADER_BYTES + dataBytes !== size)
      throw new Error(`${file}: data chunk is not the last chunk`);

    let pos = size;
    for (const piece of pcmFrames(seed, framesFor(seconds))) {
      await writeFully(fh, piece, pos);
      pos += piece.length;
    }
    const lengths = Buffer.alloc(4);
    lengths.writeUInt32LE(pos - 8, 0);
    await writeFully(fh, lengths, 4);
    lengths.writeUInt32LE(pos - WAV_HEADER_BYTES, 0);
    await writeFully(fh, lengths, 40);
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------------------------
// TIFF: baseline, uncompressed, 8-bit RGB, chunky, little-endian
// ---------------------------------------------------------------------------------------------

const TIFF_STRIP_TARGET_BYTES = 64 * 1024;

interface TiffLayout {
  width: number;
  height: number;
  rowBytes: number;
  rowsPerStrip: number;
  strips: number;
  pixelOffset: number;
  header: Buffer;
}

const TIFF_SHORT = 3;
const TIFF_LONG = 4;
const TIFF_ASCII = 2;
const TIFF_RATIONAL = 5;

/**
 * The header (IFD and every out-of-line value) precedes the pixels, and strips are contiguous,
 * so row y of the image starts at pixelOffset + y * rowBytes. That lets v2 paint in place.
 */
function tiffLayout(width: number, height: number, description: string): TiffLayout {
  const rowBytes = width * 3;
  const rowsPerStrip = Math.max(
    1,
    Math.min(height, Math.floor(TIFF_STRIP_TARGET_BYTES / rowBytes)),
  );
  const strips = Math.ceil(height / rowsPerStrip);
  const even = (n: number): number => n + (n & 1);

  const descBytes = Buffer.from(`${description}\0`, 'ascii');
  const software = Buffer.from('mediagit test corpus\0', 'ascii');
  const entryCount = 15;
  const ifdOffset = 8;
  let cursor = ifdOffset + 2 + entryCount * 12 + 4;
  const bitsOffset = cursor;
  cursor += 6;
  const xResOffset = cursor;
  cursor += 8;
  const yResOffset = cursor;
  cursor += 8;
  const descOffset = cursor;
  cursor = even(cursor + descBytes.length);
  const softwareOffset = cursor;
  cursor = even(cursor + software.length);
  const stripOffsetsOffset = cursor;
  cursor += strips > 1 ? strips * 4 : 0;
  const stripCountsOffset = cursor;
  cursor += strips > 1 ? strips * 4 : 0;
  const pixelOffset = Math.ceil(cursor / 16) * 16;

  const h = Buffer.alloc(pixelOffset);
  h.write('II', 0, 'ascii');
  h.writeUInt16LE(42, 2);
  h.writeUInt32LE(ifdOffset, 4);
  h.writeUInt16LE(entryCount, ifdOffset);

  let entry = ifdOffset + 2;
  const tag = (id: number, type: number, count: number, valueOrOffset: number): void => {
    h.writeUInt16LE(id, entry);
    h.writeUInt16LE(type, entry + 2);
    h.writeUInt32LE(count, entry + 4);
    // Inline SHORTs are left-justified in the 4-byte value field.
    if (type === TIFF_SHORT && count === 1) h.writeUInt16LE(valueOrOffset, entry + 8);
    else h.writeUInt32LE(valueOrOffset, entry + 8);
    entry += 12;
  };
  const stripBytes = (i: number): number =>
    Math.min(rowsPerStrip, height - i * rowsPerStrip) * rowBytes;

  // Tags must appear in ascending order.
  tag(256, TIFF_LONG, 1, width);
  tag(257, TIFF_LONG, 1, height);
  tag(258, TIFF_SHORT, 3, bitsOffset);
  tag(259, TIFF_SHORT, 1, 1); // no compression
  tag(262, TIFF_SHORT, 1, 2); // RGB
  tag(270, TIFF_ASCII, descBytes.length, descOffset);
  tag(273, TIFF_LONG, strips, strips > 1 ? stripOffsetsOffset : pixelOffset);
  tag(277, TIFF_SHORT, 1, 3);
  tag(278, TIFF_LONG, 1, rowsPerStrip);
  tag(279, TIFF_LONG, strips, strips > 1 ? stripCountsOffset : stripBytes(0));
  tag(282, TIFF_RATIONAL, 1, xResOffset);
  tag(283, TIFF_RATIONAL, 1, yResOffset);
  tag(284, TIFF_SHORT, 1, 1); // chunky
  tag(296, TIFF_SHORT, 1, 2); // inch
  tag(305, TIFF_ASCII, software.length, softwareOffset);
  if (entry !== ifdOffset + 2 + entryCount * 12)
    throw new Error('tiffLayout: entry count mismatch');
  h.writeUInt32LE(0, entry); // no further IFD

  for (let c = 0; c < 3; c++) h.writeUInt16LE(8, bitsOffset + c * 2);
  for (const off of [xResOffset, yResOffset]) {
    h.writeUInt32LE(300, off);
    h.writeUInt32LE(1, off + 4);
  }
  descBytes.copy(h, descOffset);
  software.copy(h, softwareOffset);
  if (strips > 1) {
    for (let i = 0; i < strips; i++) {
      h.writeUInt32LE(pixelOffset + i * rowsPerStrip * rowBytes, stripOffsetsOffset + i * 4);
      h.writeUInt32LE(stripBytes(i), stripCountsOffset + i * 4);
    }
  }
  return { width, height, rowBytes, rowsPerStrip, strips, pixelOffset, header: h };
}

/**
 * Smooth gradients plus slow waves along each axis, with per-pixel grain from the keystream:
 * like a painted texture, it compresses somewhat but not well.
 */
function* tiffPixels(seed: string, width: number, height: number): Generator<Buffer> {
  const rng = new Prng(`tif:${seed}`);
  const cols: Int16Array[] = [];
  const rows: Int16Array[] = [];
  for (let c = 0; c < 3; c++) {
    const base = rng.between(20, 120);
    const slopeX = rng.between(-60, 90);
    const slopeY = rng.between(-60, 90);
    const waveX = rng.between(0, 30);
    const waveY = rng.between(0, 30);
    const periodsX = rng.between(0.5, 6);
    const periodsY = rng.between(0.5, 6);
    const col = new Int16Array(width);
    const row = new Int16Array(height);
    for (let x = 0; x < width; x++) {
      const u = x / width;
      col[x] = Math.round(base + slopeX * u + waveX * Math.sin(2 * Math.PI * periodsX * u));
    }
    for (let y = 0; y < height; y++) {
      const v = y / height;
      row[y] = Math.round(slopeY * v + waveY * Math.sin(2 * Math.PI * periodsY * v + 1));
    }
    cols.push(col);
    rows.push(row);
  }
  const [colR, colG, colB] = cols as [Int16Array, Int16Array, Int16Array];
  const [rowR, rowG, rowB] = rows as [Int16Array, Int16Array, Int16Array];
  const grain = 1 + rng.int(3);
  const noise = new Prng(`tif-grain:${seed}`);

  const rowBytes = width * 3;
  const rowsPerPiece = Math.max(1, Math.min(height, Math.floor(PIECE_BYTES / rowBytes)));
  const scratch = Buffer.allocUnsafe(rowsPerPiece * rowBytes);
  const grainScratch = Buffer.allocUnsafe(rowsPerPiece * width);
  for (let y0 = 0; y0 < height; y0 += rowsPerPiece) {
    const n = Math.min(rowsPerPiece, height - y0);
    const buf = scratch.subarray(0, n * rowBytes);
    const grainBytes = noise.fill(grainScratch.subarray(0, n * width));
    let o = 0;
    let g = 0;
    for (let y = y0; y < y0 + n; y++) {
      const rr = rowR[y] ?? 0;
      const rg = rowG[y] ?? 0;
      const rb = rowB[y] ?? 0;
      for (let x = 0; x < width; x++) {
        const b = grainBytes[g++] ?? 0;
        buf[o++] = clampByte((colR[x] ?? 0) + rr + ((b & 7) - 4) * grain);
        buf[o++] = clampByte((colG[x] ?? 0) + rg + (((b >> 2) & 7) - 4) * grain);
        buf[o++] = clampByte((colB[x] ?? 0) + rb + (((b >> 5) & 7) - 4) * grain);
      }
    }
    yield buf;
  }
}

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

async function writeTiff(file: string, seed: string, width: number, height: number): Promise<void> {
  const layout = tiffLayout(width, height, seed);
  await writePieces(
    file,
    (function* () {
      yield layout.header;
      yield* tiffPixels(seed, width, height);
    })(),
  );
}

/** A soft-edged brush stroke blended over a rectangle, rewriting only the rows it touches. */
async function paintTiff(file: string, seed: string, width: number, height: number): Promise<void> {
  const layout = tiffLayout(width, height, seed);
  const rng = new Prng(`paint:${seed}`);
  const w = Math.max(2, Math.round(width * rng.between(0.15, 0.3)));
  const h = Math.max(2, Math.round(height * rng.between(0.15, 0.3)));
  const x0 = rng.int(width - w + 1);
  const y0 = rng.int(height - h + 1);
  const color = [rng.int(256), rng.int(256), rng.int(256)] as const;

  const fh = await open(file, 'r+');
  try {
    const { size } = await fh.stat();
    if (size !== layout.pixelOffset + height * layout.rowBytes) {
      throw new Error(`${file}: size ${size} does not match a ${width}x${height} corpus texture`);
    }
    const row = Buffer.alloc(w * 3);
    for (let y = y0; y < y0 + h; y++) {
      const pos = layout.pixelOffset + y * layout.rowBytes + x0 * 3;
      await fh.read(row, 0, row.length, pos);
      const edgeY = Math.min(y - y0, y0 + h - 1 - y);
      for (let x = 0; x < w; x++) {
        const edge = Math.min(edgeY, x, w - 1 - x);
        // Opaque in the middle, fading over the outer 8 pixels.
        const alpha = Math.min(1, (edge + 1) / 8) * 0.85;
        for (let c = 0; c < 3; c++) {
          const i = x * 3 + c;
          row[i] = Math.round((row[i] ?? 0) * (1 - alpha) + (color[c] ?? 0) * alpha);
        }
      }
      await writeFully(fh, row, pos);
    }
  } finally {
    await fh.close();
  }
}

// ---------------------------------------------------------------------------------------------
// MP4-like: ISO-BMFF boxes (ftyp, moov/udta/©nam title, mdat) around an incompressible payload
// ---------------------------------------------------------------------------------------------

function box(type: string, ...children: Buffer[]): Buffer {
  const body = Buffer.concat(children);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, body]);
}

function mp4Header(title: string, payloadBytes: number): Buffer {
  const ftyp = box(
    'ftyp',
    Buffer.from('isom', 'latin1'),
    u32be(0x200),
    Buffer.from('isomiso2avc1mp41', 'latin1'),
  );
  const text = Buffer.from(title, 'utf8');
  const nameBody = Buffer.alloc(4);
  nameBody.writeUInt16BE(text.length, 0);
  nameBody.writeUInt16BE(0x55c4, 2); // language "und"
  const moov = box('moov', box('udta', box('\u00a9nam', nameBody, text)));
  if (payloadBytes + 8 > 0xffff_ffff)
    throw new Error('mp4Header: payload needs a 64-bit mdat size');
  const mdat = Buffer.alloc(8);
  mdat.writeUInt32BE(8 + payloadBytes, 0);
  mdat.write('mdat', 4, 'latin1');
  return Buffer.concat([ftyp, moov, mdat]);
}

function u32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

function* randomPieces(seed: string, bytes: number): Generator<Buffer> {
  const rng = new Prng(seed);
  const scratch = Buffer.allocUnsafe(Math.min(PIECE_BYTES, bytes));
  for (let done = 0; done < bytes;) {
    const n = Math.min(PIECE_BYTES, bytes - done);
    yield rng.fill(scratch.subarray(0, n));
    done += n;
  }
}

async function writeMp4(
  file: string,
  seed: string,
  title: string,
  payloadBytes: number,
): Promise<void> {
  await writePieces(
    file,
    (function* () {
      yield mp4Header(title, payloadBytes);
      yield* randomPieces(`mp4:${seed}`, payloadBytes);
    })(),
  );
}

/** Finds the media payload by walking the top-level boxes, so retitling needs no knowledge of the old title. */
async function findMdatPayload(file: string): Promise<{ offset: number; length: number }> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(8);
    for (let pos = 0; pos + 8 <= size;) {
      await fh.read(head, 0, 8, pos);
      const boxSize = head.readUInt32BE(0);
      if (boxSize < 8) throw new Error(`${file}: unsupported box size ${boxSize} at ${pos}`);
      if (head.toString('latin1', 4, 8) === 'mdat') return { offset: pos + 8, length: boxSize - 8 };
      pos += boxSize;
    }
  } finally {
    await fh.close();
  }
  throw new Error(`${file}: no mdat box`);
}

async function retitleMp4(file: string, title: string): Promise<void> {
  const { offset, length } = await findMdatPayload(file);
  await replaceWithPieces(
    file,
    (async function* () {
      yield mp4Header(title, length);
      yield* copyRange(file, offset, offset + length);
    })(),
  );
}

// ---------------------------------------------------------------------------------------------
// Scene files: a header and variable-length node records (names, transforms, properties)
// ---------------------------------------------------------------------------------------------

const SCENE_MAGIC = 'MGSCENE\0';
const SCENE_HEADER_BYTES = 32;
/** Largest record sceneRecord can emit; pieces are cut so a record never straddles two. */
const SCENE_MAX_RECORD = 256;

const NODE_KINDS = [
  'mesh',
  'light',
  'camera',
  'trigger',
  'spawn',
  'decal',
  'probe',
  'volume',
] as const;
const NODE_WORDS = [
  'rock',
  'tree',
  'crate',
  'lamp',
  'door',
  'wall',
  'fence',
  'barrel',
  'cliff',
  'bush',
  'pillar',
  'arch',
];
const NODE_VARIANTS = ['a', 'b', 'c', 'large', 'small', 'broken', 'mossy', 'old'];
const PROP_KEYS = ['lod', 'mass', 'friction', 'intensity', 'radius', 'fov', 'range', 'weight'];

function writeSceneRecord(buf: Buffer, at: number, id: number, rng: Prng): number {
  let o = at + 4; // length patched below
  buf.writeUInt32LE(id, o);
  buf.writeUInt32LE(id === 0 ? 0 : rng.int(id), o + 4); // parent is an earlier node: a real hierarchy
  buf.writeUInt16LE(rng.int(NODE_KINDS.length), o + 8);
  o += 10;
  const name = `${rng.pick(NODE_WORDS)}_${rng.pick(NODE_VARIANTS)}_${String(rng.int(1000)).padStart(3, '0')}`;
  o = buf.writeUInt8(name.length, o);
  o += buf.write(name, o, 'ascii');
  // Positions snapped to centimetres and mostly-unit scales: the redundancy real scenes have.
  for (let k = 0; k < 3; k++)
    o = buf.writeFloatLE(Math.round(rng.between(-500, 500) * 100) / 100, o);
  const [qx, qy, qz, qw] = unitQuaternion(rng);
  o = buf.writeFloatLE(qx, o);
  o = buf.writeFloatLE(qy, o);
  o = buf.writeFloatLE(qz, o);
  o = buf.writeFloatLE(qw, o);
  const uniform = rng.float() < 0.7 ? 1 : Math.round(rng.between(0.25, 4) * 8) / 8;
  for (let k = 0; k < 3; k++) o = buf.writeFloatLE(uniform, o);
  const props = rng.int(7);
  o = buf.writeUInt8(props, o);
  for (let p = 0; p < props; p++) {
    const key = rng.pick(PROP_KEYS);
    o = buf.writeUInt8(key.length, o);
    o += buf.write(key, o, 'ascii');
    o = buf.writeFloatLE(rng.float() < 0.5 ? rng.int(8) : rng.between(0, 100), o);
  }
  buf.writeUInt32LE(o - at, at);
  return o;
}

function unitQuaternion(rng: Prng): [number, number, number, number] {
  const v = [
    rng.between(-1, 1),
    rng.between(-1, 1),
    rng.between(-1, 1),
    rng.between(-1, 1),
  ] as const;
  const len = Math.hypot(...v) || 1;
  return [v[0] / len, v[1] / len, v[2] / len, v[3] / len];
}

async function writeScene(file: string, seed: string, bytes: number): Promise<void> {
  const rng = new Prng(`scene:${seed}`);
  let records = 0;
  await writePieces(
    file,
    (function* () {
      const header = Buffer.alloc(SCENE_HEADER_BYTES);
      header.write(SCENE_MAGIC, 0, 'latin1');
      header.writeUInt32LE(3, 8); // format version; record count at 12 is filled in afterwards
      seedDigest('scene-id', seed).copy(header, 16, 0, 16);
      const first = header.subarray(0, Math.min(bytes, SCENE_HEADER_BYTES));
      yield first;
      let remaining = bytes - first.length;
      const scratch = Buffer.allocUnsafe(Math.min(PIECE_BYTES, remaining));
      while (remaining > 0) {
        const cap = Math.min(PIECE_BYTES, remaining);
        let o = 0;
        while (o + SCENE_MAX_RECORD <= cap) o = writeSceneRecord(scratch, o, records++, rng);
        if (o === 0 || cap < PIECE_BYTES) {
          // The file's tail (less than one record) is zero padding so the size is exact.
          scratch.fill(0, o, cap);
          o = cap;
        }
        remaining -= o;
        yield scratch.subarray(0, o);
      }
    })(),
  );
  if (bytes >= SCENE_HEADER_BYTES) {
    const fh = await open(file, 'r+');
    try {
      await writeFully(fh, u32le(records), 12);
    } finally {
      await fh.close();
    }
  }
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}

/** Inserts bytes in the middle: every later byte shifts, which fixed-size chunking cannot dedupe. */
async function insertIntoFile(file: string, insert: Buffer): Promise<void> {
  const { size } = await stat(file);
  const mid = Math.floor(size / 2);
  await replaceWithPieces(
    file,
    (async function* () {
      yield* copyRange(file, 0, mid);
      yield insert;
      yield* copyRange(file, mid);
    })(),
  );
}

// ---------------------------------------------------------------------------------------------
// JSON metadata and README
// ---------------------------------------------------------------------------------------------

const META_COUNT = 40;
const ASSET_ADJECTIVES = [
  'Weathered',
  'Polished',
  'Ancient',
  'Rusty',
  'Frozen',
  'Burnt',
  'Wet',
  'Dusty',
];

function metaName(i: number): string {
  return `asset_${String(i).padStart(3, '0')}.json`;
}

function metaJson(i: number, version: CorpusVersion, sources: readonly string[]): string {
  const rng = new Prng(`meta:${i}`);
  const word = rng.pick(NODE_WORDS);
  const doc: Record<string, unknown> = {
    id: `asset-${String(i).padStart(3, '0')}`,
    name: `${rng.pick(ASSET_ADJECTIVES)} ${word} ${i}`,
    kind: rng.pick(['texture', 'audio', 'mesh', 'video', 'scene']),
    source: rng.pick(sources),
    revision: 1,
    tags: [word, `group-${i % 5}`, rng.pick(NODE_VARIANTS)],
    params: {
      lod: rng.int(4),
      scale: Number(rng.between(0.1, 10).toFixed(3)),
      seed: rng.u32(),
    },
    fingerprint: rng.hex(32),
    notes: `Imported from the ${word} kit; see the art bible section ${1 + rng.int(12)}.`,
  };
  if (version === 2) {
    const edit = new Prng(`meta-v2:${i}`);
    doc['revision'] = 2;
    doc['status'] = 'approved';
    doc['reviewer'] = edit.pick(['ana', 'bo', 'chen', 'dara']);
    doc['tags'] = [word, `group-${i % 5}`, 'approved'];
    doc['notes'] = `Approved after review round ${1 + edit.int(3)}.`;
  }
  return `${JSON.stringify(doc, null, 2)}\n`;
}

const README_TEXT = `Asset project (mediagit test corpus)

audio/     dialogue, music and ambience: 24-bit stereo 48 kHz PCM WAV
textures/  uncompressed RGB TIFF
video/     MP4 cuts
scenes/    level layouts (binary node records)
meta/      one JSON file per tracked asset

Generated by test/support/corpus.ts; do not edit by hand.
`;

// ---------------------------------------------------------------------------------------------
// The plan: what each profile contains, and what version 2 changes
// ---------------------------------------------------------------------------------------------

interface Plan {
  wavs: { path: string; seconds: number }[];
  textures: { path: string; width: number; height: number }[];
  videos: { path: string; title: string; bytes: number }[];
  scenes: { path: string; bytes: number }[];
  appendSeconds: number;
  newWav: { path: string; seconds: number };
}

const FULL_WAVS = [
  ['audio/vo_intro.wav', 72],
  ['audio/vo_battle.wav', 64],
  ['audio/music_theme.wav', 80],
  ['audio/ambience_forest.wav', 60],
] as const;
const TEXTURE_NAMES = [
  'rock_albedo',
  'rock_normal',
  'grass_albedo',
  'grass_normal',
  'bark_albedo',
  'bark_roughness',
  'metal_albedo',
  'metal_roughness',
  'fabric_albedo',
  'brick_albedo',
  'brick_normal',
  'sky_panorama',
] as const;
const FULL_VIDEOS = [
  ['video/trailer.mp4', 'Trailer v1', 150 * MIB],
  ['video/teaser.mp4', 'Teaser', 40 * MIB],
] as const;
const FULL_SCENES = [
  ['scenes/level01.scene', 128 * MIB],
  ['scenes/level02.scene', 40 * MIB],
] as const;

/** Version 2's edits, by path (as they are named in version 1 unless noted). */
export const V2_EDITS = {
  appendedWav: 'audio/vo_intro.wav',
  paintedTextures: ['textures/grass_albedo.tif', 'textures/metal_roughness.tif'],
  insertedScene: 'scenes/level01.scene',
  retitledVideo: 'video/trailer.mp4',
  retitledTo: 'Trailer v2 (final cut, director approved)',
  deletedVideo: 'video/teaser.mp4',
  addedWav: 'audio/sfx_impact.wav',
  renamedDir: { from: 'meta', to: 'metadata' },
  /** Rewritten metadata files, named under the new folder. */
  rewrittenMeta: Array.from({ length: META_COUNT / 4 }, (_, k) => `metadata/${metaName(k * 4)}`),
} as const;

function planFor(profile: CorpusProfile, scale?: number): Plan {
  const s = scale ?? PROFILE_SCALE[profile];
  const side = (full: number): number => Math.max(8, Math.round((full * Math.sqrt(s)) / 4) * 4);
  const bytes = (full: number): number => Math.max(1024, Math.round(full * s));
  return {
    wavs: FULL_WAVS.map(([p, sec]) => ({ path: p, seconds: sec * s })),
    textures: TEXTURE_NAMES.map((name, i) => ({
      path: `textures/${name}.tif`,
      width: side(i % 3 === 0 ? 3072 : 2048),
      height: side(2048),
    })),
    videos: FULL_VIDEOS.map(([p, title, b]) => ({ path: p, title, bytes: bytes(b) })),
    scenes: FULL_SCENES.map(([p, b]) => ({ path: p, bytes: bytes(b) })),
    // An edit is a few seconds of audio whatever the profile, but the small profiles keep it in
    // proportion so that "v2 adds little" stays true there too.
    appendSeconds: { full: 5, small: 1, tiny: 0.25 }[profile],
    newWav: { path: V2_EDITS.addedWav, seconds: 30 * s },
  };
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

/**
 * Writes each of `names` (paths under `dir`, folders made as needed) with `size` bytes plus the
 * name's length of pseudo-random content seeded by `seed`: small repositories whose files differ.
 */
export async function writeRandomFiles(
  dir: string,
  seed: string,
  names: readonly string[],
  size = 96 * 1024,
): Promise<void> {
  const prng = new Prng(seed);
  for (const name of names) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), prng.fill(Buffer.alloc(size + name.length)));
  }
}

/**
 * Writes version 1 of the corpus into `dir`, or, for version 2, edits the version 1 that `dir`
 * holds (generated with the same profile) in place. Returns the file count and total bytes of
 * `dir` afterwards, not counting a `.mediagit` folder.
 */
export async function makeCorpus(
  dir: string,
  version: CorpusVersion,
  profile: CorpusProfile,
  /**
   * Overrides the profile's fraction of the full corpus (bytes scale with it, file for file): for
   * runs that need a given size, such as the fault-injected push at ~500 MB. Edits keep the
   * profile's proportions. Version 2 must be made with the same scale as its version 1.
   */
  options: { scale?: number } = {},
): Promise<CorpusStats> {
  if (version !== 1 && version !== 2)
    throw new Error(`makeCorpus: version must be 1 or 2, got ${String(version)}`);
  if (!(profile in PROFILE_SCALE))
    throw new Error(`makeCorpus: unknown profile ${String(profile)}`);
  if (options.scale !== undefined && !(options.scale > 0 && options.scale <= 4))
    throw new Error(`makeCorpus: scale must be in (0, 4], got ${options.scale}`);
  const plan = planFor(profile, options.scale);
  const at = (rel: string): string => path.join(dir, ...rel.split('/'));

  if (version === 1) {
    await mkdir(dir, { recursive: true });
    for (const w of plan.wavs) await writeWav(at(w.path), w.path, w.seconds);
    for (const t of plan.textures) await writeTiff(at(t.path), t.path, t.width, t.height);
    for (const v of plan.videos) await writeMp4(at(v.path), v.path, v.title, v.bytes);
    for (const sc of plan.scenes) await writeScene(at(sc.path), sc.path, sc.bytes);
    const sources = [...plan.wavs, ...plan.textures, ...plan.videos, ...plan.scenes].map(
      (f) => f.path,
    );
    await mkdir(at('meta'), { recursive: true });
    for (let i = 0; i < META_COUNT; i++)
      await writeFile(at(`meta/${metaName(i)}`), metaJson(i, 1, sources));
    await writeFile(at('README.txt'), README_TEXT);
  } else {
    await checkHoldsV1(dir, plan, profile);
    await appendToWav(
      at(V2_EDITS.appendedWav),
      `${V2_EDITS.appendedWav}#append`,
      plan.appendSeconds,
    );
    for (const p of V2_EDITS.paintedTextures) {
      const t = plan.textures.find((x) => x.path === p);
      if (!t) throw new Error(`makeCorpus: no texture ${p} in the plan`);
      await paintTiff(at(p), p, t.width, t.height);
    }
    await insertIntoFile(
      at(V2_EDITS.insertedScene),
      new Prng('scene-insert').fill(Buffer.alloc(1024)),
    );
    await retitleMp4(at(V2_EDITS.retitledVideo), V2_EDITS.retitledTo);
    await rename(at(V2_EDITS.renamedDir.from), at(V2_EDITS.renamedDir.to));
    await rm(at(V2_EDITS.deletedVideo));
    await writeWav(at(plan.newWav.path), plan.newWav.path, plan.newWav.seconds);
    const sources = [...plan.wavs, ...plan.textures, ...plan.videos, ...plan.scenes].map(
      (f) => f.path,
    );
    for (let i = 0; i < META_COUNT; i += 4) {
      await writeFile(at(`${V2_EDITS.renamedDir.to}/${metaName(i)}`), metaJson(i, 2, sources));
    }
  }
  return treeStats(dir);
}

/** Refuses to edit anything but an unedited v1 of the same profile: v2 on top of v2 would silently corrupt. */
async function checkHoldsV1(dir: string, plan: Plan, profile: CorpusProfile): Promise<void> {
  const problem = (what: string): Error =>
    new Error(`makeCorpus: ${dir} does not hold version 1 of the ${profile} corpus (${what})`);
  const sizeOf = async (rel: string): Promise<number | undefined> => {
    try {
      return (await stat(path.join(dir, rel))).size;
    } catch {
      return undefined;
    }
  };
  const tex = plan.textures[0];
  if (
    tex &&
    (await sizeOf(tex.path)) !==
      tiffLayout(tex.width, tex.height, tex.path).pixelOffset + tex.width * tex.height * 3
  ) {
    throw problem(`${tex.path} is missing or of another profile`);
  }
  if ((await sizeOf(V2_EDITS.deletedVideo)) === undefined)
    throw problem(`${V2_EDITS.deletedVideo} is missing`);
  if ((await sizeOf(`${V2_EDITS.renamedDir.from}/${metaName(0)}`)) === undefined)
    throw problem('meta/ is missing');
  if ((await sizeOf(V2_EDITS.renamedDir.to)) !== undefined)
    throw problem('metadata/ already exists');
}

async function treeStats(dir: string): Promise<CorpusStats> {
  let files = 0;
  let bytes = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.name === '.mediagit') continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        files++;
        bytes += (await stat(p)).size;
      }
    }
  };
  await walk(dir);
  return { files, bytes };
}
