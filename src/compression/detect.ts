import { extname } from 'node:path';

/**
 * Formats whose content is already entropy-coded: zstd would burn CPU for nothing. Matching is by
 * magic bytes first (names lie), then by extension for containers without a reliable signature.
 */
const PRECOMPRESSED_EXTENSIONS = new Set([
  '.jpg',
  '.jpeg',
  '.png',
  '.gif',
  '.webp',
  '.heic',
  '.heif',
  '.avif',
  '.jxl',
  '.mp4',
  '.m4v',
  '.m4a',
  '.mov',
  '.mkv',
  '.webm',
  '.avi',
  '.mts',
  '.m2ts',
  '.mxf',
  '.hevc',
  '.h264',
  '.h265',
  '.mp3',
  '.aac',
  '.ogg',
  '.opus',
  '.flac',
  '.wma',
  '.zip',
  '.7z',
  '.rar',
  '.gz',
  '.tgz',
  '.bz2',
  '.xz',
  '.zst',
  '.lz4',
  '.br',
  '.pdf',
  '.docx',
  '.xlsx',
  '.pptx',
  '.jar',
  '.apk',
  '.ipa',
  '.unitypackage',
  '.pak',
  '.ktx2',
  '.basis',
  '.dds',
]);

function startsWith(head: Uint8Array, bytes: readonly number[], offset = 0): boolean {
  if (head.length < offset + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (head[offset + i] !== bytes[i]) return false;
  return true;
}

const ascii = (text: string): number[] => [...text].map((c) => c.charCodeAt(0));

export function isPrecompressedContent(head: Uint8Array): boolean {
  return (
    startsWith(head, [0xff, 0xd8, 0xff]) || // JPEG
    startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) || // PNG
    startsWith(head, ascii('GIF8')) ||
    (startsWith(head, ascii('RIFF')) && startsWith(head, ascii('WEBP'), 8)) ||
    startsWith(head, ascii('ftyp'), 4) || // ISO-BMFF: MP4, MOV, M4A, HEIC, AVIF
    startsWith(head, ascii('ftyp')) ||
    startsWith(head, [0x1a, 0x45, 0xdf, 0xa3]) || // Matroska / WebM
    startsWith(head, ascii('ID3')) || // MP3 with ID3 tag
    (head.length >= 2 &&
      head[0] === 0xff &&
      ((head[1] ?? 0) & 0xe0) === 0xe0 &&
      ((head[1] ?? 0) & 0x06) !== 0) || // MPEG audio frame / ADTS
    startsWith(head, ascii('OggS')) ||
    startsWith(head, ascii('fLaC')) ||
    startsWith(head, [0x50, 0x4b, 0x03, 0x04]) || // ZIP and its children
    startsWith(head, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]) || // 7z
    startsWith(head, ascii('Rar!')) ||
    startsWith(head, [0x1f, 0x8b]) || // gzip
    startsWith(head, ascii('BZh')) ||
    startsWith(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) || // xz
    startsWith(head, [0x28, 0xb5, 0x2f, 0xfd]) || // zstd
    startsWith(head, ascii('%PDF'))
  );
}

export function isPrecompressed(path: string, head: Uint8Array): boolean {
  return isPrecompressedContent(head) || PRECOMPRESSED_EXTENSIONS.has(extname(path).toLowerCase());
}
