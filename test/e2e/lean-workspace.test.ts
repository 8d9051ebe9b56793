/**
 * Lean workspaces end to end: content a clone did not fetch is fetched on demand from the remote
 * it came from, exactly the chunks needed; with the remote gone, commands fail with one line
 * naming the path and the remote (exit 19) and leave the working tree as it was.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { mg, mgBytes, mgFail, pathExists, tempDir, type CliResult } from '../support/cli.js';
import { SMALL_CHUNK_ARGS, stderrLines, storedChunks } from '../support/sync-fixtures.js';
import { hashTree } from '../support/tree.js';

const CONTENT_UNAVAILABLE = 19;

function assertContentUnavailable(res: CliResult, file: string, label: string): void {
  const lines = stderrLines(res.stderr);
  assert.equal(res.code, CONTENT_UNAVAILABLE, `${label}: exit code\n${res.stderr}`);
  assert.ok(lines.length >= 1 && lines.length <= 2, `${label}: one line and a hint\n${res.stderr}`);
  assert.match(lines[0]!, /^error: /);
  assert.ok(lines[0]!.includes(file), `${label}: names the path: ${lines[0]}`);
  assert.ok(lines[0]!.includes("'origin'"), `${label}: names the remote: ${lines[0]}`);
  assert.doesNotMatch(res.stderr, /^\s+at /m, `${label}: stack trace printed`);
}

/** A source repository with audio and video, pushed to a folder remote. */
async function pushedSource(
  work: string,
): Promise<{ src: string; remote: string; video: Buffer; audio: Buffer }> {
  const src = path.join(work, 'src');
  const remote = path.join(work, 'remote.mediagit');
  await mkdir(path.join(src, 'audio'), { recursive: true });
  await mkdir(path.join(src, 'video'), { recursive: true });
  await mg(src, 'init', '-q', ...SMALL_CHUNK_ARGS);
  const audio = randomBytes(200_000);
  const video = randomBytes(700_000);
  await writeFile(path.join(src, 'audio', 'take.raw'), audio);
  await writeFile(path.join(src, 'video', 'shot.raw'), video);
  await mg(src, 'add', '.');
  await mg(src, 'commit', '-q', '-m', 'first');
  await mg(src, 'remote', 'add', 'origin', remote);
  await mg(src, 'init', '-q', '--bare', remote);
  await mg(src, 'push', '-q', 'origin', 'main');
  return { src, remote, video, audio };
}

test('after clone --include, show of a path outside it fetches exactly that file’s chunks from the remote', async (t) => {
  const work = await tempDir('lean-show');
  const { remote, video } = await pushedSource(work);
  const sparse = path.join(work, 'sparse');
  await mg(work, 'clone', '-q', '--include', 'audio/**', remote, sparse);
  const before = new Set((await storedChunks(path.join(sparse, '.mediagit'))).map((c) => c.oid));

  const info = JSON.parse((await mg(sparse, 'show', '--json', 'HEAD:video/shot.raw')).stdout) as {
    chunks: number;
  };
  const shown = await mgBytes(sparse, 'show', 'HEAD:video/shot.raw');
  assert.equal(shown.code, 0);
  assert.ok(shown.stdout.equals(video), 'show printed the file byte for byte');
  const fetched = (await storedChunks(path.join(sparse, '.mediagit'))).filter(
    (c) => !before.has(c.oid),
  );
  t.diagnostic(`show fetched ${fetched.length} chunks; the file has ${info.chunks}`);
  assert.ok(info.chunks > 1);
  assert.equal(fetched.length, info.chunks, 'exactly the file’s chunks were fetched');
  assert.match((await mg(sparse, 'fsck', '--full')).stdout, /no problems found/);
  // The sparse set is untouched: nothing appeared in the working tree.
  assert.equal(await pathExists(path.join(sparse, 'video')), false);
});

test('remote gone: show, restore, checkout and reset --hard of old content fail with exit 19 naming path and remote, tree untouched; back: they converge', async () => {
  const work = await tempDir('lean-offline');
  const { src, remote, video } = await pushedSource(work);
  // A second version: the first one's video content stays on the remote in a tip-only clone.
  await writeFile(path.join(src, 'video', 'shot.raw'), randomBytes(300_000));
  await mg(src, 'commit', '-q', '-am', 'second');
  await mg(src, 'push', '-q', 'origin', 'main');
  const lean = path.join(work, 'lean');
  await mg(work, 'clone', '-q', remote, lean);
  const away = path.join(work, 'away.mediagit');
  await rename(remote, away);
  const tree = await hashTree(lean);

  const show = await mgFail(lean, 'show', 'HEAD~1:video/shot.raw');
  assertContentUnavailable(show, 'video/shot.raw', 'show');
  assert.equal(show.stdout, '', 'show wrote part of the file');
  for (const args of [
    ['restore', '--source', 'HEAD~1', 'video/shot.raw'],
    ['reset', '--hard', 'HEAD~1'],
    ['checkout', 'HEAD~1', '--', '.'],
  ]) {
    const res = await mgFail(lean, ...args);
    assertContentUnavailable(res, 'video/shot.raw', args.join(' '));
    assert.deepEqual(await hashTree(lean), tree, `${args.join(' ')} changed the working tree`);
  }

  await rename(away, remote);
  await mg(lean, 'reset', '-q', '--hard', 'HEAD~1');
  assert.ok((await readFile(path.join(lean, 'video', 'shot.raw'))).equals(video));
  assert.match((await mg(lean, 'fsck', '--full')).stdout, /no problems found/);
});
