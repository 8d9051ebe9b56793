/**
 * Removing tracked files (`rm`) and moving or renaming them (`mv`), in the index and on disk.
 */
import { lstat, rename } from 'node:fs/promises';
import { DirtyWorktreeError, PathspecError, UsageError } from '../errors/index.js';
import { isErrno } from '../util/fs.js';
import { removeWorktreeFile, worktreeState } from './checkout.js';
import { ensureSafeParents } from './content.js';
import type { Index } from './index-file.js';
import { under } from './pathspec.js';
import type { Repository } from './repository.js';
import { commitTreeMap } from './status.js';

export interface RemoveOptions {
  /** Unstage only; the files stay on disk. */
  cached?: boolean;
  /** Remove even files whose changes would be lost. */
  force?: boolean;
  /** Allow a spec that names a folder. */
  recursive?: boolean;
}

/** Removes the tracked paths under `specs` from the index (and disk); returns them in order. */
export function removePaths(
  repo: Repository,
  specs: readonly string[],
  options: RemoveOptions = {},
): Promise<string[]> {
  return repo.updateIndex(async (index) => {
    const targets = matchTracked(index, specs, options.recursive ?? false);
    if (!options.force) await refuseLosingChanges(repo, index, targets, options.cached ?? false);
    for (const path of targets) {
      index.entries.delete(path);
      index.conflicts.delete(path);
      if (!options.cached) await removeWorktreeFile(repo, path);
    }
    return targets;
  });
}

function matchTracked(index: Index, specs: readonly string[], recursive: boolean): string[] {
  const targets: string[] = [];
  for (const spec of specs) {
    const matched = [...new Set([...index.entries.keys(), ...index.conflicts.keys()])].filter((p) =>
      under(p, spec),
    );
    if (matched.length === 0)
      throw new PathspecError(`pathspec '${spec}' did not match any tracked files`);
    if (!recursive && !matched.includes(spec))
      throw new UsageError(`not removing '${spec}' recursively without -r`);
    targets.push(...matched);
  }
  return targets;
}

/** Refuses when removing would lose a change that is not committed (as git rm does). */
async function refuseLosingChanges(
  repo: Repository,
  index: Index,
  targets: readonly string[],
  cached: boolean,
): Promise<void> {
  const head = await commitTreeMap(repo, (await repo.readHead()).oid);
  const dirty: string[] = [];
  for (const path of targets) {
    const entry = index.entries.get(path);
    if (!entry || index.conflicts.has(path)) continue;
    const staged = head.get(path)?.oid !== entry.oid;
    const state = await worktreeState(repo, index, path);
    if (
      (state === 'modified' && !cached) ||
      (staged && state === 'modified') ||
      (staged && !cached)
    )
      dirty.push(path);
  }
  if (dirty.length > 0) {
    throw new DirtyWorktreeError(
      `these files have changes that would be lost: ${dirty.slice(0, 10).join(', ')}`,
      {
        hint: 'use --cached to keep the files on disk, or -f to remove them anyway',
      },
    );
  }
}

/**
 * Moves tracked `sources` to `destination` (into it, when it is a folder), on disk and in the
 * index. `typed` is the destination as the user wrote it, for messages.
 */
export async function movePaths(
  repo: Repository,
  sources: readonly string[],
  destination: string,
  options: { force?: boolean; typed?: string } = {},
): Promise<void> {
  const destInfo = await lstat(repo.absPath(destination)).catch((err: unknown) => {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  });
  const intoDir = destInfo?.isDirectory() ?? false;
  if (sources.length > 1 && !intoDir)
    throw new UsageError(`destination '${options.typed ?? destination}' is not a directory`);
  await repo.updateIndex(async (index) => {
    for (const src of sources) {
      const target = intoDir ? `${destination}/${src.split('/').pop()!}` : destination;
      if (target === src || under(target, src))
        throw new UsageError(`cannot move '${src}' into itself`);
      const moved = [...index.entries.keys()].filter((p) => under(p, src));
      if (moved.length === 0) throw new PathspecError(`'${src}' is not under version control`);
      if (
        !options.force &&
        (await lstat(repo.absPath(target)).then(
          () => true,
          () => false,
        ))
      ) {
        throw new UsageError(`destination '${target}' exists`, { hint: 'use -f to overwrite' });
      }
      await ensureSafeParents(repo.root, repo.absPath(target));
      await rename(repo.absPath(src), repo.absPath(target));
      for (const path of moved) {
        const entry = index.entries.get(path)!;
        const newPath = target + path.slice(src.length);
        index.entries.delete(path);
        index.entries.set(newPath, { ...entry, path: newPath });
      }
    }
  });
}
