/**
 * `mediagit import git-lfs` against a real git + git-lfs repository (Debian's git-lfs; .ci/run
 * installs it): every commit and path byte-identical to git's smudged content, metadata equal,
 * incremental re-runs, and a missing LFS object refused with the list.
 */
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { parseSignature } from '../../src/objects/index.js';
import { Repository, flattenTree } from '../../src/repo/index.js';
import {
  CLI_PATH,
  cliEnv,
  mg,
  mgFail,
  parseJson,
  pathExists,
  runCli,
  tempDir,
} from '../support/cli.js';

const hasGitLfs = spawnSync('git', ['lfs', 'version']).status === 0;
const skip =
  !hasGitLfs &&
  process.env['CI'] !== 'true' &&
  'git-lfs is not installed (apt-get install git-lfs)';

/** git in `dir` with a fixed identity and clock, and no user or system config. */
function gitIn(dir: string, home: string) {
  let tick = 0;
  return (args: string[], input?: Buffer): Buffer => {
    tick++;
    const when = `${1_700_000_000 + tick * 3600} ${tick % 2 ? '+0530' : '-0700'}`;
    const r = spawnSync('git', args, {
      cwd: dir,
      input,
      maxBuffer: 64 * 1024 * 1024,
      env: {
        ...cliEnv(),
        HOME: home,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_AUTHOR_NAME: tick % 3 ? 'Ada Artist' : 'Bo Builder',
        GIT_AUTHOR_EMAIL: tick % 3 ? 'ada@studio.example' : 'bo@studio.example',
        GIT_COMMITTER_NAME: 'Ci Robot',
        GIT_COMMITTER_EMAIL: 'ci@studio.example',
        GIT_AUTHOR_DATE: when,
        GIT_COMMITTER_DATE: when,
      },
    });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr.toString()}`);
    return r.stdout;
  };
}

interface ImportJson {
  created: boolean;
  commits: number;
  mappedCommits: number;
  lfsObjects: number;
  lockable: string[];
  missing: { path: string; commit: string; oid: string }[];
  branch: string | null;
}

async function write(dir: string, rel: string, data: Buffer | string): Promise<void> {
  await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
  await writeFile(path.join(dir, rel), data);
}

/** 6 commits on 2 branches, a tag, 3 LFS files: one edited twice, one renamed. */
async function makeSource(work: string): Promise<{ src: string; git: ReturnType<typeof gitIn> }> {
  const home = path.join(work, 'home');
  const src = path.join(work, 'src');
  await mkdir(home);
  await mkdir(src);
  const git = gitIn(src, home);
  git(['init', '-q', '-b', 'main']);
  git(['lfs', 'install', '--local']);
  git(['lfs', 'track', '--lockable', '*.psd']);
  git(['lfs', 'track', '*.wav', '*.exr']);
  await write(src, 'art/hero.psd', randomBytes(700_000));
  await write(src, 'README.txt', 'hero game\n');
  git(['add', '.']);
  git(['commit', '-q', '-m', 'Start the hero']);
  await write(src, 'art/hero.psd', randomBytes(900_000));
  await write(src, 'audio/take.wav', randomBytes(400_000));
  git(['add', '.']);
  git(['commit', '-q', '-m', 'Repaint the hero\n\nWith a body: second paragraph.']);
  git(['tag', '-a', 'v1', '-m', 'First playable']);
  git(['checkout', '-q', '-b', 'lighting']);
  await write(src, 'renders/key.exr', randomBytes(300_000));
  git(['add', '.']);
  git(['commit', '-q', '-m', 'Key light render']);
  git(['checkout', '-q', 'main']);
  await write(src, 'art/hero.psd', randomBytes(650_000));
  git(['add', '.']);
  git(['commit', '-q', '-m', 'Hero, third pass']);
  git(['mv', 'audio/take.wav', 'audio/final-take.wav']);
  git(['commit', '-q', '-m', 'Rename the take']);
  git(['merge', '-q', '--no-ff', '-m', 'Merge lighting', 'lighting']);
  return { src, git };
}

/** What git says a file holds at a commit, LFS pointers smudged by git-lfs itself. */
function gitContent(git: ReturnType<typeof gitIn>, commit: string, file: string): Buffer {
  const raw = git(['cat-file', 'blob', `${commit}:${file}`]);
  return raw.toString('utf8').startsWith('version https://git-lfs.github.com/spec/v1')
    ? git(['lfs', 'smudge', '--', file], raw)
    : raw;
}

async function mapping(dst: string): Promise<Map<string, string>> {
  const text = await readFile(path.join(dst, '.mediagit', 'import', 'git-lfs', 'commits'), 'utf8');
  return new Map(
    text
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  );
}

function gitCommitMeta(git: ReturnType<typeof gitIn>, sha: string) {
  const text = git(['cat-file', 'commit', sha]).toString('utf8');
  const end = text.indexOf('\n\n');
  const headers = text.slice(0, end).split('\n');
  const get = (k: string) => headers.find((h) => h.startsWith(`${k} `))!.slice(k.length + 1);
  return {
    author: parseSignature(get('author')),
    committer: parseSignature(get('committer')),
    message: text.slice(end + 2),
    parents: headers.filter((h) => h.startsWith('parent ')).map((h) => h.slice(7)),
  };
}

test(
  'import git-lfs: every commit and path as git has it, metadata equal; re-import adds exactly the new commit',
  { skip },
  async () => {
    const work = await tempDir('import-lfs');
    const { src, git } = await makeSource(work);
    const dst = path.join(work, 'hero');

    const first = parseJson<ImportJson>(
      (await mg(work, 'import', 'git-lfs', '--json', src, dst)).stdout,
    );
    assert.equal(first.created, true);
    assert.equal(first.commits, 6);
    assert.equal(first.lfsObjects, 5, 'three hero versions, the take, the render');
    assert.deepEqual(first.lockable, ['*.psd']);
    assert.equal(first.branch, 'main');

    const shas = git(['rev-list', '--all']).toString('utf8').trim().split('\n');
    assert.equal(shas.length, 6);
    const map = await mapping(dst);
    const repo = await Repository.open(dst);
    let compared = 0;
    for (const sha of shas) {
      const oid = map.get(sha);
      assert.ok(oid, `commit ${sha} not imported`);
      const commit = await repo.odb.readCommit(oid);
      const meta = gitCommitMeta(git, sha);
      assert.deepEqual(commit.author, meta.author, `author of ${sha}`);
      assert.deepEqual(commit.committer, meta.committer, `committer of ${sha}`);
      assert.equal(commit.message, meta.message, `message of ${sha}`);
      assert.deepEqual(
        commit.parents,
        meta.parents.map((p) => map.get(p)),
        `parents of ${sha}`,
      );
      const gitPaths = git(['ls-tree', '-r', '--name-only', '-z', sha])
        .toString('utf8')
        .split('\0')
        .filter(Boolean)
        .sort();
      const files = await flattenTree(repo.odb, commit.tree);
      assert.deepEqual([...files.keys()].sort(), gitPaths, `paths of ${sha}`);
      for (const file of gitPaths) {
        const shown: SpawnSyncReturns<Buffer> = spawnSync(
          process.execPath,
          [CLI_PATH, 'show', `${oid}:${file}`],
          {
            cwd: dst,
            env: cliEnv(),
            maxBuffer: 64 * 1024 * 1024,
          },
        );
        assert.equal(shown.status, 0, shown.stderr.toString());
        assert.ok(
          shown.stdout.equals(gitContent(git, sha, file)),
          `${sha.slice(0, 7)}:${file} differs`,
        );
        compared++;
      }
    }
    assert.equal(compared, 25);
    for (const [ref, expected] of [
      ['refs/heads/main', git(['rev-parse', 'main'])],
      ['refs/heads/lighting', git(['rev-parse', 'lighting'])],
    ] as const)
      assert.equal(await repo.readRef(ref), map.get(expected.toString('utf8').trim()), ref);
    const tag = await repo.odb.readTag((await repo.readRef('refs/tags/v1'))!);
    assert.equal(tag.object, map.get(git(['rev-parse', 'v1^{commit}']).toString('utf8').trim()));
    assert.equal(tag.message, 'First playable\n');
    // The working tree is main's, byte for byte; the lockable .psd is checked out read-only.
    for (const file of ['README.txt', 'art/hero.psd', 'audio/final-take.wav', 'renders/key.exr'])
      assert.ok(
        (await readFile(path.join(dst, file))).equals(await readFile(path.join(src, file))),
        file,
      );
    assert.equal((await stat(path.join(dst, 'art/hero.psd'))).mode & 0o222, 0);
    assert.equal((await mg(dst, 'config', 'lock.lockable')).stdout, '*.psd\n');
    assert.match((await mg(dst, 'status', '--porcelain')).stdout, /^$/);

    // Idempotent: nothing new, nothing written.
    const again = parseJson<ImportJson>(
      (await mg(work, 'import', 'git-lfs', '--json', src, dst)).stdout,
    );
    assert.deepEqual([again.created, again.commits, again.mappedCommits], [false, 0, 6]);

    // One more git commit: exactly one more mediagit commit, and main's working tree follows.
    await write(src, 'art/hero.psd', randomBytes(500_000));
    git(['commit', '-q', '-am', 'Hero, fourth pass']);
    const more = parseJson<ImportJson>(
      (await mg(work, 'import', 'git-lfs', '--json', src, dst)).stdout,
    );
    assert.deepEqual(
      [more.created, more.commits, more.mappedCommits, more.lfsObjects],
      [false, 1, 7, 1],
    );
    const log = (await mg(dst, 'log', '--oneline')).stdout.trim().split('\n');
    assert.match(log[0]!, /Hero, fourth pass/);
    assert.equal(log.length, 7);
    assert.ok(
      (await readFile(path.join(dst, 'art/hero.psd'))).equals(
        await readFile(path.join(src, 'art/hero.psd')),
      ),
    );
    assert.equal((await mapping(dst)).size, 7);

    // Through a URL the source is mirrored (git clone --mirror, git lfs fetch --all) and gives the
    // very same objects: the commit IDs match the direct import's.
    const viaUrl = path.join(work, 'via-url');
    await mg(work, 'import', 'git-lfs', '-q', `file://${src}`, viaUrl);
    assert.equal(
      (await mg(viaUrl, 'log', '--oneline', '-1')).stdout,
      (await mg(dst, 'log', '--oneline', '-1')).stdout,
    );
    assert.equal(
      await (await Repository.open(viaUrl)).readRef('refs/heads/lighting'),
      await repo.readRef('refs/heads/lighting'),
    );
  },
);

test(
  'import git-lfs: a missing LFS object is refused with the list, nothing left; --allow-missing keeps the pointer',
  { skip },
  async () => {
    const work = await tempDir('import-lfs-missing');
    const { src, git } = await makeSource(work);
    const pointer = git(['cat-file', 'blob', 'HEAD:audio/final-take.wav']);
    const oid = /oid sha256:([0-9a-f]{64})/.exec(pointer.toString('utf8'))![1]!;
    await rm(path.join(src, '.git', 'lfs', 'objects', oid.slice(0, 2), oid.slice(2, 4), oid));

    const dst = path.join(work, 'hero');
    const refused = await mgFail(work, 'import', 'git-lfs', src, dst);
    assert.equal(refused.code, 16, refused.stderr);
    assert.match(
      refused.stderr,
      /^error: 1 LFS object is missing from .*: audio\/take\.wav \(commit [0-9a-f]{7}, LFS [0-9a-f]{12}\)$/m,
    );
    assert.match(refused.stderr, /^hint: .*git lfs fetch --all.*--allow-missing/m);
    assert.equal(await pathExists(dst), false, 'a failed first import leaves no folder');
    const debug = await mgFail(work, 'import', 'git-lfs', '--debug', src, dst);
    assert.match(debug.stderr, /\[E_LFS_MISSING\]/);

    const kept = parseJson<ImportJson>(
      (await runCli(['import', 'git-lfs', '--json', '--allow-missing', src, dst], { cwd: work }))
        .stdout,
    );
    assert.equal(kept.commits, 6);
    assert.deepEqual(
      kept.missing.map((m) => [m.path, m.oid]),
      [['audio/take.wav', oid]],
    );
    assert.ok((await readFile(path.join(dst, 'audio/final-take.wav'))).equals(pointer));
  },
);

test(
  'log --format and --pretty print what git log prints for the same commits',
  { skip },
  async () => {
    const work = await tempDir('import-lfs-format');
    const { src, git } = await makeSource(work);
    const dst = path.join(work, 'hero');
    await mg(work, 'import', 'git-lfs', '-q', src, dst);
    // Object IDs differ by design; everything else a template can print must match git's.
    const templates = [
      '%an <%ae> %ad%n%s',
      '%aD|%at|%aI|%as|%cn|%ce|%cd|%ct|%cI',
      'subject: %s%nbody: %b%%',
      '%s%x09%an',
    ];
    for (const template of templates) {
      const theirs = git(['log', `--format=${template}`, 'main']).toString('utf8');
      const ours = (await mg(dst, 'log', `--format=${template}`, 'main')).stdout;
      assert.equal(ours, theirs, template);
    }
    for (const name of ['medium', 'full', 'fuller', 'short']) {
      const strip = (text: string): string =>
        text.replace(/^commit [0-9a-f]+.*$/gm, 'commit').replace(/^Merge: .*$/gm, 'Merge:');
      const theirs = git(['log', `--pretty=${name}`, '--no-decorate', 'main']).toString('utf8');
      const ours = (await mg(dst, 'log', `--pretty=${name}`, 'main')).stdout;
      assert.equal(strip(ours), strip(theirs), name);
    }
    const hashes = (await mg(dst, 'log', '--format=%H %h %T %P', '-1')).stdout.trim().split(' ');
    const repo = await Repository.open(dst);
    const head = (await repo.readHead()).oid!;
    const commit = await repo.odb.readCommit(head);
    assert.deepEqual(hashes, [head, head.slice(0, 12), commit.tree, ...commit.parents]);
    assert.match((await mg(dst, 'log', '--format=%d', '-1')).stdout, /^ \(HEAD -> main\)$/m);
    assert.equal((await mgFail(dst, 'log', '--pretty=nonsense')).code, 2);
  },
);
