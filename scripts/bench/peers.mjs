// The other tools on the same jobs: restic (local repository and S3) and rclone (S3).
import path from 'node:path';
import { makeCorpus } from './corpus.mjs';
import {
  copyTree,
  duBytes,
  flag,
  fresh,
  measure,
  PASS,
  profile,
  warmPageCache,
  which,
  work,
} from './measure.mjs';

export const resticBin = flag('--no-restic') ? null : which('restic');
export const rcloneBin = which('rclone');

const localRepo = () => path.join(work, 'restic-repo');
const localEnv = () => ({
  RESTIC_PASSWORD: PASS,
  RESTIC_REPOSITORY: localRepo(),
  RESTIC_CACHE_DIR: path.join(work, 'restic-cache'),
});

/** restic on the same trees, as steps aligned with mediagitSteps' (backup, backup, restore). */
export async function* resticSteps(v1) {
  const repo = fresh(localRepo());
  const r = (...a) => measure(resticBin, ['--no-cache', '-q', ...a], { env: localEnv() });
  r('init');
  // Back up from one fixed path so restic treats v2 as the next version of the same tree.
  const tree = path.join(work, 'restic-tree');
  copyTree(v1, tree);
  // From warm page cache, as mediagit's steps (local.mjs mediagitSteps).
  const warm = duBytes(v1);
  warmPageCache(warm);
  const b1 = r('backup', '--host', 'bench', tree);
  const storedV1 = duBytes(repo);
  yield 'store v1';
  yield 'push v1';
  await makeCorpus(tree, 2, profile);
  warmPageCache(warm);
  const b2 = r('backup', '--host', 'bench', tree);
  const storedV2 = duBytes(repo);
  yield 'store v2';
  yield 'push v2';
  yield 'clone';
  const target = fresh(path.join(work, 'restic-restore'));
  warmPageCache(warm);
  const restore = r('restore', 'latest', '--target', target);
  yield 'restore';
  return { backupV1: b1, backupV2: b2, restore, storedV1, storedGrowthV2: storedV2 - storedV1 };
}

/**
 * restic restore of the first snapshot (v1) from the local repository resticSteps left: the
 * counterpart of a clone of v1, the same bytes written.
 */
export function resticRestoreV1(tag) {
  const r = (...a) => measure(resticBin, ['--no-cache', '-q', ...a], { env: localEnv() });
  const snapshots = JSON.parse(r('snapshots', '--json').stdout);
  const first = snapshots.sort((a, b) => a.time.localeCompare(b.time))[0];
  const target = fresh(path.join(work, `restic-restore-v1${tag}`));
  return r('restore', first.id, '--target', target);
}

/** rclone's S3 remote named `bench` on this endpoint, by environment (no config file). */
function rcloneEnv(s3, endpoint) {
  return {
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Ceph',
    RCLONE_CONFIG_BENCH_ENDPOINT: endpoint,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: s3.access,
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: s3.secret,
    RCLONE_CONFIG_BENCH_REGION: s3.region,
    // A CA bundle in the environment (for TLS elsewhere) makes rclone refuse a plain-http endpoint.
    AWS_CA_BUNDLE: '',
  };
}

/** rclone copying the files themselves up (its defaults: 4 transfers, 8 checkers). */
export function rcloneUp(s3, endpoint, v1, bucket, name) {
  return measure(rcloneBin, ['copy', v1, `bench:${bucket}/${name}`], {
    env: rcloneEnv(s3, endpoint),
  });
}

export function rcloneDown(s3, endpoint, bucket, name) {
  const down = fresh(path.join(work, `net-rclone-down-${name}`));
  return measure(rcloneBin, ['copy', `bench:${bucket}/${name}`, down], {
    env: rcloneEnv(s3, endpoint),
  });
}

/** restic with its repository in the bucket: init, then a backup of v1 (timed). */
export function resticS3Backup(s3, endpoint, v1, bucket, name) {
  const r = resticS3(s3, endpoint, bucket, name);
  r('init');
  const tree = path.join(work, `net-restic-tree-${name}`);
  copyTree(v1, tree);
  return r('backup', '--host', 'bench', tree);
}

export function resticS3Restore(s3, endpoint, bucket, name) {
  const target = fresh(path.join(work, `net-restic-restore-${name}`));
  return resticS3(s3, endpoint, bucket, name)('restore', 'latest', '--target', target);
}

function resticS3(s3, endpoint, bucket, name) {
  const renv = {
    RESTIC_PASSWORD: PASS,
    RESTIC_REPOSITORY: `s3:${endpoint}/${bucket}/${name}`,
    AWS_ACCESS_KEY_ID: s3.access,
    AWS_SECRET_ACCESS_KEY: s3.secret,
    AWS_DEFAULT_REGION: s3.region,
  };
  return (...a) => measure(resticBin, ['--no-cache', '-q', ...a], { env: renv });
}
