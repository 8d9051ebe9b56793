/**
 * Moving the current branch to another commit, with the index (and with `hard`, the working
 * tree) following it (`reset --soft|--mixed|--hard`).
 */
import { UsageError } from '../errors/index.js';
import type { Oid } from '../objects/index.js';
import { moveWorktree } from './checkout.js';
import type { Index } from './index-file.js';
import { silentProgress, type ProgressSink } from './progress.js';
import type { Repository } from './repository.js';
import { commitTreeMap } from './status.js';
import type { FileMap } from './tree-map.js';

export type ResetMode = 'soft' | 'mixed' | 'hard';

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

/**
 * Moves HEAD's branch to `target` (null: where HEAD is), records the old tip in ORIG_HEAD and
 * resets the index (mixed), the index and the files (hard), or nothing else (soft).
 */
export async function resetHead(
  repo: Repository,
  target: Oid | null,
  mode: ResetMode,
  progress: ProgressSink = silentProgress,
  /** The revision as the user named it, for the reflog ("reset: moving to HEAD~3"). */
  label?: string,
): Promise<Oid> {
  const head = await repo.readHead();
  const to = target ?? head.oid;
  if (to === null) throw new UsageError('cannot reset: the current branch has no commits yet');
  const log = `reset: moving to ${label ?? to}`;
  if (head.oid) await repo.writeState('ORIG_HEAD', `${head.oid}\n`);
  if (mode === 'soft') {
    if ((await repo.readStateOid('MERGE_HEAD')) !== null)
      throw new UsageError('cannot do a soft reset in the middle of a merge');
    await repo.advanceHead(to, head.oid, log);
    return to;
  }
  await repo.updateIndex(async (index) => {
    const snapshot = await commitTreeMap(repo, to);
    if (mode === 'hard') {
      const from = await commitTreeMap(repo, head.oid);
      await moveWorktree(repo, index, from, snapshot, {
        force: true,
        progress,
        operation: 'reset',
      });
    }
    // After a hard reset moveWorktree has fresh stat data for the files it wrote; resetIndexTo keeps it.
    resetIndexTo(index, snapshot);
  });
  await repo.advanceHead(to, head.oid, log);
  await repo.clearState('MERGE_HEAD', 'MERGE_MSG', 'CHERRY_PICK_HEAD', 'REVERT_HEAD');
  return to;
}
