/**
 * Content fingerprints of a working tree, for asserting that a checkout, clone or restore
 * reproduced exactly the files that were committed.
 */
import { AssertionError } from 'node:assert';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

/** Relative posix path -> sha256 hex of the content (or `symlink:<target>` for a symbolic link). */
export type TreeHashes = Map<string, string>;

export interface HashTreeOptions {
  /**
   * Left out of the result: a relative posix path (a file, or a folder and all below it), or a
   * bare name without a slash, which matches a file or folder of that name at any depth.
   */
  exclude?: string[];
}

/** The repository's own folder is never part of the content being versioned. */
const ALWAYS_EXCLUDED = '.mediagit';
/** Hashing is I/O bound on big media; a few files in flight keep the disk busy without thrashing it. */
const HASH_CONCURRENCY = 4;

/**
 * Hashes every regular file under `dir` by streaming it (a 500 MiB corpus never sits in memory).
 * Empty folders do not appear: like git, the result describes content, not directories.
 */
export async function hashTree(dir: string, opts: HashTreeOptions = {}): Promise<TreeHashes> {
  const excluded = (rel: string, name: string): boolean =>
    name === ALWAYS_EXCLUDED ||
    (opts.exclude ?? []).some((ex) =>
      ex.includes('/')
        ? rel === stripSlashes(ex) || rel.startsWith(`${stripSlashes(ex)}/`)
        : name === ex,
    );

  const files: string[] = [];
  const links: [string, string][] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(dir, ...splitRel(rel)), { withFileTypes: true });
    for (const e of entries) {
      const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
      if (excluded(childRel, e.name)) continue;
      if (e.isDirectory()) await walk(childRel);
      else if (e.isFile()) files.push(childRel);
      else if (e.isSymbolicLink())
        links.push([childRel, await readlink(path.join(dir, ...splitRel(childRel)))]);
    }
  };
  await walk('');

  const digests = new Map<string, string>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) {
      const rel = files[next++];
      if (rel === undefined) break;
      digests.set(rel, await hashFile(path.join(dir, ...splitRel(rel))));
    }
  };
  await Promise.all(Array.from({ length: HASH_CONCURRENCY }, worker));
  for (const [rel, target] of links) digests.set(rel, `symlink:${target}`);

  // Sorted so that iteration order, and so any printed diff, is stable.
  return new Map([...digests].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

function splitRel(rel: string): string[] {
  return rel === '' ? [] : rel.split('/');
}

function stripSlashes(p: string): string {
  return p.replace(/^\.?\/+/, '').replace(/\/+$/, '');
}

export interface TreeDiff {
  onlyInActual: string[];
  onlyInExpected: string[];
  changed: string[];
}

export function diffTrees(actual: TreeHashes, expected: TreeHashes): TreeDiff {
  const onlyInActual: string[] = [];
  const onlyInExpected: string[] = [];
  const changed: string[] = [];
  for (const [p, h] of actual) {
    const other = expected.get(p);
    if (other === undefined) onlyInActual.push(p);
    else if (other !== h) changed.push(p);
  }
  for (const p of expected.keys()) if (!actual.has(p)) onlyInExpected.push(p);
  return {
    onlyInActual: onlyInActual.sort(),
    onlyInExpected: onlyInExpected.sort(),
    changed: changed.sort(),
  };
}

/** Lists per category are cut short so a diff of a whole corpus stays readable. */
const MAX_LISTED = 20;

/**
 * Throws an AssertionError naming the missing, extra and changed paths when the trees differ.
 * Takes hashes rather than folders so a test can hash the expected tree once and compare it to
 * several checkouts.
 */
export function assertTreesEqual(actual: TreeHashes, expected: TreeHashes, label = 'trees'): void {
  const d = diffTrees(actual, expected);
  if (d.onlyInActual.length + d.onlyInExpected.length + d.changed.length === 0) return;

  const section = (title: string, paths: string[]): string[] => {
    if (paths.length === 0) return [];
    const shown = paths.slice(0, MAX_LISTED).map((p) => `    ${p}`);
    if (paths.length > MAX_LISTED) shown.push(`    ... and ${paths.length - MAX_LISTED} more`);
    return [`  ${title} (${paths.length}):`, ...shown];
  };
  const message = [
    `${label} differ (actual ${actual.size} files, expected ${expected.size} files):`,
    ...section('missing (only in expected)', d.onlyInExpected),
    ...section('unexpected (only in actual)', d.onlyInActual),
    ...section('content differs', d.changed),
  ].join('\n');
  // No actual/expected objects: reporters would print both maps in full, burying the summary.
  throw new AssertionError({ message, operator: 'assertTreesEqual' });
}
