import picomatch from 'picomatch';
import { AlreadyExistsError, UsageError } from '../errors/index.js';
import { shortOid, type Oid } from '../objects/index.js';
import { isValidRefName } from '../store/index.js';
import { Repository, cleanMessage, resolveCommit } from '../repo/index.js';
import type { CommandIo } from './context.js';
import { openRepository } from './context.js';

export interface TagOptions {
  annotate?: boolean;
  message?: string;
  delete?: boolean;
  force?: boolean;
  list?: boolean;
  json?: boolean;
}

const TAGS = 'refs/tags/';

function tagRef(name: string): string {
  const ref = TAGS + name;
  if (name === 'HEAD' || name.startsWith('-') || !isValidRefName(ref))
    throw new UsageError(`'${name}' is not a valid tag name`);
  return ref;
}

export async function runTag(io: CommandIo, args: string[], options: TagOptions): Promise<void> {
  const repo = await openRepository(io);
  const annotated = options.annotate || options.message !== undefined;
  if (options.delete) {
    if (options.list || annotated) throw new UsageError('-d cannot be combined with -l, -a or -m');
    return deleteTags(io, repo, args);
  }
  if (options.list || options.json || args.length === 0) {
    if (annotated) throw new UsageError('-a/-m need a tag name, and cannot be combined with -l');
    return listTags(io, repo, args, options.json ?? false);
  }
  if (args.length > 2)
    throw new UsageError('too many arguments', { hint: "use 'mediagit tag <name> [<commit>]'" });
  const [name, rev] = args as [string, string | undefined];
  const ref = tagRef(name);
  const existing = await repo.readRef(ref);
  if (existing !== null && !options.force)
    throw new AlreadyExistsError(`tag '${name}' already exists`, { hint: 'use -f to replace it' });
  if (rev === undefined && (await repo.readHead()).oid === null)
    throw new UsageError(`cannot tag '${name}': the current branch has no commits yet`);
  const commit = await resolveCommit(repo, rev ?? 'HEAD');
  let target: Oid = commit;
  if (annotated) {
    if (options.message === undefined)
      throw new UsageError('an annotated tag needs a message', {
        hint: `use 'mediagit tag -a ${name} -m "message"'`,
      });
    const message = cleanMessage(options.message);
    if (message === '') throw new UsageError('aborting: the tag message is empty');
    target = (
      await repo.odb.writeTag({
        object: commit,
        objectKind: 'commit',
        name,
        tagger: await repo.identity(),
        message,
      })
    ).oid;
  }
  await repo.updateRef(ref, target, existing);
  if (existing !== null && existing !== target)
    io.out(`Updated tag '${name}' (was ${shortOid(existing)})`);
}

async function listTags(
  io: CommandIo,
  repo: Repository,
  patterns: string[],
  json: boolean,
): Promise<void> {
  const refs = await repo.store.listRefs(TAGS);
  const matchers = patterns.map((p) => picomatch(p, { dot: true }));
  const names = [...refs.keys()]
    .map((r) => r.slice(TAGS.length))
    .filter((n) => matchers.length === 0 || matchers.some((m) => m(n)))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (!json) {
    for (const name of names) io.out(name);
    return;
  }
  const list: object[] = [];
  for (const name of names) {
    const oid = refs.get(TAGS + name)!.oid;
    if ((await repo.odb.kindOf(oid)) === 'tag') {
      const tag = await repo.odb.readTag(oid);
      list.push({ name, oid, commit: tag.object, annotated: true, message: tag.message });
    } else list.push({ name, oid, commit: oid, annotated: false });
  }
  io.out(JSON.stringify(list, null, 2));
}

async function deleteTags(io: CommandIo, repo: Repository, names: string[]): Promise<void> {
  if (names.length === 0) throw new UsageError('tag name required');
  for (const name of names) {
    const ref = tagRef(name);
    const oid = await repo.readRef(ref);
    if (oid === null) throw new UsageError(`tag '${name}' not found`);
    await repo.updateRef(ref, null, oid);
    io.out(`Deleted tag '${name}' (was ${shortOid(oid)})`);
  }
}
