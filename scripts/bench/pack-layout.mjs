#!/usr/bin/env node
// What mediagit's object layout costs at S3 whoever uploads it, for the question whether small
// objects should be packed (issue 18, Deliver 3). One uploader, rclone, copies four folders to
// radosgw in rotated order, each round into a fresh bucket:
//   objects     the repository's stored objects after add+commit of v1, one file each, as a
//               push lays them out (chunks/ and objects/ of .mediagit, flattened);
//   small-packed the same, but every object under 64 KiB appended to one file;
//   struct-packed the same, but only the structured objects (objects/: commits, trees,
//               manifests) appended to one file;
//   corpus      the corpus's own files (the bench's "rclone copy up" row).
// Per layout: files, wall seconds, rclone's CPU and radosgw's + the OSD's CPU (from /proc, when
// they run on this machine as test/servers/radosgw.sh starts them). Medians over the rounds.
//
//   node scripts/bench/pack-layout.mjs [--profile small] [--rounds 8]
//
// Needs MEDIAGIT_TEST_S3_* (test/servers/radosgw.sh env) and rclone.
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { corpus } from './corpus.mjs';
import { copyTree, fresh, log, median, mg, opt, work } from './measure.mjs';
import { dropBucket, newBucket, s3Settings } from './network.mjs';
import { rcloneBin, rcloneUp } from './peers.mjs';

const SMALL = 64 * 1024;
const rounds = Math.max(1, Number(opt('--rounds', '8')) || 8);
const s3 = s3Settings();
if (!s3 || !rcloneBin) {
  console.error('pack-layout: needs MEDIAGIT_TEST_S3_* (test/servers/radosgw.sh env) and rclone');
  process.exit(2);
}

const v1 = await corpus(1);
const repo = path.join(work, 'pack-layout-repo');
copyTree(v1, fresh(repo));
mg(repo, 'init', '-q');
mg(repo, 'add', '.');
mg(repo, 'commit', '-q', '-m', 'v1');

const stored = [];
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else stored.push({ file: p, structured: p.includes(`${path.sep}objects${path.sep}`) });
  }
};
walk(path.join(repo, '.mediagit', 'chunks'));
walk(path.join(repo, '.mediagit', 'objects'));

const layouts = {
  objects: fresh(path.join(work, 'pack-layout-objects')),
  'small-packed': fresh(path.join(work, 'pack-layout-small')),
  'struct-packed': fresh(path.join(work, 'pack-layout-struct')),
  corpus: v1,
};
for (const { file, structured } of stored) {
  const name = path.basename(file);
  copyFileSync(file, path.join(layouts.objects, name));
  const small = statSync(file).size < SMALL;
  if (small) appendFileSync(path.join(layouts['small-packed'], 'pack'), readFileSync(file));
  else copyFileSync(file, path.join(layouts['small-packed'], name));
  if (structured) appendFileSync(path.join(layouts['struct-packed'], 'pack'), readFileSync(file));
  else copyFileSync(file, path.join(layouts['struct-packed'], name));
}

const storagePids = spawnSync('pgrep', ['-f', 'radosgw|ceph-osd'], { encoding: 'utf8' })
  .stdout.split('\n')
  .filter(Boolean);
/** CPU seconds of radosgw and the OSD so far (utime + stime of each process, all threads). */
const storageCpu = () =>
  storagePids.reduce((sum, pid) => {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return sum + (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return sum;
    }
  }, 0);

const names = Object.keys(layouts);
const results = Object.fromEntries(names.map((n) => [n, []]));
for (let round = 0; round < rounds; round++) {
  const bucket = await newBucket(s3, `layout${round}`);
  try {
    const order = names.map((_, i) => names[(i + round) % names.length]);
    for (const name of order) {
      const before = storageCpu();
      const run = rcloneUp(s3, s3.endpoint, layouts[name], bucket, name);
      results[name].push({ secs: run.secs, storage: storageCpu() - before });
    }
  } finally {
    await dropBucket(s3, bucket);
  }
  log(`round ${round + 1}/${rounds} done`);
}

const files = (dir) =>
  readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
console.log(
  `\n${stored.length} stored objects; medians of ${rounds} rounds (rclone copy up, radosgw on loopback)`,
);
console.log('| layout | files | wall s | ÷ corpus | radosgw + OSD CPU s |');
console.log('| --- | --- | --- | --- | --- |');
for (const name of names) {
  const wall = median(results[name].map((r) => r.secs));
  const ratio = median(results[name].map((r, i) => r.secs / results.corpus[i].secs));
  const cpu = storagePids.length ? median(results[name].map((r) => r.storage)).toFixed(2) : '—';
  console.log(
    `| ${name} | ${files(layouts[name])} | ${wall.toFixed(2)} | ${ratio.toFixed(2)} | ${cpu} |`,
  );
}
