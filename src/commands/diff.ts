import { lstat } from 'node:fs/promises';
import { UsageError } from '../errors/index.js';
import {
  Repository,
  commitTreeMap,
  diffMaps,
  hashFile,
  indexToMap,
  mergeBase,
  resolveCommit,
  scanWorktree,
  type FileMap,
  type Index,
  under,
} from '../repo/index.js';
import { isErrno } from '../util/fs.js';
import { openRepository, pathspecs, type CommandIo } from './context.js';
import { changeFormat, printChanges } from './shared/changes.js';
import { splitRevsAndPaths } from './shared/revisions.js';

export interface DiffOptions {
  cached?: boolean;
  staged?: boolean;
  stat?: boolean;
  nameStatus?: boolean;
  nameOnly?: boolean;
  json?: boolean;
  /** Exit 1 when there are differences, as git diff --exit-code (and --quiet, which prints nothing). */
  exitCode?: boolean;
  quiet?: boolean;
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
  if ((options.exitCode || options.quiet) && (changes.length > 0 || unmerged.length > 0))
    process.exitCode = 1;
  if (options.quiet) return;
  await printChanges(
    io,
    repo,
    changes,
    format,
    unmerged.filter((p) => specs.length === 0 || specs.some((s) => under(p, s))),
  );
}
