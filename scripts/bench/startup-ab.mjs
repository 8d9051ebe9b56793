#!/usr/bin/env node
// Interleaved A/B of the commands whose cost on a small tree is mostly process start-up:
// add + commit of corpus v1 (wall and CPU), `status` in the committed repository, and a push of v1
// to a folder remote; restic backup of the same tree in every round for the ratio the bench reports.
//
//   node scripts/bench/startup-ab.mjs --a <checkout A> [--b <checkout B>] [--rounds 6]
//        [--profile small|full] [--no-restic]
//
// A and B are folders holding bin/mediagit.js and a built dist/ (A: a copy of main's, taken before
// the change). Rounds alternate AB, BA, ...; each figure is the median of the per-round B/A ratios
// with their range. CPU is user+sys of the process and its threads (wait4's rusage).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { timedRun } from './measure.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const A = path.resolve(opt('--a', ''));
const B = path.resolve(opt('--b', root));
const rounds = Number(opt('--rounds', '6'));
const profile = opt('--profile', 'small');
const withRestic = !args.includes('--no-restic');
if (!existsSync(path.join(A, 'bin', 'mediagit.js'))) {
  console.error('usage: startup-ab.mjs --a <folder with bin/mediagit.js> [--b <folder>] ...');
  process.exit(2);
}
const corpus = path.join(root, '.cache', 'bench', `corpus-${profile}-v1`);
if (!existsSync(corpus)) {
  console.error(`no ${corpus}: run the bench once (or copy its .cache/bench) first`);
  process.exit(2);
}
const work = path.join(root, '.cache', 'bench', `startup-ab-${profile}`);
const env = {
  ...process.env,
  MEDIAGIT_AUTHOR_NAME: 'Bench',
  MEDIAGIT_AUTHOR_EMAIL: 'bench@example.com',
  RESTIC_PASSWORD: 'bench passphrase',
};

/** Runs one command after a `sync` (as the bench does); wall and CPU seconds. */
const timed = (cmd, cmdArgs, cwd) => timedRun(cwd, env, cmd, cmdArgs);

const copy = (to) => {
  rmSync(to, { recursive: true, force: true });
  mkdirSync(path.dirname(to), { recursive: true });
  spawnSync('cp', ['-a', `${corpus}/.`, to]);
  rmSync(path.join(to, '.complete'), { force: true });
};

const median = (v) => {
  const s = [...v].sort((x, y) => x - y);
  const m = (s.length - 1) / 2;
  return (s[Math.floor(m)] + s[Math.ceil(m)]) / 2;
};
function mediagit(variant, tag) {
  const bin = path.join(variant, 'bin', 'mediagit.js');
  const mg = (cwd, ...a) => timed(process.execPath, [bin, ...a], cwd);
  const repo = path.join(work, `repo-${tag}`);
  const remote = path.join(work, `remote-${tag}`);
  copy(repo);
  rmSync(remote, { recursive: true, force: true });
  mg(repo, 'init', '-q');
  const add = mg(repo, 'add', '.');
  const commit = mg(repo, 'commit', '-q', '-m', 'v1');
  // Five in a row, the median kept: one status is a ~70 ms process, within the machine's jitter.
  const runs = Array.from({ length: 5 }, () => mg(repo, 'status', '--porcelain'));
  const status = { wall: median(runs.map((r) => r.wall)), cpu: median(runs.map((r) => r.cpu)) };
  mg(repo, 'remote', 'add', 'origin', remote);
  const push = mg(repo, 'push', '-q', '--create');
  return {
    'add+commit wall': add.wall + commit.wall,
    'add+commit cpu': add.cpu + commit.cpu,
    'add wall': add.wall,
    'add cpu': add.cpu,
    'commit wall': commit.wall,
    'commit cpu': commit.cpu,
    'status wall': status.wall,
    'status cpu': status.cpu,
    'push wall': push.wall,
    'push cpu': push.cpu,
  };
}

function restic() {
  const tree = path.join(work, 'restic-tree');
  const repo = path.join(work, 'restic-repo');
  copy(tree);
  rmSync(repo, { recursive: true, force: true });
  const r = (...a) => timed('restic', ['--no-cache', '-q', '-r', repo, ...a], work);
  r('init');
  return r('backup', '--host', 'bench', tree);
}

const fmt = (v) => v.toFixed(3);

const results = { A: [], B: [], restic: [] };
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
  for (const v of order) results[v].push(mediagit(v === 'A' ? A : B, v));
  if (withRestic) results.restic.push(restic());
  const load = spawnSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).stdout.split(' ')[0];
  const a = results.A.at(-1);
  const b = results.B.at(-1);
  console.error(
    `round ${round + 1}/${rounds} (${order.join('')}, load ${load}): add+commit A ${fmt(a['add+commit wall'])} B ${fmt(b['add+commit wall'])}` +
      (withRestic ? `, restic ${fmt(results.restic.at(-1).wall)}` : ''),
  );
}

const lines = [`${profile} corpus, ${rounds} rounds, B = ${B}, A = ${A}`];
lines.push('figure                 A median   B median   B/A median [min-max]');
for (const key of Object.keys(results.A[0])) {
  const a = results.A.map((r) => r[key]);
  const b = results.B.map((r) => r[key]);
  const ratios = a.map((x, i) => b[i] / x);
  lines.push(
    `${key.padEnd(22)} ${fmt(median(a)).padStart(8)}   ${fmt(median(b)).padStart(8)}   ${fmt(median(ratios))} [${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))}]`,
  );
}
if (withRestic) {
  lines.push('÷ restic backup (same round)   A median [min-max]        B median [min-max]');
  for (const [key, rk] of [
    ['add+commit wall', 'wall'],
    ['add+commit cpu', 'cpu'],
  ]) {
    const of = (v) => results[v].map((r, i) => r[key] / results.restic[i][rk]);
    const show = (x) => `${fmt(median(x))} [${fmt(Math.min(...x))}-${fmt(Math.max(...x))}]`;
    lines.push(`${key.padEnd(22)}   ${show(of('A'))}   ${show(of('B'))}`);
  }
  const rw = results.restic.map((r) => r.wall);
  const rc = results.restic.map((r) => r.cpu);
  lines.push(`restic backup: wall ${fmt(median(rw))}, cpu ${fmt(median(rc))}`);
}
console.log(lines.join('\n'));
