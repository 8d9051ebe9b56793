import { lstat, rename } from 'node:fs/promises';
import { DirtyWorktreeError, PathspecError, UsageError } from '../errors/index.js';
import {
  commitTreeMap,
  ensureSafeParents,
  removeWorktreeFile,
  under,
  worktreeState,
} from '../repo/index.js';
import { isErrno } from '../util/fs.js';
import { openRepository, pathspecs, type CommandIo } from './context.js';

export interface RmOptions {
  cached?: boolean;
  force?: boolean;
  recursive?: boolean;
  quiet?: boolean;
}

export async function runRm(io: CommandIo, paths: string[], options: RmOptions): Promise<void> {
  const repo = await openRepository(io);
  if (paths.length === 0) throw new UsageError('name the files to remove');
  const specs = pathspecs(repo, io, paths);
  await repo.updateIndex(async (index) => {
    const head = await commitTreeMap(repo, (await repo.readHead()).oid);
    const targets: string[] = [];
    for (const spec of specs) {
      const matched = [...new Set([...index.entries.keys(), ...index.conflicts.keys()])].filter(
        (p) => under(p, spec),
      );
      if (matched.length === 0)
        throw new PathspecError(`pathspec '${spec}' did not match any tracked files`);
      if (!options.recursive && !matched.includes(spec))
        throw new UsageError(`not removing '${spec}' recursively without -r`);
      targets.push(...matched);
    }
    if (!options.force) {
      const dirty: string[] = [];
      for (const path of targets) {
        const entry = index.entries.get(path);
        if (!entry || index.conflicts.has(path)) continue;
        const staged = head.get(path)?.oid !== entry.oid;
        const state = await worktreeState(repo, index, path);
        if (
          (state === 'modified' && !options.cached) ||
          (staged && state === 'modified') ||
          (staged && !options.cached)
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
    for (const path of targets) {
      index.entries.delete(path);
      index.conflicts.delete(path);
      if (!options.cached) await removeWorktreeFile(repo, path);
      if (!options.quiet) io.out(`rm '${path}'`);
    }
  });
}

export interface MvOptions {
  force?: boolean;
}

export async function runMv(
  io: CommandIo,
  sources: string[],
  destination: string,
  options: MvOptions,
): Promise<void> {
  const repo = await openRepository(io);
  const [dest] = pathspecs(repo, io, [destination]);
  const srcs = pathspecs(repo, io, sources);
  if (dest === undefined || dest === '') throw new UsageError('bad destination');
  const destInfo = await lstat(repo.absPath(dest)).catch((err: unknown) => {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  });
  const intoDir = destInfo?.isDirectory() ?? false;
  if (srcs.length > 1 && !intoDir)
    throw new UsageError(`destination '${destination}' is not a directory`);
  await repo.updateIndex(async (index) => {
    for (const src of srcs) {
      const target = intoDir ? `${dest}/${src.split('/').pop()!}` : dest;
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
