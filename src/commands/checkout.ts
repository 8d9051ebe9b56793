import { chmod } from 'node:fs/promises';
import { PathspecError, UnknownRevisionError, UsageError } from '../errors/index.js';
import { isValidRefName } from '../store/index.js';
import { shortOid, type Oid } from '../objects/index.js';
import {
  Repository,
  commitTreeMap,
  lockableMatcher,
  materializeFile,
  moveWorktree,
  removeWorktreeFile,
  resolveCommit,
  tryResolveCommit,
  worktreeState,
  type FileMap,
  type Index,
} from '../repo/index.js';
import { pathspecs, under } from './add.js';
import type { CommandIo } from './context.js';
import { openRepository } from './context.js';

export interface CheckoutOptions {
  branch?: string;
  forceBranch?: string;
  detach?: boolean;
  force?: boolean;
  ours?: boolean;
  theirs?: boolean;
  quiet?: boolean;
}

export function branchRef(name: string): string {
  const ref = `refs/heads/${name}`;
  if (!isValidRefName(ref)) throw new UsageError(`'${name}' is not a valid branch name`);
  return ref;
}

/** Moves HEAD (and the working tree and index with it) to a commit; `head` says what HEAD becomes. */
export async function switchTo(
  repo: Repository,
  io: CommandIo,
  target: Oid,
  head: { ref: string } | { oid: Oid },
  force: boolean,
): Promise<void> {
  await repo.updateIndex(async (index) => {
    const current = await repo.readHead();
    const from = await commitTreeMap(repo, current.oid);
    const to = await commitTreeMap(repo, target);
    await moveWorktree(repo, index, from, to, {
      force,
      progress: io.progress(),
      operation: 'checkout',
    });
    if (force) index.conflicts.clear();
  });
  if (force) await repo.clearState('MERGE_HEAD', 'MERGE_MSG');
  await repo.writeHead(head);
}

async function createBranch(
  repo: Repository,
  name: string,
  start: Oid | null,
  allowExisting: boolean,
): Promise<string> {
  const ref = branchRef(name);
  const existing = await repo.readRef(ref);
  if (existing && !allowExisting) throw new UsageError(`a branch named '${name}' already exists`);
  if (start) await repo.updateRef(ref, start, existing);
  return ref;
}

export async function runCheckout(
  io: CommandIo,
  args: string[],
  dashDashPaths: string[] | undefined,
  options: CheckoutOptions,
): Promise<void> {
  const repo = await openRepository(io);
  if (options.ours || options.theirs) {
    if (options.ours && options.theirs)
      throw new UsageError('--ours and --theirs are mutually exclusive');
    const paths = [...args, ...(dashDashPaths ?? [])];
    if (paths.length === 0)
      throw new UsageError('--ours/--theirs need the paths of conflicted files');
    await checkoutConflictSide(
      repo,
      io,
      pathspecs(repo, io, paths),
      options.ours ? 'ours' : 'theirs',
    );
    return;
  }
  const newBranch = options.branch ?? options.forceBranch;
  if (dashDashPaths !== undefined && dashDashPaths.length > 0) {
    if (args.length > 1) throw new UsageError('only one revision may come before --');
    const source = args[0] ? await resolveCommit(repo, args[0]) : null;
    await restorePaths(repo, io, pathspecs(repo, io, dashDashPaths), {
      source,
      staged: source !== null,
      worktree: true,
    });
    return;
  }
  if (newBranch) {
    const start = args[0] ? await resolveCommit(repo, args[0]) : (await repo.readHead()).oid;
    if (args.length > 1) throw new UsageError('too many arguments');
    const ref = branchRef(newBranch);
    if ((await repo.readRef(ref)) && !options.forceBranch)
      throw new UsageError(`a branch named '${newBranch}' already exists`);
    if (start) await switchTo(repo, io, start, { ref }, options.force ?? false);
    else await repo.writeHead({ ref });
    await createBranch(repo, newBranch, start, options.forceBranch !== undefined);
    if (!options.quiet) io.err(`Switched to a new branch '${newBranch}'`);
    return;
  }
  if (args.length === 0)
    throw new UsageError('nothing to check out', {
      hint: 'name a branch, a commit, or paths after --',
    });
  const [first, ...rest] = args;
  const asBranch =
    !options.detach && isValidRefName(`refs/heads/${first}`)
      ? await repo.readRef(`refs/heads/${first!}`)
      : null;
  const target = asBranch ?? (await tryResolveCommit(repo, first!));
  if (target === null || rest.length > 0) {
    // Not a revision: treat every argument as a path to restore from the index, as git does.
    if (target === null && rest.length === 0 && !(await anyTracked(repo, io, args)))
      throw new UnknownRevisionError(first!);
    await restorePaths(repo, io, pathspecs(repo, io, target === null ? args : rest), {
      source: target,
      staged: target !== null,
      worktree: true,
    });
    return;
  }
  await checkoutRevision(repo, io, first!, target, asBranch !== null, options);
}

async function anyTracked(repo: Repository, io: CommandIo, args: string[]): Promise<boolean> {
  const index = await repo.readIndex();
  const specs = pathspecs(repo, io, args);
  return [...index.entries.keys(), ...index.conflicts.keys()].some((p) =>
    specs.some((s) => under(p, s)),
  );
}

async function checkoutRevision(
  repo: Repository,
  io: CommandIo,
  name: string,
  target: Oid,
  isBranch: boolean,
  options: CheckoutOptions,
): Promise<void> {
  const before = await repo.readHead();
  if (isBranch) {
    const ref = `refs/heads/${name}`;
    if (before.ref === ref) {
      if (!options.quiet) io.err(`Already on '${name}'`);
      return;
    }
    await switchTo(repo, io, target, { ref }, options.force ?? false);
    if (!options.quiet) io.err(`Switched to branch '${name}'`);
    return;
  }
  await switchTo(repo, io, target, { oid: target }, options.force ?? false);
  if (!options.quiet) {
    const commit = await repo.odb.readCommit(target);
    io.err(
      `Note: switching to '${name}'.\n\nYou are in 'detached HEAD' state. To keep commits you make here, create a branch:\n  mediagit switch -c <new-branch-name>\n`,
    );
    io.err(`HEAD is now at ${shortOid(target)} ${commit.message.split('\n')[0]}`);
  }
}

export interface SwitchOptions {
  create?: string;
  forceCreate?: string;
  detach?: boolean;
  force?: boolean;
  quiet?: boolean;
}

export async function runSwitch(
  io: CommandIo,
  args: string[],
  options: SwitchOptions,
): Promise<void> {
  const repo = await openRepository(io);
  const create = options.create ?? options.forceCreate;
  if (create) {
    const start = args[0] ? await resolveCommit(repo, args[0]) : (await repo.readHead()).oid;
    const ref = branchRef(create);
    if ((await repo.readRef(ref)) && !options.forceCreate)
      throw new UsageError(`a branch named '${create}' already exists`, {
        hint: 'use -C to reset it',
      });
    if (start) await switchTo(repo, io, start, { ref }, options.force ?? false);
    else await repo.writeHead({ ref });
    await createBranch(repo, create, start, true);
    if (!options.quiet) io.err(`Switched to a new branch '${create}'`);
    return;
  }
  const name = args[0];
  if (!name)
    throw new UsageError('missing branch name', {
      hint: "use 'mediagit switch <branch>' or 'mediagit switch -c <new-branch>'",
    });
  if (options.detach) {
    const target = await resolveCommit(repo, name);
    await checkoutRevision(repo, io, name, target, false, options);
    return;
  }
  const target = await repo.readRef(branchRef(name));
  if (!target) {
    const isCommit = await tryResolveCommit(repo, name);
    throw new UsageError(`no branch named '${name}'`, {
      hint: isCommit
        ? `to look at that commit, use 'mediagit switch --detach ${name}'`
        : "list branches with 'mediagit branch'",
    });
  }
  await checkoutRevision(repo, io, name, target, true, options);
}

export interface RestoreOptions {
  source?: string;
  staged?: boolean;
  worktree?: boolean;
}

export async function runRestore(
  io: CommandIo,
  paths: string[],
  options: RestoreOptions,
): Promise<void> {
  const repo = await openRepository(io);
  if (paths.length === 0) throw new UsageError('you must name at least one path to restore');
  const staged = options.staged ?? false;
  const worktree = options.worktree ?? !staged;
  let source: Oid | null = options.source ? await resolveCommit(repo, options.source) : null;
  if (staged && source === null) source = (await repo.readHead()).oid;
  await restorePaths(repo, io, pathspecs(repo, io, paths), {
    source,
    staged,
    worktree,
    stagedFromHeadWhenNull: staged,
  });
}

interface RestoreSpec {
  /** Commit to take content from; null = the index (or, with stagedFromHeadWhenNull, an empty HEAD). */
  source: Oid | null;
  staged: boolean;
  worktree: boolean;
  stagedFromHeadWhenNull?: boolean;
}

/** restore / checkout -- paths: bring matching paths back from a commit or the index. */
export async function restorePaths(
  repo: Repository,
  io: CommandIo,
  specs: string[],
  spec: RestoreSpec,
): Promise<void> {
  await repo.updateIndex(async (index) => {
    const sourceMap: FileMap | null =
      spec.source !== null || spec.stagedFromHeadWhenNull
        ? await commitTreeMap(repo, spec.source)
        : null;
    const fromIndex: FileMap = new Map(
      [...index.entries].map(([p, e]) => [p, { type: e.type, oid: e.oid, size: e.size }]),
    );
    const source = sourceMap ?? fromIndex;
    let matched = 0;
    // Lockable files come back read-only, as checkout writes them, until `mediagit lock`.
    const lockable = lockableMatcher(repo);
    const candidates = new Set([
      ...source.keys(),
      ...(spec.staged ? index.entries.keys() : []),
      ...(sourceMap ? fromIndex.keys() : []),
    ]);
    const progress = io.progress();
    for (const path of [...candidates].sort()) {
      if (!specs.some((s) => under(path, s))) continue;
      matched++;
      if (index.conflicts.has(path) && sourceMap === null) {
        throw new UsageError(`path '${path}' is unmerged`, {
          hint: "choose a side with 'mediagit checkout --ours|--theirs'",
        });
      }
      const record = source.get(path);
      if (spec.worktree) {
        if (record) {
          if (
            (await worktreeState(repo, index, path)) !== 'clean' ||
            !index.entries.has(path) ||
            index.entries.get(path)!.oid !== record.oid ||
            index.entries.get(path)!.type !== record.type
          ) {
            const stats = await materializeFile(
              repo.odb,
              record.oid,
              repo.root,
              repo.absPath(path),
              record.type,
              progress,
            );
            if (lockable?.(path)) await chmod(repo.absPath(path), Number(stats.mode) & 0o7555);
            if (spec.staged || sourceMap === null) setEntry(index, path, record, stats);
          }
        } else if (spec.staged && sourceMap) {
          await removeWorktreeFile(repo, path);
        }
      }
      if (spec.staged) {
        if (record) {
          const existing = index.entries.get(path);
          if (!existing || existing.oid !== record.oid || existing.type !== record.type) {
            index.entries.set(path, {
              path,
              type: record.type,
              oid: record.oid,
              size: record.size,
              mtimeNs: 0n,
              ino: 0n,
            });
          }
        } else index.entries.delete(path);
        index.conflicts.delete(path);
      }
    }
    if (matched === 0)
      throw new PathspecError(
        `pathspec '${specs.join(' ')}' did not match any file known to mediagit`,
      );
  });
}

function setEntry(
  index: Index,
  path: string,
  record: { type: 'file' | 'exec'; oid: Oid; size: number },
  stats: { mtimeNs: bigint; ino: bigint },
): void {
  index.entries.set(path, {
    path,
    type: record.type,
    oid: record.oid,
    size: record.size,
    mtimeNs: stats.mtimeNs,
    ino: stats.ino,
  });
}

async function checkoutConflictSide(
  repo: Repository,
  io: CommandIo,
  specs: string[],
  side: 'ours' | 'theirs',
): Promise<void> {
  const index = await repo.readIndex();
  const conflicts = [...index.conflicts.values()].filter((c) =>
    specs.some((s) => under(c.path, s)),
  );
  if (conflicts.length === 0)
    throw new PathspecError(`no unmerged paths match '${specs.join(' ')}'`);
  const progress = io.progress();
  const lockable = lockableMatcher(repo);
  for (const conflict of conflicts) {
    const chosen = conflict[side];
    if (chosen === null) {
      await removeWorktreeFile(repo, conflict.path);
      io.err(
        `${conflict.path}: ${side === 'ours' ? 'our' : 'their'} side deleted it; 'mediagit rm ${conflict.path}' to accept that`,
      );
      continue;
    }
    const stats = await materializeFile(
      repo.odb,
      chosen.oid,
      repo.root,
      repo.absPath(conflict.path),
      chosen.type,
      progress,
    );
    if (lockable?.(conflict.path))
      await chmod(repo.absPath(conflict.path), Number(stats.mode) & 0o7555);
  }
  io.err(
    `Updated ${conflicts.length} path${conflicts.length === 1 ? '' : 's'} from ${side === 'ours' ? 'our' : 'their'} side; 'mediagit add' them to mark resolved`,
  );
}
