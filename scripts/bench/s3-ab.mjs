#!/usr/bin/env node
// Two builds of mediagit against each other straight to S3 (radosgw), interleaved: A is another
// checkout's CLI (`--a <folder>`, built: say a copy of main taken before a change), B this one.
// Each round makes a fresh bucket and one link emulator in front of radosgw (`--link`, the
// bench's 200mbit,40ms by default); then, for each build in alternating order: push v1 and clone
// it on loopback, and through the link push v1 (a first push to its own prefix), push v2 on top
// (incremental, v2 committed untimed as in the bench) and clone. Per transfer: wall seconds and
// the CLI's CPU (user+sys); through the link also wall ÷ link time (bytes carried / rate + one
// RTT, as the bench divides), and radosgw's + its OSD's CPU over it ("server cpu", from /proc).
// Ratios are B ÷ A per round; median and min–max over the rounds.
// Each build has its own probe memory (XDG_CACHE_HOME). `--probe-memory round` (default): fresh
// every round, so each first push to the round's bucket probes (a user's very first push to an
// endpoint). `--probe-memory kept`: kept across rounds and filled before the first by an untimed
// push of each build to a bucket of its own, as the bench's memory in the user's cache is: a build
// that remembers a pass per endpoint then pushes to each round's new bucket without probing (a
// returning user's first push to a new bucket), one that remembers it per bucket probes again.
//
//   node scripts/bench/s3-ab.mjs --a /tmp/main-copy [--profile small] [--rounds 5]
//        [--link 200mbit,40ms] [--rows loopback,link] [--probe-memory round|kept]
//
// Needs MEDIAGIT_TEST_S3_* (test/servers/radosgw.sh env).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { corpus, makeCorpus } from './corpus.mjs';
import {
  cli,
  copyTree,
  cpuSecondsOf,
  fresh,
  opt,
  printAbFigures,
  profile,
  rotate,
  timedRun,
  work,
} from './measure.mjs';
import {
  dropBucket,
  linkSeconds,
  newBucket,
  parseLinkSpec,
  s3Options,
  s3Settings,
  startLink,
} from './network.mjs';

const aRoot = opt('--a', null);
if (!aRoot) throw new Error('--a <folder of the other build> is required');
const clis = { A: path.join(path.resolve(aRoot), 'bin', 'mediagit.js'), B: cli };
const rounds = Math.max(1, Number(opt('--rounds', '5')) || 5);
const spec = opt('--link', '200mbit,40ms');
const rows = opt('--rows', 'loopback,link').split(',');
const s3 = s3Settings();
if (s3 === null) throw new Error('MEDIAGIT_TEST_S3_* is not set (test/servers/radosgw.sh env)');
const parsed = parseLinkSpec(spec);
const probeMemory = opt('--probe-memory', 'round');
if (!['round', 'kept'].includes(probeMemory)) throw new Error('--probe-memory is round or kept');

/**
 * CPU seconds radosgw and its OSD have used so far (they share the cores with the client, and on
 * loopback their work per request is most of a push's cost), or null where they cannot be seen.
 */
const gatewayPids = ['radosgw', 'ceph-osd'].map(
  (name) => spawnSync('pgrep', ['-x', name], { encoding: 'utf8' }).stdout.trim().split('\n')[0],
);
const s3Cpu = () => {
  try {
    return gatewayPids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0);
  } catch {
    return null;
  }
};

const cacheOf = (side) => path.join(work, `s3ab-xdg-${side}`);
const timed = (side, cwd, ...args) =>
  timedRun(cwd, { XDG_CACHE_HOME: cacheOf(side) }, process.execPath, [clis[side], ...args]);

const v1 = await corpus(1);
const template = path.join(work, 's3ab-template');
copyTree(v1, template);
for (const args of [
  ['init', '-q'],
  ['add', '.'],
  ['commit', '-q', '-m', 'v1'],
])
  timed('B', template, ...args);

/** figures[row][side] = [{ wall, cpu, link? }, …] per round. */
const figures = {};
const note = (row, side, figure) => {
  figures[row] ??= { A: [], B: [] };
  figures[row][side].push(figure);
};

if (probeMemory === 'kept') {
  const bucket = await newBucket(s3, 's3abprime');
  try {
    for (const side of ['A', 'B']) {
      fresh(cacheOf(side));
      const repo = path.join(work, `s3ab-repo-${side}`);
      copyTree(template, repo);
      const url = `s3://${bucket}/prime-${side}`;
      timed(side, repo, 'remote', 'add', 'origin', url, ...s3Options(s3, s3.endpoint));
      timed(side, repo, 'push', '-q');
    }
  } finally {
    await dropBucket(s3, bucket).catch((e) => console.error(`bucket ${bucket} left: ${e.message}`));
  }
}

for (let round = 0; round < rounds; round++) {
  const bucket = await newBucket(s3, `s3ab${round}`);
  const link = rows.includes('link') ? await startLink(s3.endpoint, spec) : null;
  try {
    if (probeMemory === 'round') for (const side of ['A', 'B']) fresh(cacheOf(side));
    for (const row of rows) {
      const endpoint = row === 'link' ? link.url : s3.endpoint;
      const order = rotate(['A', 'B'], round + rows.indexOf(row));
      /** Times one CLI run; through the link also what it carried, as link time. */
      const run = async (side, cwd, ...args) => {
        const before = link && row === 'link' ? await link.counters() : null;
        const gateway = s3Cpu();
        const f = timed(side, cwd, ...args);
        if (gateway !== null) f.serverCpu = s3Cpu() - gateway;
        if (before) {
          const after = await link.counters();
          const bytes = Math.max(after.up - before.up, after.down - before.down);
          f.link = f.wall / linkSeconds(parsed, bytes, 1);
        }
        return f;
      };
      const repos = {};
      for (const side of order) {
        repos[side] = path.join(work, `s3ab-repo-${side}`);
        copyTree(template, repos[side]);
        const url = `s3://${bucket}/${row}-${side}`;
        timed(side, repos[side], 'remote', 'add', 'origin', url, ...s3Options(s3, endpoint));
      }
      for (const side of order)
        note(`push v1 ${row}`, side, await run(side, repos[side], 'push', '-q'));
      if (row === 'link') {
        for (const side of order) {
          await makeCorpus(repos[side], 2, profile);
          timed('B', repos[side], 'add', '.');
          timed('B', repos[side], 'commit', '-q', '-m', 'v2');
        }
        for (const side of [...order].reverse())
          note(`push v2 ${row}`, side, await run(side, repos[side], 'push', '-q'));
      }
      for (const side of order) {
        const dir = fresh(path.join(work, `s3ab-clone-${side}`));
        const url = `s3://${bucket}/${row}-${side}`;
        note(
          `clone ${row}`,
          side,
          await run(side, work, 'clone', '-q', url, dir, ...s3Options(s3, endpoint)),
        );
      }
    }
  } finally {
    await link?.stop();
    await dropBucket(s3, bucket).catch((e) => console.error(`bucket ${bucket} left: ${e.message}`));
  }
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  console.error(`round ${round + 1}/${rounds} done (load ${load})`);
}

printAbFigures(figures, rounds, 16);
