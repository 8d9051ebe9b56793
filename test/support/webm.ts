/**
 * A minimal WebM (Matroska) writer for test videos: one VP8 track whose frames were encoded by the
 * browser under test (WebCodecs), with a Duration and a Cues index placed before the clusters, so
 * a player knows the length at once and seeks straight to a cluster's byte offset with a Range
 * request. Sizes and integers are written at fixed widths, so the Cues' length is known before
 * the cluster offsets they hold.
 */

export interface EncodedFrame {
  /** Presentation time in microseconds. */
  readonly timestamp: number;
  readonly key: boolean;
  readonly data: Buffer;
}

function id(hex: number): Buffer {
  const bytes: number[] = [];
  for (let v = hex; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from(bytes);
}

/** An element with an 8-byte size field. */
function element(elementId: number, ...body: Buffer[]): Buffer {
  const data = Buffer.concat(body);
  const size = Buffer.alloc(8);
  size.writeUInt8(0x01, 0);
  size.writeUIntBE(Math.floor(data.length / 2 ** 32), 1, 3);
  size.writeUInt32BE(data.length >>> 0, 4);
  return Buffer.concat([id(elementId), size, data]);
}

function uint(elementId: number, value: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeBigUInt64BE(BigInt(value));
  return element(elementId, body);
}

function float(elementId: number, value: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeDoubleBE(value);
  return element(elementId, body);
}

function text(elementId: number, value: string): Buffer {
  return element(elementId, Buffer.from(value, 'utf8'));
}

function simpleBlock(relativeMs: number, frame: EncodedFrame): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt8(0x81, 0); // track 1
  head.writeInt16BE(relativeMs, 1);
  head.writeUInt8(frame.key ? 0x80 : 0x00, 3);
  return element(0xa3, head, frame.data);
}

export function muxWebm(
  frames: readonly EncodedFrame[],
  width: number,
  height: number,
  durationMs: number,
): Buffer {
  const header = element(
    0x1a45dfa3,
    uint(0x4286, 1),
    uint(0x42f7, 1),
    uint(0x42f2, 4),
    uint(0x42f3, 8),
    text(0x4282, 'webm'),
    uint(0x4287, 2),
    uint(0x4285, 2),
  );
  const info = element(
    0x1549a966,
    uint(0x2ad7b1, 1_000_000),
    text(0x4d80, 'mediagit-test'),
    text(0x5741, 'mediagit-test'),
    float(0x4489, durationMs),
  );
  const tracks = element(
    0x1654ae6b,
    element(
      0xae,
      uint(0xd7, 1),
      uint(0x73c5, 1),
      uint(0x83, 1),
      text(0x86, 'V_VP8'),
      element(0xe0, uint(0xb0, width), uint(0xba, height)),
    ),
  );
  // One cluster per key frame.
  const groups: EncodedFrame[][] = [];
  for (const frame of frames) {
    if (frame.key || groups.length === 0) groups.push([]);
    groups[groups.length - 1]!.push(frame);
  }
  const clusters = groups.map((group) => {
    const startMs = Math.round(group[0]!.timestamp / 1000);
    return {
      startMs,
      bytes: element(
        0x1f43b675,
        uint(0xe7, startMs),
        ...group.map((f) => simpleBlock(Math.round(f.timestamp / 1000) - startMs, f)),
      ),
    };
  });
  const cues = (positions: readonly number[]): Buffer =>
    element(
      0x1c53bb6b,
      ...clusters.map((c, i) =>
        element(
          0xbb,
          uint(0xb3, c.startMs),
          element(0xb7, uint(0xf7, 1), uint(0xf1, positions[i] ?? 0)),
        ),
      ),
    );
  const before = info.length + tracks.length + cues([]).length;
  const positions: number[] = [];
  let offset = before;
  for (const c of clusters) {
    positions.push(offset);
    offset += c.bytes.length;
  }
  const segment = element(
    0x18538067,
    info,
    tracks,
    cues(positions),
    ...clusters.map((c) => c.bytes),
  );
  return Buffer.concat([header, segment]);
}
