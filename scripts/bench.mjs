#!/usr/bin/env node
// npm run bench [-- --profile small|full] [--repeat N] [--json] [--no-restic] [--no-encrypted] [--no-server] [--no-network] [--lean-only]
//
// With MEDIAGIT_TEST_S3_* set (eval "$(test/servers/radosgw.sh env)"), each round also moves v1
// over S3: mediagit direct, mediagit server storing into S3, rclone and restic on the same bucket.
//
// Times mediagit on a generated media corpus (two versions of an asset project) beside the
// machine's floors (cp -r, reading every file, openssl sha256) and restic on the same trees, all
// in one run, and prints ratios: absolute times drift between machines, ratios do not.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const opt = (name, fallback) => {
  const i = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return fallback;
  return args[i].includes('=') ? args[i].split('=')[1] : args[i + 1];
};
const profile = opt('--profile', 'small');
const asJson = flag('--json');
const cli = path.join(root, 'bin', 'mediagit.js');
const cache = path.join(root, '.cache', 'bench');
const work = path.join(cache, `run-${profile}`);
const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const log = (...m) => {
  if (!asJson) console.error(...m);
};
const PASS = 'bench passphrase';

const { makeCorpus } = await import(path.join(root, 'dist/test/support/corpus.js'));

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || null;
}

/** Runs a command, returning wall seconds and peak RSS (MiB, when /usr/bin/time exists). */
function measure(cmd, cmdArgs, options = {}) {
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

const sh = (script, cwd) => measure('sh', ['-c', script], { cwd });

function duBytes(dir) {
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

async function corpus(version) {
  const dir = path.join(cache, `corpus-${profile}-v${version}`);
  if (existsSync(path.join(dir, '.complete'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  if (version === 1) await makeCorpus(dir, 1, profile);
  else {
    sh(`cp -a "${await corpus(1)}/." "${dir}/"`, root);
    rmSync(path.join(dir, '.complete'), { force: true });
    await makeCorpus(dir, 2, profile);
  }
  sh(`touch "${dir}/.complete"`, root);
  return dir;
}

function fresh(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

function copyTree(from, to) {
  fresh(to);
  sh(`cp -a "${from}/." "${to}/" && rm -f "${to}/.complete"`, root);
}

// The key agent's folder is the bench's own, so a run never touches the user's agent.
const agentDir = path.join(work, 'agent-runtime');
const env = {
  MEDIAGIT_AUTHOR_NAME: 'Bench',
  MEDIAGIT_AUTHOR_EMAIL: 'bench@example.com',
  MEDIAGIT_PASSPHRASE: PASS,
  MEDIAGIT_NEW_PASSPHRASE: PASS,
  XDG_RUNTIME_DIR: agentDir,
};
const mg = (cwd, ...a) => measure(process.execPath, [cli, ...a], { cwd, env });

/**
 * The mediagit pipeline on the two versions, as steps (see lockstep); its result is the generator's
 * return value, one figure per operation.
 */
async function* mediagitSteps(v1, v2, encrypted) {
  const repo = path.join(work, encrypted ? 'mg-enc' : 'mg');
  copyTree(v1, repo);
  mg(repo, 'init', '-q', ...(encrypted ? ['--encrypt'] : []));
  // As a user working all day would: unlock once (Argon2id), then every command gets the key from
  // the agent. The cost of unlocking without it is measured and reported on its own.
  if (encrypted) mg(repo, 'key', 'cache', '--timeout', '1h');
  const add1 = mg(repo, 'add', '.');
  const commit1 = mg(repo, 'commit', '-q', '-m', 'v1');
  yield 'store v1';
  const storedV1 = duBytes(path.join(repo, '.mediagit'));
  const remote = path.join(work, encrypted ? 'remote-enc' : 'remote');
  rmSync(remote, { recursive: true, force: true });
  mg(repo, 'remote', 'add', 'origin', remote);
  const push1 = mg(repo, 'push', '-q', '--create');
  yield 'push v1';
  // v2 = the artist's edits applied in place by the generator, as an artist's tools would: files
  // that did not change keep their inode and mtime, so the index can vouch for them unread.
  await makeCorpus(repo, 2, profile);
  const add2 = mg(repo, 'add', '.');
  const commit2 = mg(repo, 'commit', '-q', '-m', 'v2');
  const storedV2 = duBytes(path.join(repo, '.mediagit'));
  yield 'store v2';
  const remoteBefore = duBytes(remote);
  const push2 = mg(repo, 'push', '--json');
  const sentV2 = JSON.parse(push2.stdout).bytesSent;
  const remoteGrowth = duBytes(remote) - remoteBefore;
  yield 'push v2';
  const cloneDir = path.join(work, encrypted ? 'clone-enc' : 'clone');
  rmSync(cloneDir, { recursive: true, force: true });
  // Every version's content, as clones fetched before they became tip-only (leanScenario has those).
  const clone = mg(work, 'clone', '-q', '--history-content', 'all', remote, cloneDir);
  yield 'clone';
  sh(`find "${repo}" -mindepth 1 -maxdepth 1 ! -name .mediagit -exec rm -rf {} +`, root);
  const checkout = mg(repo, 'reset', '--hard', '-q');
  yield 'restore';
  const status = mg(repo, 'status', '--porcelain');
  const coldUnlock = encrypted
    ? measure(process.execPath, [cli, 'status', '--porcelain'], {
        cwd: repo,
        env: { ...env, MEDIAGIT_AGENT: '0' },
      }).secs - status.secs
    : null;
  return {
    coldUnlock,
    addV1: {
      secs: add1.secs + commit1.secs,
      rssMiB: Math.max(add1.rssMiB ?? 0, commit1.rssMiB ?? 0),
    },
    addV2: {
      secs: add2.secs + commit2.secs,
      rssMiB: Math.max(add2.rssMiB ?? 0, commit2.rssMiB ?? 0),
    },
    checkout: { secs: checkout.secs, rssMiB: checkout.rssMiB },
    status: { secs: status.secs, rssMiB: status.rssMiB },
    push: { secs: push1.secs, rssMiB: push1.rssMiB },
    pushV2: { secs: push2.secs, rssMiB: push2.rssMiB },
    clone: { secs: clone.secs, rssMiB: clone.rssMiB },
    storedV1,
    storedGrowthV2: storedV2 - storedV1,
    sentV2,
    remoteGrowthV2: remoteGrowth,
  };
}

/**
 * Lean workspaces on the corpus with v1 + v2 pushed: a default (tip-only) clone against a full one
 * (`--history-content all`), and how much `.mediagit` holds beside the working tree right after
 * the clone, after switching to v1 and back (which fetches v1's content), and after `prune`.
 */
async function leanScenario(v1) {
  const repo = path.join(work, 'lean-src');
  copyTree(v1, repo);
  mg(repo, 'init', '-q');
  mg(repo, 'add', '.');
  mg(repo, 'commit', '-q', '-m', 'v1');
  const remote = fresh(path.join(work, 'lean-remote'));
  rmSync(remote, { recursive: true, force: true });
  mg(repo, 'remote', 'add', 'origin', remote);
  mg(repo, 'push', '-q', '--create');
  await makeCorpus(repo, 2, profile);
  mg(repo, 'add', '.');
  mg(repo, 'commit', '-q', '-m', 'v2');
  mg(repo, 'push', '-q');
  const tipBytes = duBytes(repo) - duBytes(path.join(repo, '.mediagit'));
  const full = path.join(work, 'lean-full');
  rmSync(full, { recursive: true, force: true });
  // --no-hardlinks on both: bytes are copied, as from any remote that is not a folder beside us.
  const fullClone = mg(
    work,
    'clone',
    '--json',
    '--no-hardlinks',
    '--history-content',
    'all',
    remote,
    full,
  );
  const lean = path.join(work, 'lean-clone');
  rmSync(lean, { recursive: true, force: true });
  const leanClone = mg(work, 'clone', '--json', '--no-hardlinks', remote, lean);
  const tree = () => duBytes(lean) - duBytes(path.join(lean, '.mediagit'));
  const afterClone = duBytes(path.join(lean, '.mediagit')) / tree();
  mg(lean, 'checkout', '-q', 'HEAD~1');
  mg(lean, 'checkout', '-q', 'main');
  const afterSwitch = duBytes(path.join(lean, '.mediagit')) / tree();
  const pruned = mg(lean, 'prune', '-q');
  const afterPrune = duBytes(path.join(lean, '.mediagit')) / tree();
  rmSync(full, { recursive: true, force: true });
  return {
    tipBytes,
    fullReceived: JSON.parse(fullClone.stdout).bytesReceived,
    leanReceived: JSON.parse(leanClone.stdout).bytesReceived,
    fullSecs: fullClone.secs,
    leanSecs: leanClone.secs,
    pruneSecs: pruned.secs,
    afterClone,
    afterSwitch,
    afterPrune,
  };
}

function printLean(l) {
  const f = (x, d = 3) => x.toFixed(d);
  console.log(
    '\n| lean workspace (v1 + v2 pushed) | figure |\n| --- | --- |' +
      `\n| default clone: bytes received ÷ tip size | ${f(l.leanReceived / l.tipBytes)} (${(l.leanReceived / 1e6).toFixed(1)} MB of ${(l.tipBytes / 1e6).toFixed(1)} MB) |` +
      `\n| full clone (--history-content all): bytes received ÷ tip size | ${f(l.fullReceived / l.tipBytes)} |` +
      `\n| default clone time ÷ full clone time | ${f(l.leanSecs / l.fullSecs)} (${f(l.leanSecs, 2)} s vs ${f(l.fullSecs, 2)} s) |` +
      `\n| .mediagit ÷ working tree, after clone | ${f(l.afterClone)} |` +
      `\n| .mediagit ÷ working tree, after checkout v1 and back | ${f(l.afterSwitch)} |` +
      `\n| .mediagit ÷ working tree, after prune | ${f(l.afterPrune)} (prune ${f(l.pruneSecs, 2)} s) |`,
  );
}

/** restic on the same trees, as steps aligned with mediagitSteps' (backup, backup, restore). */
async function* resticSteps(v1) {
  const restic = which('restic');
  const repo = fresh(path.join(work, 'restic-repo'));
  const renv = {
    RESTIC_PASSWORD: PASS,
    RESTIC_REPOSITORY: repo,
    RESTIC_CACHE_DIR: path.join(work, 'restic-cache'),
  };
  const r = (...a) => measure(restic, ['--no-cache', '-q', ...a], { env: renv });
  r('init');
  // Back up from one fixed path so restic treats v2 as the next version of the same tree.
  const tree = path.join(work, 'restic-tree');
  copyTree(v1, tree);
  const b1 = r('backup', '--host', 'bench', tree);
  const storedV1 = duBytes(repo);
  yield 'store v1';
  yield 'push v1';
  await makeCorpus(tree, 2, profile);
  const b2 = r('backup', '--host', 'bench', tree);
  const storedV2 = duBytes(repo);
  yield 'store v2';
  yield 'push v2';
  yield 'clone';
  const target = fresh(path.join(work, 'restic-restore'));
  const restore = r('restore', 'latest', '--target', target);
  yield 'restore';
  return { backupV1: b1, backupV2: b2, restore, storedV1, storedGrowthV2: storedV2 - storedV1 };
}

/**
 * Runs the scenarios' steps in turns — step 1 of each, then step 2 of each, … — and returns their
 * results. The figures a ratio compares (plain and encrypted add, mediagit's checkout and restic's
 * restore) are then taken seconds apart rather than a minute: this VM's speed drifts by half within
 * a run, and that drift is what made encrypted ÷ plain swing between rounds.
 */
async function lockstep(scenarios) {
  const results = new Array(scenarios.length).fill(null);
  let active = scenarios.map((steps, index) => ({ steps, index, step: null }));
  while (active.length > 0) {
    const next = [];
    for (const scenario of active) {
      const { value, done } = await scenario.steps.next();
      if (done) results[scenario.index] = value;
      else {
        if (next.length > 0 && next[0].step !== value)
          throw new Error(`bench scenarios out of step: ${next[0].step} vs ${value}`);
        scenario.step = value;
        next.push(scenario);
      }
    }
    active = next;
  }
  return results;
}

log(`building corpus (${profile}, cached in ${cache})…`);
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

// Floors, page cache warm (the corpus was just built or read). Measured again in every round, so
// each round's times are divided by floors taken minutes, not a quarter of an hour, apart.
sh(`cat $(find "${v1}" -type f) > /dev/null`, root);
// Each floor is the median of three runs: a single cp -r swings 4× with the page cache's mood.
const median3 = (f) => [f(), f(), f()].sort((a, b) => a - b)[1];
function measureFloors() {
  return {
    read: median3(() => sh(`find "${v1}" -type f -exec cat {} + | wc -c > /dev/null`, root).secs),
    sha256: median3(
      () => sh(`find "${v1}" -type f -exec openssl dgst -sha256 {} + > /dev/null`, root).secs,
    ),
    cp: median3(() => {
      const dst = path.join(work, 'cp-floor');
      rmSync(dst, { recursive: true, force: true });
      const secs = sh(`cp -r "${v1}" "${dst}"`, root).secs;
      rmSync(dst, { recursive: true, force: true });
      return secs;
    }),
  };
}

/**
 * Push and clone through `mediagit server` on loopback (local-folder storage): the same v1 tree,
 * committed in a fresh repository, pushed over HTTP, then cloned into an empty folder.
 */
async function runServer(v1, encrypted, storageToml = null, label = '') {
  const { spawn } = await import('node:child_process');
  const dataDir = fresh(
    path.join(work, `${encrypted ? 'server-data-enc' : 'server-data'}${label}`),
  );
  const secret = 'bench-secret-'.padEnd(48, 'x');
  const senv = {
    ...process.env,
    MEDIAGIT_HOST: '127.0.0.1',
    MEDIAGIT_PORT: '0',
    MEDIAGIT_JWT_SECRET: secret,
  };
  writeFileSync(
    path.join(dataDir, 'mediagit.toml'),
    storageToml ?? `[storage]\nbackend = "local"\n\n[storage.local]\npath = "store"\n`,
  );
  const child = spawn(
    process.execPath,
    [cli, 'server', '--config', path.join(dataDir, 'mediagit.toml')],
    { cwd: dataDir, env: senv, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 15000);
    const onData = (b) => {
      out += b;
      const m = /listening on (https?:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
  try {
    const token = spawnSync(
      process.execPath,
      [cli, 'server', 'token', '--repo', 'bench', '--role', 'write'],
      { env: senv, encoding: 'utf8' },
    ).stdout.trim();
    const henv = { ...env, MEDIAGIT_TOKEN: token };
    const repo = path.join(work, `${encrypted ? 'srv-repo-enc' : 'srv-repo'}${label}`);
    copyTree(v1, repo);
    const run = (cwd, ...a) => measure(process.execPath, [cli, ...a], { cwd, env: henv });
    run(repo, 'init', '-q', ...(encrypted ? ['--encrypt'] : []));
    if (encrypted) run(repo, 'key', 'cache', '--timeout', '1h');
    run(repo, 'add', '.');
    run(repo, 'commit', '-q', '-m', 'v1');
    run(repo, 'remote', 'add', 'origin', `${url}/bench`);
    const pushed = run(repo, 'push', '-q');
    const target = path.join(work, `${encrypted ? 'srv-clone-enc' : 'srv-clone'}${label}`);
    rmSync(target, { recursive: true, force: true });
    const cloned = run(work, 'clone', '-q', `${url}/bench`, target);
    return {
      push: { secs: pushed.secs, rssMiB: pushed.rssMiB },
      clone: { secs: cloned.secs, rssMiB: cloned.rssMiB },
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

/**
 * The same v1 tree over S3 (radosgw or any endpoint in MEDIAGIT_TEST_S3_*, as the test servers
 * print them): mediagit straight to the bucket, mediagit server storing into it, rclone copying
 * the files up and down, and restic backing up to and restoring from a repository in the same
 * bucket. Each contender in turn, within one round, so their ratios compare neighbours in time.
 */
async function runNetwork(v1, round) {
  const e = process.env;
  const endpoint = e.MEDIAGIT_TEST_S3_ENDPOINT;
  const access = e.MEDIAGIT_TEST_S3_ACCESS_KEY ?? '';
  const secret = e.MEDIAGIT_TEST_S3_SECRET_KEY ?? '';
  const region = e.MEDIAGIT_TEST_S3_REGION ?? 'us-east-1';
  const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
  const admin = new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId: access, secretAccessKey: secret },
  });
  const bucket = `mediagit-bench-${Date.now().toString(36)}-${round}`;
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  admin.destroy();
  const out = {};
  const opts = [
    ['endpoint', endpoint],
    ['access_key', access],
    ['secret_key', secret],
    ['region', region],
    ['force_path_style', 'true'],
  ].flatMap(([k, v]) => ['-o', `${k}=${v}`]);

  // mediagit → S3 directly.
  const repo = path.join(work, 'net-mg');
  copyTree(v1, repo);
  mg(repo, 'init', '-q');
  mg(repo, 'add', '.');
  mg(repo, 'commit', '-q', '-m', 'v1');
  mg(repo, 'remote', 'add', 'origin', `s3://${bucket}/mediagit`, ...opts);
  out.s3Push = mg(repo, 'push', '-q');
  const cloneDir = path.join(work, 'net-mg-clone');
  rmSync(cloneDir, { recursive: true, force: true });
  out.s3Clone = mg(work, 'clone', '-q', `s3://${bucket}/mediagit`, cloneDir, ...opts);

  // mediagit server storing into the same bucket.
  const toml = [
    '[storage]',
    'backend = "s3"',
    '[storage.s3]',
    `bucket = "${bucket}"`,
    'prefix = "server"',
    `region = "${region}"`,
    `endpoint = "${endpoint}"`,
    'force_path_style = true',
    `access_key = "${access}"`,
    `secret_key = "${secret}"`,
    '',
  ].join('\n');
  const viaServer = await runServer(v1, false, toml, '-s3');
  out.serverS3Push = viaServer.push;
  out.serverS3Clone = viaServer.clone;

  // rclone: the files themselves, up and down (its defaults: 4 transfers, 8 checkers).
  const rclone = which('rclone');
  if (rclone) {
    const renv = {
      RCLONE_CONFIG_BENCH_TYPE: 's3',
      RCLONE_CONFIG_BENCH_PROVIDER: 'Ceph',
      RCLONE_CONFIG_BENCH_ENDPOINT: endpoint,
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: access,
      RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: secret,
      RCLONE_CONFIG_BENCH_REGION: region,
      // A CA bundle in the environment (for TLS elsewhere) makes rclone refuse a plain-http endpoint.
      AWS_CA_BUNDLE: '',
    };
    out.rcloneUp = measure(rclone, ['copy', v1, `bench:${bucket}/rclone`], { env: renv });
    const down = fresh(path.join(work, 'net-rclone-down'));
    out.rcloneDown = measure(rclone, ['copy', `bench:${bucket}/rclone`, down], { env: renv });
  }

  // restic: a repository in the same bucket.
  const restic = which('restic');
  if (restic && !flag('--no-restic')) {
    const renv = {
      RESTIC_PASSWORD: PASS,
      RESTIC_REPOSITORY: `s3:${endpoint}/${bucket}/restic`,
      AWS_ACCESS_KEY_ID: access,
      AWS_SECRET_ACCESS_KEY: secret,
      AWS_DEFAULT_REGION: region,
    };
    const r = (...a) => measure(restic, ['--no-cache', '-q', ...a], { env: renv });
    r('init');
    const tree = path.join(work, 'net-restic-tree');
    copyTree(v1, tree);
    out.resticS3Backup = r('backup', '--host', 'bench', tree);
    const target = fresh(path.join(work, 'net-restic-restore'));
    out.resticS3Restore = r('restore', 'latest', '--target', target);
  }
  return out;
}

/**
 * Runs every scenario `repeat` times (plain, encrypted and restic in lockstep within a round) and
 * keeps each figure's median: on a shared VM one run's timings swing by a third with the page
 * cache's and the host's mood.
 */
const repeat = Math.max(1, Number(opt('--repeat', '1')) || 1);
const runs = {
  floors: [],
  plain: [],
  enc: [],
  server: [],
  serverEnc: [],
  restic: [],
  network: [],
};
const withNetwork = Boolean(process.env.MEDIAGIT_TEST_S3_ENDPOINT) && !flag('--no-network');
for (let round = 1; round <= repeat; round++) {
  const tag = repeat > 1 ? ` (round ${round} of ${repeat})` : '';
  log(`floors${tag}…`);
  runs.floors.push(measureFloors());
  const withEncrypted = !flag('--no-encrypted');
  const withRestic = Boolean(which('restic')) && !flag('--no-restic');
  log(
    `mediagit (plain${withEncrypted ? ', encrypted' : ''})${withRestic ? ' and restic' : ''}, step by step${tag}…`,
  );
  const scenarios = { plain: mediagitSteps(v1, v2, false) };
  if (withEncrypted) scenarios.enc = mediagitSteps(v1, v2, true);
  if (withRestic) scenarios.restic = resticSteps(v1);
  const results = await lockstep(Object.values(scenarios));
  Object.keys(scenarios).forEach((name, i) => runs[name].push(results[i]));
  if (!flag('--no-server')) {
    log(`mediagit server (loopback)${tag}…`);
    runs.server.push(await runServer(v1, false));
    if (withEncrypted) runs.serverEnc.push(await runServer(v1, true));
  }
  if (withNetwork) {
    log(
      `over S3 (${process.env.MEDIAGIT_TEST_S3_ENDPOINT}): mediagit, mediagit server, rclone, restic${tag}…`,
    );
    runs.network.push(await runNetwork(v1, round));
  }
}

log('lean workspace…');
const leanFigures = await leanScenario(v1);

/** The element-wise median of several results of one scenario (numbers and {secs, rssMiB} alike). */
function medianOf(results) {
  if (results.length === 0) return null;
  const pick = (values) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)];
  };
  const merge = (items) => {
    const first = items[0];
    if (typeof first === 'number') return pick(items);
    if (first === null || typeof first !== 'object') return first;
    return Object.fromEntries(Object.keys(first).map((k) => [k, merge(items.map((i) => i[k]))]));
  };
  return merge(results);
}
const floors = medianOf(runs.floors);
const plain = medianOf(runs.plain);
const enc = medianOf(runs.enc);
const server = medianOf(runs.server);
const restic = medianOf(runs.restic);

const mb = (bytes, secs) => bytes / 1e6 / secs;
/**
 * A ratio is the median of each round's own ratio, not a ratio of medians: the two sides of one
 * round ran minutes apart, and on a shared machine whose speed drifts by half over a long run that
 * is what keeps a slow round from being divided by a fast one.
 */
function ratioOf(top, bottom) {
  const ratios = [];
  for (let i = 0; i < repeat; i++) {
    const a = top(i);
    const b = bottom(i);
    if (typeof a === 'number' && typeof b === 'number' && b > 0) ratios.push(a / b);
  }
  return ratios.length === 0 ? null : medianOf(ratios);
}
const rows = [];
/** `pick` selects the operation's measurement from one round's results ({secs, rssMiB}). */
const row = (
  what,
  scenario,
  pick,
  bytes,
  resticPick,
  encScenario = scenario === 'plain' ? 'enc' : 'serverEnc',
) => {
  const m = pick(medianOf(runs[scenario]));
  const encRuns = runs[encScenario];
  const encM = encRuns.length > 0 ? pick(medianOf(encRuns)) : null;
  const secsAt = (i) => pick(runs[scenario][i])?.secs;
  const floorAt = (k) => (i) => runs.floors[i]?.[k];
  rows.push({
    what,
    secs: m.secs,
    mbps: mb(bytes, m.secs),
    rssMiB: m.rssMiB,
    vsCp: ratioOf(secsAt, floorAt('cp')),
    vsRead: ratioOf(secsAt, floorAt('read')),
    vsSha256: ratioOf(secsAt, floorAt('sha256')),
    vsRestic:
      resticPick && runs.restic.length > 0
        ? ratioOf(secsAt, (i) => resticPick(runs.restic[i])?.secs)
        : null,
    resticSecs: resticPick && restic ? resticPick(restic).secs : null,
    encryptedSecs: encM?.secs ?? null,
    encryptedRatio: encM ? ratioOf((i) => encRuns[i] && pick(encRuns[i]).secs, secsAt) : null,
    encryptedRssMiB: encM?.rssMiB ?? null,
  });
};
row(
  'add+commit v1',
  'plain',
  (r) => r.addV1,
  bytesV1,
  (r) => r.backupV1,
);
row(
  'add+commit v2',
  'plain',
  (r) => r.addV2,
  bytesV2,
  (r) => r.backupV2,
);
row(
  'checkout v2 (empty tree)',
  'plain',
  (r) => r.checkout,
  bytesV2,
  (r) => r.restore,
);
row('push v1 → local remote', 'plain', (r) => r.push, bytesV1, null);
row('push v2 → local remote', 'plain', (r) => r.pushV2, bytesV2, null);
row('clone from local remote', 'plain', (r) => r.clone, bytesV2, null);
if (server) {
  row('push v1 → mediagit server', 'server', (r) => r.push, bytesV1, null);
  row('clone from mediagit server', 'server', (r) => r.clone, bytesV1, null);
}
row('status (clean)', 'plain', (r) => r.status, bytesV2, null);

/**
 * Transfers compared with what another tool takes for the same job in the same round: `top` and
 * `bottom` pick a {secs} from one round's results (`bottom` may come from another scenario).
 */
const networkRows = [];
const versus = (what, top, against, bottom) => {
  const tops = runs.network.map((r, i) => top(r, i)?.secs).filter((x) => typeof x === 'number');
  if (tops.length === 0) return;
  const ratios = runs.network
    .map((r, i) => {
      const a = top(r, i)?.secs;
      const b = bottom(r, i)?.secs;
      return typeof a === 'number' && typeof b === 'number' && b > 0 ? a / b : null;
    })
    .filter((x) => x !== null)
    .sort((a, b) => a - b);
  networkRows.push({
    what,
    secs: medianOf(tops),
    mbps: mb(bytesV1, medianOf(tops)),
    against,
    ratio: ratios.length ? medianOf(ratios) : null,
    spread: ratios.length ? [ratios[0], ratios[ratios.length - 1]] : null,
  });
};
if (runs.server.length > 0 && runs.restic.length > 0)
  versus(
    'clone from mediagit server (local storage)',
    (_r, i) => runs.server[i]?.clone,
    'restic restore (local repository)',
    (_r, i) => runs.restic[i]?.restore,
  );
versus(
  'push v1 → S3',
  (r) => r.s3Push,
  'rclone copy up',
  (r) => r.rcloneUp,
);
versus(
  'push v1 → S3',
  (r) => r.s3Push,
  'restic backup → S3',
  (r) => r.resticS3Backup,
);
versus(
  'clone from S3',
  (r) => r.s3Clone,
  'rclone copy down',
  (r) => r.rcloneDown,
);
versus(
  'clone from S3',
  (r) => r.s3Clone,
  'restic restore ← S3',
  (r) => r.resticS3Restore,
);
versus(
  'push v1 → server over S3',
  (r) => r.serverS3Push,
  'push v1 → S3 direct',
  (r) => r.s3Push,
);
versus(
  'clone from server over S3',
  (r) => r.serverS3Clone,
  'clone from S3 direct',
  (r) => r.s3Clone,
);

const storage = {
  corpusV1: bytesV1,
  corpusV2: bytesV2,
  mediagit: {
    storedV1: plain.storedV1,
    storedGrowthV2: plain.storedGrowthV2,
    sentV2: plain.sentV2,
    remoteGrowthV2: plain.remoteGrowthV2,
  },
  mediagitEncrypted: enc
    ? {
        storedV1: enc.storedV1,
        storedGrowthV2: enc.storedGrowthV2,
        sentV2: enc.sentV2,
        remoteGrowthV2: enc.remoteGrowthV2,
      }
    : null,
  restic: restic ? { storedV1: restic.storedV1, storedGrowthV2: restic.storedGrowthV2 } : null,
};

if (asJson) {
  console.log(
    JSON.stringify(
      {
        profile,
        repeat,
        floors,
        rows,
        networkRows,
        storage,
        lean: leanFigures,
        coldUnlockSecs: enc?.coldUnlock ?? null,
      },
      null,
      2,
    ),
  );
} else {
  const f = (x, d = 2) => (x === null || x === undefined ? '—' : x.toFixed(d));
  console.log(
    `\n## mediagit bench — profile ${profile}, corpus v1 ${(bytesV1 / 2 ** 20).toFixed(0)} MiB (${new Date().toISOString().slice(0, 10)})${repeat > 1 ? `, median of ${repeat} rounds` : ''}\n`,
  );
  if (repeat > 1)
    console.log(
      "Times are medians over the rounds; each ratio is the median of the rounds' own ratios (floors are measured in every round).\n",
    );
  console.log(
    `Floors on v1: read ${f(floors.read)} s, openssl sha256 ${f(floors.sha256)} s, cp -r ${f(floors.cp)} s\n`,
  );
  if (enc)
    console.log(
      `Encrypted runs unlock once with 'mediagit key cache' (the agent); without it each command pays Argon2id (m=64 MiB, t=3, p=4): ${f(enc.coldUnlock)} s.\n`,
    );
  console.log(
    '| operation | time s | MB/s | peak RSS MiB | ÷ cp -r | ÷ read | ÷ sha256 | restic s | ÷ restic | encrypted s | enc ÷ plain | enc RSS MiB |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(
      `| ${r.what} | ${f(r.secs)} | ${f(r.mbps, 0)} | ${f(r.rssMiB, 0)} | ${f(r.vsCp)} | ${f(r.vsRead)} | ${f(r.vsSha256)} | ${f(r.resticSecs)} | ${f(r.vsRestic)} | ${f(r.encryptedSecs)} | ${f(r.encryptedRatio)} | ${f(r.encryptedRssMiB, 0)} |`,
    );
  }
  if (networkRows.length > 0) {
    console.log(
      `\nTransfers against other tools on v1${withNetwork ? ` (S3: ${process.env.MEDIAGIT_TEST_S3_ENDPOINT})` : ''}; ratio = median of the rounds' own, [min–max]:\n`,
    );
    console.log('| operation | time s | MB/s | against | ÷ it | spread |');
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const r of networkRows)
      console.log(
        `| ${r.what} | ${f(r.secs)} | ${f(r.mbps, 0)} | ${r.against} | ${f(r.ratio)} | ${r.spread ? `${f(r.spread[0])}–${f(r.spread[1])}` : '—'} |`,
      );
  }
  const m = (b) => (b / 1e6).toFixed(1);
  console.log(
    '\n| stored (MB) | after v1 | growth for v2 | sent for v2 | ÷ remote growth |\n| --- | --- | --- | --- | --- |',
  );
  const sent = (x) => `${m(x.sentV2)} | ${(x.sentV2 / x.remoteGrowthV2).toFixed(3)}`;
  console.log(
    `| mediagit | ${m(storage.mediagit.storedV1)} | ${m(storage.mediagit.storedGrowthV2)} | ${sent(storage.mediagit)} |`,
  );
  if (storage.mediagitEncrypted)
    console.log(
      `| mediagit (encrypted) | ${m(storage.mediagitEncrypted.storedV1)} | ${m(storage.mediagitEncrypted.storedGrowthV2)} | ${sent(storage.mediagitEncrypted)} |`,
    );
  if (storage.restic)
    console.log(
      `| restic | ${m(storage.restic.storedV1)} | ${m(storage.restic.storedGrowthV2)} | — | — |`,
    );
  else console.log('| restic | not on PATH (apt-get install restic) | |');
  printLean(leanFigures);
}
spawnSync(process.execPath, [cli, 'key', 'forget', '--all'], {
  env: { ...process.env, ...env },
  stdio: 'ignore',
});
rmSync(work, { recursive: true, force: true });
