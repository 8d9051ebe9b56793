import { lstat } from 'node:fs/promises';
import { UnknownRevisionError, UsageError } from '../errors/index.js';
import { shortOid, type Manifest, type Oid } from '../objects/index.js';
import {
  Repository,
  commitTreeMap,
  diffMaps,
  hashFile,
  indexToMap,
  mergeBase,
  resolveCommit,
  scanWorktree,
  type Change,
  type FileMap,
  type FileRecord,
  type Index,
} from '../repo/index.js';
import { isErrno } from '../util/fs.js';
import { pathspecs, under } from './add.js';
import { formatBytes, plural, type CommandIo, openRepository } from './context.js';

export interface DiffOptions {
  cached?: boolean;
  staged?: boolean;
  stat?: boolean;
  nameStatus?: boolean;
  nameOnly?: boolean;
  json?: boolean;
}

export type ChangeFormat = 'patch' | 'stat' | 'name-status' | 'name-only' | 'json';

export interface ChangeJson {
  path: string;
  /** U: unmerged (a conflict awaiting resolution; no single staged version). */
  status: Change['status'] | 'U';
  oldOid: Oid | null;
  newOid: Oid | null;
  oldSize: number | null;
  newSize: number | null;
}

export function changeJson(change: Change): ChangeJson {
  return {
    path: change.path,
    status: change.status,
    oldOid: change.before?.oid ?? null,
    newOid: change.after?.oid ?? null,
    oldSize: change.before?.size ?? null,
    newSize: change.after?.size ?? null,
  };
}

const mode = (record: FileRecord): string => (record.type === 'exec' ? '100755' : '100644');
const ZERO = '0'.repeat(12);

/** A manifest if the store has it (working-tree content usually is not stored), else null. */
async function storedManifest(repo: Repository, oid: Oid): Promise<Manifest | null> {
  const [present] = await repo.odb.has('manifest', [oid]);
  return present ? repo.odb.readManifest(oid) : null;
}

/** "(1.2 MiB → 1.3 MiB; 2 of 9 chunks changed)": sizes, plus chunk reuse when the manifests are at hand. */
async function sizeSummary(repo: Repository, change: Change): Promise<string> {
  const sizes = `${formatBytes(change.before?.size ?? 0)} → ${formatBytes(change.after?.size ?? 0)}`;
  const before = change.before ? await storedManifest(repo, change.before.oid) : null;
  const after = change.after ? await storedManifest(repo, change.after.oid) : null;
  if (change.before && change.after) {
    if (!before || !after) return `(${sizes})`;
    const old = new Set(before.chunks.map((c) => c.oid));
    const changed = after.chunks.filter((c) => !old.has(c.oid)).length;
    return `(${sizes}; ${changed} of ${plural(after.chunks.length, 'chunk')} changed)`;
  }
  const only = after ?? before;
  return only ? `(${sizes}; ${plural(only.chunks.length, 'chunk')})` : `(${sizes})`;
}

async function printPatch(io: CommandIo, repo: Repository, change: Change): Promise<void> {
  const { path, before, after } = change;
  io.out(`diff --mediagit a/${path} b/${path}`);
  if (!before && after) {
    io.out(`new file mode ${mode(after)}`);
    io.out(`index ${ZERO}..${shortOid(after.oid)}`);
  } else if (before && !after) {
    io.out(`deleted file mode ${mode(before)}`);
    io.out(`index ${shortOid(before.oid)}..${ZERO}`);
  } else if (before && after) {
    if (before.type !== after.type) io.out(`old mode ${mode(before)}\nnew mode ${mode(after)}`);
    if (before.oid !== after.oid)
      io.out(
        `index ${shortOid(before.oid)}..${shortOid(after.oid)}${before.type === after.type ? ` ${mode(after)}` : ''}`,
      );
  }
  if (before?.oid === after?.oid) return;
  const a = before ? `a/${path}` : '/dev/null';
  const b = after ? `b/${path}` : '/dev/null';
  io.out(`Binary files ${a} and ${b} differ ${await sizeSummary(repo, change)}`);
}

/** git's --stat for binary files: " path | Bin 1234 -> 5678 bytes", aligned, then a summary line. */
function printStat(io: CommandIo, changes: readonly Change[]): void {
  if (changes.length === 0) return;
  const width = Math.max(...changes.map((c) => c.path.length));
  for (const c of changes) {
    const detail =
      c.before?.oid === c.after?.oid
        ? '0'
        : `Bin ${c.before?.size ?? 0} -> ${c.after?.size ?? 0} bytes`;
    io.out(` ${c.path.padEnd(width)} | ${detail}`);
  }
  io.out(` ${plural(changes.length, 'file')} changed`);
}

/**
 * Prints changes in one of the diff formats (json prints the whole array at once). `unmerged`
 * paths (conflicts in the index) are listed as git does: `U` lines, "* Unmerged path" notes.
 */
export async function printChanges(
  io: CommandIo,
  repo: Repository,
  changes: readonly Change[],
  format: ChangeFormat,
  unmerged: readonly string[] = [],
): Promise<void> {
  switch (format) {
    case 'json': {
      const list: ChangeJson[] = changes.map(changeJson);
      for (const path of unmerged)
        list.push({ path, status: 'U', oldOid: null, newOid: null, oldSize: null, newSize: null });
      list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      io.out(JSON.stringify(list, null, 2));
      return;
    }
    case 'name-only':
      for (const path of mergePaths(
        changes.map((c) => c.path),
        unmerged,
      ))
        io.out(path);
      return;
    case 'name-status': {
      const status = new Map<string, string>(changes.map((c) => [c.path, c.status]));
      for (const path of unmerged) status.set(path, 'U');
      for (const path of mergePaths(
        changes.map((c) => c.path),
        unmerged,
      ))
        io.out(`${status.get(path)}\t${path}`);
      return;
    }
    case 'stat':
      printStat(io, changes);
      return;
    case 'patch':
      for (const path of unmerged) io.out(`* Unmerged path ${path}`);
      for (const c of changes) await printPatch(io, repo, c);
      return;
  }
}

function mergePaths(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
}

export function changeFormat(
  options: { stat?: boolean; nameStatus?: boolean; nameOnly?: boolean; json?: boolean },
  fallback: ChangeFormat = 'patch',
): ChangeFormat {
  const chosen = [
    options.nameOnly && 'name-only',
    options.nameStatus && 'name-status',
    options.stat && 'stat',
  ].filter((f): f is ChangeFormat => typeof f === 'string');
  if (chosen.length > 1)
    throw new UsageError(`--${chosen[0]} and --${chosen[1]} cannot be combined`);
  if (options.json) return 'json';
  return chosen[0] ?? fallback;
}

function filterMap(map: FileMap, specs: readonly string[]): FileMap {
  if (specs.length === 0) return map;
  return new Map([...map].filter(([path]) => specs.some((s) => under(path, s))));
}

/**
 * Tracked files as they are on disk (plus unmerged paths, hashed), limited to `specs`. With
 * `changedOnly`, for a comparison with the index itself in a format that shows no new IDs, changed
 * files are compared with their staged content rather than hashed (see scanWorktree).
 */
async function worktreeMap(
  repo: Repository,
  index: Index,
  specs: readonly string[],
  includeConflicts: boolean,
  changedOnly = false,
): Promise<FileMap> {
  const scan = await scanWorktree(repo, index, {
    ...(specs.length > 0 ? { under: [...specs] } : {}),
    changedOnly,
  });
  const files = new Map(scan.files);
  if (includeConflicts) {
    for (const path of index.conflicts.keys()) {
      if (files.has(path) || (specs.length > 0 && !specs.some((s) => under(path, s)))) continue;
      try {
        const info = await lstat(repo.absPath(path));
        if (!info.isFile()) continue;
      } catch (err) {
        if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) continue;
        throw err;
      }
      const hashed = await hashFile(repo.contentContext(), repo.absPath(path));
      files.set(path, { type: 'file', oid: hashed.oid, size: hashed.size });
    }
  }
  return files;
}

/** The index as a snapshot, without unmerged paths (they have no single staged version). */
function stagedMap(index: Index): FileMap {
  const map = indexToMap(index);
  for (const path of index.conflicts.keys()) map.delete(path);
  return map;
}

async function snapshotOf(repo: Repository, rev: string): Promise<FileMap> {
  return commitTreeMap(repo, await resolveCommit(repo, rev));
}

/**
 * Without `--`, arguments that are not revisions but name files (on disk or in the index) are
 * paths, as in git: `mediagit diff HEAD textures/`.
 */
async function splitRevsAndPaths(
  repo: Repository,
  io: CommandIo,
  args: readonly string[],
): Promise<{ revs: string[]; paths: string[] }> {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    try {
      const parts = arg.includes('..') ? arg.split(/\.\.\.?/) : [arg];
      for (const part of parts) if (part !== '') await resolveCommit(repo, part);
    } catch (err) {
      if (!(err instanceof UnknownRevisionError)) throw err;
      if (await namesAFile(repo, io, arg)) return { revs: args.slice(0, i), paths: args.slice(i) };
      throw new UnknownRevisionError(arg);
    }
  }
  return { revs: [...args], paths: [] };
}

async function namesAFile(repo: Repository, io: CommandIo, arg: string): Promise<boolean> {
  let spec: string;
  try {
    spec = repo.toRepoPath(arg, io.cwd);
  } catch {
    return false;
  }
  try {
    await lstat(repo.absPath(spec));
    return true;
  } catch (err) {
    if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err;
  }
  const index = await repo.readIndex();
  return [...index.entries.keys()].some((p) => under(p, spec));
}

export async function runDiff(
  io: CommandIo,
  args: string[],
  dashDash: string[] | undefined,
  options: DiffOptions,
): Promise<void> {
  const repo = await openRepository(io);
  const format = changeFormat(options);
  const split =
    dashDash === undefined
      ? await splitRevsAndPaths(repo, io, args)
      : { revs: args, paths: dashDash };
  const revs = split.revs;
  const specs = pathspecs(repo, io, split.paths);
  const cached = options.cached || options.staged;

  let before: FileMap;
  let after: FileMap;
  // Comparisons involving the index leave unmerged paths out and list them apart, as git does.
  let unmerged: string[] = [];
  if (cached) {
    if (revs.length > 1) throw new UsageError('--cached takes at most one revision');
    const index = await repo.readIndex();
    before =
      revs[0] !== undefined
        ? await snapshotOf(repo, revs[0])
        : await commitTreeMap(repo, (await repo.readHead()).oid);
    after = stagedMap(index);
    unmerged = [...index.conflicts.keys()];
    for (const path of unmerged) before.delete(path);
  } else if (revs.length === 0) {
    const index = await repo.readIndex();
    before = stagedMap(index);
    // Only the index is compared with here, and names, letters and sizes need no new IDs.
    after = await worktreeMap(
      repo,
      index,
      specs,
      false,
      format === 'stat' || format === 'name-status' || format === 'name-only',
    );
    unmerged = [...index.conflicts.keys()];
  } else if (revs.length === 1 && revs[0]!.includes('..')) {
    const range = revs[0]!;
    const symmetric = range.includes('...');
    const [left, right] = range.split(symmetric ? '...' : '..');
    if (left === undefined || right === undefined || range.split('..').length > (symmetric ? 3 : 2))
      throw new UsageError(`bad revision range '${range}'`);
    const a = await resolveCommit(repo, left === '' ? 'HEAD' : left);
    const b = await resolveCommit(repo, right === '' ? 'HEAD' : right);
    const base = symmetric ? await mergeBase(repo, a, b) : a;
    if (base === null) throw new UsageError(`'${left}' and '${right}' have no common ancestor`);
    before = await commitTreeMap(repo, base);
    after = await commitTreeMap(repo, b);
  } else if (revs.length === 1) {
    before = await snapshotOf(repo, revs[0]!);
    after = await worktreeMap(repo, await repo.readIndex(), specs, true);
  } else if (revs.length === 2) {
    before = await snapshotOf(repo, revs[0]!);
    after = await snapshotOf(repo, revs[1]!);
  } else {
    throw new UsageError('diff takes at most two revisions', { hint: 'put paths after --' });
  }
  const changes = diffMaps(filterMap(before, specs), filterMap(after, specs));
  await printChanges(
    io,
    repo,
    changes,
    format,
    unmerged.filter((p) => specs.length === 0 || specs.some((s) => under(p, s))),
  );
}
