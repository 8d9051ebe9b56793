/**
 * Staging: bringing files of the working tree into the index (`add`, `commit -a`).
 */
import { lstat } from 'node:fs/promises';
import { PathspecError } from '../errors/index.js';
import { defaultPoolSize, WORKERS_WORTH_BYTES } from '../workers/index.js';
import { mapLimit } from '../util/limit.js';
import { holdsStagedContent, ingestFile, type IngestLane } from './content.js';
import { modeToType, type Index } from './index-file.js';
import { under } from './pathspec.js';
import { silentProgress, type ProgressSink } from './progress.js';
import type { Repository } from './repository.js';
import { IgnoreRules, walkWorktree, type WalkReport, type WorktreeFile } from './worktree.js';

export interface StageOptions {
  /** Take files even when a .mediagitignore rule names them. */
  force?: boolean;
  /** Only work out what would be staged; the index and the store are left alone. */
  dryRun?: boolean;
  progress?: ProgressSink;
  /** Told about every file the walk could not take (a socket, an unreadable folder…), before staging starts. */
  onSkipped?: (path: string, reason: string) => void;
}

export interface StageSummary {
  staged: number;
  removed: number;
  bytes: number;
  chunks: number;
  newChunks: number;
  storedBytes: number;
}

export interface StageResult {
  summary: StageSummary;
  /** With dryRun: the paths that would be (re)staged and those that would leave the index. */
  wouldStage: string[];
  wouldRemove: string[];
}

const emptySummary = (): StageSummary => ({
  staged: 0,
  removed: 0,
  bytes: 0,
  chunks: 0,
  newChunks: 0,
  storedBytes: 0,
});

/**
 * Stages files under `specs` into `index`: new and changed files are chunked into the store,
 * tracked files that are gone from disk are unstaged. Files whose stat matches the index are not
 * read at all. The caller holds the index (Repository.updateIndex) and saves it.
 */
export async function stagePaths(
  repo: Repository,
  index: Index,
  specs: readonly string[],
  options: StageOptions = {},
): Promise<StageResult> {
  const found = await findFiles(repo, index, specs, options);
  const candidates = [...found.values()].filter((f) => {
    const entry = index.entries.get(f.path);
    return !entry || !index.matchesStat(entry, f.stats) || index.conflicts.has(f.path);
  });
  const removed = [...index.entries.keys(), ...index.conflicts.keys()].filter(
    (p) => specs.some((s) => under(p, s)) && !found.has(p) && !repo.isSparseExcluded(p),
  );
  const summary = emptySummary();
  const toIngest = options.dryRun ? candidates : await unchangedRefreshed(repo, index, candidates);
  if (options.dryRun)
    return { summary, wouldStage: toIngest.map((f) => f.path), wouldRemove: removed };

  await ingestFiles(repo, index, toIngest, options.progress ?? silentProgress, summary);
  for (const path of removed) {
    index.entries.delete(path);
    index.conflicts.delete(path);
    summary.removed++;
  }
  return { summary, wouldStage: [], wouldRemove: [] };
}

/**
 * Files whose stat no longer proves them unchanged but whose bytes are still the staged content
 * (every file of a fresh clone is "racily clean") get their stat refreshed instead of being cut,
 * compressed and stored again: in a lean workspace that would bring back a second copy of every
 * checked-out file the clone left on the remote. Returns the files that really need ingesting.
 */
async function unchangedRefreshed(
  repo: Repository,
  index: Index,
  files: WorktreeFile[],
): Promise<WorktreeFile[]> {
  const ctx = repo.contentContext();
  const rest: WorktreeFile[] = [];
  try {
    for (const file of files) {
      const entry = index.entries.get(file.path);
      const size = Number(file.stats.size);
      if (
        entry === undefined ||
        index.conflicts.has(file.path) ||
        entry.type !== modeToType(file.stats.mode) ||
        entry.size !== size ||
        !(await holdsStagedContent(ctx, repo.absPath(file.path), entry, size))
      ) {
        rest.push(file);
        continue;
      }
      index.entries.set(file.path, { ...entry, mtimeNs: file.stats.mtimeNs, ino: file.stats.ino });
    }
  } finally {
    await ctx.close();
  }
  return rest;
}

/** `add`: stages `specs` ('' = the whole tree) under the index lock and saves the index. */
export function addPaths(
  repo: Repository,
  specs: readonly string[],
  options: StageOptions = {},
): Promise<StageResult> {
  return repo.updateIndex((index) => stagePaths(repo, index, specs, options));
}

/** The files on disk under the specs, refusing a spec that names nothing (or only ignored files). */
async function findFiles(
  repo: Repository,
  index: Index,
  specs: readonly string[],
  options: StageOptions,
): Promise<Map<string, WorktreeFile>> {
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
  for (const s of report.skipped) options.onSkipped?.(s.path, s.reason);
  return found;
}

/**
 * Files this small cost a worker nothing but the round trip, yet each waits on two fsyncs (its
 * chunk, then its manifest): a tree's hundreds of sidecar files, queued behind the media a few at
 * a time, were the tail of an add. They go through the object database on the main thread, many
 * at once, while the workers start and chew through the big files.
 */
export const SMALL_FILE_BYTES = 64 * 1024;
const SMALL_FILES_AT_ONCE = 16;

/** Chunks files into the store and records them in the index, adding to `summary`. */
async function ingestFiles(
  repo: Repository,
  index: Index,
  toIngest: readonly WorktreeFile[],
  progress: ProgressSink,
  summary: StageSummary,
): Promise<void> {
  const totalBytes = toIngest.reduce((n, f) => n + Number(f.stats.size), 0);
  progress.start('add', toIngest.length, totalBytes);
  const isSmall = (f: WorktreeFile): boolean => Number(f.stats.size) <= SMALL_FILE_BYTES;
  // Largest first, each to the least loaded worker: the big files cannot end up queued last.
  const bySize = [...toIngest].sort((a, b) => Number(b.stats.size - a.stats.size));
  const large = bySize.filter((f) => !isSmall(f));
  const small = bySize.filter(isSmall);
  // Only the files the workers would take count towards starting them.
  const workerBytes = large.reduce((n, f) => n + Number(f.stats.size), 0);
  // The main thread ingests whole files too, as one worker less would: it is idle otherwise, and
  // it starts at once where a worker first boots (~50 ms of CPU, as long again before its first job).
  // Not when a file is too big for one lane: the main thread then cuts it for every worker (or
  // proposes an edited one's old chunks to every worker), and needs all of them behind it.
  const biggest = large.length > 0 ? Number(large[0]!.stats.size) : 0;
  const ctx = repo.contentContext({
    workers: workerBytes >= WORKERS_WORTH_BYTES,
    mainLane: biggest <= workerBytes / defaultPoolSize(),
  });
  try {
    const lanes = (ctx.workers?.size ?? 0) + (ctx.mainChunks ? 1 : 0);
    // A file is read and chunked whole on one lane when the others have enough besides it to stay
    // busy; a file bigger than its share (one huge video) streams through the main thread's
    // chunker instead, with its chunks' hashing, compression and writes spread over every worker.
    const share = ctx.workers ? workerBytes / lanes : 0;
    // A file handed to a worker is queued there for good, so only a couple wait beyond one per
    // worker (covering the reply's way back between files); the rest go out as workers free up.
    const concurrency = ctx.workers ? ctx.workers.size + (ctx.mainChunks ? 1 : 2) : 4;
    let failed = false;
    const stage = async (
      file: WorktreeFile,
      where: IngestLane,
      onLaneFree?: () => void,
    ): Promise<void> => {
      const size = Number(file.stats.size);
      const wholeFileInWorker = size <= share;
      // An edited file: its last staged version tells the workers where boundaries probably are.
      const before = index.entries.get(file.path);
      const previous =
        ctx.workers && where !== 'database' && before
          ? await repo.odb
              .readManifest(before.oid)
              .then((m) => m.chunks)
              .catch(() => undefined)
          : undefined;
      const result = await ingestFile(ctx, repo.absPath(file.path), file.path, progress, size, {
        wholeFileInWorker,
        lane: where,
        ...(previous ? { previous } : {}),
        ...(onLaneFree ? { onLaneFree } : {}),
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
    };
    // The big files in one queue, largest first, for the workers and the main thread alike; the
    // main thread takes only files within its share (the bigger ones need every worker).
    const taken = new Array<boolean>(large.length).fill(false);
    let nextForWorkers = 0;
    let nextForMain = large.findIndex((f) => Number(f.stats.size) <= share);
    if (nextForMain < 0) nextForMain = large.length;
    const take = (main: boolean): WorktreeFile | undefined => {
      let i = main ? nextForMain : nextForWorkers;
      while (i < large.length && taken[i]) i++;
      if (main) nextForMain = i;
      else nextForWorkers = i;
      if (i >= large.length) return undefined;
      taken[i] = true;
      return large[i];
    };
    // A lane takes its next file as soon as its thread has cut the last one: that file's last
    // chunks land (fsync, rename) and its manifest is written while the thread cuts the next.
    const runLane = async (where: 'workers' | 'main'): Promise<void> => {
      const finishing: Promise<void>[] = [];
      try {
        for (let file = take(where === 'main'); file && !failed; file = take(where === 'main')) {
          let freeLane!: () => void;
          const free = new Promise<void>((resolve) => (freeLane = resolve));
          const done = stage(file, where, freeLane).catch((err: unknown) => {
            failed = true;
            throw err;
          });
          finishing.push(done);
          await Promise.race([free, done]);
        }
      } finally {
        await Promise.allSettled(finishing);
      }
      await Promise.all(finishing);
    };
    const lane = (run: Promise<unknown>): Promise<unknown> =>
      run.catch((err: unknown) => {
        failed = true;
        throw err;
      });
    // Every lane settles before the context closes: a worker must not be stopped under a job.
    // The main thread's lane first: it takes the largest file it may, the workers the next ones.
    const settled = await Promise.allSettled([
      ...(ctx.mainChunks ? [lane(runLane('main'))] : []),
      ...Array.from({ length: concurrency }, () => lane(runLane('workers'))),
      lane(
        mapLimit(small, SMALL_FILES_AT_ONCE, async (file) => {
          if (!failed) await stage(file, 'database');
        }),
      ),
    ]);
    for (const l of settled) if (l.status === 'rejected') throw l.reason;
  } finally {
    progress.stop();
    await ctx.close();
  }
}
