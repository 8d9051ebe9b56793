#!/usr/bin/env node
// Incremental push (v2 after v1), clone and pull through `mediagit server` behind the userspace
// link emulator, with the server's negotiate endpoint on and off (off: the version-1 calls, as
// before it existed), interleaved round by round. Each transfer is divided by its link time
// (bytes in the busier direction ÷ rate + one RTT), as `npm run bench -- --link` does.
//
//   npm run build && node scripts/round-trips-link.mjs [--profile small] [--rounds 3] [--link 200mbit,40ms]
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => path.join(root, 'dist', p);
const { startTestServer } = await import(dist('test/support/server-harness.js'));
const { makeCorpus } = await import(dist('test/support/corpus.js'));
const { parseLinkSpec, linkSeconds } = await import(dist('test/support/link-emulator.js'));
// The bench's emulator process, so spawnSync'd commands do not stall the link they go through.
const { startLink } = await import('./bench/network.mjs');

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const profile = opt('--profile', 'small');
const rounds = Number(opt('--rounds', '3'));
const spec = opt('--link', '200mbit,40ms');
const link = parseLinkSpec(spec);
const cli = path.join(root, 'bin', 'mediagit.js');
const work = mkdtempSync(path.join(os.tmpdir(), 'mg-rt-link-'));

function mg(cwd, env, ...a) {
  const r = spawnSync(process.execPath, [cli, ...a], {
    cwd,
    env: { ...process.env, ...env, MEDIAGIT_AUTHOR_NAME: 'B', MEDIAGIT_AUTHOR_EMAIL: 'b@x' },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`mediagit ${a.join(' ')}: ${r.status}\n${r.stderr}`);
  return r;
}

/** Seconds for `fn`, and its bytes over the link as a ratio of the link time. */
async function over(lk, fn) {
  const before = await lk.counters();
  const t0 = performance.now();
  fn();
  const secs = (performance.now() - t0) / 1000;
  const after = await lk.counters();
  const bytes = Math.max(after.up - before.up, after.down - before.down);
  const floor = linkSeconds(link, bytes, 1);
  return { secs, bytes, floor, ratio: secs / floor };
}

const v1 = path.join(work, 'v1');
await makeCorpus(v1, 1, profile);
const results = { on: [], off: [] };
for (let round = 0; round < rounds; round++) {
  const modes = round % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
  for (const mode of modes) {
    const server = await startTestServer({
      child: true,
      config: mode === 'off' ? '[server]\nnegotiate = false\n' : '',
    });
    const lk = await startLink(server.url, spec);
    try {
      const env = {
        MEDIAGIT_TOKEN: await server.token('*', 'write'),
        XDG_CONFIG_HOME: path.join(work, 'xdg'),
      };
      const repo = path.join(work, `repo-${round}-${mode}`);
      cpSync(v1, repo, { recursive: true });
      mg(repo, env, 'init', '-q');
      mg(repo, env, 'add', '.');
      mg(repo, env, 'commit', '-q', '-m', 'v1');
      mg(repo, env, 'remote', 'add', 'origin', `${lk.url}/bench`);
      mg(repo, env, 'push', '-q', 'origin', 'main');
      const clone = path.join(work, `clone-${round}-${mode}`);
      const cloned = await over(lk, () => mg(work, env, 'clone', '-q', `${lk.url}/bench`, clone));
      await makeCorpus(repo, 2, profile);
      mg(repo, env, 'add', '.');
      mg(repo, env, 'commit', '-q', '-m', 'v2');
      const pushed = await over(lk, () => mg(repo, env, 'push', '-q'));
      const pulled = await over(lk, () => mg(clone, env, 'pull', '-q'));
      results[mode].push({ pushV2: pushed, clone: cloned, pull: pulled });
      const f = (m) =>
        `${m.secs.toFixed(2)} s (${(m.bytes / 1e6).toFixed(1)} MB, ${m.ratio.toFixed(2)}x)`;
      console.log(
        `round ${round} negotiate ${mode}: push v2 ${f(pushed)}, clone ${f(cloned)}, pull ${f(pulled)}`,
      );
      rmSync(repo, { recursive: true, force: true });
      rmSync(clone, { recursive: true, force: true });
    } finally {
      await lk.stop();
      await server.close();
    }
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
for (const mode of ['off', 'on'])
  for (const what of ['pushV2', 'clone', 'pull']) {
    const rs = results[mode].map((r) => r[what]);
    console.log(
      `negotiate ${mode} ${what}: median ${median(rs.map((r) => r.secs)).toFixed(2)} s, ` +
        `link time ${median(rs.map((r) => r.floor)).toFixed(2)} s, ratio ${median(rs.map((r) => r.ratio)).toFixed(2)} ` +
        `(${rs.map((r) => r.ratio.toFixed(2)).join(' ')})`,
    );
  }
rmSync(work, { recursive: true, force: true });
