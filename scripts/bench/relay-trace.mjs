#!/usr/bin/env node
// A push of v1 through `mediagit server` storing into S3 (radosgw), taken apart beside a push of
// the same repository straight to S3: one time line per push with the client's requests and, for
// the relayed push, the server's own requests to the bucket (both processes traced with
// trace-preload.mjs; their clocks lined up by the preload's monotonic stamp), the bucket's idle
// stretches (no request of either process at it) from the first request to the last answer,
// the requests in flight at the bucket per 25 ms, and CPU per process (client at exit, server
// and radosgw + OSD from /proc over the push). Each round: a fresh bucket and a fresh server
// (its push is that server's first, as in the bench), the two pushes in alternating order.
//
//   node scripts/bench/relay-trace.mjs [--bin path/to/bin/mediagit.js] [--rounds 2] [--json <file>]
//                                      [--quiet] (summaries only, no request lists)
//                                      [--client-node-options "..."] [--server-node-options "..."]
//                                      (say --cpu-prof --cpu-prof-dir=<dir>)
//
// Needs MEDIAGIT_TEST_S3_* (test/servers/radosgw.sh env).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { corpus } from './corpus.mjs';
import {
  cli,
  copyTree,
  cpuSecondsOf,
  env as benchEnv,
  flag,
  opt,
  root,
  threadCpuOf,
  work,
} from './measure.mjs';
import { dropBucket, newBucket, s3Options, s3Settings, s3Toml, startServer } from './network.mjs';

const bin = path.resolve(opt('--bin', cli));
const rounds = Number(opt('--rounds', '2'));
const quiet = flag('--quiet');
const preload = path.join(root, 'scripts/bench/trace-preload.mjs');
const s3 = s3Settings();
if (s3 === null) throw new Error('MEDIAGIT_TEST_S3_* is not set (test/servers/radosgw.sh env)');

const gatewayPids = ['radosgw', 'ceph-osd'].map(
  (name) => spawnSync('pgrep', ['-o', '-x', name], { encoding: 'utf8' }).stdout.trim() || null,
);
const gatewayCpu = () =>
  gatewayPids.reduce((sum, pid) => sum + (pid === null ? 0 : cpuSecondsOf(pid)), 0);

function threadDiff(pid, before, after) {
  const by = {};
  let workers = 0;
  for (const [tid, { comm, cpu }] of after) {
    const name =
      tid === String(pid) ? 'main' : comm === 'WorkerThread' ? `worker ${++workers}` : comm;
    by[name] = (by[name] ?? 0) + cpu - (before.get(tid)?.cpu ?? 0);
  }
  return Object.entries(by)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ');
}

function run(args, cwd, extraEnv) {
  const started = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', 'cpu %U %S', process.execPath, ...args], {
    cwd,
    env: { ...process.env, ...benchEnv, ...extraEnv },
    encoding: 'utf8',
  });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  const m = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
  return { wall, cpu: Number(m[1]) + Number(m[2]), started };
}

/**
 * A trace file's requests on the monotonic clock (ms), as client (`out`: requests it sent) and
 * as server (`in`: requests it answered).
 */
function load(file) {
  const d = JSON.parse(readFileSync(file, 'utf8'));
  const pre = d.ev[0];
  const mono = (t) => pre.hr / 1000 + (t - pre.t);
  const out = new Map();
  const inc = new Map();
  const open = [];
  for (const e of d.ev) {
    if (e.e === 'req') out.set(e.id, { m: e.m, p: e.p, start: mono(e.t) });
    else if (e.e === 'sent') out.get(e.id).sent = mono(e.t);
    else if (e.e === 'head') Object.assign(out.get(e.id), { head: mono(e.t), s: e.s });
    else if (e.e === 'end') out.get(e.id).end = mono(e.t);
    else if (e.e === 'sreq') {
      const r = { m: e.m, p: e.p, start: mono(e.t) };
      inc.set(e.id, r);
      open.push(r);
    } else if (e.e === 'sbody') inc.get(e.id).body = mono(e.t);
    else if (e.e === 'sres') {
      const i =
        e.id !== undefined
          ? open.indexOf(inc.get(e.id))
          : open.findIndex((r) => r.m === e.m && r.p === e.p && r.res === undefined);
      if (i >= 0) Object.assign(open.splice(i, 1)[0], { res: mono(e.t), s: e.s });
    }
  }
  return {
    out: [...out.values()],
    in: [...inc.values()],
    exit: mono(d.exitT),
    ready: mono(pre.t),
    gcs: d.gcs.map((g) => ({ ...g, t: mono(g.t) })),
  };
}

/** Stretches of [from, to] with none of `reqs` in flight, longer than `min` ms. */
function idle(reqs, from, to, min = 5) {
  const spans = reqs.map((r) => [r.start, r.end ?? r.head ?? r.start]).sort((a, b) => a[0] - b[0]);
  const gaps = [];
  let at = from;
  for (const [s, e] of spans) {
    if (s - at > min) gaps.push([at, s]);
    at = Math.max(at, e);
  }
  if (to - at > min) gaps.push([at, to]);
  return gaps;
}

/** Requests in flight at the bucket, sampled every `step` ms from `from` to `to`. */
function inFlight(reqs, from, to, step = 25) {
  const out = [];
  for (let t = from; t < to; t += step) {
    let n = 0;
    for (const r of reqs) if (r.start <= t && (r.end ?? r.head ?? r.start) > t) n++;
    out.push(n);
  }
  return out;
}

const short = (p) =>
  p
    .replace(/\?.*$/, (q) => (q.length > 40 ? q.slice(0, 40) + '…' : q))
    .replace(/[0-9a-f]{64}/g, (h) => h.slice(0, 8));

function printRequests(label, reqs, zero) {
  console.log(`  ${label}:`);
  for (const r of reqs) {
    const f = (x) => (x === undefined ? '-' : (x - zero).toFixed(0));
    console.log(
      `    ${r.m.padEnd(5)} ${short(r.p).slice(0, 64).padEnd(64)} ${f(r.start)} sent ${f(r.sent)} head ${f(r.head)} end ${f(r.end)}${r.body !== undefined ? ` body ${f(r.body)} res ${f(r.res)}` : ''} ${r.s ?? ''}`,
    );
  }
}

function summary(label, zero, client, bucketReqs, extra) {
  const first = Math.min(...bucketReqs.map((r) => r.start));
  const last = Math.max(...bucketReqs.map((r) => r.end ?? r.head ?? r.start));
  const gaps = idle(bucketReqs, first, last);
  const puts = bucketReqs.filter((r) => r.m === 'PUT');
  const rel = (x) => (x - zero).toFixed(0);
  console.log(
    `${label}: wall ${extra.wall.toFixed(3)} s, client CPU ${extra.cpu.toFixed(2)}${extra.server !== undefined ? `, server CPU ${extra.server.toFixed(2)}` : ''}, radosgw+OSD CPU ${extra.gateway.toFixed(2)}`,
  );
  console.log(
    `  (ms from the client's spawn) Node ready ${rel(client.ready)}, first bucket request ${rel(first)}, first PUT ${rel(Math.min(...puts.map((r) => r.start)))}, last bucket answer ${rel(last)}, client exit ${rel(client.exit)}`,
  );
  const kinds = {};
  for (const r of bucketReqs) kinds[r.m] = (kinds[r.m] ?? 0) + 1;
  console.log(
    `  bucket requests ${bucketReqs.length} (${Object.entries(kinds)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}); idle between first and last ${gaps
      .reduce((a, [s, e]) => a + e - s, 0)
      .toFixed(0)} ms: ${gaps.map(([s, e]) => `${rel(s)}–${rel(e)}`).join(', ')}`,
  );
  console.log(
    `  in flight per 25 ms from the first request: ${inFlight(bucketReqs, first, last).join(' ')}`,
  );
  return { first: first - zero, last: last - zero, exit: client.exit - zero, idle: gaps };
}

const v1 = await corpus(1);
const repo = path.join(work, 'relay-trace-repo');
copyTree(v1, repo);
run([bin, 'init', '-q'], repo, {});
run([bin, 'add', '.'], repo, {});
run([bin, 'commit', '-q', '-m', 'v1'], repo, {});

const all = [];
for (let round = 0; round < rounds; round++) {
  const bucket = await newBucket(s3, `rt${round}`);
  const strace = path.join(work, `relay-trace-s-${round}.json`);
  const server = await startServer('relay-trace', s3Toml(s3, bucket, 'server'), {
    bin,
    tokenRepo: '*',
    serverEnv: {
      NODE_OPTIONS: `--import ${preload} ${opt('--server-node-options', '') ?? ''}`,
      TRACE_OUT: strace,
    },
  });
  await new Promise((r) => setTimeout(r, 1500)); // verification threads loaded and idle
  run([bin, 'remote', 'add', `rt${round}`, server.url.replace(/\/bench$/, `/r${round}`)], repo, {});
  run(
    [bin, 'remote', 'add', `d${round}`, `s3://${bucket}/direct`, ...s3Options(s3, s3.endpoint)],
    repo,
    {},
  );
  const result = { round };
  const order = round % 2 === 0 ? ['relay', 'direct'] : ['direct', 'relay'];
  for (const which of order) {
    const ctrace = path.join(work, `relay-trace-c-${which}-${round}.json`);
    const g0 = gatewayCpu();
    const s0 = which === 'relay' ? cpuSecondsOf(server.pid) : 0;
    const threads0 = which === 'relay' ? threadCpuOf(server.pid) : null;
    const t = run(
      [
        '--import',
        preload,
        ...(opt('--client-node-options', '') ?? '').split(' ').filter(Boolean),
        bin,
        'push',
        '-q',
        which === 'relay' ? `rt${round}` : `d${round}`,
        'main',
      ],
      repo,
      { MEDIAGIT_TOKEN: server.token, TRACE_OUT: ctrace },
    );
    const extra = {
      wall: t.wall,
      cpu: t.cpu,
      gateway: gatewayCpu() - g0,
      ...(which === 'relay'
        ? {
            server: cpuSecondsOf(server.pid) - s0,
            threads: threadDiff(server.pid, threads0, threadCpuOf(server.pid)),
          }
        : {}),
    };
    result[which] = { ctrace, extra, zero: Number(t.started / 1000n) / 1000 };
  }
  await server.stop();
  await dropBucket(s3, bucket).catch((e) => console.error(`bucket ${bucket} left: ${e.message}`));

  console.log(`round ${round + 1} (${order.join(' then ')})`);
  {
    const { ctrace, extra, zero } = result.direct;
    const c = load(ctrace);
    result.direct.summary = summary('direct', zero, c, c.out, extra);
    if (!quiet) printRequests('client → bucket', c.out, zero);
  }
  {
    const { ctrace, extra, zero } = result.relay;
    const c = load(ctrace);
    const s = load(strace);
    result.relay.summary = summary('relay', zero, c, s.out, extra);
    console.log(`  server threads: ${extra.threads}`);
    const rel = (x) => (x - zero).toFixed(0);
    console.log(
      `  server GC pauses in the push: ${s.gcs
        .filter((g) => g.t >= c.ready && g.t <= c.exit)
        .map((g) => `${rel(g.t)} ${g.d} ms (kind ${g.k})`)
        .join(', ')}`,
    );
    if (!quiet) {
      printRequests('client → server', c.out, zero);
      printRequests('server, as it saw them', s.in, zero);
      printRequests('server → bucket', s.out, zero);
    }
    result.relay.server = s;
    result.relay.client = c;
  }
  all.push(result);
}
if (opt('--json', null)) writeFileSync(opt('--json', null), JSON.stringify(all, null, 1));
