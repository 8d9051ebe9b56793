/**
 * What a file is, for the web view: its Content-Type and how to preview it. Decided by the name's
 * extension (what artists' tools go by), with a look at the first bytes to tell text from binary
 * for names the table does not know.
 */

export type PreviewKind = 'image' | 'audio' | 'video' | 'text' | 'none';

export interface MediaType {
  readonly contentType: string;
  readonly preview: PreviewKind;
}

const TYPES: Readonly<Record<string, MediaType>> = {
  png: { contentType: 'image/png', preview: 'image' },
  jpg: { contentType: 'image/jpeg', preview: 'image' },
  jpeg: { contentType: 'image/jpeg', preview: 'image' },
  webp: { contentType: 'image/webp', preview: 'image' },
  gif: { contentType: 'image/gif', preview: 'image' },
  tif: { contentType: 'image/tiff', preview: 'image' },
  tiff: { contentType: 'image/tiff', preview: 'image' },
  wav: { contentType: 'audio/wav', preview: 'audio' },
  mp3: { contentType: 'audio/mpeg', preview: 'audio' },
  ogg: { contentType: 'audio/ogg', preview: 'audio' },
  oga: { contentType: 'audio/ogg', preview: 'audio' },
  flac: { contentType: 'audio/flac', preview: 'audio' },
  mp4: { contentType: 'video/mp4', preview: 'video' },
  m4v: { contentType: 'video/mp4', preview: 'video' },
  webm: { contentType: 'video/webm', preview: 'video' },
  json: { contentType: 'application/json; charset=utf-8', preview: 'text' },
  txt: { contentType: 'text/plain; charset=utf-8', preview: 'text' },
  md: { contentType: 'text/plain; charset=utf-8', preview: 'text' },
  csv: { contentType: 'text/plain; charset=utf-8', preview: 'text' },
  xml: { contentType: 'text/plain; charset=utf-8', preview: 'text' },
  yaml: { contentType: 'text/plain; charset=utf-8', preview: 'text' },
  yml: { contentType: 'text/plain; charset=utf-8', preview: 'text' },
  toml: { contentType: 'text/plain; charset=utf-8', preview: 'text' },
};

const BINARY: MediaType = { contentType: 'application/octet-stream', preview: 'none' };
const TEXT: MediaType = { contentType: 'text/plain; charset=utf-8', preview: 'text' };

export function extensionOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? '' : name.slice(dot + 1).toLowerCase();
}

/** The type by name alone (downloads, media streams). */
export function mediaTypeOf(name: string): MediaType {
  return TYPES[extensionOf(name)] ?? BINARY;
}

/** The type by name, or text when an unknown name's first bytes are UTF-8 without NULs. */
export function sniffMediaType(name: string, head: Buffer): MediaType {
  const known = TYPES[extensionOf(name)];
  if (known !== undefined) return known;
  if (head.length === 0 || head.includes(0)) return BINARY;
  // A multi-byte character cut at the end of the sample is still text.
  const sample = head.subarray(0, Math.max(0, head.length - 3));
  return isUtf8(sample) ? TEXT : BINARY;
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Images sharp can thumbnail. */
export function canThumbnail(name: string): boolean {
  return mediaTypeOf(name).preview === 'image';
}

/** `Content-Disposition` with an ASCII fallback and the exact UTF-8 name (RFC 6266). */
export function contentDisposition(kind: 'inline' | 'attachment', name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  return `${kind}; filename="${fallback}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}
