// Transfers over a network: through `mediagit server` (local folder or S3 storage), straight to S3,
// beside the sink floor and the other tools, and the same again through the link emulator.
import { fork, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { corpus, makeCorpus } from './corpus.mjs';
import {
  agentEnv,
  cli,
  copyTree,
  duBytes,
  env,
  fresh,
  listFiles,
  log,
  measure,
  profile,
  root,
  rotate,
  warmPageCache,
  work,
} from './measure.mjs';
import {
  rcloneBin,
  rcloneDown,
  rcloneUp,
  resticBin,
  resticRestoreV1,
  resticS3Backup,
  resticS3Restore,
} from './peers.mjs';

const { linkSeconds, parseLinkSpec } = await import(
  path.join(root, 'dist/test/support/link-emulator.js')
);
export { linkSeconds, parseLinkSpec };

/** Waits for a child's "listening on <url>" line. */
function listening(child, what) {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${out}`)), 30000);
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
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}: ${out}`)));
  });
}

async function stopChild(child) {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

/**
 * `mediagit server` on loopback with its own data folder; storage local unless a TOML is given.
 * `bin`: another build's bin/mediagit.js (A/B scripts); `serverEnv`: added to its environment;
 * `tokenRepo`: the repository (or `*`) the write token is for.
 */
export async function startServer(
  label,
  storageToml = null,
  { bin = cli, serverEnv = {}, tokenRepo = 'bench' } = {},
) {
  const dataDir = fresh(path.join(work, `server-data-${label}`));
  const secret = 'bench-secret-'.padEnd(48, 'x');
  const senv = {
    ...process.env,
    MEDIAGIT_HOST: '127.0.0.1',
    MEDIAGIT_PORT: '0',
    MEDIAGIT_JWT_SECRET: secret,
    ...serverEnv,
  };
  writeFileSync(
    path.join(dataDir, 'mediagit.toml'),
    storageToml ?? `[storage]\nbackend = "local"\n\n[storage.local]\npath = "store"\n`,
  );
  const child = spawn(
    process.execPath,
    [bin, 'server', '--config', path.join(dataDir, 'mediagit.toml')],
    { cwd: dataDir, env: senv, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const url = await listening(child, 'mediagit server');
  const token = measure(
    process.execPath,
    [bin, 'server', 'token', '--repo', tokenRepo, '--role', 'write'],
    { env: { MEDIAGIT_JWT_SECRET: secret } },
  ).stdout.trim();
  // `base`: the server itself, for repositories other than bench.
  return { url: `${url}/bench`, base: url, token, pid: child.pid, stop: () => stopChild(child) };
}

/** The sink floor's server (scripts/bench/sink.mjs). */
export async function startSink(label) {
  const dir = fresh(path.join(work, `sink-${label}`));
  const child = spawn(process.execPath, [path.join(root, 'scripts/bench/sink.mjs'), 'serve', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await listening(child, 'sink');
  return { url, pid: child.pid, stop: () => stopChild(child) };
}

/** A link emulator in its own process in front of `target`; counters() is what it has carried. */
export async function startLink(target, spec) {
  const child = fork(path.join(root, 'scripts/bench/link.mjs'), [target, spec], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const url = await new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m.url));
    child.once('exit', (code) => reject(new Error(`link emulator exited with ${code}`)));
  });
  const counters = () =>
    new Promise((resolve) => {
      child.once('message', (m) => resolve(m.counters));
      child.send('counters');
    });
  return { url, counters, stop: () => stopChild(child) };
}

/** The S3 endpoint the test servers print (MEDIAGIT_TEST_S3_*), or null. */
export function s3Settings() {
  const e = process.env;
  if (!e.MEDIAGIT_TEST_S3_ENDPOINT) return null;
  return {
    endpoint: e.MEDIAGIT_TEST_S3_ENDPOINT,
    access: e.MEDIAGIT_TEST_S3_ACCESS_KEY ?? '',
    secret: e.MEDIAGIT_TEST_S3_SECRET_KEY ?? '',
    region: e.MEDIAGIT_TEST_S3_REGION ?? 'us-east-1',
  };
}

export async function s3Admin(s3) {
  const sdk = await import('@aws-sdk/client-s3');
  const client = new sdk.S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.access, secretAccessKey: s3.secret },
  });
  return { sdk, client };
}

export async function newBucket(s3, tag) {
  const { sdk, client } = await s3Admin(s3);
  const bucket = `mediagit-bench-${Date.now().toString(36)}-${tag}`;
  await client.send(new sdk.CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return bucket;
}

/**
 * Empties and removes a round's bucket: the test radosgw keeps objects in a RAM-backed OSD of a
 * few GiB shared with every test suite, and one full-profile round stores ~2.5 GB.
 */
export async function dropBucket(s3, bucket) {
  const { sdk, client } = await s3Admin(s3);
  try {
    let token;
    do {
      const page = await client.send(
        new sdk.ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
      );
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key }));
      if (keys.length > 0)
        await client.send(
          new sdk.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }),
        );
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    await client.send(new sdk.DeleteBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

export const s3Options = (s3, endpoint) =>
  [
    ['endpoint', endpoint],
    ['access_key', s3.access],
    ['secret_key', s3.secret],
    ['region', s3.region],
    ['force_path_style', 'true'],
  ].flatMap(([k, v]) => ['-o', `${k}=${v}`]);

export const s3Toml = (s3, bucket, prefix) =>
  [
    '[storage]',
    'backend = "s3"',
    '[storage.s3]',
    `bucket = "${bucket}"`,
    `prefix = "${prefix}"`,
    `region = "${s3.region}"`,
    `endpoint = "${s3.endpoint}"`,
    'force_path_style = true',
    `access_key = "${s3.access}"`,
    `secret_key = "${s3.secret}"`,
    '',
  ].join('\n');

/**
 * mediagit with a server token (ignored by other remotes). `unlockedByAgent`: without the
 * passphrase in the environment, so an encrypted repository's key comes from the agent (cached by
 * committedRepo), as a working user's commands get it; with the passphrase every command would pay
 * Argon2id, since an explicit passphrase wins over the agent.
 */
const mgAs =
  (token, { unlockedByAgent = false } = {}) =>
  (cwd, ...a) =>
    measure(process.execPath, [cli, ...a], {
      cwd,
      env: { ...(unlockedByAgent ? agentEnv : env), MEDIAGIT_TOKEN: token },
    });

/** A fresh repository holding v1 committed (untimed: only the transfers are measured here). */
function committedRepo(v1, name, encrypted = false) {
  const repo = path.join(work, name);
  copyTree(v1, repo);
  const run = mgAs('');
  run(repo, 'init', '-q', ...(encrypted ? ['--encrypt'] : []));
  if (encrypted) run(repo, 'key', 'cache', '--timeout', '1h');
  run(repo, 'add', '.');
  run(repo, 'commit', '-q', '-m', 'v1');
  return repo;
}

/** The repository's stored objects (what a push sends), minus `except`, as a list file for the sink. */
export function objectList(repo, name, except = new Set()) {
  const store = path.join(repo, '.mediagit');
  const names = [...listFiles(path.join(store, 'chunks')).map((f) => `chunks/${f}`)]
    .concat(listFiles(path.join(store, 'objects')).map((f) => `objects/${f}`))
    .filter((f) => !except.has(f));
  const file = path.join(work, `${name}.list`);
  writeFileSync(file, names.join('\n') + '\n');
  return { file, names: new Set(names), from: store };
}

export const sinkRun = (mode, url, dir, list) =>
  measure(process.execPath, [path.join(root, 'scripts/bench/sink.mjs'), mode, url, dir, list]);

/** Runs the jobs in the round's rotated order; each job stores its figure under its own key. */
/**
 * Runs the round's jobs in its rotated order. With `warm` (bytes), each job starts from warm page
 * cache (warmPageCache): on this VM whichever writer came first after a pause paid for memory the
 * host had taken back (restic's restore read 0.41 s or 0.78 s by that alone), so each contender
 * gets the same start whatever ran before it.
 */
async function inTurn(jobs, round, out, warm = 0) {
  for (const [key, job] of rotate(jobs, round)) {
    if (warm > 0) warmPageCache(warm);
    out[key] = await job();
  }
}

/**
 * One round of transfers of v1 through `mediagit server` on loopback (local-folder storage),
 * beside the sink floor (same objects) and, with `restic`, restic's restore of v1 from the local
 * repository this round's resticSteps made.
 */
export async function serverRound(v1, round, { encrypted = false, restic = false } = {}) {
  const label = encrypted ? 'enc' : 'plain';
  const server = await startServer(label);
  const sink = encrypted ? null : await startSink(label);
  const out = {};
  try {
    const run = mgAs(server.token, { unlockedByAgent: encrypted });
    const repo = committedRepo(v1, `srv-repo-${label}`, encrypted);
    run(repo, 'remote', 'add', 'origin', server.url);
    const list = objectList(repo, `srv-${label}`);
    const push = [['push', () => run(repo, 'push', '-q')]];
    if (sink) push.push(['sinkPush', () => sinkRun('push', sink.url, list.from, list.file)]);
    const warm = duBytes(v1);
    await inTurn(push, round, out, warm);
    const target = path.join(work, `srv-clone-${label}`);
    const clone = [
      [
        'clone',
        () => {
          fresh(target);
          return run(work, 'clone', '-q', server.url, target);
        },
      ],
    ];
    if (sink)
      clone.push([
        'sinkPull',
        () => sinkRun('pull', sink.url, fresh(path.join(work, 'sink-pull')), list.file),
      ]);
    if (!encrypted && restic) clone.push(['resticRestoreV1', () => resticRestoreV1('')]);
    await inTurn(clone, round, out, warm);
    out.objects = list.names.size;
  } finally {
    await server.stop();
    await sink?.stop();
  }
  return out;
}

/**
 * One round over S3: mediagit straight to the bucket, mediagit server storing into it, rclone up
 * and down, restic backup and restore, each in turn within the round.
 */
export async function s3Round(v1, round, s3) {
  const bucket = await newBucket(s3, `r${round}`);
  const server = await startServer('s3', s3Toml(s3, bucket, 'server'));
  const out = {};
  try {
    const run = mgAs(server.token);
    const direct = committedRepo(v1, 'net-mg');
    run(
      direct,
      'remote',
      'add',
      'origin',
      `s3://${bucket}/mediagit`,
      ...s3Options(s3, s3.endpoint),
    );
    const viaServer = committedRepo(v1, 'net-srv');
    run(viaServer, 'remote', 'add', 'origin', server.url);
    const push = [
      ['s3Push', () => run(direct, 'push', '-q')],
      ['serverS3Push', () => run(viaServer, 'push', '-q')],
    ];
    if (rcloneBin) push.push(['rcloneUp', () => rcloneUp(s3, s3.endpoint, v1, bucket, 'rclone')]);
    if (resticBin)
      push.push(['resticS3Backup', () => resticS3Backup(s3, s3.endpoint, v1, bucket, 'restic')]);
    const warm = duBytes(v1);
    await inTurn(push, round, out, warm);
    const clone = [
      [
        's3Clone',
        () => {
          const dir = fresh(path.join(work, 'net-mg-clone'));
          return run(
            work,
            'clone',
            '-q',
            `s3://${bucket}/mediagit`,
            dir,
            ...s3Options(s3, s3.endpoint),
          );
        },
      ],
      [
        'serverS3Clone',
        () => {
          const dir = fresh(path.join(work, 'net-srv-clone'));
          return run(work, 'clone', '-q', server.url, dir);
        },
      ],
    ];
    if (rcloneBin) clone.push(['rcloneDown', () => rcloneDown(s3, s3.endpoint, bucket, 'rclone')]);
    if (resticBin)
      clone.push(['resticS3Restore', () => resticS3Restore(s3, s3.endpoint, bucket, 'restic')]);
    await inTurn(clone, round, out, warm);
  } finally {
    await server.stop();
    await dropBucket(s3, bucket).catch((e) => log(`bucket ${bucket} left behind: ${e.message}`));
  }
  return out;
}

/**
 * One round through the link emulator (`--link <rate>,<rtt>`): an emulator in front of each
 * endpoint (the server, the sink, S3, the server over S3), every transfer timed and its bytes
 * counted on the link, so each can be divided by its link time (bytes / rate + one RTT). v2 is
 * pushed incrementally through the server after v1, the case round trips matter most for, and
 * pulled by a client that cloned v1 (a fast-forward that rewrites the changed files).
 */
export async function linkRound(v1, round, spec, s3) {
  const server = await startServer('link');
  const sink = await startSink('link');
  const bucket = s3 ? await newBucket(s3, `l${round}`) : null;
  // Relayed: presigned URLs would name radosgw on loopback, so the chunks would bypass the link
  // that this round counts (scripts/bench/presign-ab.mjs measures them over a link of their own).
  const s3Server = s3
    ? await startServer('link-s3', `[server]\npresign = "off"\n${s3Toml(s3, bucket, 'server')}`)
    : null;
  const links = {
    server: await startLink(server.url.replace(/\/bench$/, ''), spec),
    sink: await startLink(sink.url, spec),
    s3: s3 ? await startLink(s3.endpoint, spec) : null,
    s3Server: s3Server ? await startLink(s3Server.url.replace(/\/bench$/, ''), spec) : null,
  };
  const parsed = parseLinkSpec(spec);
  const out = {};
  /** Times one transfer and counts what crossed its link. */
  const over = (link, fn) => async () => {
    const before = await link.counters();
    const m = fn();
    const after = await link.counters();
    const up = after.up - before.up;
    const down = after.down - before.down;
    const bytes = Math.max(up, down);
    // Connections opened: a retry after a stall or reset shows up here before anywhere else.
    const connections = after.connections - before.connections;
    return { ...m, up, down, connections, linkSecs: linkSeconds(parsed, bytes, 1) };
  };
  try {
    const run = mgAs(server.token);
    const repo = committedRepo(v1, 'link-repo');
    run(repo, 'remote', 'add', 'origin', `${links.server.url}/bench`);
    const list = objectList(repo, 'link-v1');
    const push = [
      ['push', over(links.server, () => run(repo, 'push', '-q'))],
      ['sinkPush', over(links.sink, () => sinkRun('push', links.sink.url, list.from, list.file))],
    ];
    let direct = null;
    if (s3) {
      const s3Url = links.s3.url;
      direct = committedRepo(v1, 'link-s3-repo');
      run(direct, 'remote', 'add', 'origin', `s3://${bucket}/mediagit`, ...s3Options(s3, s3Url));
      const viaServer = committedRepo(v1, 'link-srv-s3-repo');
      run(viaServer, 'remote', 'add', 'origin', `${links.s3Server.url}/bench`);
      push.push(
        ['s3Push', over(links.s3, () => run(direct, 'push', '-q'))],
        ['serverS3Push', over(links.s3Server, () => run(viaServer, 'push', '-q'))],
      );
      if (rcloneBin)
        push.push(['rcloneUp', over(links.s3, () => rcloneUp(s3, s3Url, v1, bucket, 'rclone'))]);
      if (resticBin)
        push.push([
          'resticS3Backup',
          over(links.s3, () => resticS3Backup(s3, s3Url, v1, bucket, 'restic')),
        ]);
    }
    await inTurn(push, round, out);
    // Another client at v1 (cloned untimed, straight to the server), which pulls v2 through the
    // link once it is pushed: the fast-forward a teammate's `mediagit pull` makes.
    const puller = fresh(path.join(work, 'link-pull'));
    run(work, 'clone', '-q', server.url, puller);
    run(puller, 'remote', 'set-url', 'origin', `${links.server.url}/bench`);

    // v2: the artist's edits in place, committed (untimed), then pushed on top of v1.
    await makeCorpus(repo, 2, profile);
    run(repo, 'add', '.');
    run(repo, 'commit', '-q', '-m', 'v2');
    const listV2 = objectList(repo, 'link-v2', list.names);
    const pushV2 = [
      ['pushV2', over(links.server, () => run(repo, 'push', '-q'))],
      [
        'sinkPushV2',
        over(links.sink, () => sinkRun('push', links.sink.url, listV2.from, listV2.file)),
      ],
    ];
    if (direct) {
      await makeCorpus(direct, 2, profile);
      run(direct, 'add', '.');
      run(direct, 'commit', '-q', '-m', 'v2');
      pushV2.push(['s3PushV2', over(links.s3, () => run(direct, 'push', '-q'))]);
    }
    await inTurn(pushV2, round, out);
    // Its floor: the sink fetching v2's new objects (what the pull has to bring) through the link.
    // Each starts with warm page cache (warmPageCache): the pull rewrites ~340 MB of files (full
    // corpus), and on this VM memory not used for a while costs 1.6-2 s of kernel time to write
    // into again, which the pull paid or not depending on what ran just before it.
    const warm = duBytes(await corpus(2));
    const pull = [
      [
        'pullV2',
        over(links.server, () => {
          warmPageCache(warm);
          return run(puller, 'pull', '-q');
        }),
      ],
      [
        'sinkPullV2',
        over(links.sink, () => {
          warmPageCache(warm);
          return sinkRun(
            'pull',
            links.sink.url,
            fresh(path.join(work, 'link-sink-pull-v2')),
            listV2.file,
          );
        }),
      ],
    ];
    await inTurn(pull, round, out);

    const clone = [
      [
        'clone',
        over(links.server, () => {
          const dir = fresh(path.join(work, 'link-clone'));
          return run(work, 'clone', '-q', `${links.server.url}/bench`, dir);
        }),
      ],
      [
        'sinkPull',
        over(links.sink, () =>
          sinkRun('pull', links.sink.url, fresh(path.join(work, 'link-sink-pull')), list.file),
        ),
      ],
    ];
    if (s3) {
      const s3Url = links.s3.url;
      clone.push(
        [
          's3Clone',
          over(links.s3, () => {
            const dir = fresh(path.join(work, 'link-s3-clone'));
            return run(
              work,
              'clone',
              '-q',
              `s3://${bucket}/mediagit`,
              dir,
              ...s3Options(s3, s3Url),
            );
          }),
        ],
        [
          'serverS3Clone',
          over(links.s3Server, () => {
            const dir = fresh(path.join(work, 'link-srv-s3-clone'));
            return run(work, 'clone', '-q', `${links.s3Server.url}/bench`, dir);
          }),
        ],
      );
      if (rcloneBin)
        clone.push(['rcloneDown', over(links.s3, () => rcloneDown(s3, s3Url, bucket, 'rclone'))]);
      if (resticBin)
        clone.push([
          'resticS3Restore',
          over(links.s3, () => resticS3Restore(s3, s3Url, bucket, 'restic')),
        ]);
    }
    await inTurn(clone, round, out);
  } finally {
    for (const l of Object.values(links)) await l?.stop();
    await server.stop();
    await sink.stop();
    await s3Server?.stop();
    if (bucket)
      await dropBucket(s3, bucket).catch((e) => log(`bucket ${bucket} left behind: ${e.message}`));
  }
  return out;
}
