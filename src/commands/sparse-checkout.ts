import { addSparse, setSparse, type SparseChange } from '../repo/index.js';
import { openRepository, plural, type CommandIo } from './context.js';

export interface SparseCheckoutOptions {
  quiet?: boolean;
  json?: boolean;
}

export async function runSparseCheckout(
  io: CommandIo,
  action: 'set' | 'add' | 'list' | 'disable',
  patterns: string[],
  options: SparseCheckoutOptions,
): Promise<void> {
  const repo = await openRepository(io);
  if (action === 'list') {
    const current = repo.sparsePatterns();
    if (options.json) io.out(JSON.stringify({ sparse: current.length > 0, patterns: current }));
    else for (const p of current) io.out(p);
    return;
  }
  const progress = io.progress();
  let change: SparseChange;
  if (action === 'add') change = await addSparse(repo, patterns, progress);
  else change = await setSparse(repo, action === 'set' ? patterns : null, progress);
  if (options.quiet) return;
  if (action === 'add' && change.patterns.length === 0 && change.added.length === 0)
    io.err('not sparse: every path is already checked out');
  else
    io.err(
      `checked out ${plural(change.added.length, 'more file', 'more files')}, left out ${plural(change.removed.length, 'file')}`,
    );
}
