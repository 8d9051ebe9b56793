#!/usr/bin/env node
// Presigned downloads against the relay, interleaved: two `mediagit server`s over the same S3
// bucket and prefix (radosgw), one with `[server] presign = "off"` (every chunk relayed through
// the server) and one with "get" (chunks straight from the bucket). Each round clones the same
// pushed v1 through both, in alternating order, and pushes v1 to a fresh repository through both
// (the neighbouring row: presign must leave pushes alone). Per transfer: wall seconds, the client's
// CPU (user+sys of the CLI process) and the server's CPU (utime+stime of its process, threads
// included, over the transfer). Ratios are get ÷ off per round; the median and min–max are printed.
//
//   node scripts/bench/presign-ab.mjs [--profile small] [--rounds 5] [--link 200mbit,40ms]
//
// With --link, the client reaches each server through its own emulated link, and the bucket
// through another one (the presigned URLs name that link, `presign_endpoint`): the client is far
// away, server and bucket are near each other, as in a deployment. Needs MEDIAGIT_TEST_S3_*.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { corpus } from './corpus.mjs';
import { cli, copyTree, cpuSecondsOf, fresh, median, opt, timedRun, work } from './measure.mjs';
import { dropBucket, newBucket, s3Settings, s3Toml, startLink, startServer } from './network.mjs';

const rounds = Math.max(1, Number(opt('--rounds', '5')) || 5);
const linkSpec = opt('--link', null);
const s3 = s3Settings();
if (s3 === null) throw new Error('MEDIAGIT_TEST_S3_* is not set (test/servers/radosgw.sh env)');

/** A CLI run with its wall time and its own CPU time (user+sys from /usr/bin/time). */
const timed = (cwd, token, ...args) =>
  timedRun(cwd, { MEDIAGIT_TOKEN: token }, process.execPath, [cli, ...args]);

/** `mediagit server` over the bucket with `presign` set; resolves once it listens. */
async function server(label, bucket, presign, presignEndpoint) {
  const toml = [
    '[server]',
    `presign = "${presign}"`,
    ...(presignEndpoint ? [`presign_endpoint = "${presignEndpoint}"`] : []),
    s3Toml(s3, bucket, 'srv'),
  ].join('\n');
  const started = await startServer(`presign-ab-${label}`, toml, { tokenRepo: '*' });
  return { ...started, url: started.base };
}

const v1 = await corpus(1);
const bucket = await newBucket(s3, 'presign-ab');
const bucketLink = linkSpec ? await startLink(s3.endpoint, linkSpec) : null;
const sides = {
  off: await server('off', bucket, 'off', null),
  get: await server('get', bucket, 'get', bucketLink?.url ?? null),
};
const links = {};
for (const [name, s] of Object.entries(sides))
  links[name] = linkSpec ? await startLink(s.url, linkSpec) : null;
const urlOf = (name, repo) => `${links[name]?.url ?? sides[name].url}/${repo}`;

const repo = path.join(work, 'presign-ab-repo');
fresh(repo);
copyTree(v1, repo);
const run = (...a) => timed(repo, sides.off.token, ...a);
run('init', '-q');
run('add', '.');
run('commit', '-q', '-m', 'v1');
run('remote', 'add', 'origin', `${sides.off.url}/bench`);
run('push', '-q', 'origin', 'main');

/** One transfer through one side: wall, client CPU, server CPU. */
function transfer(name, args, cwd = work) {
  const before = cpuSecondsOf(sides[name].pid);
  const t = timed(cwd, sides[name].token, ...args);
  return { ...t, server: cpuSecondsOf(sides[name].pid) - before };
}

const results = [];
try {
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? ['off', 'get'] : ['get', 'off'];
    const r = { clone: {}, push: {} };
    for (const name of order) {
      const dir = path.join(work, `presign-ab-clone-${name}`);
      spawnSync('rm', ['-rf', dir]);
      r.clone[name] = transfer(name, ['clone', '-q', urlOf(name, 'bench'), dir]);
    }
    for (const name of order) {
      const remote = `${name}${round}`;
      timed(repo, sides[name].token, 'remote', 'add', remote, urlOf(name, `push-${name}-${round}`));
      r.push[name] = transfer(name, ['push', '-q', remote, 'main'], repo);
    }
    results.push(r);
    const line = (op) =>
      ['off', 'get']
        .map(
          (n) =>
            `${n} ${r[op][n].wall.toFixed(2)}s client ${r[op][n].cpu.toFixed(2)} server ${r[op][n].server.toFixed(2)}`,
        )
        .join(' | ');
    console.error(`round ${round + 1}: clone ${line('clone')}\n          push  ${line('push')}`);
  }
} finally {
  for (const l of [...Object.values(links), bucketLink]) await l?.stop();
  for (const s of Object.values(sides)) await s.stop();
  await dropBucket(s3, bucket).catch((e) => console.error(`bucket ${bucket} left: ${e.message}`));
}

const stats = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `${median(values).toFixed(2)} [${sorted[0].toFixed(2)}–${sorted.at(-1).toFixed(2)}]`;
};
console.log(
  `presigned GET vs relay, ${rounds} rounds${linkSpec ? `, link ${linkSpec}` : ''}; get ÷ off per round, median [min–max]`,
);
for (const op of ['clone', 'push']) {
  for (const [label, field] of [
    ['wall', 'wall'],
    ['client CPU', 'cpu'],
    ['server CPU', 'server'],
  ]) {
    const off = results.map((r) => r[op].off[field]);
    const get = results.map((r) => r[op].get[field]);
    console.log(
      `${op.padEnd(5)} ${label.padEnd(10)}: off ${median(off).toFixed(2)} s, get ${median(get).toFixed(2)} s, ratio ${stats(results.map((r) => r[op].get[field] / r[op].off[field]))}`,
    );
  }
}
