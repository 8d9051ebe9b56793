import {
  withRenames,
  type RenamedChange,
  bisectInProgress,
  computeStatus,
  lockStatus,
  replayInProgress,
  trackingState,
  type Repository,
  type TrackingState,
  type Change,
  type LockStatus,
  type StatusReport,
} from '../repo/index.js';
import { shortOid } from '../objects/index.js';
import { openRepository, type CommandIo } from './context.js';

export interface StatusOptions {
  short?: boolean;
  porcelain?: boolean;
  json?: boolean;
}

const LONG_NAMES: Record<Change['status'], string> = {
  A: 'new file:',
  M: 'modified:',
  D: 'deleted:',
  T: 'typechange:',
};

export async function runStatus(io: CommandIo, options: StatusOptions): Promise<void> {
  const repo = await openRepository(io);
  const report = await computeStatus(repo);
  for (const s of report.skipped) io.err(`warning: not versioned: ${s.path} (${s.reason})`);
  if (options.short || options.porcelain) {
    printShort(io, report, await withRenames(repo, report.staged));
    return;
  }
  // Who holds what, from the cached view only: status never waits on the remote.
  const locks = await lockStatus(
    repo,
    new Set([...report.staged, ...report.unstaged].map((c) => c.path)),
  );
  // Against the upstream as last fetched, like git: no round trip to the remote.
  const tracking = report.branch === null ? null : await trackingState(repo, report.branch);
  if (options.json)
    io.out(JSON.stringify({ ...statusJson(report), upstream: tracking, locks }, null, 2));
  else {
    printLong(io, report, await withRenames(repo, report.staged), tracking);
    await printOperation(io, repo);
    printLocks(io, locks);
  }
}

/** A cherry-pick, revert, rebase or bisect going on, and how to go on or get out, as git says. */
async function printOperation(io: CommandIo, repo: Repository): Promise<void> {
  const replay = await replayInProgress(repo);
  if (replay) {
    const doing = { 'cherry-pick': 'cherry-picking', revert: 'reverting', rebase: 'rebasing' }[
      replay
    ];
    io.out(
      `\nYou are currently ${doing}.\n  (fix conflicts, 'mediagit add' them, then "mediagit ${replay} --continue")\n  (use "mediagit ${replay} --abort" to go back)`,
    );
  }
  if (await bisectInProgress(repo))
    io.out('\nYou are currently bisecting.\n  (use "mediagit bisect reset" to get back)');
}

function printLocks(io: CommandIo, locks: LockStatus): void {
  if (locks.files.length === 0) return;
  const view = locks.view
    ? ` (as of ${locks.view.refreshed_at} from ${locks.view.remote}${locks.view.stale ? "; STALE: run 'mediagit locks' to refresh" : ''})`
    : " (never looked up: run 'mediagit locks')";
  io.out(`\nLocks${view}:`);
  const width = Math.min(60, Math.max(...locks.files.map((f) => f.path.length)));
  for (const f of locks.files) {
    const what = f.ours
      ? 'locked by you'
      : f.holder !== null
        ? `locked by ${f.holder || 'someone else'}`
        : f.writableWithoutLock
          ? "writable without a lock: run 'mediagit lock' before editing"
          : 'lockable, not locked';
    io.out(`\t${f.path.padEnd(width)}  ${what}`);
  }
}

export function statusJson(report: StatusReport): object {
  return {
    branch: report.branch,
    head: report.head,
    detached: report.branch === null,
    merging: report.merging,
    clean:
      report.staged.length === 0 &&
      report.unstaged.length === 0 &&
      report.untracked.length === 0 &&
      report.conflicts.length === 0,
    staged: report.staged.map((c) => ({
      path: c.path,
      status: c.status,
      size: c.after?.size ?? 0,
    })),
    unstaged: report.unstaged.map((c) => ({
      path: c.path,
      status: c.status,
      size: c.after?.size ?? 0,
    })),
    untracked: report.untracked,
    conflicts: report.conflicts.map((c) => ({
      path: c.path,
      ours: c.ours !== null,
      theirs: c.theirs !== null,
      base: c.base !== null,
    })),
  };
}

function printShort(io: CommandIo, report: StatusReport, staged: readonly RenamedChange[]): void {
  const codes = new Map<string, [string, string]>();
  // A staged rename is one entry under its new path, shown as git does: "R  old -> new".
  const shown = new Map<string, string>();
  for (const c of staged) {
    codes.set(c.path, [c.status, ' ']);
    if (c.from !== undefined) shown.set(c.path, `${c.from} -> ${c.path}`);
  }
  for (const c of report.unstaged) codes.set(c.path, [codes.get(c.path)?.[0] ?? ' ', c.status]);
  for (const c of report.conflicts)
    codes.set(c.path, c.ours && c.theirs ? ['U', 'U'] : c.ours ? ['U', 'D'] : ['D', 'U']);
  for (const [path, [x, y]] of [...codes].sort((a, b) => (a[0] < b[0] ? -1 : 1)))
    io.out(`${x}${y} ${shown.get(path) ?? path}`);
  for (const path of report.untracked) io.out(`?? ${path}`);
}

/** git's sentence about the branch and its upstream. */
export function trackingLine(t: TrackingState): string {
  const up = `'${t.upstream}'`;
  const commits = (n: number): string => `${n} ${n === 1 ? 'commit' : 'commits'}`;
  if (t.gone) return `Your branch is based on ${up}, but the upstream is gone.`;
  if (t.ahead > 0 && t.behind > 0)
    return `Your branch and ${up} have diverged,\nand have ${t.ahead} and ${t.behind} different commits each, respectively.\n  (use "mediagit pull" to merge the remote branch into yours)`;
  if (t.ahead > 0)
    return `Your branch is ahead of ${up} by ${commits(t.ahead)}.\n  (use "mediagit push" to publish your local commits)`;
  if (t.behind > 0)
    return `Your branch is behind ${up} by ${commits(t.behind)}, and can be fast-forwarded.\n  (use "mediagit pull" to update your local branch)`;
  return `Your branch is up to date with ${up}.`;
}

function printLong(
  io: CommandIo,
  report: StatusReport,
  staged: readonly RenamedChange[],
  tracking: TrackingState | null,
): void {
  io.out(
    report.branch !== null
      ? `On branch ${report.branch}`
      : `HEAD detached at ${report.head ? shortOid(report.head) : '(none)'}`,
  );
  if (tracking) io.out(trackingLine(tracking));
  if (report.head === null) io.out('\nNo commits yet');
  if (report.merging) {
    io.out(
      report.conflicts.length > 0
        ? '\nYou have unmerged paths.\n  (fix conflicts and run "mediagit commit")'
        : '\nAll conflicts fixed but you are still merging.\n  (use "mediagit commit" to conclude merge)',
    );
  }
  if (report.staged.length > 0) {
    io.out('\nChanges to be committed:');
    for (const c of staged)
      io.out(
        c.from !== undefined
          ? `\t${'renamed:'.padEnd(12)}${c.from} -> ${c.path}`
          : `\t${LONG_NAMES[c.status as Change['status']].padEnd(12)}${c.path}`,
      );
  }
  if (report.conflicts.length > 0) {
    io.out(
      '\nUnmerged paths:\n  (use "mediagit checkout --ours|--theirs <path>" then "mediagit add <path>" to resolve)',
    );
    for (const c of report.conflicts) {
      const kind =
        c.ours && c.theirs
          ? c.base
            ? 'both modified:'
            : 'both added:'
          : c.ours
            ? 'deleted by them:'
            : 'deleted by us:';
      io.out(`\t${kind.padEnd(17)}${c.path}`);
    }
  }
  if (report.unstaged.length > 0) {
    io.out(
      '\nChanges not staged for commit:\n  (use "mediagit add <file>..." to stage, "mediagit restore <file>..." to discard)',
    );
    for (const c of report.unstaged) io.out(`\t${LONG_NAMES[c.status].padEnd(12)}${c.path}`);
  }
  if (report.untracked.length > 0) {
    io.out(
      '\nUntracked files:\n  (use "mediagit add <file>..." to include in what will be committed)',
    );
    for (const path of report.untracked) io.out(`\t${path}`);
  }
  if (report.staged.length === 0 && report.conflicts.length === 0) {
    if (report.unstaged.length > 0 || report.untracked.length > 0)
      io.out('\nno changes added to commit (use "mediagit add")');
    else io.out('\nnothing to commit, working tree clean');
  }
}
