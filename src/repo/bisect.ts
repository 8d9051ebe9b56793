/**
 * `bisect`: a binary search over history for the commit that introduced a change. The user (or a
 * script, `bisect run`) marks commits good or bad; each step checks out (detached) the commit
 * that best halves what is left. State lives in `.mediagit/BISECT.json` until `bisect reset`.
 */
import { readFile, unlink } from 'node:fs/promises';
import { UsageError } from '../errors/index.js';
import { isOid, shortOid, type Oid } from '../objects/index.js';
import { isErrno, writeFileAtomic } from '../util/fs.js';
import { walkHistory } from './history.js';
import type { Repository } from './repository.js';
import { switchTo, type SwitchOptions } from './switch.js';

export type BisectMark = 'good' | 'bad' | 'skip';

interface BisectState {
  /** Where HEAD was at `bisect start`: a branch ref, or a commit when detached. */
  readonly origHead: { ref: string } | { oid: Oid };
  bad: Oid | null;
  good: Oid[];
  skip: Oid[];
  /** `bisect log`: the commands that reproduce the session, in git's words. */
  log: string[];
}

export type BisectStep =
  /** Not both a good and a bad commit yet. */
  | { readonly kind: 'waiting'; readonly need: 'good' | 'bad' | 'both' }
  /** `commit` is checked out for testing; `left` candidates remain after it. */
  | {
      readonly kind: 'testing';
      readonly commit: Oid;
      readonly left: number;
      readonly steps: number;
    }
  | { readonly kind: 'found'; readonly commit: Oid }
  /** Only skipped commits are left: the first bad one is among `candidates`. */
  | { readonly kind: 'only-skipped'; readonly candidates: readonly Oid[] };

const statePath = (repo: Repository): string => repo.path('BISECT.json');

async function loadState(repo: Repository): Promise<BisectState | null> {
  let text: string;
  try {
    text = await readFile(statePath(repo), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  const state = JSON.parse(text) as BisectState;
  if (![...state.good, ...state.skip, ...(state.bad ? [state.bad] : [])].every(isOid))
    throw new UsageError(`${statePath(repo)} is damaged`, {
      hint: "run 'mediagit bisect reset'",
    });
  return state;
}

async function requireState(repo: Repository): Promise<BisectState> {
  const state = await loadState(repo);
  if (!state) throw new UsageError('not bisecting', { hint: "start with 'mediagit bisect start'" });
  return state;
}

const saveState = (repo: Repository, state: BisectState): Promise<void> =>
  writeFileAtomic(statePath(repo), `${JSON.stringify(state, null, 2)}\n`, {
    fsync: repo.settings.fsync,
  });

export async function bisectInProgress(repo: Repository): Promise<boolean> {
  return (await loadState(repo)) !== null;
}

async function describe(repo: Repository, oid: Oid): Promise<string> {
  const commit = await repo.odb.readCommit(oid);
  return `[${oid}] ${commit.message.split('\n')[0] ?? ''}`;
}

/** `bisect start [<bad> [<good>…]]`. */
export async function startBisect(
  repo: Repository,
  bad: Oid | null,
  good: readonly Oid[],
  options: SwitchOptions = {},
): Promise<BisectStep> {
  if (await loadState(repo))
    throw new UsageError('a bisect is already in progress', {
      hint: "finish it with 'mediagit bisect reset'",
    });
  const head = await repo.readHead();
  if (head.oid === null) throw new UsageError('cannot bisect a branch with no commits');
  const state: BisectState = {
    origHead: head.ref ? { ref: head.ref } : { oid: head.oid },
    bad: null,
    good: [],
    skip: [],
    log: ['mediagit bisect start'],
  };
  if (bad) await record(repo, state, 'bad', bad);
  for (const g of good) await record(repo, state, 'good', g);
  await saveState(repo, state);
  return next(repo, state, options);
}

/** `bisect good|bad|skip [<rev>…]` (the revisions already resolved; none = HEAD). */
export async function markBisect(
  repo: Repository,
  mark: BisectMark,
  commits: readonly Oid[],
  options: SwitchOptions = {},
): Promise<BisectStep> {
  const state = await requireState(repo);
  const targets = commits.length > 0 ? commits : [(await repo.readHead()).oid!];
  for (const oid of targets) await record(repo, state, mark, oid);
  await saveState(repo, state);
  return next(repo, state, options);
}

async function record(
  repo: Repository,
  state: BisectState,
  mark: BisectMark,
  oid: Oid,
): Promise<void> {
  if (mark === 'bad') state.bad = oid;
  else if (mark === 'good') state.good.push(oid);
  else state.skip.push(oid);
  state.log.push(`# ${mark}: ${await describe(repo, oid)}`, `mediagit bisect ${mark} ${oid}`);
}

/** The commits still in question (bad's history minus good's), newest first. */
async function candidates(repo: Repository, state: BisectState): Promise<Oid[]> {
  const found: Oid[] = [];
  for await (const e of walkHistory(repo, [state.bad!], { exclude: state.good })) found.push(e.oid);
  return found;
}

/**
 * The commit that splits the candidates most evenly: the one whose ancestors among them come
 * closest to half, as git's bisection picks.
 */
async function midpoint(
  repo: Repository,
  all: readonly Oid[],
  testable: readonly Oid[],
): Promise<Oid> {
  const inSet = new Set(all);
  const parents = new Map<Oid, Oid[]>();
  for (const oid of all)
    parents.set(
      oid,
      (await repo.odb.readCommit(oid)).parents.filter((p) => inSet.has(p)),
    );
  let best = testable[0]!;
  let bestScore = -1;
  for (const oid of testable) {
    const seen = new Set<Oid>([oid]);
    const stack = [oid];
    while (stack.length > 0)
      for (const p of parents.get(stack.pop()!) ?? [])
        if (!seen.has(p)) {
          seen.add(p);
          stack.push(p);
        }
    const score = Math.min(seen.size, all.length - seen.size);
    if (score > bestScore) {
      best = oid;
      bestScore = score;
    }
  }
  return best;
}

async function next(
  repo: Repository,
  state: BisectState,
  options: SwitchOptions,
): Promise<BisectStep> {
  if (state.bad === null || state.good.length === 0)
    return {
      kind: 'waiting',
      need:
        state.bad === null && state.good.length === 0
          ? 'both'
          : state.bad === null
            ? 'bad'
            : 'good',
    };
  const all = await candidates(repo, state);
  if (all.length === 0)
    throw new UsageError('the bad commit is an ancestor of a good one', {
      hint: "check the marks with 'mediagit bisect log', or start again",
    });
  const skipped = new Set(state.skip);
  const testable = all.filter((c) => c !== state.bad && !skipped.has(c));
  if (testable.length === 0) {
    const open = all.filter((c) => c === state.bad || skipped.has(c));
    if (open.length === 1) {
      state.log.push(`# first bad commit: ${await describe(repo, state.bad)}`);
      await saveState(repo, state);
      return { kind: 'found', commit: state.bad };
    }
    return { kind: 'only-skipped', candidates: open };
  }
  const commit = await midpoint(repo, all, testable);
  const head = await repo.readHead();
  if (head.oid !== commit || head.ref !== null)
    await switchTo(repo, commit, { oid: commit }, options);
  const left = testable.length - 1;
  return { kind: 'testing', commit, left, steps: Math.max(0, Math.ceil(Math.log2(left + 1)) - 1) };
}

/** `bisect reset`: back to where `bisect start` was run; false when no bisect was going on. */
export async function resetBisect(repo: Repository, options: SwitchOptions = {}): Promise<boolean> {
  const state = await loadState(repo);
  if (!state) return false;
  const target =
    'ref' in state.origHead ? await repo.readRef(state.origHead.ref) : state.origHead.oid;
  if (target) await switchTo(repo, target, state.origHead, options);
  else await repo.writeHead(state.origHead);
  await unlink(statePath(repo)).catch((err: unknown) => {
    if (!isErrno(err, 'ENOENT')) throw err;
  });
  return true;
}

/** `bisect log`. */
export async function bisectLog(repo: Repository): Promise<string[]> {
  return (await requireState(repo)).log;
}

/** How a `bisect run` test went: git's convention of exit codes. */
export function markForExitCode(code: number): BisectMark | 'abort' {
  if (code === 0) return 'good';
  if (code === 125) return 'skip';
  if (code > 0 && code < 128) return 'bad';
  return 'abort';
}

/**
 * `bisect run`: tests each checked-out commit with `test` (resolving to an exit code) until the
 * first bad commit is found. `onStep` is told each mark and the step it led to.
 */
export async function runBisect(
  repo: Repository,
  test: (commit: Oid) => Promise<number>,
  onStep: (commit: Oid, mark: BisectMark, step: BisectStep) => Promise<void> | void,
  options: SwitchOptions = {},
): Promise<BisectStep> {
  const state = await requireState(repo);
  if (state.bad === null || state.good.length === 0)
    throw new UsageError('bisect run needs a good and a bad commit first', {
      hint: "mark them with 'mediagit bisect good <rev>' and 'mediagit bisect bad <rev>'",
    });
  for (;;) {
    const commit = (await repo.readHead()).oid!;
    const code = await test(commit);
    const mark = markForExitCode(code);
    if (mark === 'abort')
      throw new UsageError(
        `bisect run stopped: the script exited with ${code} on ${shortOid(commit)} (not 0-127)`,
        {
          hint: "exit 0 for good, 1-127 (except 125) for bad, 125 to skip; 'mediagit bisect reset' to give up",
        },
      );
    const step = await markBisect(repo, mark, [commit], options);
    await onStep(commit, mark, step);
    if (step.kind !== 'testing') return step;
  }
}
