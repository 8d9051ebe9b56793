/**
 * Local-folder remotes share object files by hard link, like `git clone /path`: push, clone and
 * fetch through the built binary; what is shared and what `--no-hardlinks` (or config
 * `transfer.hardlinks = false`) copies instead; that corruption is still caught where the bytes
 * are read; and that gc in one repository never damages another that shares its objects.
 *
 * Every folder here lives under one temporary folder, so on one filesystem: links are possible.
 * The fallback when they are not (EXDEV across filesystems…) is covered by the unit tests.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { mg, mgFail, parseJson, pathExists, tempDir, type CliResult } from '../support/cli.js';
import { makeCorpus } from '../support/corpus.js';
import {
  SMALL_CHUNK_ARGS,
  folderSize,
  listFiles,
  stderrLines,
  storedChunks,
} from '../support/sync-fixtures.js';
import { assertTreesEqual, hashTree } from '../support/tree.js';

interface PushJson {
  refs: { ref: string; status: string; stats: { objects: number; bytes: number } }[];
  bytesSent: number;
}
interface CloneJson {
  objects: number;
  bytes: number;
  bytesReceived: number;
}
interface GcJson {
  removed: number;
  keptUnreachable: number;
}

const json = parseJson;
const exists = pathExists;

async function initAndCommit(dir: string, message: string): Promise<void> {
  await mg(dir, 'init', '-q', ...SMALL_CHUNK_ARGS);
  await mg(dir, 'add', '.');
  await mg(dir, 'commit', '-q', '-m', message);
}

async function assertFsckClean(repo: string): Promise<void> {
  assert.match(
    (await mg(repo, 'fsck', '--full')).stdout,
    /no problems found/,
    `fsck --full in ${repo}`,
  );
}

async function assertRemoteFsckClean(repo: string, remote = 'origin'): Promise<void> {
  const report = json<{ ok: boolean }>(
    (await mg(repo, 'fsck', '--remote', remote, '--full', '--json')).stdout,
  );
  assert.equal(report.ok, true, `fsck --remote ${remote} --full from ${repo}`);
}

type Namespace = 'chunks' | 'objects';

/** Object and chunk files of a store folder (`.mediagit/` or a remote), by path relative to it. */
async function objectFiles(
  storeRoot: string,
  namespaces: readonly Namespace[] = ['chunks', 'objects'],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const ns of namespaces) {
    const files = await listFiles(path.join(storeRoot, ns)).catch(() => [] as string[]);
    for (const f of files) out.set(path.relative(storeRoot, f), f);
  }
  return out;
}

/** How many of `a`'s object files are the same inode in `b`; each shared one must have at least `nlinkAtLeast` links. */
async function sharedInodes(
  a: string,
  b: string,
  options: { nlinkAtLeast?: number; namespaces?: readonly Namespace[] } = {},
): Promise<{ shared: number; total: number }> {
  const files = await objectFiles(a, options.namespaces);
  let shared = 0;
  for (const [rel, file] of files) {
    const mine = await stat(file);
    const theirs = await stat(path.join(b, rel)).catch(() => null);
    if (theirs?.ino === mine.ino && theirs.dev === mine.dev) {
      shared++;
      assert.ok(
        mine.nlink >= (options.nlinkAtLeast ?? 2),
        `${rel}: nlink ${mine.nlink}, expected at least ${options.nlinkAtLeast ?? 2}`,
      );
    }
  }
  return { shared, total: files.size };
}

/** Replaces a stored object with a damaged copy — a new file, so repositories sharing the old inode keep it intact. */
async function corruptCopy(file: string): Promise<void> {
  const bytes = await readFile(file);
  bytes[bytes.length >> 1]! ^= 0xff;
  await unlink(file);
  await writeFile(file, bytes);
  await chmod(file, 0o444);
}

function assertCorruptError(res: CliResult, oid: string, label: string): void {
  assert.equal(res.code, 6, `${label}: exit code\n${res.stderr}`);
  const lines = stderrLines(res.stderr);
  assert.match(lines[0] ?? '', new RegExp(`^error: .*${oid}.*corrupt`), `${label}: error line`);
  assert.doesNotMatch(res.stderr, /^\s+at /m, `${label}: stack trace printed`);
}

/** A repository of the tiny corpus in `work/src`, committed, with `origin` set to `work/<remote>`. */
async function source(
  work: string,
  remote = 'remote.mediagit',
): Promise<{ src: string; remote: string }> {
  const src = path.join(work, 'src');
  await makeCorpus(src, 1, 'tiny');
  await initAndCommit(src, 'v1');
  await mg(src, 'remote', 'add', 'origin', path.join(work, remote));
  await mg(src, 'init', '-q', '--bare', path.join(work, remote));
  return { src, remote: path.join(work, remote) };
}

test('push to a folder hard-links every object; a clone from it is byte-identical, fsck-clean and shares them too; a second push sends nothing', async (t) => {
  const work = await tempDir('hardlinks-roundtrip');
  const { src, remote } = await source(work);
  const srcStore = path.join(src, '.mediagit');

  const pushed = json<PushJson>((await mg(src, 'push', '--json')).stdout);
  assert.equal(pushed.refs[0]?.status, 'created');
  // What the remote gained is what was "sent": every object and chunk, and the descriptor (refs are not counted as payload).
  const gained =
    (await folderSize(path.join(remote, 'chunks'))).bytes +
    (await folderSize(path.join(remote, 'objects'))).bytes +
    (await folderSize(path.join(remote, 'meta'))).bytes;
  t.diagnostic(`push: bytesSent ${pushed.bytesSent} B, remote objects + descriptor ${gained} B`);
  assert.equal(pushed.bytesSent, gained);
  const onRemote = await sharedInodes(remote, srcStore);
  assert.ok(onRemote.total > 20, `only ${onRemote.total} objects`);
  assert.equal(
    onRemote.shared,
    onRemote.total,
    'every object on the remote should be the source inode',
  );
  await assertRemoteFsckClean(src);

  const clone = path.join(work, 'clone');
  const cloned = json<CloneJson>((await mg(work, 'clone', '--json', remote, clone)).stdout);
  assertTreesEqual(await hashTree(clone), await hashTree(src), 'clone');
  await assertFsckClean(clone);
  assert.equal(JSON.parse((await mg(clone, 'status', '--json')).stdout).clean, true);
  // Chunks are linked; manifests, trees and commits are read (to walk the history) and written anew.
  const chunks = await sharedInodes(path.join(clone, '.mediagit'), srcStore, {
    nlinkAtLeast: 3,
    namespaces: ['chunks'],
  });
  assert.ok(chunks.total > 20, `only ${chunks.total} chunks`);
  assert.equal(
    chunks.shared,
    chunks.total,
    'every chunk of the clone should be the source inode, shared by src, remote and clone',
  );
  t.diagnostic(
    `clone: ${cloned.objects} objects, ${cloned.bytes} B, bytesReceived ${cloned.bytesReceived} B`,
  );
  assert.ok(cloned.bytesReceived >= cloned.bytes, 'linked chunks count as received bytes');

  const again = json<PushJson>((await mg(src, 'push', '--json')).stdout);
  assert.equal(again.refs[0]?.status, 'up-to-date');
  assert.equal(again.bytesSent, 0);
  // A fresh remote-tracking fetch from the clone also has nothing to take.
  assert.equal(json<{ objects: number }>((await mg(clone, 'fetch', '--json')).stdout).objects, 0);
});

test('--no-hardlinks (push, clone, fetch) and config transfer.hardlinks = false copy and verify instead: no inode is shared', async () => {
  const work = await tempDir('hardlinks-off');
  const { src, remote } = await source(work);
  const srcStore = path.join(src, '.mediagit');

  const copied = json<PushJson>((await mg(src, 'push', '--json', '--no-hardlinks')).stdout);
  assert.equal(
    (await sharedInodes(remote, srcStore)).shared,
    0,
    'push --no-hardlinks shared an inode',
  );
  await assertRemoteFsckClean(src);
  // The same bytes land either way.
  const linkedRemote = path.join(work, 'linked.mediagit');
  await mg(src, 'remote', 'add', 'linked', linkedRemote);
  await mg(src, 'init', '-q', '--bare', linkedRemote);
  const linked = json<PushJson>((await mg(src, 'push', '--json', 'linked')).stdout);
  assert.equal(linked.bytesSent, copied.bytesSent);
  assert.equal(
    (await sharedInodes(linkedRemote, srcStore)).shared,
    (await objectFiles(linkedRemote)).size,
  );

  const clone = path.join(work, 'clone');
  await mg(work, 'clone', '-q', '--no-hardlinks', linkedRemote, clone);
  assertTreesEqual(await hashTree(clone), await hashTree(src), 'clone --no-hardlinks');
  await assertFsckClean(clone);
  assert.equal(
    (await sharedInodes(path.join(clone, '.mediagit'), linkedRemote)).shared,
    0,
    'clone --no-hardlinks shared an inode',
  );

  const fetcher = path.join(work, 'fetcher');
  await mkdir(fetcher);
  await mg(fetcher, 'init', '-q', ...SMALL_CHUNK_ARGS);
  await mg(fetcher, 'remote', 'add', 'origin', linkedRemote);
  await mg(fetcher, 'fetch', '-q', '--no-hardlinks');
  assert.ok((await storedChunks(path.join(fetcher, '.mediagit'))).length > 20);
  assert.equal(
    (await sharedInodes(path.join(fetcher, '.mediagit'), linkedRemote)).shared,
    0,
    'fetch --no-hardlinks shared an inode',
  );

  await mg(src, 'config', 'transfer.hardlinks', 'false');
  const configured = path.join(work, 'configured.mediagit');
  await mg(src, 'remote', 'add', 'configured', configured);
  await mg(src, 'init', '-q', '--bare', configured);
  await mg(src, 'push', '-q', 'configured');
  assert.equal(
    (await sharedInodes(configured, srcStore)).shared,
    0,
    'transfer.hardlinks = false shared an inode',
  );

  await mg(src, 'config', 'transfer.hardlinks', 'sometimes');
  const bad = await mgFail(src, 'push', 'linked');
  assert.equal(bad.code, 11, bad.stderr);
  assert.match(bad.stderr, /transfer\.hardlinks must be true or false/);
});

test('a corrupt chunk on the remote: clone fails at checkout (exit 6) and leaves nothing; fetch --no-hardlinks refuses it; a linking fetch takes it, and fsck and checkout name it', async () => {
  const work = await tempDir('hardlinks-corrupt');
  const { src, remote } = await source(work);
  await mg(src, 'push', '-q');
  const victim = (await storedChunks(remote))[3]!;
  await corruptCopy(victim.file);

  for (const flags of [[], ['--no-hardlinks']]) {
    const res = await mgFail(work, 'clone', ...flags, remote, 'target');
    assertCorruptError(res, victim.oid, `clone ${flags.join(' ')}`);
    assert.equal(
      await exists(path.join(work, 'target')),
      false,
      `a failed clone ${flags.join(' ')} left its folder`,
    );
  }

  const verified = path.join(work, 'verified');
  await mkdir(verified);
  await mg(verified, 'init', '-q', ...SMALL_CHUNK_ARGS);
  await mg(verified, 'remote', 'add', 'origin', remote);
  assertCorruptError(
    await mgFail(verified, 'fetch', '--no-hardlinks'),
    victim.oid,
    'fetch --no-hardlinks',
  );
  assert.equal(
    await exists(
      path.join(verified, '.mediagit', 'chunks', victim.oid.slice(0, 2), victim.oid.slice(2)),
    ),
    false,
    'fetch --no-hardlinks wrote the corrupt chunk',
  );

  // Hard-linking takes objects unread, as git's local clone does; reading them is what verifies.
  const linked = path.join(work, 'linked');
  await mkdir(linked);
  await mg(linked, 'init', '-q', ...SMALL_CHUNK_ARGS);
  await mg(linked, 'remote', 'add', 'origin', remote);
  await mg(linked, 'fetch', '-q');
  const fsck = await mgFail(linked, 'fsck', '--full');
  assert.equal(fsck.code, 6, fsck.stderr);
  assert.match(fsck.stdout, new RegExp(victim.oid));
  assertCorruptError(
    await mgFail(linked, 'checkout', '-b', 'main', 'origin/main'),
    victim.oid,
    'checkout of the fetched branch',
  );

  // The source never shared the damaged file.
  await assertFsckClean(src);
});

test('gc in one repository unlinks only its own names: the remote and the other clone keep every object', async () => {
  const work = await tempDir('hardlinks-gc');
  const { src, remote } = await source(work);
  await mg(src, 'push', '-q');
  const before = new Set((await storedChunks(path.join(src, '.mediagit'))).map((c) => c.oid));
  await mg(src, 'checkout', '-q', '-b', 'extra');
  await mkdir(path.join(src, 'extra'));
  await writeFile(
    path.join(src, 'extra', 'take.raw'),
    Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251)),
  );
  await mg(src, 'add', 'extra');
  await mg(src, 'commit', '-q', '-m', 'extra take');
  await mg(src, 'push', '-q', 'origin', 'extra');
  const extraTree = await hashTree(src);
  const extra = (await storedChunks(path.join(src, '.mediagit'))).filter((c) => !before.has(c.oid));
  assert.ok(extra.length >= 2, `only ${extra.length} new chunks`);
  await mg(src, 'checkout', '-q', 'main');

  const clone = path.join(work, 'clone');
  // Every branch's content, so the clone holds (and links) the other branch's chunks too.
  await mg(work, 'clone', '-q', '--history-content', 'all', remote, clone);
  const remoteFile = (oid: string): string =>
    path.join(remote, 'chunks', oid.slice(0, 2), oid.slice(2));
  const cloneFile = (oid: string): string =>
    path.join(clone, '.mediagit', 'chunks', oid.slice(0, 2), oid.slice(2));
  for (const c of extra)
    assert.equal(
      (await stat(remoteFile(c.oid))).nlink,
      3,
      `${c.oid}: src, remote and clone should share it`,
    );

  // The source forgets the branch (and its remote-tracking refs), then collects it.
  await mg(src, 'branch', '-D', 'extra');
  await mg(src, 'remote', 'remove', 'origin');
  await mg(src, 'reflog', 'expire', '--expire=now', '--all');
  const collected = json<GcJson>((await mg(src, 'gc', '--prune', 'now', '--json')).stdout);
  assert.ok(collected.removed >= extra.length, `gc removed ${collected.removed}`);
  for (const c of extra) {
    assert.equal(await exists(c.file), false, `${c.oid} survived gc in the source`);
    assert.equal((await stat(remoteFile(c.oid))).nlink, 2);
  }
  await assertFsckClean(src);
  await assertFsckClean(clone);
  await assertRemoteFsckClean(clone);
  await mg(clone, 'checkout', '-q', '-b', 'extra', 'origin/extra');
  assertTreesEqual(
    await hashTree(clone),
    extraTree,
    'the clone checks out the branch the source collected',
  );

  // And the other way round: the clone collects it too; the remote still has every object.
  await mg(clone, 'checkout', '-q', 'main');
  await mg(clone, 'branch', '-D', 'extra');
  await mg(clone, 'remote', 'remove', 'origin');
  await mg(clone, 'reflog', 'expire', '--expire=now', '--all');
  await mg(clone, 'gc', '--prune', 'now');
  for (const c of extra) {
    assert.equal(await exists(cloneFile(c.oid)), false);
    assert.equal((await stat(remoteFile(c.oid))).nlink, 1);
  }
  await assertFsckClean(clone);
  await mg(src, 'remote', 'add', 'origin', remote);
  await mg(src, 'init', '-q', '--bare', remote);
  await assertRemoteFsckClean(src);
});

test('objects hard-linked in by fetch keep their gc grace period although their mtime is old', async () => {
  const work = await tempDir('hardlinks-grace');
  const { src, remote } = await source(work);
  // Objects written ten days ago: a link keeps that mtime (only ctime changes).
  const old = new Date(Date.now() - 10 * 86_400_000);
  for (const file of (await objectFiles(path.join(src, '.mediagit'))).values())
    await utimes(file, old, old);
  await mg(src, 'push', '-q');

  const repo = path.join(work, 'repo');
  await mkdir(repo);
  await mg(repo, 'init', '-q', ...SMALL_CHUNK_ARGS);
  await mg(repo, 'remote', 'add', 'origin', remote);
  await mg(repo, 'fetch', '-q');
  const fetched = await objectFiles(path.join(repo, '.mediagit'));
  const chunk = (await storedChunks(path.join(repo, '.mediagit')))[0]!;
  assert.ok(
    Math.abs((await stat(chunk.file)).mtimeMs - old.getTime()) < 2000,
    'the linked chunk should keep its old mtime',
  );
  // Nothing refers to the fetched objects any more, as in the instant before a fetch moves its ref.
  await mg(repo, 'remote', 'remove', 'origin');
  const graced = json<GcJson>((await mg(repo, 'gc', '--json')).stdout);
  assert.equal(graced.removed, 0, 'gc deleted objects that had just arrived');
  assert.ok(graced.keptUnreachable >= (await storedChunks(path.join(repo, '.mediagit'))).length);
  const collected = json<GcJson>((await mg(repo, 'gc', '--prune', 'now', '--json')).stdout);
  assert.equal(collected.removed, fetched.size);
});
