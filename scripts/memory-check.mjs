#!/usr/bin/env node
// Bounded-memory check: add + commit + checkout of one big file (default 4 GiB), then an edit in
// place (status, add, commit, checkout again), reporting each step's wall time and peak RSS (from
// /usr/bin/time -v, or getrusage of children as a fallback).
// Usage: node scripts/memory-check.mjs [--size-gib 4] [--dir /path/with/space] [--encrypt]
// (--encrypt: an encrypted repository, each command unlocking with Argon2id's 64 MiB itself)
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const sizeGiB = Number(opt('--size-gib', '4'));
const base = opt('--dir', os.tmpdir());
const encrypt = args.includes('--encrypt');
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'mediagit.js');
const work = mkdtempSync(path.join(base, 'mediagit-memcheck-'));
const file = path.join(work, 'plate_sequence.raw');
const passphrase = 'memory check passphrase';
const env = {
  ...process.env,
  MEDIAGIT_AUTHOR_NAME: 'Memory Check',
  MEDIAGIT_AUTHOR_EMAIL: 'mem@example.com',
  MEDIAGIT_PASSPHRASE: passphrase,
  MEDIAGIT_NEW_PASSPHRASE: passphrase,
  MEDIAGIT_AGENT: '0',
};
const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

async function writeBigFile() {
  // Three quarters incompressible, one quarter compressible, so zstd and the raw path both run.
  const out = createWriteStream(file);
  const block = 8 * 1024 * 1024;
  const total = Math.round(sizeGiB * 1024 ** 3);
  const pattern = Buffer.alloc(block, 'scene-node-transform-');
  for (let written = 0; written < total; written += block) {
    const data = written % (4 * block) === 0 ? pattern : randomBytes(block);
    if (!out.write(data.subarray(0, Math.min(block, total - written))))
      await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
}

async function sha256(p) {
  const h = createHash('sha256');
  for await (const d of createReadStream(p, { highWaterMark: 4 << 20 })) h.update(d);
  return h.digest('hex');
}

function step(label, ...cliArgs) {
  const command = timeBin
    ? [timeBin, ['-v', process.execPath, cli, ...cliArgs]]
    : [process.execPath, [cli, ...cliArgs]];
  const started = performance.now();
  const r = spawnSync(command[0], command[1], { cwd: work, env, encoding: 'utf8' });
  const secs = (performance.now() - started) / 1000;
  if (r.status !== 0) throw new Error(`${label} failed: ${r.stderr}`);
  const kb = timeBin
    ? Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1])
    : process.resourceUsage().maxRSS;
  const rssMiB = kb / 1024;
  console.log(
    `${label.padEnd(10)} ${secs.toFixed(1).padStart(6)} s   peak RSS ${rssMiB.toFixed(0).padStart(4)} MiB   ${((sizeGiB * 1024) / secs).toFixed(0)} MiB/s`,
  );
  return rssMiB;
}

try {
  console.log(
    `writing a ${sizeGiB} GiB file in ${work}${encrypt ? ' (encrypted repository)' : ''}`,
  );
  await writeBigFile();
  const before = await sha256(file);
  spawnSync(process.execPath, [cli, 'init', '-q', ...(encrypt ? ['--encrypt'] : [])], {
    cwd: work,
    env,
  });
  const peaks = [
    step('add', 'add', 'plate_sequence.raw'),
    step('commit', 'commit', '-q', '-m', 'big file'),
  ];
  rmSync(file);
  peaks.push(step('checkout', 'checkout', '--', 'plate_sequence.raw'));
  const after = await sha256(file);
  console.log(
    `content after checkout: ${after === before ? 'identical' : 'DIFFERENT'} (sha256 ${after.slice(0, 16)}…)`,
  );
  // Then an edit in place, as an artist's tool makes one: status compares the file along its
  // staged chunks, add has the workers verify the old chunks and stores only what changed.
  const handle = openSync(file, 'r+');
  writeSync(handle, randomBytes(64 * 1024), 0, 64 * 1024, Math.floor(statSync(file).size / 3));
  closeSync(handle);
  const edited = await sha256(file);
  peaks.push(
    step('status', 'status', '--porcelain'),
    step('re-add', 'add', 'plate_sequence.raw'),
    step('commit', 'commit', '-q', '-m', 'edited'),
  );
  rmSync(file);
  peaks.push(step('checkout', 'checkout', '--', 'plate_sequence.raw'));
  const afterEdit = await sha256(file);
  console.log(`edited content after checkout: ${afterEdit === edited ? 'identical' : 'DIFFERENT'}`);
  const worst = Math.max(...peaks);
  console.log(`worst peak RSS: ${worst.toFixed(0)} MiB (budget 300 MiB)`);
  process.exitCode = after === before && afterEdit === edited && worst < 300 ? 0 : 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
