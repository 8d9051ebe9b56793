import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConflictError, NothingToCommitError, UsageError } from '../errors/index.js';
import { shortOid, type Oid } from '../objects/index.js';
import { commitTreeMap, diffMaps, indexToMap, writeTreeFromMap } from '../repo/index.js';
import { stagePaths } from './add.js';
import { plural, type CommandIo, openRepository } from './context.js';

export interface CommitOptions {
  message?: string[];
  file?: string;
  all?: boolean;
  allowEmpty?: boolean;
  amend?: boolean;
  quiet?: boolean;
  json?: boolean;
}

/** git's default cleanup: trailing whitespace and surrounding blank lines go; one final newline. */
export function cleanMessage(text: string): string {
  const lines = text
    .replace(/\r\n/g, '\n')
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''));
  while (lines.length && lines[0] === '') lines.shift();
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  const collapsed: string[] = [];
  for (const line of lines)
    if (!(line === '' && collapsed[collapsed.length - 1] === '')) collapsed.push(line);
  return collapsed.length ? `${collapsed.join('\n')}\n` : '';
}

export async function runCommit(io: CommandIo, options: CommitOptions): Promise<void> {
  const repo = await openRepository(io);
  let message: string | undefined;
  if (options.message && options.message.length > 0) message = options.message.join('\n\n');
  else if (options.file) message = await readFile(resolve(io.cwd, options.file), 'utf8');
  const result = await repo.updateIndex(async (index) => {
    if (options.all) {
      const tracked = [...new Set([...index.entries.keys()])].filter(
        (p) => !index.conflicts.has(p),
      );
      if (tracked.length > 0) await stagePaths(repo, io, index, tracked, {});
    }
    if (index.conflicts.size > 0) {
      throw new ConflictError(
        `cannot commit: ${plural(index.conflicts.size, 'path')} still unmerged (${[...index.conflicts.keys()].slice(0, 5).join(', ')})`,
        {
          hint: "pick a side with 'mediagit checkout --ours|--theirs <path>', then 'mediagit add <path>'",
        },
      );
    }
    const head = await repo.readHead();
    const merging = await repo.readStateOid('MERGE_HEAD');
    const headCommit = head.oid ? await repo.odb.readCommit(head.oid) : null;
    if (options.amend && !headCommit)
      throw new UsageError('nothing to amend: the current branch has no commits');
    const treeOid = await writeTreeFromMap(repo.odb, indexToMap(index));
    if (
      !options.allowEmpty &&
      !options.amend &&
      !merging &&
      headCommit &&
      headCommit.tree === treeOid
    ) {
      throw new NothingToCommitError('nothing to commit, working tree clean', {
        hint: "stage changes with 'mediagit add' first",
      });
    }
    if (!options.allowEmpty && !headCommit && index.entries.size === 0) {
      throw new NothingToCommitError('nothing to commit', {
        hint: "stage files with 'mediagit add <path>'",
      });
    }
    if (message === undefined) {
      if (options.amend && headCommit) message = headCommit.message;
      else if (merging) message = (await repo.readStateText('MERGE_MSG')) ?? undefined;
    }
    if (message === undefined)
      throw new UsageError('a commit message is required', {
        hint: "use -m 'message' or -F <file>",
      });
    const cleaned = cleanMessage(message);
    if (cleaned === '') throw new UsageError('aborting commit due to empty commit message');
    const identity = await repo.identity();
    const parents: Oid[] =
      options.amend && headCommit ? [...headCommit.parents] : head.oid ? [head.oid] : [];
    if (merging) parents.push(merging);
    const written = await repo.odb.writeCommit({
      tree: treeOid,
      parents,
      author: options.amend && headCommit ? headCommit.author : identity,
      committer: identity,
      message: cleaned,
    });
    await repo.advanceHead(written.oid, head.oid);
    index.recordTree(treeOid);
    await repo.clearState('MERGE_HEAD', 'MERGE_MSG');
    // The "N files changed" line reads the parent's trees: not worth it when nothing is printed.
    let changes = 0;
    if (options.json || !options.quiet) {
      const before = parents[0] ? await commitTreeMap(repo, parents[0]) : new Map();
      changes = diffMaps(before, indexToMap(index)).length;
    }
    return {
      oid: written.oid,
      branch: head.ref?.replace(/^refs\/heads\//, '') ?? null,
      root: parents.length === 0,
      subject: cleaned.split('\n')[0] ?? '',
      changes,
      tree: treeOid,
    };
  });
  if (options.json) {
    io.out(
      JSON.stringify({
        oid: result.oid,
        branch: result.branch,
        tree: result.tree,
        filesChanged: result.changes,
      }),
    );
    return;
  }
  if (options.quiet) return;
  io.out(
    `[${result.branch ?? 'detached HEAD'}${result.root ? ' (root-commit)' : ''} ${shortOid(result.oid)}] ${result.subject}`,
  );
  io.out(` ${plural(result.changes, 'file')} changed`);
}
