#!/usr/bin/env node
// Timelines of an incremental push and a pull through the emulated link:
//
//   node scripts/bench/link-trace.mjs [--profile small|full] [--rounds 1] [--link 200mbit,40ms]
//        [--a <tree>] [--b <tree>] [--quiet] [--json <file>]
//
// Each round, on a fresh `mediagit server` (local storage) behind a link emulator: a client
// pushes v1 through the link, another clones it (untimed, straight to the server), the first
// pushes v2 through the link (traced), the second pulls it through the link (traced). Traced
// runs load scripts/bench/link-trace-preload.mjs, which records each HTTP request's start, answer
// head and end, each connection's connect and the bytes received per 10 ms, all in ms since the
// process started. Printed per run: the wall time and the link time, the process's exit, each
// request, the number of SEQUENTIAL round trips (the longest chain of requests each sent after
// the one before had ended), and the stretch after the last byte arrived. With --a, each round
// runs the whole sequence once per tree (A's, then B's, the order alternating by round; the
// server always from A's tree), and the end prints B ÷ A per round for push and pull, wall and
// CPU, as medians [min–max]; --quiet leaves the per-request lines out.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { corpus, makeCorpus } from './corpus.mjs';
import {
  copyTree,
  duBytes,
  flag,
  fresh,
  median,
  opt,
  profile,
  root,
  timedRun,
  warmPageCache,
  work,
} from './measure.mjs';
import { linkSeconds, parseLinkSpec, startLink, startServer } from './network.mjs';

const rounds = Math.max(1, Number(opt('--rounds', '1')) || 1);
const spec = opt('--link', '200mbit,40ms');
const treeA = opt('--a', null);
const treeB = path.resolve(opt('--b', root));
const quiet = flag('--quiet');
const jsonOut = opt('--json', null);
const cliOf = (tree) => path.join(path.resolve(tree), 'bin', 'mediagit.js');
const serverCli = cliOf(treeA ?? treeB);
const preload = path.join(root, 'scripts/bench/link-trace-preload.mjs');
const parsed = parseLinkSpec(spec);

/** The longest chain of requests each started after the previous one ended. */
export function sequentialRoundTrips(requests) {
  const done = requests.filter((r) => r.end !== null).sort((a, b) => a.start - b.start);
  const depth = done.map(() => 1);
  for (let i = 0; i < done.length; i++)
    for (let j = 0; j < i; j++)
      if (done[j].end <= done[i].start) depth[i] = Math.max(depth[i], depth[j] + 1);
  return Math.max(0, ...depth);
}

function describe(name, run, trace) {
  const lines = [];
  if (quiet) {
    lines.push(
      `${name}: wall ${(run.wall * 1000).toFixed(0)} ms, cpu ${run.cpu.toFixed(2)} s, ÷ link ${(run.wall / run.linkSecs).toFixed(2)}, ` +
        `${sequentialRoundTrips(trace.requests)} sequential round trips, ${trace.connections.length} connections, ` +
        `last byte → exit ${(trace.marks.exit - (trace.received.at(-1)?.[0] ?? 0)).toFixed(0)} ms`,
    );
    return lines.join('\n');
  }
  const rtt = sequentialRoundTrips(trace.requests);
  const bytes = trace.received;
  const first = bytes[0]?.[0];
  const last = bytes.at(-1)?.[0];
  lines.push(
    `${name}: wall ${(run.wall * 1000).toFixed(0)} ms (process exit at ${trace.marks.exit} ms), cpu ${run.cpu.toFixed(2)} s, ` +
      `link time ${(run.linkSecs * 1000).toFixed(0)} ms (÷ ${(run.wall / run.linkSecs).toFixed(2)}), ` +
      `${trace.requests.length} requests, ${rtt} sequential round trips, ${trace.connections.length} connections`,
  );
  lines.push(`  marks ${JSON.stringify(trace.marks)}`);
  for (const c of trace.connections)
    lines.push(`  connect   asked ${c.asked}  up ${c.connected ?? '-'}`);
  const shown = trace.requests.slice(0, 12);
  for (const r of shown)
    lines.push(
      `  ${r.method.padEnd(5)} ${r.path.slice(0, 60).padEnd(60)} ${String(r.start).padStart(7)} → head ${String(r.head ?? '-').padStart(7)} end ${String(r.end ?? '-').padStart(7)}`,
    );
  if (trace.requests.length > shown.length) {
    const rest = trace.requests.slice(shown.length);
    lines.push(
      `  … ${rest.length} more, started ${Math.min(...rest.map((r) => r.start))}–${Math.max(...rest.map((r) => r.start))}, last end ${Math.max(...rest.map((r) => r.end ?? 0))}`,
    );
  }
  if (first !== undefined) {
    const total = bytes.reduce((n, [, b]) => n + b, 0);
    lines.push(
      `  bytes received ${(total / 1e6).toFixed(2)} MB, first at ${first} ms, last at ${last} ms; ` +
        `after the last byte: ${(trace.marks.exit - last).toFixed(0)} ms to exit`,
    );
    // Idle stretches of the receiving side ≥ 30 ms between the first and the last byte.
    const idle = [];
    for (let i = 1; i < bytes.length; i++)
      if (bytes[i][0] - bytes[i - 1][0] >= 30) idle.push(`${bytes[i - 1][0]}–${bytes[i][0]}`);
    if (idle.length) lines.push(`  receive gaps ≥ 30 ms: ${idle.join(', ')}`);
  }
  return lines.join('\n');
}

async function round(r, v1, warm, cli) {
  const server = await startServer(`trace-r${r}`, null, { bin: serverCli });
  const link = await startLink(server.base, spec);
  const tok = { MEDIAGIT_TOKEN: server.token };
  const mg = (cwd, ...a) => timedRun(cwd, tok, process.execPath, [cli, ...a]);
  const traced = async (name, cwd, ...a) => {
    const file = path.join(work, `trace-${name}.json`);
    const before = await link.counters();
    const run = timedRun(cwd, { ...tok, MEDIAGIT_TRACE_FILE: file }, process.execPath, [
      '--import',
      preload,
      cli,
      ...a,
    ]);
    const after = await link.counters();
    const bytes = Math.max(after.up - before.up, after.down - before.down);
    const trace = JSON.parse(readFileSync(file, 'utf8'));
    return { run: { ...run, linkSecs: linkSeconds(parsed, bytes, 1) }, trace };
  };
  try {
    const artist = path.join(work, 'trace-artist');
    copyTree(v1, artist);
    mg(artist, 'init', '-q');
    mg(artist, 'add', '.');
    mg(artist, 'commit', '-q', '-m', 'v1');
    mg(artist, 'remote', 'add', 'origin', `${link.url}/bench`);
    mg(artist, 'push', '-q');
    const puller = fresh(path.join(work, 'trace-puller'));
    mg(work, 'clone', '-q', `${server.base}/bench`, puller);
    mg(puller, 'remote', 'set-url', 'origin', `${link.url}/bench`);
    await makeCorpus(artist, 2, profile);
    mg(artist, 'add', '.');
    mg(artist, 'commit', '-q', '-m', 'v2');
    const push = await traced('push', artist, 'push', '-q');
    warmPageCache(warm);
    const pull = await traced('pull', puller, 'pull', '-q');
    return { push, pull };
  } finally {
    await link.stop();
    await server.stop();
  }
}

const v1 = await corpus(1);
const warm = duBytes(await corpus(2));
const contenders = [...(treeA ? [['A', cliOf(treeA)]] : []), ['B', cliOf(treeB)]];
const all = [];
for (let r = 0; r < rounds; r++) {
  const res = {};
  const order = r % 2 === 0 ? contenders : [...contenders].reverse();
  for (const [name, cli] of order) res[name] = await round(r, v1, warm, cli);
  all.push(res);
  for (const [name] of contenders) {
    console.log(`round ${r + 1} ${name} (${profile}, ${spec})`);
    console.log(describe('push v2', res[name].push.run, res[name].push.trace));
    console.log(describe('pull v2', res[name].pull.run, res[name].pull.trace));
  }
  if (treeA)
    console.log(
      `round ${r + 1} B ÷ A: push wall ${(res.B.push.run.wall / res.A.push.run.wall).toFixed(2)} cpu ${(res.B.push.run.cpu / res.A.push.run.cpu).toFixed(2)}, ` +
        `pull wall ${(res.B.pull.run.wall / res.A.pull.run.wall).toFixed(2)} cpu ${(res.B.pull.run.cpu / res.A.pull.run.cpu).toFixed(2)}`,
    );
}
const stat = (values) =>
  `${median(values).toFixed(2)} [${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}]`;
console.log(`\n${profile}, ${spec}, ${rounds} rounds:`);
for (const [name] of contenders)
  for (const op of ['push', 'pull'])
    console.log(
      `${name} ${op} v2: wall ${stat(all.map((x) => x[name][op].run.wall))} s, cpu ${stat(all.map((x) => x[name][op].run.cpu))} s, ` +
        `÷ link time ${stat(all.map((x) => x[name][op].run.wall / x[name][op].run.linkSecs))}, ` +
        `sequential round trips ${stat(all.map((x) => sequentialRoundTrips(x[name][op].trace.requests)))}`,
    );
if (treeA)
  for (const op of ['push', 'pull'])
    console.log(
      `B ÷ A ${op} v2: wall ${stat(all.map((x) => x.B[op].run.wall / x.A[op].run.wall))}, cpu ${stat(all.map((x) => x.B[op].run.cpu / x.A[op].run.cpu))}`,
    );
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(all, null, 1));
