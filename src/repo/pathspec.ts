import type { Repository } from './repository.js';

/** Paths named by the user → repository paths, with `.` meaning the folder `cwd` is. */
export function toRepoPaths(repo: Repository, cwd: string, args: readonly string[]): string[] {
  return args.map((arg) => repo.toRepoPath(arg, cwd));
}

/** Whether a repository path is `spec` itself or lies under it ('' is the whole tree). */
export function under(path: string, spec: string): boolean {
  return spec === '' || path === spec || path.startsWith(`${spec}/`);
}

/** Whether the index tracks (or holds a conflict for) anything under one of `specs`. */
export function tracksAny(
  index: { entries: ReadonlyMap<string, unknown>; conflicts: ReadonlyMap<string, unknown> },
  specs: readonly string[],
): boolean {
  return [...index.entries.keys(), ...index.conflicts.keys()].some((p) =>
    specs.some((s) => under(p, s)),
  );
}
