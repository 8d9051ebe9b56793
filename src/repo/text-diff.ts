/**
 * Line diffs for small text files (JSON, .scene text, notes), so `diff` and `show` can print what
 * changed instead of "Binary files differ". Media stays binary: only files up to TEXT_DIFF_MAX
 * bytes that decode as UTF-8 and hold no NUL byte are treated as text, as git's heuristic does.
 */
import { readFile } from 'node:fs/promises';
import { hashFile } from './content.js';
import type { Repository } from './repository.js';
import type { FileRecord } from './tree-map.js';
import { isErrno } from '../util/fs.js';

export const TEXT_DIFF_MAX = 1024 * 1024;
export const DIFF_CONTEXT = 3;

/**
 * Past this many edits the shortest script is not searched for (its bookkeeping grows with the
 * square of the edits): the files are shown as all old lines removed, then all new lines added.
 */
const MAX_EDITS = 4000;

function asText(bytes: Buffer): string | null {
  if (bytes.includes(0)) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/**
 * A file's content as text, or null when it is too big, binary, or not at hand. Stored content is
 * read from its chunks; working-tree content (hashed, not stored) is read from disk at `path`
 * when the file there still hashes to the record.
 */
export async function readSmallText(
  repo: Repository,
  path: string,
  record: FileRecord,
): Promise<string | null> {
  if (record.size > TEXT_DIFF_MAX) return null;
  const [stored] = await repo.odb.has('manifest', [record.oid]);
  if (stored) {
    const manifest = await repo.odb.readManifest(record.oid);
    const parts: Buffer[] = [];
    for (const chunk of manifest.chunks) parts.push(await repo.odb.read('chunk', chunk.oid));
    return asText(Buffer.concat(parts));
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(repo.absPath(path));
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'EISDIR')) return null;
    throw err;
  }
  if (bytes.length !== record.size) return null;
  const hashed = await hashFile(repo.contentContext(), repo.absPath(path));
  return hashed.oid === record.oid ? asText(bytes) : null;
}

interface Edit {
  readonly op: ' ' | '-' | '+';
  /** The line with its newline, if it has one (the last line may not). */
  readonly line: string;
}

/** Lines with their terminators, so "x" and "x\n" at the end of a file differ, as in git. */
function lines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** Myers' O((N+M)D) shortest edit script between two line lists, common ends trimmed first. */
export function lineEdits(a: readonly string[], b: readonly string[]): Edit[] {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (
    suf < a.length - pre &&
    suf < b.length - pre &&
    a[a.length - 1 - suf] === b[b.length - 1 - suf]
  )
    suf++;
  const same = (line: string): Edit => ({ op: ' ', line });
  return [
    ...a.slice(0, pre).map(same),
    ...middleEdits(a.slice(pre, a.length - suf), b.slice(pre, b.length - suf)),
    ...a.slice(a.length - suf).map(same),
  ];
}

function middleEdits(a: readonly string[], b: readonly string[]): Edit[] {
  const n = a.length;
  const m = b.length;
  const replaceAll = (): Edit[] => [
    ...a.map((line): Edit => ({ op: '-', line })),
    ...b.map((line): Edit => ({ op: '+', line })),
  ];
  if (n === 0 || m === 0) return replaceAll();
  const max = n + m;
  const off = max + 1;
  const v = new Int32Array(2 * max + 3);
  // trace[d] holds the furthest x on diagonals -d..d as they stood before round d.
  const trace: Int32Array[] = [];
  for (let d = 0; d <= Math.min(max, MAX_EDITS); d++) {
    trace.push(v.slice(off - d, off + d + 1));
    for (let k = -d; k <= d; k += 2) {
      let x =
        k === -d || (k !== d && v[off + k - 1]! < v[off + k + 1]!)
          ? v[off + k + 1]!
          : v[off + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) return backtrack(a, b, trace, d);
    }
  }
  return replaceAll();
}

function backtrack(
  a: readonly string[],
  b: readonly string[],
  trace: readonly Int32Array[],
  edits: number,
): Edit[] {
  const out: Edit[] = [];
  let x = a.length;
  let y = b.length;
  for (let d = edits; d > 0; d--) {
    const before = trace[d]!;
    const at = (k: number): number => before[k + d]!;
    const k = x - y;
    const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
    const prevK = down ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      out.push({ op: ' ', line: a[x - 1]! });
      x--;
      y--;
    }
    if (down) {
      out.push({ op: '+', line: b[y - 1]! });
      y--;
    } else {
      out.push({ op: '-', line: a[x - 1]! });
      x--;
    }
  }
  while (x > 0 && y > 0) {
    out.push({ op: ' ', line: a[x - 1]! });
    x--;
    y--;
  }
  return out.reverse();
}

/** git's hunk range: "5" for one line, "5,3" for several, "4,0" (the line before) for none. */
function range(start: number, count: number): string {
  if (count === 1) return String(start + 1);
  return `${count === 0 ? start : start + 1},${count}`;
}

/**
 * The hunks of a unified diff from `before` to `after` (without the ---/+++ header): changes with
 * `context` lines around them, hunks closer than twice that merged, as git prints them.
 */
export function unifiedHunks(before: string, after: string, context = DIFF_CONTEXT): string[] {
  const edits = lineEdits(lines(before), lines(after));
  const changed: number[] = [];
  edits.forEach((e, i) => {
    if (e.op !== ' ') changed.push(i);
  });
  const out: string[] = [];
  let i = 0;
  while (i < changed.length) {
    let j = i;
    while (j + 1 < changed.length && changed[j + 1]! - changed[j]! <= 2 * context + 1) j++;
    const start = Math.max(0, changed[i]! - context);
    const end = Math.min(edits.length, changed[j]! + context + 1);
    let aStart = 0;
    let bStart = 0;
    for (const e of edits.slice(0, start)) {
      if (e.op !== '+') aStart++;
      if (e.op !== '-') bStart++;
    }
    const hunk = edits.slice(start, end);
    const aCount = hunk.filter((e) => e.op !== '+').length;
    const bCount = hunk.filter((e) => e.op !== '-').length;
    out.push(`@@ -${range(aStart, aCount)} +${range(bStart, bCount)} @@`);
    for (const e of hunk) {
      const newline = e.line.endsWith('\n');
      out.push(`${e.op}${newline ? e.line.slice(0, -1) : e.line}`);
      if (!newline) out.push('\\ No newline at end of file');
    }
    i = j + 1;
  }
  return out;
}
