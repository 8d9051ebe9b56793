#!/usr/bin/env node
// Interleaved A/B of the client's start-up before its first request: a push of v1 (small corpus)
// through a fresh `mediagit server` per side and round, and `status` in the committed repository.
// Per push: wall and CPU of the client (wait4's rusage, microseconds), and, from a preload
// (first-request-preload.mjs), the ms since the process started and the CPU it had used when its
// first HTTP request started. Ratios are B ÷ A per round (ABAB…, BABA…); median [min–max].
//
//   node scripts/bench/first-request-ab.mjs --a <folder with bin/ and dist/> [--b <folder>] [--rounds 8]
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { copyTree, fresh, median, opt, root, timedRun, work } from './measure.mjs';
import { startServer } from './network.mjs';
import { corpus } from './corpus.mjs';

const A = path.resolve(opt('--a', ''));
const B = path.resolve(opt('--b', root));
const rounds = Number(opt('--rounds', '8'));
const preload = path.join(root, 'scripts/bench/first-request-preload.mjs');
const env = {
  ...process.env,
  MEDIAGIT_AUTHOR_NAME: 'Bench',
  MEDIAGIT_AUTHOR_EMAIL: 'b@example.com',
};

const timed = (cwd, extraEnv, cmdArgs) =>
  timedRun(cwd, { ...env, ...extraEnv }, process.execPath, cmdArgs);

const v1 = await corpus(1);
const repo = path.join(work, 'first-request-repo');
copyTree(v1, repo);
const bin = (side) => path.join(side, 'bin', 'mediagit.js');
const mg = (...a) => {
  const r = spawnSync(process.execPath, [bin(B), ...a], { cwd: repo, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${a.join(' ')}: ${r.stderr}`);
};
mg('init', '-q');
mg('add', '.');
mg('commit', '-q', '-m', 'v1');
const trace = path.join(work, 'first-request.json');
const figures = { A: [], B: [] };
for (let round = 0; round < rounds; round++) {
  for (const side of round % 2 === 0 ? ['A', 'B'] : ['B', 'A']) {
    const dir = side === 'A' ? A : B;
    const server = await startServer(`first-request-${side}`, null, {
      bin: bin(dir),
      tokenRepo: '*',
    });
    try {
      const name = `r${round}-${side.toLowerCase()}`;
      mg('remote', 'add', name, server.url.replace(/\/bench$/, `/${name}`));
      rmSync(trace, { force: true });
      const push = timed(repo, { MEDIAGIT_TOKEN: server.token, FIRST_REQUEST_OUT: trace }, [
        '--import',
        preload,
        bin(dir),
        'push',
        '-q',
        name,
        'main',
      ]);
      const first = JSON.parse(readFileSync(trace, 'utf8'));
      const status = timed(repo, {}, [bin(dir), 'status']);
      figures[side].push({ push, first, status });
    } finally {
      await server.stop();
    }
  }
  const a = figures.A.at(-1),
    b = figures.B.at(-1);
  console.log(
    `round ${round + 1}: first request at A ${a.first.ms.toFixed(0)} ms (cpu ${a.first.cpuMs.toFixed(0)}) B ${b.first.ms.toFixed(0)} ms (cpu ${b.first.cpuMs.toFixed(0)}); push cpu A ${a.push.cpu.toFixed(3)} B ${b.push.cpu.toFixed(3)}; status cpu A ${a.status.cpu.toFixed(3)} B ${b.status.cpu.toFixed(3)}`,
  );
}
const fmt = (x) => x.toFixed(3);
const row = (label, get) => {
  const r = figures.B.map((b, i) => get(b) / get(figures.A[i]));
  console.log(
    `${label.padEnd(34)} B÷A ${fmt(median(r))} [${fmt(Math.min(...r))}–${fmt(Math.max(...r))}]  (A ${fmt(median(figures.A.map(get)))}, B ${fmt(median(figures.B.map(get)))})`,
  );
};
console.log(`B ÷ A, median [min–max] of ${rounds} rounds`);
row('push: ms to the first request', (f) => f.first.ms);
row('push: CPU ms to the first request', (f) => f.first.cpuMs);
row('push: client wall s', (f) => f.push.wall);
row('push: client CPU s', (f) => f.push.cpu);
row('status: wall s', (f) => f.status.wall);
row('status: CPU s', (f) => f.status.cpu);
fresh(repo);
rmSync(repo, { recursive: true, force: true });
