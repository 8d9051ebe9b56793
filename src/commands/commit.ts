import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { shortOid } from '../objects/index.js';
import { commitIndex } from '../repo/index.js';
import { verifyCommitLocks } from '../sync/locks.js';
import { plural, type CommandIo, openRepository } from './context.js';

export interface CommitOptions {
  message?: string[];
  file?: string;
  all?: boolean;
  allowEmpty?: boolean;
  amend?: boolean;
  quiet?: boolean;
  json?: boolean;
  /** false with --no-verify-locks. */
  verifyLocks?: boolean;
}

export async function runCommit(io: CommandIo, options: CommitOptions): Promise<void> {
  const repo = await openRepository(io);
  let message: string | undefined;
  if (options.message && options.message.length > 0) message = options.message.join('\n\n');
  else if (options.file) message = await readFile(resolve(io.cwd, options.file), 'utf8');
  if (options.verifyLocks !== false) await verifyCommitLocks(repo, { all: options.all });
  const result = await commitIndex(repo, {
    message,
    all: options.all,
    allowEmpty: options.allowEmpty,
    amend: options.amend,
    countChanges: options.json || !options.quiet,
    progress: io.progress(),
    onSkipped: (path, reason) => io.err(`warning: skipping ${path}: ${reason}`),
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
