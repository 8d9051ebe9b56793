import { lstat } from 'node:fs/promises';
import { PathspecError } from '../errors/index.js';
import {
  IgnoreRules,
  Repository,
  ingestFile,
  walkWorktree,
  type Index,
  type WalkReport,
  type WorktreeFile,
} from '../repo/index.js';
import { WORKERS_WORTH_BYTES } from '../workers/index.js';
import { mapLimit } from '../util/limit.js';
import { formatBytes, plural, type CommandIo, openRepository } from './context.js';

export interface AddOptions {
  force?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

export interface AddSummary {
  staged: number;
  removed: number;
  bytes: number;
  chunks: number;
  newChunks: number;
  storedBytes: number;
}

/** Paths named by the user → repository paths, with `.` meaning the folder it is typed in. */
export function pathspecs(repo: Repository, io: CommandIo, args: readonly string[]): string[] {
  return args.map((arg) => repo.toRepoPath(arg, io.cwd));
}

export function under(path: string, spec: string): boolean {
  return spec === '' || path === spec || path.startsWith(`${spec}/`);
}

/**
 * Stages files: new and changed files are chunked into the store, tracked files that are gone
 * from disk are unstaged. Files whose stat matches the index are not read at all.
 */
export async function stagePaths(
  repo: Repository,
  io: CommandIo,
  index: Index,
  specs: string[],
  options: AddOptions,
): Promise<AddSummary> {
  const rules = new IgnoreRules(repo.root);
  const report: WalkReport = { skipped: [] };
  const found = new Map<string, WorktreeFile>();
  for (const spec of specs) {
    const files = await walkWorktree(repo.root, rules, spec, report);
    if (files.length === 0 && options.force && spec !== '') {
      // -f names an ignored file explicitly: take it even though the walk skipped it.
      const info = await lstat(repo.absPath(spec), { bigint: true }).catch(() => null);
      if (info?.isFile()) files.push({ path: spec, stats: info });
    }
    const tracked = [...index.entries.keys(), ...index.conflicts.keys()].some((p) =>
      under(p, spec),
    );
    if (files.length === 0 && !tracked) {
      await rules.loadAlong(spec);
      if (spec !== '' && rules.isPathIgnored(spec) && !options.force) {
        throw new PathspecError(`'${spec}' is ignored by a .mediagitignore file`, {
          hint: "use 'mediagit add -f' to add it anyway",
        });
      }
      if (spec !== '' && !(await repo.isWorktreeFileSafe(spec))) {
        throw new PathspecError(`pathspec '${spec}' did not match any files`);
      }
    }
    for (const f of files) found.set(f.path, f);
  }
  for (const s of report.skipped) io.err(`warning: skipping ${s.path}: ${s.reason}`);

  const toIngest = [...found.values()].filter((f) => {
    const entry = index.entries.get(f.path);
    return !entry || !index.matchesStat(entry, f.stats) || index.conflicts.has(f.path);
  });
  const removed = [...index.entries.keys(), ...index.conflicts.keys()].filter(
    (p) => specs.some((s) => under(p, s)) && !found.has(p) && !repo.isSparseExcluded(p),
  );
  const summary: AddSummary = {
    staged: 0,
    removed: 0,
    bytes: 0,
    chunks: 0,
    newChunks: 0,
    storedBytes: 0,
  };
  if (options.dryRun) {
    for (const f of toIngest) io.out(`add '${f.path}'`);
    for (const p of removed) io.out(`remove '${p}'`);
    return summary;
  }

  const progress = io.progress();
  const totalBytes = toIngest.reduce((n, f) => n + Number(f.stats.size), 0);
  progress.start('add', toIngest.length, totalBytes);
  const ctx = repo.contentContext({ workers: totalBytes >= WORKERS_WORTH_BYTES });
  try {
    // A file is read and chunked whole on one worker when the others have enough besides it to
    // stay busy; a file bigger than its share (one huge video) streams through the main thread's
    // chunker instead, with its chunks' hashing, compression and writes spread over every worker.
    const share = ctx.workers ? totalBytes / ctx.workers.size : 0;
    // Largest first, each to the least loaded worker: the big files cannot end up queued last.
    const bySize = [...toIngest].sort((a, b) => Number(b.stats.size - a.stats.size));
    // A file handed to a worker is queued there for good, so only a couple wait beyond one per
    // worker (hiding the manifest write between files); the rest go out as workers free up.
    const concurrency = ctx.workers ? ctx.workers.size + 2 : 4;
    await mapLimit(bySize, concurrency, async (file) => {
      const size = Number(file.stats.size);
      const wholeFileInWorker = size <= share;
      // An edited file: its last staged version tells the workers where boundaries probably are.
      const before = index.entries.get(file.path);
      const previous =
        ctx.workers && before
          ? await repo.odb
              .readManifest(before.oid)
              .then((m) => m.chunks)
              .catch(() => undefined)
          : undefined;
      const result = await ingestFile(ctx, repo.absPath(file.path), file.path, progress, size, {
        wholeFileInWorker,
        ...(previous ? { previous } : {}),
      });
      const type = (file.stats.mode & 0o111n) !== 0n ? 'exec' : 'file';
      index.entries.set(file.path, {
        path: file.path,
        type,
        oid: result.manifestOid,
        size: result.size,
        mtimeNs: file.stats.mtimeNs,
        ino: file.stats.ino,
      });
      index.conflicts.delete(file.path);
      summary.staged++;
      summary.bytes += result.size;
      summary.chunks += result.chunks;
      summary.newChunks += result.newChunks;
      summary.storedBytes += result.storedBytes;
      progress.fileDone();
    });
  } finally {
    progress.stop();
    await ctx.close();
  }
  for (const path of removed) {
    index.entries.delete(path);
    index.conflicts.delete(path);
    summary.removed++;
  }
  return summary;
}

export async function runAdd(
  io: CommandIo,
  paths: string[],
  options: AddOptions & { all?: boolean },
): Promise<void> {
  const repo = await openRepository(io);
  if (paths.length === 0 && !options.all)
    throw new PathspecError('nothing specified, nothing added', {
      hint: "maybe you wanted to say 'mediagit add .'?",
    });
  const specs = options.all ? [''] : pathspecs(repo, io, paths);
  const summary = await repo.updateIndex((index) => stagePaths(repo, io, index, specs, options));
  if (options.json) {
    io.out(JSON.stringify(summary));
    return;
  }
  if (options.dryRun) return;
  if (summary.staged === 0 && summary.removed === 0) return;
  io.out(
    `staged ${plural(summary.staged, 'file')} (${formatBytes(summary.bytes)})` +
      (summary.removed ? `, ${summary.removed} removed` : '') +
      `: ${summary.newChunks} of ${plural(summary.chunks, 'chunk')} new, ${formatBytes(summary.storedBytes)} stored`,
  );
}
