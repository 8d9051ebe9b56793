import { AlreadyExistsError, UsageError } from '../errors/index.js';
import { shortOid, type Oid } from '../objects/index.js';
import {
  Repository,
  branchRef,
  isAncestor,
  renameReflog,
  resolveCommit,
  trackingState,
} from '../repo/index.js';
import type { CommandIo } from './context.js';
import { openRepository } from './context.js';

export interface BranchOptions {
  delete: boolean;
  forceDelete: boolean;
  move: boolean;
  forceMove: boolean;
  /** 1 (-v): commit, ahead/behind and subject; 2 (-vv): the upstream's name too. */
  verbose: number;
  json: boolean;
  /** -r: remote-tracking branches only; -a: local then remote-tracking, as git lists them. */
  remotes?: boolean;
  all?: boolean;
}

const HEADS = 'refs/heads/';
const REMOTES = 'refs/remotes/';

/** The ref for a branch name, refusing names that could not be told apart from revisions. */
function refFor(name: string): string {
  if (name === 'HEAD' || name.startsWith('-'))
    throw new UsageError(`'${name}' is not a valid branch name`);
  return branchRef(name);
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export async function runBranch(
  io: CommandIo,
  args: string[],
  options: BranchOptions,
): Promise<void> {
  const repo = await openRepository(io);
  const deleting = options.delete || options.forceDelete;
  const moving = options.move || options.forceMove;
  if (deleting && moving) throw new UsageError('-d/-D and -m/-M cannot be combined');
  if (deleting) return deleteBranches(io, repo, args, options.forceDelete);
  if (moving) return renameBranch(repo, args, options.forceMove);
  if (args.length === 0) return listBranches(io, repo, options);
  if (args.length > 2)
    throw new UsageError('too many arguments', { hint: "use 'mediagit branch <name> [<start>]'" });
  return createBranch(repo, args[0]!, args[1]);
}

async function subjectOf(repo: Repository, oid: Oid): Promise<string> {
  return (await repo.odb.readCommit(oid)).message.split('\n')[0] ?? '';
}

async function listBranches(
  io: CommandIo,
  repo: Repository,
  options: BranchOptions,
): Promise<void> {
  const head = await repo.readHead();
  const refs = await repo.store.listRefs(HEADS);
  const names = options.remotes
    ? []
    : [...refs.keys()].map((r) => r.slice(HEADS.length)).sort(byName);
  if (options.json) {
    io.out(
      JSON.stringify(
        names.map((name) => ({
          name,
          oid: refs.get(HEADS + name)!.oid,
          current: head.ref === HEADS + name,
        })),
        null,
        2,
      ),
    );
    return;
  }
  const rows: { label: string; current: boolean; oid: Oid; branch?: string }[] = [];
  if (head.ref === null && head.oid !== null)
    rows.push({ label: `(HEAD detached at ${shortOid(head.oid)})`, current: true, oid: head.oid });
  for (const name of names)
    rows.push({
      label: name,
      current: head.ref === HEADS + name,
      oid: refs.get(HEADS + name)!.oid,
      branch: name,
    });
  if (options.remotes || options.all) {
    if (options.remotes) rows.length = 0;
    const remote = await repo.store.listRefs(REMOTES);
    for (const ref of [...remote.keys()].sort(byName))
      rows.push({
        label: `${options.all ? 'remotes/' : ''}${ref.slice(REMOTES.length)}`,
        current: false,
        oid: remote.get(ref)!.oid,
      });
  }
  const width = Math.max(0, ...rows.map((r) => r.label.length));
  for (const row of rows) {
    const mark = row.current ? '* ' : '  ';
    if (!options.verbose) io.out(`${mark}${row.label}`);
    else {
      const tracking =
        row.branch === undefined ? '' : await trackingLabel(repo, row.branch, options.verbose);
      io.out(
        `${mark}${row.label.padEnd(width)} ${shortOid(row.oid)} ${tracking}${await subjectOf(repo, row.oid)}`,
      );
    }
  }
}

/** git's bracket after the oid: "[origin/main: ahead 1, behind 2] ", the name only with -vv. */
async function trackingLabel(repo: Repository, branch: string, verbose: number): Promise<string> {
  const t = await trackingState(repo, branch);
  if (t === null) return '';
  const parts = t.gone
    ? ['gone']
    : [
        ...(t.ahead > 0 ? [`ahead ${t.ahead}`] : []),
        ...(t.behind > 0 ? [`behind ${t.behind}`] : []),
      ];
  if (verbose < 2) return parts.length === 0 ? '' : `[${parts.join(', ')}] `;
  return `[${t.upstream}${parts.length === 0 ? '' : `: ${parts.join(', ')}`}] `;
}

async function createBranch(
  repo: Repository,
  name: string,
  start: string | undefined,
): Promise<void> {
  const ref = refFor(name);
  if ((await repo.readRef(ref)) !== null)
    throw new AlreadyExistsError(`a branch named '${name}' already exists`);
  let target: Oid | null;
  if (start !== undefined) target = await resolveCommit(repo, start);
  else {
    target = (await repo.readHead()).oid;
    if (target === null)
      throw new UsageError(
        `cannot create branch '${name}': the current branch has no commits yet`,
        { hint: 'commit something first' },
      );
  }
  await repo.updateRef(ref, target, null);
}

async function deleteBranches(
  io: CommandIo,
  repo: Repository,
  names: string[],
  force: boolean,
): Promise<void> {
  if (names.length === 0) throw new UsageError('branch name required');
  const head = await repo.readHead();
  for (const name of names) {
    const ref = refFor(name);
    const oid = await repo.readRef(ref);
    if (oid === null) throw new UsageError(`branch '${name}' not found`);
    if (head.ref === ref) {
      throw new UsageError(`cannot delete branch '${name}': it is the current branch`, {
        hint: "switch to another branch first ('mediagit switch <branch>')",
      });
    }
    if (!force && (head.oid === null || !(await isAncestor(repo, oid, head.oid)))) {
      throw new UsageError(`the branch '${name}' is not fully merged`, {
        hint: `if you are sure you want to delete it, run 'mediagit branch -D ${name}'`,
      });
    }
    await repo.updateRef(ref, null, oid);
    io.out(`Deleted branch ${name} (was ${shortOid(oid)}).`);
  }
}

async function renameBranch(repo: Repository, args: string[], force: boolean): Promise<void> {
  if (args.length === 0 || args.length > 2)
    throw new UsageError('-m needs the new name, or the old and the new name');
  const head = await repo.readHead();
  let oldName: string;
  if (args.length === 2) oldName = args[0]!;
  else {
    if (head.ref === null || !head.ref.startsWith(HEADS))
      throw new UsageError('HEAD is detached: name the branch to rename', {
        hint: "use 'mediagit branch -m <old> <new>'",
      });
    oldName = head.ref.slice(HEADS.length);
  }
  const newName = args[args.length - 1]!;
  const oldRef = refFor(oldName);
  const newRef = refFor(newName);
  const oid = await repo.readRef(oldRef);
  const isCurrent = head.ref === oldRef;
  if (oid === null && !isCurrent) throw new UsageError(`branch '${oldName}' not found`);
  if (oldRef === newRef) return;
  const existing = await repo.readRef(newRef);
  if (existing !== null && !force)
    throw new AlreadyExistsError(`a branch named '${newName}' already exists`, {
      hint: 'use -M to overwrite it',
    });
  if (existing !== null && head.ref === newRef)
    throw new UsageError(`cannot overwrite '${newName}': it is the current branch`);
  // New name first, old name last: an interruption leaves both names, never neither.
  // The branch's reflog goes with it, as in git.
  await renameReflog(repo, oldRef, newRef);
  if (oid !== null)
    await repo.updateRef(newRef, oid, existing, `Branch: renamed ${oldRef} to ${newRef}`, false);
  if (isCurrent) await repo.writeHead({ ref: newRef });
  if (oid !== null) await repo.updateRef(oldRef, null, oid);
}
