import { UsageError } from '../errors/index.js';
import { shortOid } from '../objects/index.js';
import {
  DEFAULT_REFLOG_EXPIRE,
  expireReflogs,
  parseGracePeriod,
  readReflog,
  reflogMessage,
  reflogRefFor,
} from '../repo/index.js';
import { openRepository, type CommandIo } from './context.js';

export async function runReflog(
  io: CommandIo,
  args: string[],
  options: { maxCount?: string; expire?: string; all?: boolean },
): Promise<void> {
  if (args[0] === 'expire') return expire(io, args.slice(1), options);
  const rest = args[0] === 'show' ? args.slice(1) : args;
  if (rest.length > 1) throw new UsageError('name one ref: mediagit reflog [show] [<ref>]');
  const max = options.maxCount === undefined ? Infinity : Number(options.maxCount);
  if (!Number.isInteger(max) && max !== Infinity)
    throw new UsageError(`'${options.maxCount}' is not a number of entries`);
  const repo = await openRepository(io);
  const name = rest[0] ?? 'HEAD';
  const ref = await reflogRefFor(repo, name);
  if (ref !== 'HEAD' && ref !== 'refs/stash' && (await repo.readRef(ref)) === null)
    throw new UsageError(`'${name}' has no reflog: no such branch`);
  // Entries print under the name as the user gave it, as git does (HEAD@{0}, main@{2}, stash@{0}).
  const label = ref === 'HEAD' ? 'HEAD' : ref === 'refs/stash' ? 'stash' : name;
  const entries = await readReflog(repo, ref);
  for (const [n, e] of entries.slice(0, max).entries())
    io.out(
      `${e.new ? shortOid(e.new) : '0000000'} ${label}@{${n}}: ${await reflogMessage(repo, ref, e)}`,
    );
}

/** `reflog expire`: drops entries older than --expire (default gc.reflogExpire) from the named logs. */
async function expire(
  io: CommandIo,
  names: string[],
  options: { expire?: string; all?: boolean },
): Promise<void> {
  if (names.length === 0 && !options.all)
    throw new UsageError('name the reflogs to expire, or give --all', {
      hint: 'mediagit reflog expire --expire=now --all',
    });
  const repo = await openRepository(io);
  const configured = repo.config.get('gc.reflogExpire');
  const period =
    options.expire ?? (configured === undefined ? DEFAULT_REFLOG_EXPIRE : String(configured));
  const ms = parseGracePeriod(period);
  const cutoff = Number.isFinite(ms) ? Math.floor((Date.now() - ms) / 1000) : 0;
  const refs = options.all ? undefined : await Promise.all(names.map((n) => reflogRefFor(repo, n)));
  const removed = await expireReflogs(repo, cutoff, refs);
  io.out(`expired ${removed} reflog ${removed === 1 ? 'entry' : 'entries'}`);
}
