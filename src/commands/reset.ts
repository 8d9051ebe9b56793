import { UsageError } from '../errors/index.js';
import { shortOid } from '../objects/index.js';
import {
  Repository,
  commitTreeMap,
  moveWorktree,
  resolveCommit,
  type Index,
  type FileMap,
} from '../repo/index.js';
import { pathspecs } from './add.js';
import { restorePaths } from './checkout.js';
import type { CommandIo } from './context.js';
import { openRepository } from './context.js';

export interface ResetOptions {
  soft?: boolean;
  mixed?: boolean;
  hard?: boolean;
  quiet?: boolean;
}

/** Index = snapshot, keeping stat data where the content is unchanged (so status stays cheap). */
export function resetIndexTo(index: Index, snapshot: FileMap): void {
  const old = new Map(index.entries);
  index.entries.clear();
  index.conflicts.clear();
  for (const [path, record] of snapshot) {
    const prev = old.get(path);
    const keepStat = prev && prev.oid === record.oid && prev.type === record.type;
    index.entries.set(path, {
      path,
      type: record.type,
      oid: record.oid,
      size: record.size,
      mtimeNs: keepStat ? prev.mtimeNs : 0n,
      ino: keepStat ? prev.ino : 0n,
    });
  }
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
  const head = await repo.readHead();
  // `reset [rev] -- paths` or `reset paths`: unstage, leaving HEAD and files alone.
  let rev = args[0];
  let paths = dashDashPaths ?? [];
  if (paths.length === 0 && args.length > 0 && !(await isRevision(repo, args[0]!))) {
    paths = args;
    rev = undefined;
  } else if (paths.length === 0 && args.length > 1) paths = args.slice(1);
  if (paths.length > 0) {
    if (modes > 0) throw new UsageError('--soft/--mixed/--hard cannot be used with paths');
    const source = rev ? await resolveCommit(repo, rev) : head.oid;
    await restorePaths(repo, io, pathspecs(repo, io, paths), {
      source,
      staged: true,
      worktree: false,
      stagedFromHeadWhenNull: true,
    });
    return;
  }
  const target = rev ? await resolveCommit(repo, rev) : head.oid;
  if (target === null) throw new UsageError('cannot reset: the current branch has no commits yet');
  if (head.oid) await repo.writeState('ORIG_HEAD', `${head.oid}\n`);
  if (options.soft) {
    if ((await repo.readStateOid('MERGE_HEAD')) !== null)
      throw new UsageError('cannot do a soft reset in the middle of a merge');
    await repo.advanceHead(target, head.oid);
  } else {
    await repo.updateIndex(async (index) => {
      const to = await commitTreeMap(repo, target);
      if (options.hard) {
        const from = await commitTreeMap(repo, head.oid);
        await moveWorktree(repo, index, from, to, {
          force: true,
          progress: io.progress(),
          operation: 'reset',
        });
      }
      // After a hard reset moveWorktree has fresh stat data for the files it wrote; resetIndexTo keeps it.
      resetIndexTo(index, to);
    });
    await repo.advanceHead(target, head.oid);
    await repo.clearState('MERGE_HEAD', 'MERGE_MSG');
  }
  if (!options.quiet && options.hard) {
    const commit = await repo.odb.readCommit(target);
    io.out(`HEAD is now at ${shortOid(target)} ${commit.message.split('\n')[0]}`);
  }
}

async function isRevision(repo: Repository, rev: string): Promise<boolean> {
  try {
    await resolveCommit(repo, rev);
    return true;
  } catch {
    return false;
  }
}
