#!/usr/bin/env node
// Two builds of mediagit against each other on the network rows, interleaved: A is another
// checkout's CLI (`--a <folder>`, built: say a copy of main taken before a change), B this one.
// Each round pushes the committed v1 and clones it back with both, in alternating order, row by
// row: straight to S3 (radosgw), through a `mediagit server` over S3 (each build its own server),
// and to a folder remote. Per transfer: wall seconds and the client's CPU (user+sys of the CLI
// process); with --server-cpu also the server's. Ratios are B ÷ A per round; the median and
// min–max over the rounds are printed.
//
//   node scripts/bench/pacing-ab.mjs --a /tmp/main-copy [--profile small] [--rounds 5]
//        [--rows s3,server,folder]
//
// Needs MEDIAGIT_TEST_S3_* (test/servers/radosgw.sh env).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { corpus } from './corpus.mjs';
import {
  cli,
  copyTree,
  cpuSecondsOf,
  fresh,
  opt,
  printAbFigures,
  rotate,
  timedRun,
  work,
} from './measure.mjs';
import { dropBucket, newBucket, s3Options, s3Settings, s3Toml, startServer } from './network.mjs';

const aRoot = opt('--a', null);
if (!aRoot) throw new Error('--a <folder of the other build> is required');
const clis = { A: path.join(path.resolve(aRoot), 'bin', 'mediagit.js'), B: cli };
const rounds = Math.max(1, Number(opt('--rounds', '5')) || 5);
const rows = opt('--rows', 's3,server,folder').split(',');
const s3 = s3Settings();
if (s3 === null) throw new Error('MEDIAGIT_TEST_S3_* is not set (test/servers/radosgw.sh env)');

/** One CLI run of build `side`: wall seconds and its own CPU (user+sys from /usr/bin/time). */
const timed = (side, cwd, token, ...args) =>
  timedRun(cwd, { MEDIAGIT_TOKEN: token }, process.execPath, [clis[side], ...args]);

const v1 = await corpus(1);
// Committed once (untimed); both builds read the same repository format.
const template = path.join(work, 'pacing-ab-template');
copyTree(v1, template);
for (const args of [
  ['init', '-q'],
  ['add', '.'],
  ['commit', '-q', '-m', 'v1'],
])
  timed('B', template, '', ...args);

/** figures[row][side] = [{ wall, cpu, serverCpu? }, …] per round. */
const figures = {};
const note = (row, side, figure) => {
  figures[row] ??= { A: [], B: [] };
  figures[row][side].push(figure);
};

for (let round = 0; round < rounds; round++) {
  const bucket = await newBucket(s3, `pab${round}`);
  const servers = {};
  try {
    if (rows.includes('server'))
      for (const side of ['A', 'B'])
        servers[side] = await startServer(`pab-${side}`, s3Toml(s3, bucket, `server-${side}`), {
          bin: clis[side],
        });
    const remotes = {
      s3: (side) => ({ url: `s3://${bucket}/direct-${side}`, args: s3Options(s3, s3.endpoint) }),
      server: (side) => ({ url: servers[side].url, args: [], token: servers[side].token }),
      folder: (side) => ({ url: fresh(path.join(work, `pab-folder-${side}`)), args: [] }),
    };
    for (const row of rows) {
      const order = rotate(['A', 'B'], round + rows.indexOf(row));
      const repos = {};
      const remote = Object.fromEntries(order.map((side) => [side, remotes[row](side)]));
      for (const side of order) {
        repos[side] = path.join(work, `pab-repo-${side}`);
        copyTree(template, repos[side]);
        timed(
          side,
          repos[side],
          '',
          'remote',
          'add',
          'origin',
          remote[side].url,
          ...remote[side].args,
        );
      }
      for (const side of order) {
        const server = row === 'server' ? servers[side] : null;
        const before = server ? cpuSecondsOf(server.pid) : 0;
        const f = timed(side, repos[side], remote[side].token ?? '', 'push', '-q');
        if (server) f.serverCpu = cpuSecondsOf(server.pid) - before;
        note(`push ${row}`, side, f);
      }
      for (const side of [...order].reverse()) {
        const server = row === 'server' ? servers[side] : null;
        const dir = fresh(path.join(work, `pab-clone-${side}`));
        const before = server ? cpuSecondsOf(server.pid) : 0;
        const f = timed(
          side,
          work,
          remote[side].token ?? '',
          'clone',
          '-q',
          remote[side].url,
          dir,
          ...remote[side].args,
        );
        if (server) f.serverCpu = cpuSecondsOf(server.pid) - before;
        note(`clone ${row}`, side, f);
      }
    }
  } finally {
    for (const server of Object.values(servers)) await server.stop();
    await dropBucket(s3, bucket).catch((e) => console.error(`bucket ${bucket} left: ${e.message}`));
  }
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  console.error(`round ${round + 1}/${rounds} done (load ${load})`);
}

printAbFigures(figures, rounds, 13);
