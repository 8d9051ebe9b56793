import { UnknownRevisionError, UsageError } from '../errors/index.js';
import { isValidRefName } from '../store/index.js';
import { shortOid, type Oid } from '../objects/index.js';
import {
  Repository,
  branchRef,
  checkoutConflictSide,
  resolveCommit,
  restorePaths,
  switchTo,
  switchToBranch,
  switchToNewBranch,
  tracksAny,
  tryResolveCommit,
} from '../repo/index.js';
import { openRepository, pathspecs, plural, type CommandIo } from './context.js';

export interface CheckoutOptions {
  branch?: string;
  forceBranch?: string;
  detach?: boolean;
  force?: boolean;
  ours?: boolean;
  theirs?: boolean;
  quiet?: boolean;
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
    await takeSide(repo, io, paths, options.ours ? 'ours' : 'theirs');
    return;
  }
  const newBranch = options.branch ?? options.forceBranch;
  if (dashDashPaths !== undefined && dashDashPaths.length > 0) {
    if (args.length > 1) throw new UsageError('only one revision may come before --');
    const source = args[0] ? await resolveCommit(repo, args[0]) : null;
    await restorePaths(repo, pathspecs(repo, io, dashDashPaths), {
      source,
      staged: source !== null,
      worktree: true,
      progress: io.progress(),
    });
    return;
  }
  if (newBranch) {
    const start = args[0] ? await resolveCommit(repo, args[0]) : (await repo.readHead()).oid;
    if (args.length > 1) throw new UsageError('too many arguments');
    await switchToNewBranch(repo, newBranch, start, {
      reset: options.forceBranch !== undefined,
      force: options.force,
      progress: io.progress(),
    });
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
    if (
      target === null &&
      rest.length === 0 &&
      !tracksAny(await repo.readIndex(), pathspecs(repo, io, args))
    )
      throw new UnknownRevisionError(first!);
    await restorePaths(repo, pathspecs(repo, io, target === null ? args : rest), {
      source: target,
      staged: target !== null,
      worktree: true,
      progress: io.progress(),
    });
    return;
  }
  await checkoutRevision(repo, io, first!, target, asBranch !== null, options);
}

async function checkoutRevision(
  repo: Repository,
  io: CommandIo,
  name: string,
  target: Oid,
  isBranch: boolean,
  options: { force?: boolean; quiet?: boolean },
): Promise<void> {
  const switching = { force: options.force, progress: io.progress() };
  if (isBranch) {
    const outcome = await switchToBranch(repo, name, target, switching);
    if (!options.quiet)
      io.err(outcome === 'already' ? `Already on '${name}'` : `Switched to branch '${name}'`);
    return;
  }
  await switchTo(repo, target, { oid: target }, switching);
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
    await switchToNewBranch(repo, create, start, {
      reset: options.forceCreate !== undefined,
      existsHint: 'use -C to reset it',
      force: options.force,
      progress: io.progress(),
    });
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
  await restorePaths(repo, pathspecs(repo, io, paths), {
    source,
    staged,
    worktree,
    stagedFromHeadWhenNull: staged,
    progress: io.progress(),
  });
}

async function takeSide(
  repo: Repository,
  io: CommandIo,
  paths: string[],
  side: 'ours' | 'theirs',
): Promise<void> {
  const result = await checkoutConflictSide(repo, pathspecs(repo, io, paths), side, io.progress());
  const whose = side === 'ours' ? 'our' : 'their';
  for (const path of result.deleted)
    io.err(`${path}: ${whose} side deleted it; 'mediagit rm ${path}' to accept that`);
  io.err(
    `Updated ${plural(result.updated, 'path')} from ${whose} side; 'mediagit add' them to mark resolved`,
  );
}
