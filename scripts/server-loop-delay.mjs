#!/usr/bin/env node
// How busy `mediagit server`'s event loop is while it verifies uploads, with verification on the
// event loop (verify_workers = 0) and on worker threads (the default), in interleaved rounds:
//
//   npm run build && node scripts/server-loop-delay.mjs [--rounds 3] [--mib 48] [--uploads 3]
//                                                      [--only workers|loop]
//
// The server runs in this process (local storage, fsync off) under perf_hooks'
// monitorEventLoopDelay; a child process uploads packs of zstd-compressed 2 MiB chunks and polls
// /health meanwhile. Prints per mode the loop delay (p50 / p99 / max) and /health's latency as
// the child saw it, the loop's utilisation, and the CPU time of the event loop's own thread per GiB
// uploaded (process.threadCpuUsage), the figure a loaded machine blurs least. A figure to report,
// never a test: timings depend on the machine's load.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { loadServerConfig, mintToken, startServer } = await import(
  path.join(root, 'dist/src/server/index.js')
);
const { encodeEnvelope, encodePayload, sha256Hex, KIND_CODES } = await import(
  path.join(root, 'dist/src/objects/index.js')
);

const arg = (name, fallback) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const ROUNDS = arg('rounds', 3);
const PACK_MIB = arg('mib', 48);
const UPLOADS = arg('uploads', 3);
// --only workers|loop: one mode (to profile it with --cpu-prof).
const ONLY = process.argv.includes('--only')
  ? process.argv[process.argv.indexOf('--only') + 1]
  : 'both';
const MiB = 1024 * 1024;

/** A pack of 2 MiB chunks, half random and half zeros (zstd halves them: a real decode). */
async function makePack() {
  const parts = [Buffer.from('MGPK', 'latin1'), Buffer.from([1]), Buffer.alloc(4)];
  let count = 0;
  for (let total = 0; total < PACK_MIB * MiB; total += 2 * MiB) {
    const canonical = randomBytes(2 * MiB);
    for (let at = 0; at < canonical.length; at += 8192) canonical.fill(0, at, at + 4096);
    const encoded = await encodePayload('chunk', canonical, { level: 1, skip: false });
    const stored = encodeEnvelope('chunk', encoded.codec, canonical.length, encoded.payload);
    const head = Buffer.alloc(37);
    head.writeUInt8(KIND_CODES.chunk, 0);
    head.write(sha256Hex(canonical), 1, 32, 'hex');
    head.writeUInt32BE(stored.length, 33);
    parts.push(head, stored);
    count++;
  }
  parts[2].writeUInt32BE(count);
  return Buffer.concat(parts);
}

// The child: uploads the pack UPLOADS times (each to a fresh repository, so it is stored each
// time) while asking /health in a loop; prints /health latencies in ms as JSON.
const CHILD = `
const [url, token, file, uploads] = process.argv.slice(1);
const pack = require('node:fs').readFileSync(file);
const descriptor = JSON.stringify({ format: 'mediagit', version: 1,
  chunking: { min_size: 262144, avg_size: 1048576, max_size: 4194304 }, encryption: null });
(async () => {
  let done = false;
  const health = [];
  const poll = (async () => {
    while (!done) {
      const t = performance.now();
      await (await fetch(url + '/health')).arrayBuffer();
      health.push(performance.now() - t);
    }
  })();
  const t0 = performance.now();
  for (let i = 0; i < Number(uploads); i++) {
    const repo = url + '/loop-' + process.pid + '-' + i;
    const auth = { authorization: 'Bearer ' + token };
    let r = await fetch(repo + '/meta/repository', { method: 'PUT', body: descriptor,
      headers: { ...auth, 'content-type': 'application/octet-stream' } });
    if (!r.ok) throw new Error('descriptor ' + r.status);
    r = await fetch(repo + '/objects/pack', { method: 'POST', body: pack,
      headers: { ...auth, 'content-type': 'application/octet-stream' } });
    if (!r.ok) throw new Error('pack ' + r.status + ' ' + (await r.text()));
    await r.arrayBuffer();
  }
  const seconds = (performance.now() - t0) / 1000;
  done = true;
  await poll;
  process.stdout.write(JSON.stringify({ health, seconds }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

async function round(workers, packFile, scratch) {
  const secret = randomBytes(32).toString('hex');
  const config = await loadServerConfig({
    configText: [
      '[server]',
      'rate_limit_rps = 1000000',
      'rate_limit_burst = 1000000',
      `max_pack_bytes = ${(PACK_MIB + 8) * MiB}`,
      ...(workers === null ? [] : [`verify_workers = ${workers}`]),
      '[storage]',
      "backend = 'local'",
      '[storage.local]',
      `path = '${path.join(scratch, `data-${randomBytes(4).toString('hex')}`)}'`,
      'fsync = false',
    ].join('\n'),
    env: { MEDIAGIT_HOST: '127.0.0.1', MEDIAGIT_PORT: '0', MEDIAGIT_JWT_SECRET: secret },
    cwd: scratch,
  });
  const server = await startServer(config, { audit: { write() {}, async close() {} }, log() {} });
  const token = await mintToken(secret, { repo: '*', role: 'write', sub: 'loop' }, 3600);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const elu0 = performance.eventLoopUtilization();
  // CPU of this (the event loop's) thread only: what a loaded machine's scheduling does not blur.
  const cpu0 = process.threadCpuUsage();
  const child = spawn(
    process.execPath,
    ['-e', CHILD, server.url, token, packFile, String(UPLOADS)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  delay.disable();
  const elu = performance.eventLoopUtilization(elu0).utilization;
  const cpu = process.threadCpuUsage(cpu0);
  await server.close();
  if (code !== 0) throw new Error(`uploader exited with ${code}`);
  const { health, seconds } = JSON.parse(out);
  health.sort((a, b) => a - b);
  const q = (p) => health[Math.min(health.length - 1, Math.floor(p * health.length))];
  return {
    loopP50: delay.percentile(50) / 1e6,
    loopP99: delay.percentile(99) / 1e6,
    loopMax: delay.max / 1e6,
    healthP50: q(0.5),
    healthP99: q(0.99),
    healthMax: health[health.length - 1],
    healthCount: health.length,
    mibPerS: (UPLOADS * PACK_MIB) / seconds,
    elu: elu * 100,
    loopCpuMsPerGiB: ((cpu.user + cpu.system) / 1000 / (UPLOADS * PACK_MIB)) * 1024,
  };
}

const scratch = await mkdtemp(path.join(os.tmpdir(), 'mediagit-loop-'));
try {
  const packFile = path.join(scratch, 'pack');
  await writeFile(packFile, await makePack());
  const modes = [
    ['event loop (verify_workers = 0)', 0],
    [`worker threads (default: ${os.availableParallelism()})`, null],
  ].filter(([, workers]) => ONLY === 'both' || (ONLY === 'workers') === (workers === null));
  const results = new Map(modes.map(([name]) => [name, []]));
  for (let r = 0; r < ROUNDS; r++)
    for (const [name, workers] of r % 2 === 0 ? modes : [...modes].reverse())
      results.get(name).push(await round(workers, packFile, scratch));
  const ms = (v) => v.toFixed(1).padStart(7);
  console.log(
    `${UPLOADS} × ${PACK_MIB} MiB pack per round, ${ROUNDS} rounds (medians over rounds; ms)`,
  );
  console.log(
    'mode                                  loop p50  loop p99  loop max  /health p50  p99      max   n     MiB/s  busy %  loop CPU ms/GiB',
  );
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const [name, rows] of results) {
    const m = (k) => median(rows.map((row) => row[k]));
    console.log(
      `${name.padEnd(36)} ${ms(m('loopP50'))}  ${ms(m('loopP99'))}  ${ms(m('loopMax'))}  ${ms(m('healthP50'))}  ${ms(m('healthP99'))}  ${ms(m('healthMax'))}  ${String(m('healthCount')).padStart(5)}  ${ms(m('mibPerS'))}  ${ms(m('elu'))}  ${ms(m('loopCpuMsPerGiB'))}`,
    );
  }
} finally {
  await rm(scratch, { recursive: true, force: true });
}
