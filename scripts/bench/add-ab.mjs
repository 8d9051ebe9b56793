#!/usr/bin/env node
// Interleaved A/B of the local rows: add + commit of corpus v1, then of the v2 edits applied in
// place (as the bench does), with wall and CPU of each command and the bytes `.mediagit` holds
// after each version; optionally restic's backup of v1 in the same round, for the bench's ratio.
//
//   node scripts/bench/add-ab.mjs --a <checkout A> [--b <checkout B>] [--rounds 6]
//        [--profile small|full] [--restic] [--cold]
//
// A and B are folders holding bin/mediagit.js and a built dist/ (A: a copy of main's, taken before
// the change). Rounds alternate AB, BA, ...; each figure is the median of the per-round B/A ratios
// with their range. CPU is user+sys of the command and its threads (wait4); sys is shown apart
// because the kernel's share (page cache, file creation, fsync) moves with the machine's state.
// Each add and restic's backup start from warm page cache, as in the bench (warmPageCache in
// measure.mjs: this VM hands memory freed a while ago back to its host, and writing into it then
// costs several times the kernel time); --cold leaves that out.
import { existsSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeCorpus } from './corpus.mjs';
import {
  cache,
  copyTree,
  duBytes,
  fresh,
  median,
  opt,
  flag,
  PASS,
  profile,
  root,
  timedRun,
  warmPageCache,
  which,
  work,
} from './measure.mjs';

const A = path.resolve(opt('--a', ''));
const B = path.resolve(opt('--b', root));
const rounds = Number(opt('--rounds', '6'));
const restic = flag('--restic') ? which('restic') : null;
const cold = flag('--cold');
if (!existsSync(path.join(A, 'bin', 'mediagit.js'))) {
  console.error('usage: add-ab.mjs --a <folder with bin/mediagit.js> [--b <folder>] ...');
  process.exit(2);
}
const v1 = path.join(cache, `corpus-${profile}-v1`);
if (!existsSync(v1)) {
  console.error(`no ${v1}: run the bench once (or copy its .cache/bench) first`);
  process.exit(2);
}

const corpusBytes = duBytes(v1);
const warm = () => {
  if (!cold) warmPageCache(corpusBytes);
};

async function mediagit(variant, tag) {
  const run = (cwd, ...a) =>
    timedRun(cwd, {}, process.execPath, [path.join(variant, 'bin', 'mediagit.js'), ...a]);
  const repo = path.join(work, `add-ab-${tag}`);
  copyTree(v1, repo);
  run(repo, 'init', '-q');
  warm();
  const add1 = run(repo, 'add', '.');
  const commit1 = run(repo, 'commit', '-q', '-m', 'v1');
  const stored1 = duBytes(path.join(repo, '.mediagit'));
  await makeCorpus(repo, 2, profile);
  warm();
  const add2 = run(repo, 'add', '.');
  const commit2 = run(repo, 'commit', '-q', '-m', 'v2');
  const stored2 = duBytes(path.join(repo, '.mediagit'));
  rmSync(repo, { recursive: true, force: true });
  return {
    'add+commit v1 wall': add1.wall + commit1.wall,
    'add+commit v1 cpu': add1.cpu + commit1.cpu,
    'add v1 wall': add1.wall,
    'add v1 cpu': add1.cpu,
    'add v1 sys': add1.sys,
    'commit v1 cpu': commit1.cpu,
    'add+commit v2 wall': add2.wall + commit2.wall,
    'add+commit v2 cpu': add2.cpu + commit2.cpu,
    'stored after v1 MB': stored1 / 1e6,
    'stored after v2 MB': stored2 / 1e6,
  };
}

function resticBackup() {
  const tree = path.join(work, 'add-ab-restic-tree');
  const repo = fresh(path.join(work, 'add-ab-restic-repo'));
  copyTree(v1, tree);
  const env = { RESTIC_PASSWORD: PASS, RESTIC_REPOSITORY: repo };
  timedRun(work, env, restic, ['--no-cache', '-q', 'init']);
  warm();
  const r = timedRun(work, env, restic, ['--no-cache', '-q', 'backup', '--host', 'bench', tree]);
  rmSync(tree, { recursive: true, force: true });
  rmSync(repo, { recursive: true, force: true });
  return r;
}

const fmt = (v) => v.toFixed(3);
const range = (x) => `${fmt(median(x))} [${fmt(Math.min(...x))}-${fmt(Math.max(...x))}]`;
const results = { A: [], B: [], restic: [] };
const loads = [];
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
  for (const v of order) results[v].push(await mediagit(v === 'A' ? A : B, v));
  if (restic) results.restic.push(resticBackup());
  loads.push(fmt(os.loadavg()[0]));
  const a = results.A.at(-1)['add+commit v1 wall'];
  const b = results.B.at(-1)['add+commit v1 wall'];
  console.error(
    `round ${round + 1}/${rounds} (${order.join('')}, load ${loads.at(-1)}): A ${fmt(a)} B ${fmt(b)}`,
  );
}

const lines = [
  `${profile} corpus, ${rounds} rounds, loads ${loads.join(' ')}`,
  `A = ${A}`,
  `B = ${B}`,
];
lines.push('figure                  A median   B median   B/A median [min-max]');
for (const key of Object.keys(results.A[0])) {
  const a = results.A.map((r) => r[key]);
  const b = results.B.map((r) => r[key]);
  lines.push(
    `${key.padEnd(23)} ${fmt(median(a)).padStart(8)}   ${fmt(median(b)).padStart(8)}   ${range(a.map((x, i) => b[i] / x))}`,
  );
}
if (restic) {
  lines.push('÷ restic backup v1 (same round)   A                        B');
  for (const [key, rk] of [
    ['add+commit v1 wall', 'wall'],
    ['add+commit v1 cpu', 'cpu'],
  ]) {
    const of = (v) => results[v].map((r, i) => r[key] / results.restic[i][rk]);
    lines.push(`${key.padEnd(23)}   ${range(of('A'))}   ${range(of('B'))}`);
  }
  lines.push(
    `restic backup v1: wall ${fmt(median(results.restic.map((r) => r.wall)))}, cpu ${fmt(median(results.restic.map((r) => r.cpu)))}`,
  );
}
console.log(lines.join('\n'));
