import { UsageError } from '../errors/index.js';
import { shortOid, type Oid } from '../objects/index.js';
import {
  HistoryGraph,
  commitTreeMap,
  diffMaps,
  followHistory,
  mergeBase,
  resolveCommit,
  topoOrder,
  walkHistory,
  type LogEntry,
} from '../repo/index.js';
import { openRepository, pathspecs, type CommandIo } from './context.js';
import { commitJson, decorations, gitDate } from './shared/commits.js';
import { expand, namedLines, parsePretty } from './shared/pretty.js';
import { splitRevsAndPaths } from './shared/revisions.js';
import { printChanges } from './shared/changes.js';

export interface LogOptions {
  oneline?: boolean;
  maxCount?: string;
  json?: boolean;
  firstParent?: boolean;
  follow?: boolean;
  /** --pretty[=<format>] (true: medium) and --format=<template>. */
  pretty?: string | boolean;
  format?: string;
  /** Draw the history graph left of the commits (implies git's topological order). */
  graph?: boolean;
  /** After each commit, its changes as `show --stat` prints them (renames as old => new). */
  stat?: boolean;
}

export async function runLog(
  io: CommandIo,
  args: string[],
  dashDash: string[] | undefined,
  options: LogOptions,
): Promise<void> {
  const repo = await openRepository(io);
  let limit = Infinity;
  if (options.maxCount !== undefined) limit = countOf(options.maxCount, '-n');
  // `-3` is git's shorthand for `-n 3`; the parser hands such words over as arguments.
  const words: string[] = [];
  for (const arg of args) {
    if (/^-\d+$/.test(arg)) limit = countOf(arg.slice(1), arg);
    else if (arg.startsWith('-')) throw new UsageError(`unknown option '${arg}'`);
    else words.push(arg);
  }
  const split =
    dashDash === undefined
      ? await splitRevsAndPaths(repo, io, words)
      : { revs: words, paths: dashDash };
  const starts: Oid[] = [];
  const exclude: Oid[] = [];
  for (const rev of split.revs) {
    if (rev.startsWith('^')) {
      exclude.push(await resolveCommit(repo, rev.slice(1)));
      continue;
    }
    const range = /^(.*?)(\.\.\.?)(.*)$/.exec(rev);
    if (!range) {
      starts.push(await resolveCommit(repo, rev));
      continue;
    }
    const [left, dots, right] = [range[1]!, range[2]!, range[3]!];
    if (right.includes('..')) throw new UsageError(`bad revision range '${rev}'`);
    const a = await resolveCommit(repo, left === '' ? 'HEAD' : left);
    const b = await resolveCommit(repo, right === '' ? 'HEAD' : right);
    if (dots === '..') {
      starts.push(b);
      exclude.push(a);
    } else {
      // a...b: what either side has that the other lacks, i.e. both minus their merge base.
      starts.push(a, b);
      const base = await mergeBase(repo, a, b);
      if (base !== null) exclude.push(base);
    }
  }
  if (starts.length === 0 && (split.revs.length === 0 || exclude.length > 0)) {
    const head = await repo.readHead();
    if (head.oid === null) {
      if (options.json) io.out('[]');
      else
        throw new UsageError(
          `your current branch '${head.ref?.replace(/^refs\/heads\//, '') ?? 'HEAD'}' does not have any commits yet`,
        );
      return;
    }
    if (split.revs.length === 0) starts.push(head.oid);
  }
  const pretty =
    options.format !== undefined
      ? parsePretty(options.format, true)
      : typeof options.pretty === 'string'
        ? parsePretty(options.pretty, false)
        : options.pretty
          ? parsePretty('medium', false)
          : undefined;
  const decorate = options.json ? new Map<Oid, string[]>() : await decorations(repo);
  const json: object[] = [];
  let count = 0;
  const paths = split.paths.length > 0 ? pathspecs(repo, io, split.paths) : undefined;
  if (options.follow && paths?.length !== 1)
    throw new UsageError('--follow takes exactly one file', {
      hint: 'mediagit log --follow -- <file>',
    });
  const walk =
    options.follow && paths
      ? followHistory(repo, starts, paths[0]!, {
          firstParent: options.firstParent ?? false,
          exclude,
        })
      : walkHistory(repo, starts, {
          firstParent: options.firstParent ?? false,
          exclude,
          ...(paths ? { paths } : {}),
        });
  const graph = options.graph && !options.json ? new HistoryGraph() : undefined;
  let entries: AsyncIterable<LogEntry> | LogEntry[] = walk;
  // Parents left out (by a range or paths) open no column: their line of history is not drawn.
  const shown = new Set<Oid>();
  if (graph) {
    // The topological order needs the whole history first; -n applies to its result.
    const all: LogEntry[] = [];
    for await (const entry of walk) all.push(entry);
    entries = topoOrder(all);
    for (const entry of all) shown.add(entry.oid);
  }
  const print = (lines: readonly string[], oid: Oid, parents: readonly Oid[]): void => {
    if (!graph) {
      for (const line of lines) io.out(line);
      return;
    }
    const row = graph.next(
      oid,
      parents.filter((p) => shown.has(p)),
    );
    const { opening } = row;
    lines.forEach((line, i) => {
      // As git does, a merge's opening columns sit beside its second line when there is one.
      const prefix =
        i === 0
          ? row.commit
          : i === 1 && opening !== undefined
            ? opening.padEnd(row.continuation.length)
            : row.continuation;
      io.out((prefix + line).trimEnd());
    });
    if (opening !== undefined && lines.length < 2) io.out(opening.trimEnd());
    for (const line of row.after) io.out(line.trimEnd());
  };
  for await (const { oid, commit } of entries) {
    if (count++ >= limit) break;
    if (options.json) {
      json.push(commitJson(oid, commit));
      continue;
    }
    const labels = decorate.get(oid);
    if (pretty?.kind === 'format') {
      print([expand(pretty.template, oid, commit, labels ?? [])], oid, commit.parents);
      continue;
    }
    if (pretty?.kind === 'named') {
      // git puts a blank line between entries of the multi-line formats, none after the last.
      if (pretty.name !== 'oneline' && count > 1) {
        if (graph) io.out(graph.padding().trimEnd());
        else io.out('');
      }
      print(namedLines(pretty.name, oid, commit, labels ?? []), oid, commit.parents);
      continue;
    }
    const deco = labels ? ` (${labels.join(', ')})` : '';
    if (options.oneline) {
      print([`${shortOid(oid)}${deco} ${commit.message.split('\n')[0]}`], oid, commit.parents);
      continue;
    }
    const lines = [`commit ${oid}${deco}`];
    if (commit.parents.length > 1) lines.push(`Merge: ${commit.parents.map(shortOid).join(' ')}`);
    lines.push(`Author: ${commit.author.name} <${commit.author.email}>`);
    lines.push(`Date:   ${gitDate(commit.author)}`);
    lines.push('');
    for (const line of commit.message.replace(/\n$/, '').split('\n')) lines.push(`    ${line}`);
    lines.push('');
    print(lines, oid, commit.parents);
    // As git: a merge lists no changes unless asked for a parent to compare with.
    if (options.stat && commit.parents.length < 2) {
      const before = await commitTreeMap(repo, commit.parents[0] ?? null);
      const after = await commitTreeMap(repo, oid);
      await printChanges(io, repo, diffMaps(before, after), 'stat');
      io.out('');
    }
  }
  if (options.json) io.out(JSON.stringify(json, null, 2));
}

function countOf(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`${flag} needs a non-negative number, not '${text}'`);
  return n;
}
