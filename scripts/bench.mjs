#!/usr/bin/env node
// npm run bench [-- --profile small|full] [--repeat N] [--json] [--link <rate>,<rtt>]
//   [--only local,server,s3,link] [--no-restic] [--no-encrypted] [--no-server] [--no-network] [--lean-only]
//
// Times mediagit on a generated media corpus (two versions of an asset project) beside the
// machine's floors (cp -r, reading every file, openssl sha256, a sink server for transfers) and
// the other tools (restic, rclone) on the same trees, all in one run, and prints ratios: absolute
// times drift between machines, ratios do not. Every round runs every contender once, in turns
// (the order rotates from round to round), and each ratio is taken within a round.
//
// With MEDIAGIT_TEST_S3_* set (eval "$(test/servers/radosgw.sh env)"), each round also moves v1
// over S3: mediagit direct, mediagit server storing into S3, rclone and restic on the same bucket.
// With --link 200mbit,40ms, each round moves everything again through a userspace link emulator
// (test/support/link-emulator.ts) and divides each transfer by its link time.
//
// The parts: scripts/bench/measure.mjs (timing, folders, medians), corpus.mjs (corpus, floors),
// local.mjs (mediagit on the local machine), peers.mjs (restic, rclone), network.mjs (server,
// sink, S3, link), rows.mjs (ratios, targets, output); sink.mjs and link.mjs run as child processes.
import { mkdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { corpus, measureFloors } from './bench/corpus.mjs';
import { leanScenario, lockstep, mediagitSteps, printLean } from './bench/local.mjs';
import {
  agentDir,
  asJson,
  cli,
  duBytes,
  env,
  flag,
  fresh,
  log,
  medianOf,
  opt,
  profile,
  repeat,
  root,
  rotate,
  sh,
  work,
} from './bench/measure.mjs';
import { linkRound, parseLinkSpec, s3Round, s3Settings, serverRound } from './bench/network.mjs';
import { resticBin, resticSteps } from './bench/peers.mjs';
import { linkRows, localRows, printReport, storageOf, targetRows } from './bench/rows.mjs';

const only = opt('--only', null)?.split(',') ?? null;
const group = (name) => only === null || only.includes(name);
const linkSpec = opt('--link', null);
if (linkSpec) parseLinkSpec(linkSpec); // refuse a bad spec before building anything

log(`building corpus (${profile}, cached in .cache/bench)…`);
const v1 = await corpus(1);
const v2 = await corpus(2);
fresh(work);
mkdirSync(agentDir, { recursive: true, mode: 0o700 });
if (flag('--lean-only')) {
  log('lean workspace rows only…');
  const lean = await leanScenario(v1);
  if (asJson) console.log(JSON.stringify({ profile, lean }, null, 2));
  else printLean(lean);
  rmSync(work, { recursive: true, force: true });
  process.exit(0);
}
const bytesV1 = duBytes(v1);
const bytesV2 = duBytes(v2);
log(`corpus v1 ${(bytesV1 / 2 ** 20).toFixed(1)} MiB, v2 ${(bytesV2 / 2 ** 20).toFixed(1)} MiB`);
sh(`cat $(find "${v1}" -type f) > /dev/null`, root);

const runs = {
  floors: [],
  plain: [],
  enc: [],
  restic: [],
  server: [],
  serverEnc: [],
  s3: [],
  link: [],
};
const s3 = flag('--no-network') ? null : s3Settings();
const withEncrypted = !flag('--no-encrypted');
const withLocal = group('local');
const withServer = group('server') && !flag('--no-server');
const withRestic = Boolean(resticBin);
for (let round = 0; round < repeat; round++) {
  const tag = repeat > 1 ? ` (round ${round + 1} of ${repeat})` : '';
  log(`floors${tag}…`);
  runs.floors.push(measureFloors(v1));
  if (withLocal) {
    log(
      `mediagit (plain${withEncrypted ? ', encrypted' : ''})${withRestic ? ' and restic' : ''}, step by step${tag}…`,
    );
    const scenarios = { plain: mediagitSteps(v1, v2, false) };
    if (withEncrypted) scenarios.enc = mediagitSteps(v1, v2, true);
    if (withRestic) scenarios.restic = resticSteps(v1);
    // Who takes the first turn at each step rotates too: plain, encrypted, restic; then encrypted, …
    const order = rotate(Object.keys(scenarios), round);
    const results = await lockstep(order.map((name) => scenarios[name]));
    order.forEach((name, i) => (runs[name][round] = results[i]));
  }
  if (withServer) {
    log(
      `mediagit server (loopback), sink floor${withLocal && withRestic ? ', restic restore' : ''}${tag}…`,
    );
    runs.server[round] = await serverRound(v1, round, { restic: withLocal && withRestic });
    if (withEncrypted) runs.serverEnc[round] = await serverRound(v1, round, { encrypted: true });
  }
  if (s3 && group('s3')) {
    log(`over S3 (${s3.endpoint}): mediagit, mediagit server, rclone, restic${tag}…`);
    runs.s3[round] = await s3Round(v1, round, s3);
  }
  if (linkSpec && group('link')) {
    log(
      `through a ${linkSpec} link: server, sink${s3 ? ', S3, server over S3, rclone, restic' : ''}${tag}…`,
    );
    runs.link[round] = await linkRound(v1, round, linkSpec, s3 && group('s3') ? s3 : null);
  }
}

const leanFigures = withLocal ? (log('lean workspace…'), await leanScenario(v1)) : null;
const enc = medianOf(runs.enc);
const report = {
  profile,
  repeat,
  bytesV1,
  bytesV2,
  floors: medianOf(runs.floors),
  rows: localRows(runs, repeat, bytesV1, bytesV2),
  targets: targetRows(runs, repeat),
  link: { spec: linkSpec, rows: linkRows(runs, repeat) },
  storage: withLocal ? storageOf(runs, bytesV1, bytesV2) : null,
  lean: leanFigures,
  coldUnlockSecs: enc?.coldUnlock ?? null,
  enc,
};
if (asJson) {
  const { enc: _enc, ...out } = report;
  console.log(JSON.stringify({ ...out, rounds: runs }, null, 2));
} else {
  printReport(report);
  if (leanFigures) printLean(leanFigures);
}
spawnSync(process.execPath, [cli, 'key', 'forget', '--all'], {
  env: { ...process.env, ...env },
  stdio: 'ignore',
});
rmSync(work, { recursive: true, force: true });
