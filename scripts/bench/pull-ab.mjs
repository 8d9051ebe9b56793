#!/usr/bin/env node
// Pull through an emulated link, A against B, interleaved:
//
//   node scripts/bench/pull-ab.mjs [--profile small] [--rounds 5] [--link 200mbit,40ms]
//        [--a <tree>] [--b <tree>] [--server <tree>] [--cold]
//
// A tree is a folder holding bin/ and dist/ (a checkout after `npm run build`, or a copy of
// one); B defaults to this checkout, A to none (B alone). The server runs from --server
// (default A, else B), so both clients talk to the same server code. Each round: a server on
// loopback with local storage and a link emulator in front of it; another client pushes v1; a
// clone of v1 per contender (untimed, straight to the server); the other client pushes v2 (the
// artist's edits); then each contender's `mediagit pull`, timed through the link, in the round's
// rotated order; and the sink floor (scripts/bench/sink.mjs) pulling v2's new objects through the
// same link. Each pull is divided by its link time (bytes in the busier direction ÷ rate + one
// RTT, as the bench's link rows) and by the sink floor of the same round; B ÷ A per round too.
// Before each timed pull (and the sink's), the VM is handed warm page cache (warmPageCache in
// measure.mjs): without it, whichever pull came first in a round paid 1.6-2 s of kernel time for
// memory the host had taken back, and the next one reused the pages the first had just freed.
// --cold leaves that out, to measure the first-touch cost itself.
import { existsSync } from 'node:fs';
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
import {
  linkSeconds,
  objectList,
  parseLinkSpec,
  startLink,
  startServer,
  startSink,
} from './network.mjs';

const rounds = Math.max(1, Number(opt('--rounds', '5')) || 5);
const spec = opt('--link', '200mbit,40ms');
const treeA = opt('--a', null);
const treeB = opt('--b', root);
const serverTree = opt('--server', treeA ?? treeB);
/** A folder for CPU profiles of B's pulls (node --cpu-prof), for finding where the time goes. */
const profDir = opt('--prof', null);
const cold = flag('--cold');
const cliOf = (tree) => path.join(path.resolve(tree), 'bin', 'mediagit.js');
const contenders = [...(treeA ? [['A', cliOf(treeA)]] : []), ['B', cliOf(treeB)]];
for (const [, cli] of contenders)
  if (!existsSync(cli)) throw new Error(`${cli} does not exist (build that tree first)`);

/** Runs a command; wall seconds and the process's CPU (user + sys, from /usr/bin/time). */
function timed(cmd, args, cwd, extraEnv = {}) {
  const { wall, cpu, sys } = timedRun(cwd, extraEnv, cmd, args);
  return { secs: wall, cpu, sys };
}

const startServerOf = (label) => startServer(`pull-ab-${label}`, null, { bin: cliOf(serverTree) });

const sink = (mode, url, dir, list) =>
  timed(process.execPath, [path.join(root, 'scripts/bench/sink.mjs'), mode, url, dir, list], work);

async function round(r, v1) {
  const server = await startServerOf(`r${r}`);
  const sinkServer = await startSink(`pull-ab-r${r}`);
  const links = { server: null, sink: null };
  const parsed = parseLinkSpec(spec);
  const out = {};
  try {
    const tok = { MEDIAGIT_TOKEN: server.token };
    const direct = `${server.base}/bench`;
    const mgB = (cwd, ...a) => timed(process.execPath, [cliOf(treeB), ...a], cwd, tok);
    // The other client: commits and pushes v1, later v2.
    const other = path.join(work, 'pull-ab-other');
    copyTree(v1, other);
    mgB(other, 'init', '-q');
    mgB(other, 'add', '.');
    mgB(other, 'commit', '-q', '-m', 'v1');
    mgB(other, 'remote', 'add', 'origin', direct);
    mgB(other, 'push', '-q');
    const v1Objects = objectList(other, 'pull-ab-v1');
    for (const [name, cli] of contenders) {
      const dir = fresh(path.join(work, `pull-ab-clone-${name}`));
      timed(process.execPath, [cli, 'clone', '-q', direct, dir], work, tok);
    }
    await makeCorpus(other, 2, profile);
    mgB(other, 'add', '.');
    mgB(other, 'commit', '-q', '-m', 'v2');
    mgB(other, 'push', '-q');
    const v2New = objectList(other, 'pull-ab-v2', v1Objects.names);
    sink('push', sinkServer.url, v2New.from, v2New.file);

    links.server = await startLink(server.base, spec);
    links.sink = await startLink(sinkServer.url, spec);
    const over = async (link, fn) => {
      if (!cold) warmPageCache(warmBytes);
      const before = await link.counters();
      const m = fn();
      const after = await link.counters();
      const up = after.up - before.up;
      const down = after.down - before.down;
      return { ...m, up, down, linkSecs: linkSeconds(parsed, Math.max(up, down), 1) };
    };
    const jobs = contenders.map(([name, cli]) => [
      name,
      async () => {
        const dir = path.join(work, `pull-ab-clone-${name}`);
        timed(
          process.execPath,
          [cli, 'remote', 'set-url', 'origin', `${links.server.url}/bench`],
          dir,
        );
        const prof =
          profDir && name === 'B'
            ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${path.resolve(profDir)}` }
            : {};
        return over(links.server, () =>
          timed(process.execPath, [cli, 'pull', '-q'], dir, { ...tok, ...prof }),
        );
      },
    ]);
    jobs.push([
      'sink',
      () =>
        over(links.sink, () =>
          sink('pull', links.sink.url, fresh(path.join(work, 'pull-ab-sink')), v2New.file),
        ),
    ]);
    const k = r % jobs.length;
    for (const [name, job] of [...jobs.slice(k), ...jobs.slice(0, k)]) out[name] = await job();
    out.objects = v2New.names.size;
  } finally {
    await links.server?.stop();
    await links.sink?.stop();
    await server.stop();
    await sinkServer.stop();
  }
  return out;
}

const v1 = await corpus(1);
/** Enough for any pull of v2 to write every file it has (the whole v2 tree). */
const warmBytes = duBytes(await corpus(2));
const results = [];
for (let r = 0; r < rounds; r++) {
  const res = await round(r, v1);
  results.push(res);
  const line = [`round ${r + 1}:`];
  for (const [name] of contenders) {
    const p = res[name];
    line.push(
      `${name} ${p.secs.toFixed(2)} s cpu ${p.cpu?.toFixed(2)} s (sys ${p.sys?.toFixed(2)}) down ${(p.down / 1e6).toFixed(1)} MB ` +
        `(÷ link ${(p.secs / p.linkSecs).toFixed(2)}, ÷ sink ${(p.secs / res.sink.secs).toFixed(2)})`,
    );
  }
  line.push(
    `sink ${res.sink.secs.toFixed(2)} s down ${(res.sink.down / 1e6).toFixed(1)} MB (÷ link ${(res.sink.secs / res.sink.linkSecs).toFixed(2)})`,
  );
  if (treeA)
    line.push(
      `B/A wall ${(res.B.secs / res.A.secs).toFixed(2)} cpu ${(res.B.cpu / res.A.cpu).toFixed(2)}`,
    );
  console.log(line.join('  '));
}

const stat = (values) => {
  const v = values.filter((x) => Number.isFinite(x));
  return `${median(v).toFixed(2)} [${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)}]`;
};
console.log(
  `\n${profile}, ${spec}, ${rounds} rounds, ${results[0].objects} new objects in v2, ` +
    `${cold ? 'page cache as it came (--cold)' : 'warm page cache before each pull'}:`,
);
for (const [name] of contenders) {
  console.log(
    `${name}: wall ${stat(results.map((x) => x[name].secs))} s, cpu ${stat(results.map((x) => x[name].cpu))} s ` +
      `(sys ${stat(results.map((x) => x[name].sys))} s), ` +
      `down ${stat(results.map((x) => x[name].down / 1e6))} MB, link time ${stat(results.map((x) => x[name].linkSecs))} s, ` +
      `÷ link time ${stat(results.map((x) => x[name].secs / x[name].linkSecs))}, ÷ sink ${stat(results.map((x) => x[name].secs / x.sink.secs))}`,
  );
}
console.log(
  `sink: wall ${stat(results.map((x) => x.sink.secs))} s, ÷ link time ${stat(results.map((x) => x.sink.secs / x.sink.linkSecs))}`,
);
if (treeA)
  console.log(
    `B ÷ A: wall ${stat(results.map((x) => x.B.secs / x.A.secs))}, cpu ${stat(results.map((x) => x.B.cpu / x.A.cpu))}`,
  );
