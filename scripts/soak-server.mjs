#!/usr/bin/env node
// Soak test of `mediagit server` (run by hand after `npm run build`; not part of `npm test`):
// 4 honest pushers and 1 hostile client against one real server process on 127.0.0.1.
//
//   node scripts/soak-server.mjs [--seconds 60] [--json]
//
// The hostile client keeps firing, for the whole run: connections reset during authentication,
// decompression bombs (single chunks and packs), and uploads that declare 16 MiB and stall. The
// honest pushers each add a file, commit and push, over and over. At the end: the server must
// still be up, its peak RSS under 400 MiB, every honest push must have landed, and
// `mediagit fsck --remote origin --full` must be clean in every pusher's repository.
// Prints the figures (JSON with --json) and exits 1 when a check fails.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { zstdCompressSync } from 'node:zlib';

const dist = new URL('../dist/', import.meta.url);
const { startTestServer, describeRepository, encodeTestPack, http } = await import(
  new URL('test/support/server-harness.js', dist).href
);
const { runCli, tempDir } = await import(new URL('test/support/cli.js', dist).href);
const { encodeEnvelope, sha256Hex } = await import(new URL('src/objects/index.js', dist).href);

const args = process.argv.slice(2);
const seconds = Number(args[args.indexOf('--seconds') + 1] ?? 60) || 60;
const asJson = args.includes('--json');
const RSS_LIMIT_MIB = 400;
const PUSHERS = 4;

function rssMiB(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return kb / 1024;
  } catch {
    return 0;
  }
}

function resetDuringAuth(url, token, rawPath, delayMs) {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write(
        `POST ${rawPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 50\r\n\r\n',
      );
      setTimeout(() => {
        socket.resetAndDestroy();
        resolve();
      }, delayMs);
    });
    socket.on('error', () => resolve());
  });
}

function stalledUpload(url, rawPath, token, holdMs) {
  return new Promise((resolve) => {
    const req = httpRequest(`${url}${rawPath}`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/octet-stream',
        'content-length': String(16 * 1024 * 1024),
      },
    });
    const timer = setTimeout(() => req.destroy(), holdMs);
    req.on('response', (res) => {
      clearTimeout(timer);
      res.resume();
      resolve(res.statusCode);
      req.destroy();
    });
    req.on('error', () => resolve(null));
    req.on('close', () => resolve(null));
    req.write(Buffer.alloc(1024, 1));
  });
}

const bombCache = new Map();
function zeroBomb(size) {
  let bomb = bombCache.get(size);
  if (!bomb) {
    const zeros = Buffer.alloc(size);
    bomb = {
      oid: sha256Hex(zeros),
      stored: encodeEnvelope('chunk', 1, size, zstdCompressSync(zeros)),
    };
    bombCache.set(size, bomb);
  }
  return bomb;
}

/** Keeps attacking until `running()` says the honest pushers are done (and the time is up). */
async function hostile(server, token, stallToken, running, tally) {
  const base = `${server.url}/hostile`;
  await describeRepository(base, token);
  const bigBomb = zeroBomb(64 * 1024 * 1024);
  const packBombs = encodeTestPack(
    Array.from({ length: 80 }, (_, i) => ({ kind: 'chunk', ...zeroBomb(4 * 1024 * 1024 - i - 1) })),
  );
  const count = (status) => (tally.statuses[status] = (tally.statuses[status] ?? 0) + 1);
  // Three loops at once, each as fast as the server answers it.
  const resets = async () => {
    for (let i = 0; running(); i++) {
      await Promise.all(
        Array.from({ length: 20 }, (_, j) =>
          resetDuringAuth(
            server.url,
            token,
            j % 2 ? '/hostile/refs' : '/hostile/chunks/check',
            j % 4,
          ),
        ),
      );
      tally.resets += 20;
    }
  };
  const bombs = async () => {
    while (running()) {
      const answers = await Promise.all([
        http(`${base}/chunks/${bigBomb.oid}`, { method: 'PUT', token, body: bigBomb.stored }),
        http(`${base}/objects/pack`, { token, body: packBombs }),
      ]).catch(() => [{ status: 'error' }]);
      for (const a of answers) count(a.status);
      tally.bombs += 2;
    }
  };
  const stalls = async () => {
    while (running()) {
      const answers = await Promise.all(
        Array.from({ length: 10 }, () =>
          stalledUpload(
            server.url,
            `/hostile/chunks/${sha256Hex(randomBytes(8))}`,
            stallToken,
            3000,
          ),
        ),
      );
      for (const a of answers) count(a ?? 'cut');
      tally.stalls += 10;
      tally.rounds++;
    }
  };
  await Promise.all([resets(), bombs(), stalls()]);
}

async function pusher(server, index, until, result) {
  const repo = `soak-${index}`;
  const token = await server.token(repo, 'write', `artist-${index}`);
  const dir = await tempDir(`soak-${index}`);
  const env = { XDG_CONFIG_HOME: await tempDir('xdg'), MEDIAGIT_TOKEN: token };
  const run = (a) => runCli(a, { cwd: dir, env, timeoutMs: 300_000 });
  await run(['init', '-q']);
  await run(['remote', 'add', 'origin', `${server.url}/${repo}`]);
  let n = 0;
  // At least one push each, however slow the machine: the run is about the server, not the clock.
  do {
    n++;
    writeFileSync(path.join(dir, `asset-${n}.bin`), randomBytes(256 * 1024 + n * 4096));
    await run(['add', '.']);
    await run(['commit', '-q', '-m', `asset ${n}`]);
    const pushed = await runCli(['push', '-q'], {
      cwd: dir,
      env,
      timeoutMs: 300_000,
      allowFail: true,
    });
    if (pushed.code === 0) result.pushes++;
    else {
      result.failures++;
      result.errors.push(pushed.stderr.trim().split('\n')[0]);
    }
  } while (Date.now() < until);
  const fsck = await runCli(['fsck', '--remote', 'origin', '--full'], {
    cwd: dir,
    env,
    timeoutMs: 300_000,
    allowFail: true,
  });
  if (fsck.code !== 0) result.fsckFailures.push(`${repo}: ${fsck.stderr.trim().split('\n')[0]}`);
  return n;
}

const server = await startTestServer({ child: true });
const pid = server.process.pid;
const started = Date.now();
const until = started + seconds * 1000;
const tally = { resets: 0, bombs: 0, stalls: 0, rounds: 0, statuses: {} };
const result = { pushes: 0, failures: 0, errors: [], fsckFailures: [] };
let peakRss = rssMiB(pid);
const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMiB(pid))), 200);
let figures;
try {
  const hostileToken = await server.token('*', 'write', 'mallory');
  let pushing = true;
  const honest = Promise.all(
    Array.from({ length: PUSHERS }, (_, i) => pusher(server, i + 1, until, result)),
  ).finally(() => (pushing = false));
  const [, commits] = await Promise.all([
    hostile(
      server,
      hostileToken,
      await server.token('*', 'write', 'mallory-2'),
      () => pushing || Date.now() < until,
      tally,
    ),
    honest,
  ]);
  await sleep(200);
  const alive =
    server.process.exitCode === null && (await http(`${server.url}/health`)).status === 200;
  figures = {
    seconds,
    server_alive: alive,
    peak_rss_mib: Math.round(peakRss),
    rss_limit_mib: RSS_LIMIT_MIB,
    honest_pushes: result.pushes,
    commits_made: commits.reduce((a, b) => a + b, 0),
    push_failures: result.failures,
    push_errors: [...new Set(result.errors)].slice(0, 5),
    fsck_failures: result.fsckFailures,
    hostile: tally,
  };
} finally {
  clearInterval(sampler);
  await server.close();
}
const ok =
  figures.server_alive &&
  figures.peak_rss_mib < RSS_LIMIT_MIB &&
  figures.push_failures === 0 &&
  figures.honest_pushes === figures.commits_made &&
  figures.fsck_failures.length === 0;
figures.ok = ok;
if (asJson) console.log(JSON.stringify(figures));
else {
  console.log(
    `soak ${seconds} s: server ${figures.server_alive ? 'up' : 'DOWN'}, peak RSS ${figures.peak_rss_mib} MiB (limit ${RSS_LIMIT_MIB})`,
  );
  console.log(
    `honest pushes ${figures.honest_pushes}/${figures.commits_made}, failures ${figures.push_failures}, fsck ${figures.fsck_failures.length === 0 ? 'clean' : figures.fsck_failures.join('; ')}`,
  );
  console.log(
    `hostile: ${tally.resets} resets, ${tally.bombs} bomb requests, ${tally.stalls} stalled uploads, answers ${JSON.stringify(tally.statuses)}`,
  );
  if (figures.push_errors.length > 0)
    console.log(`push errors: ${figures.push_errors.join(' | ')}`);
}
process.exitCode = ok ? 0 : 1;
