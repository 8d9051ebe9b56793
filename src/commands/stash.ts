import { UsageError } from '../errors/index.js';
import { shortOid } from '../objects/index.js';
import {
  applyStash,
  dropStash,
  listStashes,
  pushStash,
  showStash,
  stashConflictError,
} from '../repo/index.js';
import { openRepository, type CommandIo } from './context.js';

const SUBCOMMANDS = ['push', 'save', 'pop', 'apply', 'list', 'drop', 'show'] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];

/** `stash@{n}`, `n` or nothing (0). */
function stashNumber(arg: string | undefined): number {
  if (arg === undefined) return 0;
  const m = /^(?:stash@\{(\d+)\}|(\d+))$/.exec(arg);
  if (!m) throw new UsageError(`'${arg}' is not a stash`, { hint: 'name one as stash@{n}' });
  return Number(m[1] ?? m[2]);
}

export async function runStash(
  io: CommandIo,
  args: string[],
  options: { message?: string; quiet?: boolean },
): Promise<void> {
  const first = args[0];
  const sub: Subcommand = first === undefined ? 'push' : (first as Subcommand);
  if (!SUBCOMMANDS.includes(sub))
    throw new UsageError(`unknown stash subcommand '${first}'`, {
      hint: `use one of ${SUBCOMMANDS.filter((s) => s !== 'save').join(', ')}`,
    });
  const rest = args.slice(1);
  const repo = await openRepository(io);
  const quiet = options.quiet ?? false;
  if (sub === 'push' || sub === 'save') {
    if (rest.length > 0 && sub === 'push')
      throw new UsageError('stash push takes no paths; it saves every tracked change');
    const message = options.message ?? (sub === 'save' && rest.length ? rest.join(' ') : undefined);
    const saved = await pushStash(repo, message, { progress: io.progress() });
    if (!quiet)
      io.out(
        saved
          ? `Saved working directory and index state ${saved.message}`
          : 'No local changes to save',
      );
    return;
  }
  if (rest.length > 1) throw new UsageError(`stash ${sub} takes one stash at most`);
  const n = stashNumber(rest[0]);
  if (sub === 'list') {
    if (rest.length > 0) throw new UsageError('stash list takes no arguments');
    for (const e of await listStashes(repo)) io.out(`stash@{${e.n}}: ${e.message}`);
    return;
  }
  if (sub === 'show') {
    const { changes } = await showStash(repo, n);
    for (const c of changes) io.out(`${c.status}\t${c.path}`);
    return;
  }
  if (sub === 'drop') {
    const dropped = await dropStash(repo, n);
    if (!quiet) io.out(`Dropped stash@{${n}} (${shortOid(dropped.oid)})`);
    return;
  }
  const outcome = await applyStash(repo, n, { pop: sub === 'pop', progress: io.progress() });
  if (outcome.kind === 'conflicts') {
    for (const c of outcome.conflicts) io.out(`CONFLICT (content): Merge conflict in ${c.path}`);
    throw stashConflictError(outcome);
  }
  if (!quiet && outcome.dropped) io.out(`Dropped stash@{${n}} (${shortOid(outcome.entry.oid)})`);
}
