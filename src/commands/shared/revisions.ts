import { lstat } from 'node:fs/promises';
import { UnknownRevisionError } from '../../errors/index.js';
import { Repository, resolveCommit, under } from '../../repo/index.js';
import { isErrno } from '../../util/fs.js';
import type { CommandIo } from '../context.js';

/**
 * Without `--`, arguments that are not revisions (or ranges, or `^rev`) but name files (on disk
 * or in the index) are paths, as in git: `mediagit diff HEAD textures/`. Anything else unknown is
 * an unknown revision, so a typo is never silently read as an empty path filter.
 */
export async function splitRevsAndPaths(
  repo: Repository,
  io: CommandIo,
  args: readonly string[],
): Promise<{ revs: string[]; paths: string[] }> {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    try {
      const bare = arg.replace(/^\^/, '');
      const parts = bare.includes('..') ? bare.split(/\.\.\.?/) : [bare];
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
