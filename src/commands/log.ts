import { UsageError } from '../errors/index.js';
import { shortOid, type Commit, type Oid, type Signature } from '../objects/index.js';
import { Repository, resolveCommit, walkHistory } from '../repo/index.js';
import type { CommandIo } from './context.js';
import { openRepository } from './context.js';

export interface LogOptions {
  oneline?: boolean;
  maxCount?: string;
  json?: boolean;
  firstParent?: boolean;
}

export function isoDate(sig: Signature): string {
  return new Date(sig.time * 1000).toISOString().replace('.000Z', 'Z');
}

/** git's default date format: "Wed Nov 25 20:00:00 2026 +0100", in the signature's own zone. */
export function gitDate(sig: Signature): string {
  const local = new Date((sig.time + sig.tzOffset * 60) * 1000);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = [
    'Jan',
    'Feb',
    'Mar',
    'Apr',
    'May',
    'Jun',
    'Jul',
    'Aug',
    'Sep',
    'Oct',
    'Nov',
    'Dec',
  ];
  const pad = (n: number): string => String(n).padStart(2, '0');
  const sign = sig.tzOffset < 0 ? '-' : '+';
  const tz = `${sign}${pad(Math.floor(Math.abs(sig.tzOffset) / 60))}${pad(Math.abs(sig.tzOffset) % 60)}`;
  return `${days[local.getUTCDay()]} ${months[local.getUTCMonth()]} ${local.getUTCDate()} ${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())} ${local.getUTCFullYear()} ${tz}`;
}

export function commitJson(oid: Oid, commit: Commit): object {
  return {
    oid,
    tree: commit.tree,
    parents: commit.parents,
    author: { name: commit.author.name, email: commit.author.email, date: isoDate(commit.author) },
    committer: {
      name: commit.committer.name,
      email: commit.committer.email,
      date: isoDate(commit.committer),
    },
    date: isoDate(commit.author),
    message: commit.message,
  };
}

/** Ref decorations per commit, as in `git log --decorate`: "HEAD -> main, tag: v1". */
export async function decorations(repo: Repository): Promise<Map<Oid, string[]>> {
  const map = new Map<Oid, string[]>();
  const add = (oid: Oid, label: string): void => {
    const list = map.get(oid) ?? [];
    list.push(label);
    map.set(oid, list);
  };
  const head = await repo.readHead();
  const refs = await repo.store.listRefs('refs/');
  const branchOfHead = head.ref;
  if (head.oid && !branchOfHead) add(head.oid, 'HEAD');
  for (const [name, value] of refs) {
    if (name.startsWith('refs/heads/'))
      add(value.oid, name === branchOfHead ? `HEAD -> ${name.slice(11)}` : name.slice(11));
    else if (name.startsWith('refs/tags/')) {
      let target = value.oid;
      if ((await repo.odb.kindOf(target)) === 'tag')
        target = (await repo.odb.readTag(target)).object;
      add(target, `tag: ${name.slice(10)}`);
    } else if (name.startsWith('refs/remotes/')) add(value.oid, name.slice(13));
  }
  for (const list of map.values())
    list.sort((a, b) => (a.startsWith('HEAD') ? -1 : b.startsWith('HEAD') ? 1 : 0));
  return map;
}

export async function runLog(io: CommandIo, revs: string[], options: LogOptions): Promise<void> {
  const repo = await openRepository(io);
  let limit = Infinity;
  if (options.maxCount !== undefined) {
    limit = Number(options.maxCount);
    if (!Number.isInteger(limit) || limit < 0)
      throw new UsageError(`-n needs a non-negative number, not '${options.maxCount}'`);
  }
  const starts: Oid[] = [];
  if (revs.length === 0) {
    const head = await repo.readHead();
    if (head.oid === null) {
      if (options.json) io.out('[]');
      else
        throw new UsageError(
          `your current branch '${head.ref?.replace(/^refs\/heads\//, '') ?? 'HEAD'}' does not have any commits yet`,
        );
      return;
    }
    starts.push(head.oid);
  } else for (const rev of revs) starts.push(await resolveCommit(repo, rev));
  const decorate = options.json ? new Map<Oid, string[]>() : await decorations(repo);
  const json: object[] = [];
  let count = 0;
  for await (const { oid, commit } of walkHistory(repo, starts, {
    firstParent: options.firstParent ?? false,
  })) {
    if (count++ >= limit) break;
    if (options.json) {
      json.push(commitJson(oid, commit));
      continue;
    }
    const labels = decorate.get(oid);
    const deco = labels ? ` (${labels.join(', ')})` : '';
    if (options.oneline) {
      io.out(`${shortOid(oid)}${deco} ${commit.message.split('\n')[0]}`);
      continue;
    }
    io.out(`commit ${oid}${deco}`);
    if (commit.parents.length > 1) io.out(`Merge: ${commit.parents.map(shortOid).join(' ')}`);
    io.out(`Author: ${commit.author.name} <${commit.author.email}>`);
    io.out(`Date:   ${gitDate(commit.author)}`);
    io.out('');
    for (const line of commit.message.replace(/\n$/, '').split('\n')) io.out(`    ${line}`);
    io.out('');
  }
  if (options.json) io.out(JSON.stringify(json, null, 2));
}
