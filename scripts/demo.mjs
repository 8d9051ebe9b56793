#!/usr/bin/env node
// The main job, end to end, on a small generated media project, with nothing but the local disk:
// init → add → commit → push to a local remote → clone elsewhere (verify byte for byte) → edit →
// add → commit → push (only new chunks travel) → pull in the clone (verify) → the clone is lean:
// status, stats, version 1 on demand (verify), prune, fsck; a sparse clone widened → log →
// checkout the first version (verify) → fsck → stats.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, cpSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { makeCorpus } = await import(path.join(root, 'dist/test/support/corpus.js'));
const { hashTree, diffTrees } = await import(path.join(root, 'dist/test/support/tree.js'));
const cli = path.join(root, 'bin/mediagit.js');
const profile = process.argv.includes('--full') ? 'full' : 'small';

const work = mkdtempSync(path.join(os.tmpdir(), 'mediagit-demo-'));
const project = path.join(work, 'project');
const env = {
  ...process.env,
  MEDIAGIT_AUTHOR_NAME: process.env.MEDIAGIT_AUTHOR_NAME ?? 'Demo Artist',
  MEDIAGIT_AUTHOR_EMAIL: process.env.MEDIAGIT_AUTHOR_EMAIL ?? 'artist@studio.example',
};

function run(...args) {
  return runIn(project, ...args);
}

function runIn(cwd, ...args) {
  console.log(
    `\n$ ${cwd === project ? '' : `(in ${path.basename(cwd)}) `}mediagit ${args.join(' ')}`,
  );
  const started = performance.now();
  const result = spawnSync(process.execPath, [cli, ...args], { cwd, env, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`demo failed: 'mediagit ${args.join(' ')}' exited with ${result.status}`);
    process.exit(1);
  }
  console.log(`  (${((performance.now() - started) / 1000).toFixed(2)} s)`);
}

function verify(expected, label, dir = project) {
  return hashTree(dir).then((actual) => {
    const diff = diffTrees(actual, expected);
    const bad = diff.onlyInActual.length + diff.onlyInExpected.length + diff.changed.length;
    if (bad > 0) {
      console.error(`demo failed: ${label} differs from the original: ${JSON.stringify(diff)}`);
      process.exit(1);
    }
    console.log(`  verified: all ${expected.size} files of ${label} are byte-identical (sha256)`);
  });
}

try {
  console.log(`Building a ${profile} media project (audio, textures, video, scenes) in ${project}`);
  const v1Stats = await makeCorpus(project, 1, profile);
  console.log(`  version 1: ${v1Stats.files} files, ${(v1Stats.bytes / 1048576).toFixed(1)} MiB`);
  const v1 = await hashTree(project);
  const v1copy = path.join(work, 'v1-original');
  cpSync(project, v1copy, { recursive: true });

  const remote = path.join(work, 'studio-nas', 'project.mediagit');
  const clone = path.join(work, 'build-machine');
  run('init');
  run('add', '.');
  run('commit', '-m', 'Version 1 of the asset project');
  run('tag', 'v1');
  run('init', '--bare', remote);
  run('remote', 'add', 'origin', remote);
  run('push', '--tags', 'origin', 'main');
  runIn(work, 'clone', remote, clone);
  await verify(v1, 'the clone of version 1', clone);

  const v2Stats = await makeCorpus(project, 2, profile);
  console.log(
    `\nArtists edit: audio appended, textures repainted, 1 KiB inserted mid-scene, trailer retitled, folder renamed (${v2Stats.files} files now)`,
  );
  const v2 = await hashTree(project);
  run('status', '--short');
  run('add', '.');
  run('commit', '-m', 'Version 2: director cut edits');
  run('push');
  runIn(clone, 'pull');
  await verify(v2, 'the clone after pulling version 2', clone);

  console.log(
    '\nThe clone is lean: it holds every commit, but content only for what it checked out, and no second copy of that',
  );
  runIn(clone, 'status');
  runIn(clone, 'stats');
  runIn(clone, 'checkout', 'v1');
  await verify(v1, 'version 1, fetched on demand in the clone', clone);
  runIn(clone, 'checkout', 'main');
  await verify(v2, 'version 2 in the clone', clone);
  runIn(clone, 'prune');
  runIn(clone, 'fsck');
  const sparse = path.join(work, 'sound-desk');
  runIn(work, 'clone', '--include', 'audio/**', remote, sparse);
  runIn(sparse, 'sparse-checkout', 'add', 'textures/**');
  runIn(sparse, 'sparse-checkout', 'list');
  runIn(sparse, 'status');
  run('log', '--oneline');
  run('diff', '--stat', 'v1', 'main');

  run('checkout', 'v1');
  await verify(v1, 'version 1');
  run('checkout', 'main');
  await verify(v2, 'version 2');
  run('fsck', '--full');
  run('stats');
  console.log('\nDemo finished: every version restored byte for byte.');
} finally {
  rmSync(work, { recursive: true, force: true });
}
