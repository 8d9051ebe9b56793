#!/usr/bin/env node
// Two builds of mediagit against each other through `mediagit server`, interleaved: A (another
// checkout's bin/mediagit.js, e.g. a copy of main's build) and B (this checkout, or --b). Each side runs
// its own servers (local-folder storage, and S3 storage when MEDIAGIT_TEST_S3_* is set) and its
// own client. Each round pushes v1 to a fresh repository through each side's servers, then clones
// it back, the sides taking turns in alternating order (ABAB…, BABA…); the sink floor's push of
// the same objects runs in every round too. Per transfer: wall seconds, the client's CPU
// (user+sys of the CLI process) and the server's (utime+stime of its process, all threads, over
// the transfer). Ratios are B ÷ A per round; medians and min–max are printed. `--fresh-servers`
// starts each side's servers anew every round, as `npm run bench` does (its push is a new
// server's first), instead of once for all rounds; `--fresh-bucket` also gives each round a new
// bucket (as the bench does: nothing a server remembers about a bucket carries over) and implies
// `--fresh-servers`. `--presign get` lets the S3 servers hand out download URLs (the server's
// default, and the bench's) instead of relaying every chunk (`off`, the default here).
// `s3direct`: each side's client pushes v1 straight to the round's bucket (its own prefix) right
// after its push through its S3 server, and "s3push ÷ s3direct" is printed per side: the bench's
// "server over S3 ÷ direct" row, from the same rounds.
//
//   node scripts/bench/server-ab.mjs --a /path/to/A [--b /path/to/B] [--profile small] [--rounds 5] [--no-s3]
//                                    [--only push,clone,s3push,s3clone,s3direct] [--fresh-servers]
//                                    [--fresh-bucket] [--presign off|get]
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { corpus } from './corpus.mjs';
import {
  cli,
  copyTree,
  cpuSecondsOf,
  flag,
  fresh,
  median,
  opt,
  timedRun,
  work,
} from './measure.mjs';
import {
  dropBucket,
  newBucket,
  objectList,
  s3Options,
  s3Settings,
  s3Toml,
  sinkRun,
  startServer,
  startSink,
} from './network.mjs';

const rounds = Math.max(1, Number(opt('--rounds', '5')) || 5);
const aRoot = opt('--a', null);
if (aRoot === null) throw new Error('--a <checkout or copy of a build> is required');
const bRoot = opt('--b', null);
const bins = {
  A: path.join(path.resolve(aRoot), 'bin', 'mediagit.js'),
  B: bRoot === null ? cli : path.join(path.resolve(bRoot), 'bin', 'mediagit.js'),
};
const s3 = flag('--no-s3') ? null : s3Settings();
const only = new Set(opt('--only', 'push,clone,s3push,s3clone').split(','));
if (s3 === null) {
  only.delete('s3push');
  only.delete('s3clone');
  only.delete('s3direct');
}
// A clone needs the push of its round before it.
if (only.has('clone')) only.add('push');
if (only.has('s3clone')) only.add('s3push');

/** One CLI run of `side`'s build: wall time and its own CPU time (user+sys). */
const timed = (side, cwd, token, ...args) =>
  timedRun(cwd, { MEDIAGIT_TOKEN: token }, process.execPath, [bins[side], ...args]);

const v1 = await corpus(1);
let bucket = s3 ? await newBucket(s3, 'server-ab') : null;
const freshBucket = flag('--fresh-bucket');
const freshServers = freshBucket || flag('--fresh-servers');
const presign = opt('--presign', 'off');
if (!['off', 'get'].includes(presign)) throw new Error('--presign is off or get');
/** Each side's servers: local-folder storage, and S3 storage when the round has S3 transfers. */
async function startSides(round) {
  const servers = {};
  for (const side of ['A', 'B']) {
    const opts = { bin: bins[side], tokenRepo: '*' };
    servers[side] = {
      local: await startServer(`ab-${side}`, null, opts),
      s3: s3
        ? await startServer(
            `ab-s3-${side}`,
            `[server]\npresign = "${presign}"\n${s3Toml(s3, bucket, `ab-${side}-${round}`)}`,
            opts,
          )
        : null,
    };
  }
  return servers;
}
async function stopSides(servers) {
  for (const side of ['A', 'B']) {
    await servers[side].local.stop();
    await servers[side].s3?.stop();
  }
}
let servers = await startSides(0);
const sink = await startSink('ab');
const base = (url) => url.replace(/\/bench$/, '');

const repo = path.join(work, 'server-ab-repo');
copyTree(v1, repo);
timed('B', repo, '', 'init', '-q');
timed('B', repo, '', 'add', '.');
timed('B', repo, '', 'commit', '-q', '-m', 'v1');
const list = objectList(repo, 'server-ab');

/** One transfer through a side's server: wall, client CPU, server CPU. */
function transfer(side, server, cwd, ...args) {
  const before = cpuSecondsOf(server.pid);
  const t = timed(side, cwd, server.token, ...args);
  return { ...t, server: cpuSecondsOf(server.pid) - before };
}

const ops = [
  ['push', 'local', (side, s, name) => transfer(side, s, repo, 'push', '-q', name, 'main')],
  ['s3push', 's3', (side, s, name) => transfer(side, s, repo, 'push', '-q', name, 'main')],
  ['s3direct', 's3', (side, s, name) => transfer(side, s, repo, 'push', '-q', name, 'main')],
  [
    'clone',
    'local',
    (side, s, name, url) => {
      const dir = fresh(path.join(work, `server-ab-clone-${side}`));
      spawnSync('rm', ['-rf', dir]);
      return transfer(side, s, work, 'clone', '-q', url, dir);
    },
  ],
  [
    's3clone',
    's3',
    (side, s, name, url) => {
      const dir = fresh(path.join(work, `server-ab-clone-${side}`));
      spawnSync('rm', ['-rf', dir]);
      return transfer(side, s, work, 'clone', '-q', url, dir);
    },
  ],
].filter(([op]) => only.has(op));

const results = [];
try {
  for (let round = 0; round < rounds; round++) {
    if (freshServers && round > 0) {
      await stopSides(servers);
      if (freshBucket && bucket) {
        await dropBucket(s3, bucket).catch((e) =>
          console.error(`bucket ${bucket} left: ${e.message}`),
        );
        bucket = await newBucket(s3, `server-ab-${round}`);
      }
      servers = await startSides(round);
    }
    const order = round % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
    const r = { sink: 0 };
    for (const [op, where, run] of ops) {
      r[op] = {};
      for (const side of order) {
        const server = servers[side][where];
        const name = `${where}-${side}-${round}`;
        const url = `${base(server.url)}/r${round}-${where}`;
        if (op === 's3direct')
          timed(
            side,
            repo,
            '',
            'remote',
            'add',
            `${name}-direct`,
            `s3://${bucket}/direct-${side}-${round}`,
            ...s3Options(s3, s3.endpoint),
          );
        else if (op.endsWith('push')) timed(side, repo, '', 'remote', 'add', name, url);
        if (op === 's3direct') {
          r[op][side] = run(side, server, `${name}-direct`, url);
          continue;
        }
        r[op][side] = run(side, server, name, url);
      }
    }
    if (only.has('push')) {
      fresh(path.join(work, 'sink-ab'));
      r.sink = sinkRun('push', sink.url, list.from, list.file).secs;
    }
    results.push(r);
    const line = (op) =>
      order
        .map(
          (n) =>
            `${n} ${r[op][n].wall.toFixed(2)}s client ${r[op][n].cpu.toFixed(2)} server ${r[op][n].server.toFixed(2)}`,
        )
        .join(' | ');
    console.error(`round ${round + 1} (sink push ${r.sink.toFixed(2)}s)`);
    for (const [op] of ops) console.error(`  ${op.padEnd(7)} ${line(op)}`);
  }
} finally {
  await sink.stop();
  await stopSides(servers);
  if (bucket)
    await dropBucket(s3, bucket).catch((e) => console.error(`bucket ${bucket} left: ${e.message}`));
}

const stats = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `${median(values).toFixed(2)} [${sorted[0].toFixed(2)}–${sorted.at(-1).toFixed(2)}]`;
};
console.log(`B ÷ A, ${rounds} rounds; median [min–max] of per-round ratios`);
for (const [op] of ops)
  for (const [label, field] of [
    ['wall', 'wall'],
    ['client CPU', 'cpu'],
    ['server CPU', 'server'],
  ]) {
    const a = results.map((r) => r[op].A[field]);
    const b = results.map((r) => r[op].B[field]);
    console.log(
      `${op.padEnd(7)} ${label.padEnd(10)}: A ${median(a).toFixed(2)} s, B ${median(b).toFixed(2)} s, B/A ${stats(results.map((r) => r[op].B[field] / r[op].A[field]))}`,
    );
  }
if (only.has('s3direct') && only.has('s3push'))
  for (const side of ['A', 'B'])
    console.log(
      `s3push ÷ s3direct, ${side}: ${stats(results.map((r) => r.s3push[side].wall / r.s3direct[side].wall))} (direct ${median(results.map((r) => r.s3direct[side].wall)).toFixed(2)} s)`,
    );
if (only.has('push'))
  for (const side of ['A', 'B'])
    console.log(
      `push ÷ sink push, ${side}: ${stats(results.map((r) => r.push[side].wall / r.sink))} (sink ${median(results.map((r) => r.sink)).toFixed(2)} s)`,
    );
