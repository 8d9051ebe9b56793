import { lstatSync, unlinkSync, type BigIntStats } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { treeNameProblem } from '../objects/index.js';
import { isErrno, isStaleTempName } from '../util/fs.js';

export const IGNORE_FILE = '.mediagitignore';
export const REPO_DIR = '.mediagit';
/** Temporary files mediagit itself creates while writing (util/fs tempName). */
const OWN_TEMP = /^\.tmp-.+-\d+-[0-9a-f]{12}$/;

interface RuleSet {
  readonly base: string;
  readonly rules: Ignore;
}

/** `.mediagitignore` files, with git's semantics: each applies below its folder, deeper ones win. */
export class IgnoreRules {
  private readonly sets: RuleSet[] = [];

  constructor(private readonly root: string) {}

  async loadFor(dir: string): Promise<void> {
    if (this.sets.some((s) => s.base === dir)) return;
    let text: string;
    try {
      text = await readFile(join(this.root, dir, IGNORE_FILE), 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'EISDIR')) return;
      throw err;
    }
    this.sets.push({ base: dir, rules: ignore().add(text) });
  }

  /** Loads the rule files of every folder on the way to `path` (for paths named directly). */
  async loadAlong(path: string): Promise<void> {
    await this.loadFor('');
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) await this.loadFor(parts.slice(0, i).join('/'));
  }

  isIgnored(path: string, isDir: boolean): boolean {
    let ignored = false;
    for (const set of this.sets) {
      if (set.base !== '' && !path.startsWith(set.base + '/')) continue;
      const rel = set.base === '' ? path : path.slice(set.base.length + 1);
      const result = set.rules.test(isDir ? `${rel}/` : rel);
      if (result.ignored) ignored = true;
      else if (result.unignored) ignored = false;
    }
    return ignored;
  }

  /** True if `path` or any folder above it is ignored. */
  isPathIgnored(path: string): boolean {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++)
      if (this.isIgnored(parts.slice(0, i).join('/'), true)) return true;
    return this.isIgnored(path, false);
  }
}

export interface WorktreeFile {
  readonly path: string;
  readonly stats: BigIntStats;
}

export interface WalkReport {
  /** Entries skipped because mediagit cannot version them (symlinks, sockets, unsafe names). */
  readonly skipped: { path: string; reason: string }[];
}

/**
 * Every versionable file under `start` (repo-relative posix path, '' for the root), skipping
 * `.mediagit`, ignored paths, and mediagit's own temporary files. Sorted by path.
 */
export async function walkWorktree(
  root: string,
  rules: IgnoreRules,
  start: string,
  report: WalkReport,
): Promise<WorktreeFile[]> {
  const out: WorktreeFile[] = [];
  await rules.loadAlong(start === '' ? IGNORE_FILE : `${start}/${IGNORE_FILE}`);
  const visit = async (dir: string): Promise<void> => {
    await rules.loadFor(dir);
    let names: string[];
    try {
      names = await readdir(join(root, dir));
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return;
      throw err;
    }
    names.sort();
    // Synchronous on purpose: a warm lstat costs a couple of microseconds, while 10,000 promises
    // through the thread pool cost ~3× that in hops and garbage (status of a 10,000-file tree).
    const stats = names.map((name) => statQuietly(join(root, dir, name)));
    const subdirs: string[] = [];
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      const info = stats[i];
      if (!info) continue;
      const path = dir === '' ? name : `${dir}/${name}`;
      if (dir === '' && name === REPO_DIR) continue;
      if (OWN_TEMP.test(name)) {
        // Left by a mediagit killed mid-write (its pid is gone): every walk of the tree clears it.
        if (isStaleTempName(name)) {
          try {
            unlinkSync(join(root, dir, name));
          } catch {
            // gone already, or not ours to remove; it stays hidden either way
          }
        }
        continue;
      }
      if (info.isDirectory()) {
        if (rules.isIgnored(path, true)) continue;
        const problem = treeNameProblem(name);
        if (problem) report.skipped.push({ path, reason: problem });
        else subdirs.push(path);
        continue;
      }
      if (rules.isIgnored(path, false)) continue;
      if (!info.isFile()) {
        report.skipped.push({
          path,
          reason: info.isSymbolicLink() ? 'symbolic links are not versioned' : 'not a regular file',
        });
        continue;
      }
      const problem = treeNameProblem(name);
      if (problem) {
        report.skipped.push({ path, reason: problem });
        continue;
      }
      out.push({ path, stats: info });
    }
    for (const sub of subdirs) await visit(sub);
  };
  if (start !== '') {
    const info = await lstat(join(root, start), { bigint: true }).catch(() => null);
    if (!info) return out;
    if (!info.isDirectory()) {
      if (info.isFile() && !rules.isPathIgnored(start)) out.push({ path: start, stats: info });
      return out;
    }
    if (rules.isPathIgnored(start)) return out;
  }
  await visit(start);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** lstat, or null for an entry that vanished or cannot be examined (it is then simply not listed). */
function statQuietly(path: string): BigIntStats | null {
  try {
    return lstatSync(path, { bigint: true, throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}
