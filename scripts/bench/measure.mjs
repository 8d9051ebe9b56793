// What every part of the bench shares: options, folders, timing a command, sizes, medians.
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
export const flag = (name) => args.includes(name);
export const opt = (name, fallback) => {
  const i = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return fallback;
  return args[i].includes('=') ? args[i].slice(args[i].indexOf('=') + 1) : args[i + 1];
};
export const profile = opt('--profile', 'small');
export const asJson = flag('--json');
export const repeat = Math.max(1, Number(opt('--repeat', '1')) || 1);
export const cli = path.join(root, 'bin', 'mediagit.js');
export const cache = path.join(root, '.cache', 'bench');
export const work = path.join(cache, `run-${profile}`);
export const PASS = 'bench passphrase';
const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

export const log = (...m) => {
  if (!asJson) console.error(...m);
};

export function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || null;
}

/** Runs a command, returning wall seconds and peak RSS (MiB, when /usr/bin/time exists). */
export function measure(cmd, cmdArgs, options = {}) {
  // Every measurement starts from a quiet disk: without this, whatever ran before (the plain run
  // before the encrypted one, mediagit before restic) is still being written back during it.
  spawnSync('sync');
  const full = timeBin ? [timeBin, ['-v', cmd, ...cmdArgs]] : [cmd, cmdArgs];
  const started = process.hrtime.bigint();
  const r = spawnSync(full[0], full[1], {
    cwd: options.cwd ?? work,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    shell: false,
  });
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0 && !options.allowFail)
    throw new Error(`${cmd} ${cmdArgs.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  const rss = timeBin
    ? Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? 0) / 1024
    : null;
  return { secs, rssMiB: rss, stdout: r.stdout };
}

export const sh = (script, cwd) => measure('sh', ['-c', script], { cwd });

const CLK_TCK =
  Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds a running process has used so far, all its threads (a server over a transfer). */
export function cpuSecondsOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** CPU seconds per thread of `pid` (main, each worker, V8's and libuv's threads by name), by tid. */
export function threadCpuOf(pid) {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      const sys = Number(f[12]) / CLK_TCK;
      out.set(tid, { comm, cpu: Number(f[11]) / CLK_TCK + sys, sys });
    } catch {
      // a thread that ended between the listing and the read
    }
  }
  return out;
}

// /usr/bin/time counts CPU in 10 ms steps, too coarse for a 70 ms status: wait4 gives the child's
// rusage in microseconds, and the wall time is taken around fork and wait alone.
const RUSAGE_RUN = `import os, sys, time
t = time.monotonic()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, ru = os.wait4(pid, 0)
sys.stderr.write("%f %f %f %d\\n" % (time.monotonic() - t, ru.ru_utime, ru.ru_stime, os.waitstatus_to_exitcode(status)))`;

/**
 * One run of `cmd` (after a sync, as every measurement): wall seconds and its own CPU seconds
 * (user+sys of the process and its threads, from wait4). For the A/B scripts, which compare two
 * builds' CLIs.
 */
export function timedRun(cwd, extraEnv, cmd, cmdArgs) {
  spawnSync('sync');
  const r = spawnSync('python3', ['-c', RUSAGE_RUN, cmd, ...cmdArgs], {
    cwd,
    env: { ...process.env, ...env, ...extraEnv },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const [wall, user, sys, code] = r.stderr.trim().split('\n').at(-1).split(' ').map(Number);
  if (r.status !== 0 || code !== 0)
    throw new Error(`${path.basename(cmd)} ${cmdArgs.join(' ')} failed (${code}):\n${r.stderr}`);
  return { wall, cpu: user + sys, user, sys };
}

/**
 * Leaves `bytes` of page cache that this VM has just backed free for the next run. On this VM
 * (free page reporting to its host) memory freed a while ago goes back to the host, and the
 * first write into it costs ~5 ms of kernel time per MB again: a run writing 340 MB of files
 * took 1.6-2 s more CPU when it came first than right after another such run had freed its
 * old files (docs/bench.md "Where pull spends its time"). Writing a scratch file and deleting it
 * before write-back (no disk I/O) hands the next run memory as warm as a machine without that
 * reporting would, whatever ran before. Untimed; the disk is synced first, as every measurement.
 */
export function warmPageCache(bytes, dir = cache) {
  spawnSync('sync');
  const file = path.join(dir, `.warm-${process.pid}`);
  const block = Buffer.alloc(1 << 20, 0x5a);
  const fd = openSync(file, 'w');
  try {
    for (let n = 0; n < bytes; n += block.length) writeSync(fd, block);
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
}

export function duBytes(dir) {
  let total = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) total += statSync(p).size;
    }
  };
  if (existsSync(dir)) walk(dir);
  return total;
}

/** Every file under `dir`, as paths relative to it. */
export function listFiles(dir) {
  const out = [];
  const walk = (rel) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  if (existsSync(dir)) walk('');
  return out;
}

export function fresh(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function copyTree(from, to) {
  fresh(to);
  sh(`cp -a "${from}/." "${to}/" && rm -f "${to}/.complete"`, root);
}

// The key agent's folder is the bench's own, so a run never touches the user's agent.
export const agentDir = path.join(work, 'agent-runtime');
export const env = {
  MEDIAGIT_AUTHOR_NAME: 'Bench',
  MEDIAGIT_AUTHOR_EMAIL: 'bench@example.com',
  MEDIAGIT_PASSPHRASE: PASS,
  MEDIAGIT_NEW_PASSPHRASE: PASS,
  XDG_RUNTIME_DIR: agentDir,
};
/** The bench's environment without the passphrase: an encrypted repository is unlocked by the agent. */
export const agentEnv = Object.fromEntries(
  Object.entries(env).filter(([k]) => k !== 'MEDIAGIT_PASSPHRASE'),
);
export const mg = (cwd, ...a) => measure(process.execPath, [cli, ...a], { cwd, env });

/**
 * The median; of an even count, the mean of the middle two (the lower one alone would make two
 * rounds report their better one).
 */
export function median(values) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = (sorted.length - 1) / 2;
  return (sorted[Math.floor(mid)] + sorted[Math.ceil(mid)]) / 2;
}

/** The element-wise median of several results of one scenario (numbers and {secs, rssMiB} alike). */
export function medianOf(results) {
  if (results.length === 0) return null;
  const merge = (items) => {
    const first = items[0];
    if (typeof first === 'number') return median(items.filter((x) => typeof x === 'number'));
    if (first === null || typeof first !== 'object') return first;
    return Object.fromEntries(
      Object.keys(first).map((k) => [k, merge(items.map((i) => i?.[k]).filter((x) => x != null))]),
    );
  };
  return merge(results.filter((r) => r != null));
}

/** Round r's order of the contenders: each round starts one further on, so none always goes first. */
export function rotate(list, round) {
  const k = list.length === 0 ? 0 : round % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

/**
 * Prints an A/B script's figures: `figures[row] = { A: [...], B: [...] }`, one entry per round
 * with `wall` and `cpu` (and optionally `serverCpu`, `link`: ÷ link time). Each ratio is B ÷ A
 * within a round; the median and min–max over the rounds are printed, and each side's median.
 */
export function printAbFigures(figures, rounds, rowWidth = 16) {
  const fmt = (x) => x.toFixed(2);
  const spread = (values) =>
    `${fmt(median(values))} [${fmt(Math.min(...values))}–${fmt(Math.max(...values))}]`;
  console.log(`B ÷ A, median [min–max] of ${rounds} rounds; A and B medians in seconds`);
  for (const [row, { A, B }] of Object.entries(figures)) {
    const ratio = (key) => B.map((b, i) => b[key] / A[i][key]);
    const sides = (key) =>
      `(A ${fmt(median(A.map((f) => f[key])))}, B ${fmt(median(B.map((f) => f[key])))})`;
    const line = [
      row.padEnd(rowWidth),
      `wall ${spread(ratio('wall'))} ${sides('wall')}`,
      `cpu ${spread(ratio('cpu'))} ${sides('cpu')}`,
    ];
    if (A[0]?.serverCpu !== undefined) line.push(`server cpu ${spread(ratio('serverCpu'))}`);
    if (A[0]?.link !== undefined)
      line.push(
        `÷ link time A ${fmt(median(A.map((f) => f.link)))} B ${fmt(median(B.map((f) => f.link)))}`,
      );
    console.log(line.join('  '));
  }
}
