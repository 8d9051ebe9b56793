import { UsageError } from '../errors/index.js';
import { shortOid } from '../objects/index.js';
import { readReflog, reflogMessage, reflogRefFor } from '../repo/index.js';
import { openRepository, type CommandIo } from './context.js';

export async function runReflog(
  io: CommandIo,
  args: string[],
  options: { maxCount?: string },
): Promise<void> {
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
