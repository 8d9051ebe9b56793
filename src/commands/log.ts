import { UsageError } from '../errors/index.js';
import { shortOid, type Oid } from '../objects/index.js';
import { resolveCommit, walkHistory } from '../repo/index.js';
import type { CommandIo } from './context.js';
import { openRepository } from './context.js';
import { commitJson, decorations, gitDate } from './shared/commits.js';

export interface LogOptions {
  oneline?: boolean;
  maxCount?: string;
  json?: boolean;
  firstParent?: boolean;
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
