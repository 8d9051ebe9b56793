/**
 * A file's bytes, streamed from its chunks: only the chunks that overlap the requested range are
 * read, one at a time, each verified against its ID before a byte of it is sent. A reader of a
 * 4 GiB video that seeks to the middle costs the chunks it plays, and memory stays at about one
 * chunk per client whatever the file's size.
 */
import { Readable } from 'node:stream';
import type { Manifest, ObjectDatabase } from '../objects/index.js';
import { chunkKey } from '../store/index.js';

export interface ByteRange {
  /** First byte, inclusive. */
  readonly start: number;
  /** Last byte, inclusive. */
  readonly end: number;
}

export interface ContentOptions {
  readonly signal: AbortSignal;
  /** Called with the length of every piece handed to the client (metrics). */
  readonly onBytes?: (n: number) => void;
}

/** The pieces of `range` of the file `manifest` describes, in order. */
export async function* contentPieces(
  odb: ObjectDatabase,
  manifest: Manifest,
  range: ByteRange | null,
  options: ContentOptions,
): AsyncGenerator<Buffer> {
  const start = range?.start ?? 0;
  const end = range?.end ?? manifest.size - 1;
  let offset = 0;
  for (const chunk of manifest.chunks) {
    const chunkStart = offset;
    offset += chunk.size;
    if (offset <= start) continue;
    if (chunkStart > end) return;
    options.signal.throwIfAborted();
    const stored = await odb.store.get(chunkKey(chunk.oid), { signal: options.signal });
    const plain = await odb.openStored('chunk', chunk.oid, stored);
    const from = Math.max(0, start - chunkStart);
    const to = Math.min(chunk.size, end - chunkStart + 1);
    const piece = from === 0 && to === plain.length ? plain : plain.subarray(from, to);
    options.onBytes?.(piece.length);
    yield piece;
  }
}

/**
 * The same as a byte stream with backpressure: a highWaterMark of one byte means the next chunk
 * is read only once the socket has taken the previous one.
 */
export function contentStream(
  odb: ObjectDatabase,
  manifest: Manifest,
  range: ByteRange | null,
  options: ContentOptions,
): Readable {
  return Readable.from(contentPieces(odb, manifest, range, options), {
    objectMode: false,
    highWaterMark: 1,
  });
}

/** The first `limit` bytes of a file, joined (text previews, type sniffing). */
export async function readHead(
  odb: ObjectDatabase,
  manifest: Manifest,
  limit: number,
  signal: AbortSignal,
): Promise<Buffer> {
  if (manifest.size === 0) return Buffer.alloc(0);
  const pieces: Buffer[] = [];
  const end = Math.min(manifest.size, limit) - 1;
  for await (const piece of contentPieces(odb, manifest, { start: 0, end }, { signal }))
    pieces.push(piece);
  return Buffer.concat(pieces);
}

export type RangeAnswer =
  | { readonly kind: 'whole' }
  | { readonly kind: 'partial'; readonly range: ByteRange }
  | { readonly kind: 'unsatisfiable' }
  | { readonly kind: 'malformed' };

/**
 * A Range header against a file of `size` bytes (RFC 9110 §14): one `bytes=` range, `a-b`,
 * `a-` or `-n`. Several ranges are answered with the whole file (allowed: a server may ignore
 * Range), since browsers never ask for several. Anything that is not a byte range is malformed.
 */
export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined) return { kind: 'whole' };
  const match = /^bytes=(.*)$/i.exec(header.trim());
  if (!match) return { kind: 'malformed' };
  const specs = match[1]!.split(',').map((s) => s.trim());
  if (specs.length > 1) {
    return specs.every((s) => /^(\d+-\d*|-\d+)$/.test(s))
      ? { kind: 'whole' }
      : { kind: 'malformed' };
  }
  const spec = /^(\d*)-(\d*)$/.exec(specs[0]!);
  if (!spec || (spec[1] === '' && spec[2] === '')) return { kind: 'malformed' };
  const [first, last] = [spec[1]!, spec[2]!];
  if (first.length > 15 || last.length > 15) return { kind: 'unsatisfiable' };
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', range: { start: Math.max(0, size - suffix), end: size - 1 } };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return { kind: 'malformed' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', range: { start, end } };
}
