import { UsageError } from '../errors/index.js';
import { shortOid } from '../objects/index.js';
import {
  Repository,
  resetHead,
  resolveCommit,
  restorePaths,
  tryResolveCommit,
  type ResetMode,
} from '../repo/index.js';
import { openRepository, pathspecs, type CommandIo } from './context.js';

export interface ResetOptions {
  soft?: boolean;
  mixed?: boolean;
  hard?: boolean;
  quiet?: boolean;
}

export async function runReset(
  io: CommandIo,
  args: string[],
  dashDashPaths: string[] | undefined,
  options: ResetOptions,
): Promise<void> {
  const repo = await openRepository(io);
  const modes = [options.soft, options.mixed, options.hard].filter(Boolean).length;
  if (modes > 1) throw new UsageError('choose one of --soft, --mixed, --hard');
  // `reset [rev] -- paths` or `reset paths`: unstage, leaving HEAD and files alone.
  let rev = args[0];
  let paths = dashDashPaths ?? [];
  if (paths.length === 0 && args.length > 0 && !(await isRevision(repo, args[0]!))) {
    paths = args;
    rev = undefined;
  } else if (paths.length === 0 && args.length > 1) paths = args.slice(1);
  if (paths.length > 0) {
    if (modes > 0) throw new UsageError('--soft/--mixed/--hard cannot be used with paths');
    const source = rev ? await resolveCommit(repo, rev) : (await repo.readHead()).oid;
    await restorePaths(repo, pathspecs(repo, io, paths), {
      source,
      staged: true,
      worktree: false,
      stagedFromHeadWhenNull: true,
      progress: io.progress(),
    });
    return;
  }
  const mode: ResetMode = options.soft ? 'soft' : options.hard ? 'hard' : 'mixed';
  const target = await resetHead(
    repo,
    rev ? await resolveCommit(repo, rev) : null,
    mode,
    io.progress(),
    rev ?? 'HEAD',
  );
  if (!options.quiet && mode === 'hard') {
    const commit = await repo.odb.readCommit(target);
    io.out(`HEAD is now at ${shortOid(target)} ${commit.message.split('\n')[0]}`);
  }
}

async function isRevision(repo: Repository, rev: string): Promise<boolean> {
  return (await tryResolveCommit(repo, rev).catch(() => null)) !== null;
}
