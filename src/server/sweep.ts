/**
 * Temporary files a crash left behind in a local storage folder (`.tmp-*` in each repository's
 * `tmp/` and beside its refs) are removed when the server starts. Only files older than
 * `olderThanMs` go: another replica sharing the folder may be writing the young ones right now.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseStoreUrl } from '../store/index.js';
import type { StorageSpec } from './config.js';

const TEMP_PREFIX = '.tmp-';

/** Local folders behind a storage spec (both sides of a mirrored pair). */
export function localRoots(spec: StorageSpec, cwd: string): string[] {
  if (spec.kind === 'multi')
    return [...localRoots(spec.primary, cwd), ...localRoots(spec.secondary, cwd)];
  const location = parseStoreUrl(spec.url, cwd);
  return location.kind === 'local' ? [location.target] : [];
}

async function entries(dir: string): Promise<{ name: string; dir: boolean }[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).map((e) => ({
      name: e.name,
      dir: e.isDirectory(),
    }));
  } catch {
    return [];
  }
}

/** Removes stale temporary files under `dir` (recursively for refs/); returns how many. */
async function sweepDir(dir: string, cutoff: number, recurse: boolean): Promise<number> {
  let removed = 0;
  for (const entry of await entries(dir)) {
    const path = join(dir, entry.name);
    if (entry.dir) {
      if (recurse) removed += await sweepDir(path, cutoff, true);
      continue;
    }
    if (!entry.name.startsWith(TEMP_PREFIX)) continue;
    try {
      if ((await stat(path)).mtimeMs < cutoff) {
        await rm(path, { force: true });
        removed++;
      }
    } catch {
      // gone meanwhile
    }
  }
  return removed;
}

/** A repository folder holds `tmp/` or `refs/`; anything else at the top is an owner's folder. */
async function sweepRepositories(dir: string, cutoff: number, depth: number): Promise<number> {
  const children = await entries(dir);
  const names = new Set(children.filter((e) => e.dir).map((e) => e.name));
  if (names.has('tmp') || names.has('refs'))
    return (
      (await sweepDir(join(dir, 'tmp'), cutoff, false)) +
      (await sweepDir(join(dir, 'refs'), cutoff, true))
    );
  if (depth === 0) return 0;
  let removed = 0;
  for (const name of names) removed += await sweepRepositories(join(dir, name), cutoff, depth - 1);
  return removed;
}

/** Sweeps every repository (one- and two-part names, and `_system`) under each local root. */
export async function sweepTemporaryFiles(
  spec: StorageSpec,
  cwd: string,
  olderThanMs: number,
): Promise<number> {
  const cutoff = Date.now() - olderThanMs;
  let removed = 0;
  for (const root of localRoots(spec, cwd)) removed += await sweepRepositories(root, cutoff, 2);
  return removed;
}
