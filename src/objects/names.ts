import { UnsafePathError } from '../errors/index.js';

/**
 * Whether `name` may appear as one entry of a tree. Refused: empty, `.` and `..`, separators of any
 * OS (`/`, `\`), NUL and control characters, `:` (Windows drive letters and alternate data streams),
 * `.mediagit` in any case and with the trailing dots or spaces Windows would strip, names over 255
 * bytes. Checked when trees are written and again when they are read, so a crafted object cannot
 * make checkout write outside the working tree.
 */
export function treeNameProblem(name: string): string | null {
  if (name.length === 0) return 'empty name';
  if (Buffer.byteLength(name, 'utf8') > 255) return 'name longer than 255 bytes';
  if (name === '.' || name === '..') return `reserved name '${name}'`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) return 'control character or NUL in name';
  if (/[/\\]/.test(name)) return 'path separator in name';
  if (name.includes(':')) return "':' in name";
  if (name.replace(/[. ]+$/, '').toLowerCase() === '.mediagit') return "'.mediagit' is reserved";
  if (!name.isWellFormed()) return 'name is not valid Unicode';
  return null;
}

export function assertSafeTreeName(name: string): void {
  const problem = treeNameProblem(name);
  if (problem !== null) {
    throw new UnsafePathError(`unsafe name in tree: ${JSON.stringify(name)} (${problem})`, {
      hint: 'rename the file; mediagit refuses names that could escape the working tree on some OS',
    });
  }
}

/** A repository-relative path in posix form: non-empty segments, each a safe tree name. */
export function assertSafeRelativePath(path: string): void {
  if (path.length === 0) throw new UnsafePathError('empty path');
  for (const segment of path.split('/')) assertSafeTreeName(segment);
}
