import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runAdd } from '../../../src/commands/add.js';
import { runCommit } from '../../../src/commands/commit.js';
import { FsckError, runFsck } from '../../../src/commands/fsck.js';
import type { CommandIo } from '../../../src/commands/context.js';
import { ObjectMissingError } from '../../../src/errors/index.js';
import {
  Repository,
  collectRoots,
  silentProgress,
  walkReachable,
  type Root,
} from '../../../src/repo/index.js';
import { chunkKey, objectKey } from '../../../src/store/index.js';

process.env['MEDIAGIT_AUTHOR_NAME'] = 'Unit Test';
process.env['MEDIAGIT_AUTHOR_EMAIL'] = 'unit@example.com';

/** Deterministic pseudo-random bytes (SHA-256 in counter mode): same content on every run. */
function bytes(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let offset = 0, i = 0; offset < length; i++) {
    const block = createHash('sha256').update(`${seed}/${i}`).digest();
    offset += block.copy(out, offset);
  }
  return out;
}

function quietIo(cwd: string): CommandIo {
  return {
    cwd,
    out: () => {},
    err: () => {},
    writeRaw: async () => {},
    progress: () => silentProgress,
    passphrase: async () => {
      throw new Error('the test repository is not encrypted');
    },
    promptSecret: async () => {
      throw new Error('no terminal in tests');
    },
    exit: (code) => {
      throw new Error(`exit ${code} in a test`);
    },
  };
}

let root: string;
let repo: Repository;
let io: CommandIo;
let firstCommit: string;
let secondCommit: string;

before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'mediagit-reach-'));
  await Repository.init(root, {
    chunking: { minSize: 16 * 1024, avgSize: 64 * 1024, maxSize: 256 * 1024 },
  });
  repo = await Repository.open(root);
  io = quietIo(root);
  await mkdir(path.join(root, 'tex'));
  await writeFile(path.join(root, 'tex', 'a.bin'), bytes('a', 300_000));
  await writeFile(path.join(root, 'b.bin'), bytes('b', 200_000));
  await runAdd(io, ['.'], {});
  await runCommit(io, { message: ['first'] });
  firstCommit = (await repo.readHead()).oid!;
  // Same content under a second name (dedup), and b.bin grows.
  await writeFile(path.join(root, 'tex', 'copy.bin'), bytes('a', 300_000));
  await writeFile(
    path.join(root, 'b.bin'),
    Buffer.concat([bytes('b', 200_000), bytes('b2', 50_000)]),
  );
  await runAdd(io, ['.'], {});
  await runCommit(io, { message: ['second'] });
  secondCommit = (await repo.readHead()).oid!;
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('walkReachable: counts every object once, chunk bytes counted once', async () => {
  const reach = await walkReachable(repo, await collectRoots(repo));
  assert.equal(reach.problems.length, 0);
  assert.equal(reach.commits.size, 2);
  assert.equal(reach.tags.size, 0);
  // Two root trees and two distinct tex/ trees (the second has copy.bin).
  assert.equal(reach.trees.size, 4);
  // a.bin (= copy.bin), b.bin v1, b.bin v2.
  assert.equal(reach.manifests.size, 3);
  let chunkKeys = 0;
  for await (const _ of repo.store.list('chunks/')) chunkKeys++;
  assert.equal(
    reach.chunks.size,
    chunkKeys,
    'nothing dangling yet: every stored chunk is reachable',
  );
  assert.ok(reach.chunks.size >= 6, `files span several chunks (${reach.chunks.size})`);
  // 300 000 (a) + 200 000 (b v1) + the chunks b v2 does not share with b v1.
  assert.ok(
    reach.chunkBytes >= 550_000 && reach.chunkBytes < 800_000,
    `chunk bytes ${reach.chunkBytes}`,
  );

  const visits = { commits: 0, trees: 0, manifests: 0 };
  await walkReachable(repo, await collectRoots(repo), {
    chunks: 'skip',
    visitor: {
      commit: () => void visits.commits++,
      tree: () => void visits.trees++,
      manifest: () => void visits.manifests++,
    },
  });
  assert.deepEqual(visits, { commits: 2, trees: 4, manifests: 3 });
});

test('walkReachable: exclude stops at commits the other side has', async () => {
  const roots: Root[] = [{ oid: secondCommit, kind: 'commit', where: 'test' }];
  const history = await walkReachable(repo, roots, {
    exclude: new Set([firstCommit]),
    depth: 'commits',
  });
  assert.deepEqual([...history.commits], [secondCommit]);
  assert.equal(history.trees.size, 0);

  const full = await walkReachable(repo, roots, { exclude: new Set([firstCommit]) });
  const thin = await walkReachable(repo, roots, {
    exclude: new Set([firstCommit]),
    excludeBoundaryContent: true,
  });
  assert.equal(
    full.manifests.size,
    2,
    'without boundary content, all of the second snapshot (a = copy, b v2)',
  );
  assert.equal(thin.manifests.size, 1, 'with it, only b.bin v2 is new');
  assert.ok(thin.chunks.size < full.chunks.size);
  assert.ok(thin.chunks.size >= 1);
});

test('walkReachable: a deleted chunk is reported missing (tolerant) or thrown', async () => {
  const reach = await walkReachable(repo, await collectRoots(repo));
  const victim = [...reach.chunks][0]!;
  const file = repo.store.pathOf(chunkKey(victim));
  const saved = await readFile(file);
  await unlink(file);
  try {
    const tolerant = await walkReachable(repo, await collectRoots(repo), {
      tolerant: true,
      chunkBatch: 3,
    });
    assert.equal(tolerant.problems.length, 1);
    const problem = tolerant.problems[0]!;
    assert.equal(problem.kind, 'chunk');
    assert.equal(problem.oid, victim);
    assert.equal(problem.problem, 'missing');
    assert.match(
      problem.where,
      /^in manifest [0-9a-f]{64} of (tex\/a\.bin|tex\/copy\.bin|b\.bin)$/,
    );
    assert.equal(
      tolerant.chunks.size,
      reach.chunks.size,
      'the missing chunk still counts as reachable',
    );
    await assert.rejects(
      walkReachable(repo, await collectRoots(repo)),
      (err: unknown) => err instanceof ObjectMissingError && err.oid === victim,
    );
  } finally {
    await writeFile(file, saved, { mode: 0o444 });
  }
});

test('walkReachable: a corrupt tree is reported and its content skipped', async () => {
  const commit = await repo.odb.readCommit(firstCommit);
  const file = repo.store.pathOf(objectKey(commit.tree));
  const saved = await readFile(file);
  await chmod(file, 0o644);
  const damaged = Buffer.from(saved);
  damaged[damaged.length - 1]! ^= 0xff;
  await writeFile(file, damaged);
  try {
    const reach = await walkReachable(repo, [{ oid: firstCommit, kind: 'object', where: 'test' }], {
      tolerant: true,
    });
    assert.equal(reach.problems.length, 1);
    assert.equal(reach.problems[0]!.kind, 'tree');
    assert.equal(reach.problems[0]!.problem, 'corrupt');
    assert.equal(reach.problems[0]!.where, `root tree of commit ${firstCommit.slice(0, 12)}`);
    assert.equal(reach.manifests.size, 0);
  } finally {
    await writeFile(file, saved);
    await chmod(file, 0o444);
  }
});

test('walkReachable: a ref naming something that is not a commit is a problem', async () => {
  const commit = await repo.odb.readCommit(secondCommit);
  const reach = await walkReachable(
    repo,
    [{ oid: commit.tree, kind: 'object', where: 'refs/heads/odd' }],
    { tolerant: true },
  );
  assert.equal(reach.problems.length, 1);
  assert.equal(reach.problems[0]!.kind, 'tree');
  assert.match(reach.problems[0]!.reason, /not a commit or tag/);
  const bogus = await walkReachable(
    repo,
    [{ oid: 'nonsense', kind: 'object', where: 'refs/heads/bad' }],
    { tolerant: true },
  );
  assert.equal(bogus.problems[0]!.reason, 'not an object ID');
});

test('fsck (through the library): a tree that misstates a file size is reported', async () => {
  const lines: string[] = [];
  const collect: CommandIo = { ...quietIo(root), out: (line) => void lines.push(line) };
  await runFsck(collect, {});
  assert.match(
    lines.at(-1)!,
    /^checked 2 commits, 4 trees, 3 manifests, \d+ chunks \([\d.]+ KiB\): no problems found$/,
  );

  const head = await repo.odb.readCommit(secondCommit);
  const entry = (await repo.odb.readTree(head.tree)).find((e) => e.name === 'b.bin')!;
  const tree = await repo.odb.writeTree([{ ...entry, size: entry.size + 1 }]);
  const commit = await repo.odb.writeCommit({
    ...head,
    tree: tree.oid,
    parents: [secondCommit],
    message: 'lies about a size\n',
  });
  await repo.updateRef('refs/heads/liar', commit.oid, null);
  try {
    lines.length = 0;
    await assert.rejects(runFsck(collect, {}), FsckError);
    assert.deepEqual(lines.slice(0, -1), [
      `corrupt tree ${tree.oid}: records ${entry.size + 1} bytes for b.bin, whose content has ${entry.size} (a root tree)`,
    ]);
  } finally {
    await repo.updateRef('refs/heads/liar', null, commit.oid);
  }
});

test('collectRoots: refs, HEAD and staged manifests', async () => {
  await writeFile(path.join(root, 'staged.bin'), bytes('staged', 40_000));
  await runAdd(io, ['staged.bin'], {});
  try {
    const roots = await collectRoots(repo);
    assert.ok(roots.some((r) => r.where === 'refs/heads/main' && r.oid === secondCommit));
    assert.ok(roots.some((r) => r.where === 'HEAD' && r.oid === secondCommit));
    const staged = roots.filter((r) => r.kind === 'manifest');
    assert.equal(staged.length, 4, 'one manifest root per index entry');
    assert.ok(staged.some((r) => r.path === 'staged.bin'));
    const withoutIndex = await collectRoots(repo, { includeIndex: false });
    assert.ok(withoutIndex.every((r) => r.kind === 'object'));
  } finally {
    await repo.updateIndex(async (index) => void index.entries.delete('staged.bin'));
    await unlink(path.join(root, 'staged.bin'));
  }
});
