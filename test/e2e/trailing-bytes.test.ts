/**
 * A stored chunk with bytes appended after its zstd frame is corrupt: `fsck --full` says so, for a
 * folder remote and for the repository itself (node:zlib decodes the frame and ignores the rest,
 * so such a chunk used to pass).
 */
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { mg, mgFail, tempDir } from '../support/cli.js';
import { storedChunks } from '../support/sync-fixtures.js';

/** The first stored chunk whose envelope says zstd (codec byte 1). */
async function compressedChunk(storeRoot: string): Promise<{ oid: string; file: string }> {
  for (const chunk of await storedChunks(storeRoot))
    if ((await readFile(chunk.file))[6] === 1) return chunk;
  throw new Error(`no compressed chunk under ${storeRoot}`);
}

test('fsck --full finds a chunk with bytes after its zstd frame, on a folder remote and locally', async () => {
  const work = await tempDir('trailing');
  const repo = path.join(work, 'repo');
  const remote = path.join(work, 'remote');
  await mg(work, 'init', '-q', repo);
  await writeFile(path.join(repo, 'scene.usda'), 'def Xform "node" {}\n'.repeat(20_000));
  await mg(repo, 'add', '.');
  await mg(repo, 'commit', '-q', '-m', 'scene');
  await mg(repo, 'remote', 'add', 'origin', remote);
  await mg(repo, 'init', '-q', '--bare', remote);
  await mg(repo, 'push', '-q', 'origin');
  await mg(repo, 'fsck', '--remote', 'origin', '--full');
  await mg(repo, 'fsck', '--full');

  const onRemote = await compressedChunk(remote);
  await appendFile(onRemote.file, 'hidden payload');
  const remoteCheck = await mgFail(repo, 'fsck', '--remote', 'origin', '--full');
  assert.equal(remoteCheck.code, 6, remoteCheck.stderr);
  assert.match(remoteCheck.stdout, new RegExp(`chunk ${onRemote.oid}:.*14 bytes after the zstd`));

  // (A push to a folder on the same file system hard-links chunks: this may be the same file.)
  const local = await compressedChunk(path.join(repo, '.mediagit'));
  await appendFile(local.file, Buffer.alloc(3));
  const localCheck = await mgFail(repo, 'fsck', '--full');
  assert.equal(localCheck.code, 6, localCheck.stderr);
  assert.match(localCheck.stdout + localCheck.stderr, new RegExp(local.oid));
  assert.match(localCheck.stdout + localCheck.stderr, /\d+ bytes after the zstd frame/);
});
