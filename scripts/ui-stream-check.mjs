#!/usr/bin/env node
// Memory of `mediagit server` while several browsers stream one large file from the web view:
// one file (default 4 GiB) is committed and pushed to a folder the server serves, then N clients
// (default 4) download it through /ui/<repo>/-/raw at once — half from the start, half with a
// Range from the middle, as a player that seeks does — while the server's RSS is sampled.
// Reports idle and peak RSS, the growth, throughput, and checks one client's bytes by SHA-256.
// Usage: node scripts/ui-stream-check.mjs [--size-gib 4] [--clients 4] [--dir /path/with/space]
// Needs `npm run build` first. Exits 1 when RSS grows by 150 MiB or more.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const sizeGiB = Number(opt('--size-gib', '4'));
const clients = Number(opt('--clients', '4'));
const base = opt('--dir', os.tmpdir());
const LIMIT_MIB = 150;
const cli = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'mediagit.js');
const work = mkdtempSync(path.join(base, 'mediagit-ui-stream-'));
const repo = path.join(work, 'project');
// The server's default storage: ./mediagit-data in its working folder.
const data = path.join(work, 'mediagit-data');
const secret = randomBytes(32).toString('hex');
const env = {
  ...process.env,
  MEDIAGIT_AUTHOR_NAME: 'Stream Check',
  MEDIAGIT_AUTHOR_EMAIL: 'stream@example.com',
  MEDIAGIT_JWT_SECRET: secret,
};
const MiB = 1024 * 1024;

function mg(cwd, ...argv) {
  const res = spawnSync(process.execPath, [cli, ...argv], { cwd, env, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`mediagit ${argv.join(' ')}: ${res.stderr}`);
  return res.stdout.trim();
}

async function writeBigFile(file, bytes) {
  // Incompressible, like encoded video; hashed as it is written.
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  const block = 8 * MiB;
  for (let written = 0; written < bytes; written += block) {
    const piece = randomBytes(Math.min(block, bytes - written));
    hash.update(piece);
    if (!out.write(piece)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise((r) => out.end(r));
  return hash.digest('hex');
}

const rssMiB = (pid) => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) / 1024;
};

async function main() {
  const bytes = Math.round(sizeGiB * 1024 ** 3);
  spawnSync('mkdir', ['-p', repo, data]);
  const file = path.join(repo, 'plate.mp4');
  let t = performance.now();
  const digest = await writeBigFile(file, bytes);
  console.log(
    `wrote ${(bytes / 1024 ** 3).toFixed(2)} GiB in ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  t = performance.now();
  mg(repo, 'init', '-q');
  mg(repo, 'add', '.');
  mg(repo, 'commit', '-q', '-m', 'one big plate');
  // The server's storage is a folder: push into it as a folder remote (objects are hard-linked).
  mg(repo, 'remote', 'add', 'origin', path.join(data, 'plates'));
  mg(repo, 'push', '-q', '--create');
  rmSync(file);
  console.log(`committed and pushed in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const server = spawn(process.execPath, [cli, 'server'], {
    cwd: work,
    env: { ...env, MEDIAGIT_HOST: '127.0.0.1', MEDIAGIT_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.setEncoding('utf8').on('data', (text) => {
      out += text;
      const match = /listening on (\S+)/.exec(out);
      if (match) resolve(match[1]);
    });
    server.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  try {
    const token = mg(
      work,
      'server',
      'token',
      '--repo',
      'plates',
      '--role',
      'read',
      '--sub',
      'check',
    );
    const raw = `${url}/ui/plates/-/raw?path=plate.mp4`;
    const headers = { authorization: `Bearer ${token}` };
    // Warm up: load the UI module and open the store, so idle means ready to serve.
    const warm = await fetch(raw, { headers: { ...headers, range: 'bytes=0-0' } });
    await warm.arrayBuffer();
    if (warm.status !== 206) throw new Error(`warm-up request: HTTP ${warm.status}`);
    await new Promise((r) => setTimeout(r, 1000));
    const idle = rssMiB(server.pid);
    let peak = idle;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssMiB(server.pid));
    }, 100);
    t = performance.now();
    const half = Math.floor(bytes / 2);
    const results = await Promise.all(
      Array.from({ length: clients }, async (_, i) => {
        const fromMiddle = i % 2 === 1;
        const res = await fetch(raw, {
          headers: fromMiddle ? { ...headers, range: `bytes=${half}-` } : headers,
        });
        if (res.status !== (fromMiddle ? 206 : 200))
          throw new Error(
            `client ${i}: HTTP ${res.status} ${(await res.text())
              .replace(/<[^>]*>/g, ' ')
              .replace(/\s+/g, ' ')
              .slice(-300)}`,
          );
        const hash = i === 0 ? createHash('sha256') : null;
        let received = 0;
        for await (const piece of res.body) {
          received += piece.length;
          hash?.update(piece);
        }
        return { received, digest: hash?.digest('hex') };
      }),
    );
    clearInterval(sampler);
    const seconds = (performance.now() - t) / 1000;
    const total = results.reduce((s, r) => s + r.received, 0);
    const expected = Math.ceil(clients / 2) * bytes + Math.floor(clients / 2) * (bytes - half);
    if (total !== expected) throw new Error(`received ${total} bytes, expected ${expected}`);
    if (results[0].digest !== digest)
      throw new Error('client 0 received other bytes than the file');
    const growth = peak - idle;
    console.log(
      `${clients} clients, ${(total / 1024 ** 3).toFixed(2)} GiB in ${seconds.toFixed(1)} s ` +
        `(${(total / MiB / seconds).toFixed(0)} MiB/s); server RSS idle ${idle.toFixed(0)} MiB, ` +
        `peak ${peak.toFixed(0)} MiB, growth ${growth.toFixed(0)} MiB (limit ${LIMIT_MIB}); bytes verified`,
    );
    process.exitCode = growth < LIMIT_MIB ? 0 : 1;
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
