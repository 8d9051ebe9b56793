#!/usr/bin/env node
// A large push that survives a server killed three times and a link that drops every long
// upload (run by hand after `npm run build`; the small version is test/security/fault-push.test.ts).
//
//   node scripts/fault-push.mjs [--mb 500] [--seed N] [--max-retries N] [--json]
//
// Makes ~N MB of the project's media corpus (mostly incompressible: video, textures, audio,
// scenes), commits it, starts `mediagit server` on 127.0.0.1 over a folder, and pushes it twice,
// each time to a fresh remote, re-running the push until it succeeds (at most 20 runs; with the
// default retry budget a run rides out much of it, --max-retries 0 makes every fault fail a run):
//   1. kills:  the server is SIGKILLed and restarted at three seeded moments (bytes sent so far);
//   2. resets: through a proxy that resets every connection after 8 MiB of request bytes.
// For each: runs, wall time, request bytes sent (answered and cut) against the bytes the remote
// stores, uploads accepted twice, `fsck --remote origin --full`, and a fresh clone compared file by
// file (SHA-256) with the source. Exits 1 when a push did not land, re-sent what the remote had
// (answered upload bytes beyond 2 % over what it stores), fsck was not clean or the clone differs.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const dist = new URL('../dist/', import.meta.url);
const { preparePushSource, runFaultPush } = await import(
  new URL('test/support/fault-push.js', dist).href
);

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i < 0 ? fallback : Number(args[i + 1]);
};
const mb = opt('--mb', 500);
const seed = opt('--seed', Math.floor(Math.random() * 2 ** 31));
const asJson = args.includes('--json');
const maxRetries = opt('--max-retries', undefined);
const keep = process.env['MEDIAGIT_KEEP_TEMP'] === '1';
const SLACK = 0.02;
const MIB = 1024 * 1024;
const log = (line) => {
  if (!asJson) console.error(line);
};

const work = mkdtempSync(path.join(os.tmpdir(), 'mediagit-fault-push-'));
const results = [];
let source;
try {
  log(`making ~${mb} MiB of media and committing it (seed ${seed})…`);
  const prepStarted = performance.now();
  source = await preparePushSource(path.join(work, 'src'), mb);
  log(
    `${source.files} files, ${(source.bytes / MIB).toFixed(1)} MiB, ready in ${((performance.now() - prepStarted) / 1000).toFixed(0)} s`,
  );
  for (const scenario of ['kills', 'resets']) {
    log(`scenario ${scenario}…`);
    results.push(
      await runFaultPush({
        scenario,
        source,
        workDir: work,
        seed,
        ...(maxRetries === undefined ? {} : { remoteOptions: { max_retries: maxRetries } }),
        log: (l) => log(`  ${l}`),
      }),
    );
  }
} finally {
  if (keep) console.error(`keeping ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

const judged = results.map((r) => {
  const resent = r.answeredBytes > r.neededBytes * (1 + SLACK);
  const ok =
    r.pushed &&
    !resent &&
    r.resentUploads === 0 &&
    r.fsckCode === 0 &&
    r.cloneIdentical &&
    (r.scenario !== 'kills' || r.killsLanded === r.killAt.length);
  return { ...r, pushSeconds: Math.round(r.pushMs / 100) / 10, resent, ok };
});
const ok = judged.every((r) => r.ok);
if (asJson) {
  console.log(
    JSON.stringify({
      mb,
      seed,
      maxRetries: maxRetries ?? null,
      files: source.files,
      bytes: source.bytes,
      scenarios: judged,
      ok,
    }),
  );
} else {
  const mib = (n) => (n / MIB).toFixed(1);
  const rows = [
    ['', ...judged.map((r) => r.scenario)],
    [
      'kills landed / planned at (MiB sent)',
      ...judged.map((r) =>
        r.killAt.length
          ? `${r.killsLanded}/${r.killAt.length}: ${r.killAt.map(mib).join(', ')}`
          : '-',
      ),
    ],
    ['connections reset', ...judged.map((r) => String(r.resets))],
    ['push runs (exit codes)', ...judged.map((r) => `${r.attempts} (${r.exitCodes.join(' ')})`)],
    ['push wall time', ...judged.map((r) => `${r.pushSeconds} s`)],
    ['remote stores (MiB)', ...judged.map((r) => mib(r.neededBytes))],
    ['sent (MiB)', ...judged.map((r) => mib(r.sentBytes))],
    [
      '  answered (MiB)',
      ...judged.map(
        (r) =>
          `${mib(r.answeredBytes)} (${((r.answeredBytes / r.neededBytes) * 100).toFixed(1)} %)`,
      ),
    ],
    ['  cut mid-request (MiB)', ...judged.map((r) => mib(r.cutBytes))],
    [
      'uploads the remote had',
      ...judged.map((r) => `${r.resentUploads} (${mib(r.resentBytes)} MiB)`),
    ],
    [
      'fsck --remote --full',
      ...judged.map((r) => (r.fsckCode === 0 ? 'clean' : `exit ${r.fsckCode}: ${r.fsckSummary}`)),
    ],
    [
      'fresh clone',
      ...judged.map((r) =>
        r.cloneIdentical
          ? `identical (${source.files} files)`
          : `DIFFERS: ${r.cloneMismatches.join('; ') || `exit ${r.cloneCode}`}`,
      ),
    ],
    ['result', ...judged.map((r) => (r.ok ? 'ok' : 'FAILED'))],
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  console.log(
    `fault push: ${source.files} files, ${mib(source.bytes)} MiB, seed ${seed}, max_retries ${maxRetries ?? 'default'}`,
  );
  for (const row of rows) console.log(row.map((cell, c) => cell.padEnd(widths[c])).join('  '));
  for (const r of judged)
    if (r.pushErrors.length > 0)
      console.log(
        `${r.scenario}: failed runs ended with e.g. ${r.pushErrors[0]}${r.pushErrors.length > 1 ? ` (+${r.pushErrors.length - 1} more)` : ''}`,
      );
}
process.exitCode = ok ? 0 : 1;
