#!/usr/bin/env node
// One push of v1 through a fresh `mediagit server` (local-folder storage), taken apart: CPU per
// thread of the server (from /proc/<pid>/task over the push) and of the client (at its exit),
// the client's and server's request timelines (diagnostics_channel, ms from each process's
// start; trace-preload.mjs), and the same for the sink floor's push. The trace files (also the
// processes' GC pauses, and `hr`, the preload's monotonic µs, to line CPU profiles up with the
// requests) stay in the bench work folder. `--cpu-prof <dir>` also writes CPU profiles of client
// and server (all threads); `--server-node-options` passes Node options to the server. Repeats
// `--rounds` times, a fresh server each round.
//
//   node scripts/bench/server-trace.mjs [--bin path/to/bin/mediagit.js] [--rounds 3] [--cpu-prof <dir>]
//                                       [--server-node-options "..."] [--json <file>]
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { corpus } from './corpus.mjs';
import { cli, copyTree, env as benchEnv, opt, root, threadCpuOf, work } from './measure.mjs';
import { objectList, startServer, startSink } from './network.mjs';

const bin = path.resolve(opt('--bin', cli));
const rounds = Number(opt('--rounds', '3'));
const prof = opt('--cpu-prof', null);
const preload = path.join(root, 'scripts/bench/trace-preload.mjs');

/**
 * CPU per thread over an interval, user+sys and (under "<name> sys") sys alone: the main thread as
 * `main`, worker threads (the verification threads) one by one, other threads of one name summed.
 */
function diff(pid, before, after) {
  const by = {};
  let workers = 0;
  for (const [tid, { comm, cpu, sys }] of after) {
    const name =
      tid === String(pid) ? 'main' : comm === 'WorkerThread' ? `worker ${++workers}` : comm;
    by[name] = (by[name] ?? 0) + cpu - (before.get(tid)?.cpu ?? 0);
    by[`${name} sys`] = (by[`${name} sys`] ?? 0) + sys - (before.get(tid)?.sys ?? 0);
  }
  return by;
}
const total = (o) =>
  Object.entries(o)
    .filter(([k]) => !k.endsWith(' sys'))
    .reduce((a, [, v]) => a + v, 0);
const fmt = (o) =>
  Object.entries(o)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ');

function run(cmd, args, cwd, env) {
  const started = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'cpu %U %S', cmd, ...args], {
    cwd,
    env: { ...process.env, ...benchEnv, ...env },
    encoding: 'utf8',
  });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  const m = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  return { wall, user: Number(m[1]), sys: Number(m[2]) };
}

function timeline(file) {
  const d = JSON.parse(readFileSync(file, 'utf8'));
  const reqs = new Map();
  for (const e of d.ev) {
    if (e.e === 'req') reqs.set(e.id, { m: e.m, p: e.p, start: e.t });
    else if (e.e === 'sent') reqs.get(e.id).sent = e.t;
    else if (e.e === 'head') Object.assign(reqs.get(e.id), { head: e.t, s: e.s });
    else if (e.e === 'end') reqs.get(e.id).end = e.t;
  }
  return { ...d, reqs: [...reqs.values()] };
}

const v1 = await corpus(1);
const repo = path.join(work, 'server-trace-repo');
copyTree(v1, repo);
const mg = (...a) => run(process.execPath, [bin, ...a], repo, {});
mg('init', '-q');
mg('add', '.');
mg('commit', '-q', '-m', 'v1');
const list = objectList(repo, 'server-trace');
const all = [];
for (let round = 0; round < rounds; round++) {
  const sopts = [
    '--import',
    preload,
    ...(opt('--server-node-options', '') || '').split(' ').filter(Boolean),
  ];
  if (prof) sopts.push('--cpu-prof', `--cpu-prof-dir=${path.join(prof, `server-${round}`)}`);
  const strace = path.join(work, `server-trace-s-${round}.json`);
  const server = await startServer('trace', null, {
    bin,
    tokenRepo: '*',
    serverEnv: { NODE_OPTIONS: sopts.join(' '), TRACE_OUT: strace },
  });
  await new Promise((r) => setTimeout(r, 1500)); // verification threads loaded and idle
  const name = `t${round}`;
  mg('remote', 'add', name, server.url.replace(/\/bench$/, `/r${round}`));
  const ctrace = path.join(work, `server-trace-c-${round}.json`);
  const copts = ['--import', preload];
  if (prof) copts.push('--cpu-prof', `--cpu-prof-dir=${path.join(prof, `client-${round}`)}`);
  const before = threadCpuOf(server.pid);
  const t = run(process.execPath, [...copts, bin, 'push', '-q', name, 'main'], repo, {
    MEDIAGIT_TOKEN: server.token,
    TRACE_OUT: ctrace,
  });
  const serverThreads = diff(server.pid, before, threadCpuOf(server.pid));
  await server.stop();
  const c = timeline(ctrace);
  // sink
  const sink = await startSink('trace');
  const sb = threadCpuOf(sink.pid);
  const st = run(
    process.execPath,
    [path.join(root, 'scripts/bench/sink.mjs'), 'push', sink.url, list.from, list.file],
    repo,
    {},
  );
  const sinkServer = diff(sink.pid, sb, threadCpuOf(sink.pid));
  await sink.stop();
  const ct = Object.fromEntries(c.threads.map((x) => [x.comm + ':' + x.tid, x.u + x.s]));
  const r = { round, push: t, serverThreads, sink: st, sinkServer, client: c, clientThreads: ct };
  all.push(r);
  const reqs = c.reqs;
  console.log(
    `round ${round + 1}: push wall ${t.wall.toFixed(3)} client ${(t.user + t.sys).toFixed(2)} (u ${t.user} s ${t.sys}); server ${fmt(serverThreads)}; all ${total(serverThreads).toFixed(2)}`,
  );
  console.log(
    `  sink wall ${st.wall.toFixed(3)} client ${(st.user + st.sys).toFixed(2)}; sink server ${fmt(sinkServer)}; all ${total(sinkServer).toFixed(2)}`,
  );
  console.log(`  client threads: ${fmt(ct)}`);
  console.log(`  client timeline (ms from process start): preload ${c.ev[0].t}, exit ${c.exitT}`);
  for (const q of reqs)
    console.log(
      `    ${q.m.padEnd(5)} ${q.p.slice(0, 60).padEnd(60)} start ${q.start} sent ${q.sent ?? '-'} head ${q.head ?? '-'} end ${q.end ?? '-'} ${q.s ?? ''}`,
    );
}
if (opt('--json', null)) writeFileSync(opt('--json', null), JSON.stringify(all, null, 1));
