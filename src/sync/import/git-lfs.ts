/**
 * `mediagit import git-lfs`: a git repository that keeps its media in git-lfs becomes a mediagit
 * repository with the same commits (author, committer, dates, message, parents), branches and
 * tags, and every file's real content (LFS objects from the source's LFS store, not pointers).
 *
 * Re-running imports only commits not imported before: a mapping (git commit → mediagit commit,
 * git blob → manifest) is kept under .mediagit/import/git-lfs/ and appended as each is written, so
 * an interrupted import resumes where it stopped. Memory stays bounded: content streams from the
 * LFS store or from `git cat-file` through the chunker; only the mappings are held.
 *
 * Two passes: the first reads only trees and small blobs to find every LFS object the new commits
 * need, so a missing one is reported (all of them, listed) before anything is written.
 */
import { appendFile, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AlreadyExistsError, ConfigError, LfsObjectMissingError } from '../../errors/index.js';
import { parseSignature, type Commit, type Oid, type Signature } from '../../objects/index.js';
import {
  Repository,
  ingestFile,
  silentProgress,
  switchTo,
  writeTreeFromMap,
  type FileMap,
  type FileRecord,
  type ProgressSink,
} from '../../repo/index.js';
import { BlobReader, GitError, blobToFile, git } from './git.js';

/** The LFS spec caps pointer files at 1024 bytes; anything bigger is content. */
const POINTER_MAX = 1024;
/** Blobs up to this size are read through the batch reader; bigger ones stream to a file. */
const SMALL_BLOB = 1024 * 1024;
const STATE_DIR = ['import', 'git-lfs'];

export interface GitLfsImportRequest {
  /** A local repository (working or bare) or anything `git clone` takes. */
  readonly source: string;
  /** The mediagit repository: created when absent or empty, continued when it exists. */
  readonly directory: string;
  /** Import an LFS file whose content is missing as its pointer text instead of failing. */
  readonly allowMissing?: boolean;
  readonly progress?: ProgressSink;
  /** One line per thing the user should know about (skipped submodules, missing objects kept). */
  readonly onWarning?: (line: string) => void;
}

export interface MissingLfsObject {
  readonly path: string;
  readonly commit: string;
  readonly oid: string;
}

export interface GitLfsImportResult {
  readonly directory: string;
  readonly created: boolean;
  /** Commits written by this run. */
  readonly commits: number;
  /** Commits of the source now mapped (this run and earlier ones). */
  readonly mappedCommits: number;
  readonly lfsObjects: number;
  readonly refs: { ref: string; old: Oid | null; new: Oid }[];
  readonly lockable: string[];
  readonly missing: MissingLfsObject[];
  readonly branch: string | null;
}

interface LfsPointer {
  readonly oid: string;
  readonly size: number;
}

type BlobPlan =
  | { readonly kind: 'git'; readonly size: number }
  | { readonly kind: 'lfs'; readonly file: string; readonly size: number }
  | { readonly kind: 'missing'; readonly size: number };

interface TreeEntry {
  readonly mode: string;
  readonly type: string;
  readonly sha: string;
  readonly size: number;
  readonly path: string;
}

interface GitRef {
  readonly ref: string;
  readonly sha: string;
  readonly type: string;
  /** For an annotated tag: what it points at. */
  readonly peeled: string | null;
  readonly peeledType: string | null;
}

export async function importGitLfs(request: GitLfsImportRequest): Promise<GitLfsImportResult> {
  const warn = request.onWarning ?? ((): void => {});
  const progress = request.progress ?? silentProgress;
  const target = path.resolve(request.directory);
  const existing = await isRepository(target);
  if (!existing) await assertEmptyOrAbsent(target);
  const createdFolder = !existing && !(await pathExists(target));

  try {
    const localSource = await localRepository(request.source);
    // A remote source is mirrored inside the repository's own folder, so a re-run only fetches.
    const stateDir = path.join(target, '.mediagit', ...STATE_DIR);
    const sourceDir = localSource ?? path.join(stateDir, 'source.git');
    if (!existing) await Repository.init(target);
    const repo = await Repository.open(target);
    await mkdir(stateDir, { recursive: true });
    if (!localSource) await mirror(request.source, sourceDir);
    // A new repository starts on the source's own branch (master, trunk…), still unborn here.
    const headBranch = await sourceHeadBranch(sourceDir);
    if (!existing && headBranch) await repo.writeHead({ ref: `refs/heads/${headBranch}` });
    const lfsDir = await lfsStorage(sourceDir);

    const state = await ImportState.load(stateDir);
    const refs = await listRefs(sourceDir);
    const tips = [
      ...new Set(
        refs.filter((r) => (r.peeledType ?? r.type) === 'commit').map((r) => r.peeled ?? r.sha),
      ),
    ];
    const commits = tips.length === 0 ? [] : await newCommits(sourceDir, tips, state);

    const reader = new BlobReader(sourceDir);
    try {
      // Pass 1: what each new blob is, and which LFS objects are missing.
      const plans = new Map<string, BlobPlan>();
      const missing: MissingLfsObject[] = [];
      let totalBytes = 0;
      for (const commit of commits)
        for (const entry of await lsTree(sourceDir, commit.sha)) {
          if (entry.type !== 'blob' || state.blobs.has(entry.sha) || plans.has(entry.sha)) continue;
          const plan = await planBlob(reader, lfsDir, entry);
          plans.set(entry.sha, plan);
          totalBytes += plan.size;
          if (plan.kind === 'missing') {
            const pointer = parsePointer(await reader.read(entry.sha))!;
            missing.push({ path: entry.path, commit: commit.sha, oid: pointer.oid });
          }
        }
      if (missing.length > 0 && !request.allowMissing) throw missingError(missing, sourceDir);
      for (const m of missing)
        warn(
          `LFS object ${m.oid.slice(0, 12)} of ${m.path} (commit ${m.commit.slice(0, 7)}) is missing: imported as its pointer`,
        );

      // Pass 2: content, trees, commits, each mapped as soon as it is written.
      progress.start('import', commits.length, totalBytes);
      const ctx = repo.contentContext();
      let lfsObjects = 0;
      const scratch = repo.path('tmp', `import-${process.pid}`);
      await mkdir(scratch, { recursive: true });
      const warned = new Set<string>();
      try {
        for (const commit of commits) {
          const files: FileMap = new Map();
          for (const entry of await lsTree(sourceDir, commit.sha)) {
            if (entry.type === 'commit') {
              if (!warned.has(entry.path)) warn(`submodule ${entry.path} skipped`);
              warned.add(entry.path);
              continue;
            }
            if (entry.type !== 'blob') continue;
            let record = state.blobs.get(entry.sha);
            if (!record) {
              const plan = plans.get(entry.sha) ?? { kind: 'git', size: entry.size };
              const source =
                plan.kind === 'lfs' ? plan.file : await blobFile(sourceDir, reader, entry, scratch);
              const ingested = await ingestFile(ctx, source, entry.path, progress, plan.size);
              if (plan.kind === 'lfs') lfsObjects++;
              else await rm(source, { force: true });
              record = { type: 'file', oid: ingested.manifestOid, size: ingested.size };
              await state.addBlob(entry.sha, record);
            }
            if (entry.mode === '120000' && !warned.has('symlink')) {
              warned.add('symlink');
              warn('symbolic links are imported as files holding their target');
            }
            files.set(entry.path, { ...record, type: entry.mode === '100755' ? 'exec' : 'file' });
          }
          const tree = await writeTreeFromMap(repo.odb, files);
          const parsed = parseGitCommit(await reader.read(commit.sha));
          const parents = commit.parents.map((p) => {
            const mapped = state.commits.get(p);
            if (!mapped) throw new GitError(`commit ${commit.sha} has a parent ${p} not imported`);
            return mapped;
          });
          const written = await repo.odb.writeCommit({ ...parsed, tree, parents });
          await state.addCommit(commit.sha, written.oid);
          progress.fileDone();
        }
      } finally {
        progress.stop();
        await ctx.close();
        await rm(scratch, { recursive: true, force: true });
      }

      // Patterns first: checkout writes lockable files read-only.
      const lockable = await importLockable(repo, sourceDir, refs, headBranch);
      const moved = await updateRefs(repo, reader, refs, state, !existing);
      return {
        directory: target,
        created: !existing,
        commits: commits.length,
        mappedCommits: state.commits.size,
        lfsObjects,
        refs: moved,
        lockable,
        missing,
        branch: await repo.currentBranch(),
      };
    } finally {
      reader.close();
    }
  } catch (err) {
    // A first import that fails leaves nothing behind, as a failed clone does.
    if (!existing)
      await rm(createdFolder ? target : path.join(target, '.mediagit'), {
        recursive: true,
        force: true,
      });
    throw err;
  }
}

function missingError(missing: MissingLfsObject[], sourceDir: string): LfsObjectMissingError {
  const shown = missing
    .slice(0, 10)
    .map((m) => `${m.path} (commit ${m.commit.slice(0, 7)}, LFS ${m.oid.slice(0, 12)})`);
  const more = missing.length > 10 ? `, and ${missing.length - 10} more` : '';
  return new LfsObjectMissingError(
    `${missing.length} LFS object${missing.length === 1 ? ' is' : 's are'} missing from ${sourceDir}: ${shown.join(', ')}${more}`,
    {
      hint: "run 'git lfs fetch --all' in the source repository, or import with --allow-missing to keep those files as their pointers",
    },
  );
}

// ---- the source ---------------------------------------------------------------------------

/** The source as a local git repository, or null when it must be cloned (a URL). */
async function localRepository(source: string): Promise<string | null> {
  // Any URL (file:// included, which makes a mirror of a local repository) and scp-style user@host:path.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source) || /^[^/]+@[^/:]+:/.test(source)) return null;
  const dir = path.resolve(source);
  if (!(await pathExists(dir)))
    throw new ConfigError(`no git repository at ${dir}`, {
      hint: 'give a path or a URL git can clone',
    });
  try {
    await git(dir, ['rev-parse', '--git-dir']);
  } catch {
    throw new ConfigError(`${dir} is not a git repository`);
  }
  return dir;
}

async function sourceHeadBranch(dir: string): Promise<string | null> {
  try {
    const ref = (await git(dir, ['symbolic-ref', '-q', 'HEAD'])).toString('utf8').trim();
    return ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : null;
  } catch {
    return null;
  }
}

/** Mirrors a remote source (first run) or brings the mirror up to date, LFS objects included. */
async function mirror(url: string, dir: string): Promise<void> {
  if (await pathExists(path.join(dir, 'HEAD'))) {
    await git(dir, ['remote', 'update', '--prune']);
  } else {
    await mkdir(path.dirname(dir), { recursive: true });
    await git(path.dirname(dir), ['clone', '--mirror', '--quiet', url, dir]);
  }
  await git(dir, ['lfs', 'fetch', '--all', 'origin']);
}

/** Where the source keeps LFS objects: git-lfs's own answer, else the default under the git dir. */
async function lfsStorage(dir: string): Promise<string> {
  try {
    const env = (await git(dir, ['lfs', 'env'])).toString('utf8');
    const m = /^LocalMediaDir=(.+)$/m.exec(env);
    if (m?.[1]) return m[1].trim();
  } catch {
    // git-lfs not installed: the objects may still be there, in the default place.
  }
  const common = (await git(dir, ['rev-parse', '--git-common-dir'])).toString('utf8').trim();
  return path.join(path.resolve(dir, common), 'lfs', 'objects');
}

async function listRefs(dir: string): Promise<GitRef[]> {
  const out = (
    await git(dir, [
      'for-each-ref',
      '--format=%(objectname) %(objecttype) %(refname) %(*objectname) %(*objecttype)',
      'refs/heads',
      'refs/tags',
    ])
  ).toString('utf8');
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const [sha, type, ref, peeled, peeledType] = line.split(' ');
      return {
        ref: ref!,
        sha: sha!,
        type: type!,
        peeled: peeled || null,
        peeledType: peeledType || null,
      };
    });
}

/** Commits reachable from the tips and not yet imported, parents before children. */
async function newCommits(
  dir: string,
  tips: string[],
  state: ImportState,
): Promise<{ sha: string; parents: string[] }[]> {
  const out = (
    await git(dir, ['rev-list', '--topo-order', '--reverse', '--parents', ...tips])
  ).toString('utf8');
  const commits: { sha: string; parents: string[] }[] = [];
  for (const line of out.split('\n')) {
    if (line === '') continue;
    const [sha, ...parents] = line.split(' ');
    if (!state.commits.has(sha!)) commits.push({ sha: sha!, parents });
  }
  return commits;
}

async function lsTree(dir: string, commit: string): Promise<TreeEntry[]> {
  const out = (await git(dir, ['ls-tree', '-r', '-l', '-z', '--full-tree', commit])).toString(
    'utf8',
  );
  const entries: TreeEntry[] = [];
  for (const record of out.split('\0')) {
    if (record === '') continue;
    const tab = record.indexOf('\t');
    const [mode, type, sha, size] = record.slice(0, tab).split(/ +/);
    entries.push({
      mode: mode!,
      type: type!,
      sha: sha!,
      size: size === '-' ? 0 : Number(size),
      path: record.slice(tab + 1),
    });
  }
  return entries;
}

export function parsePointer(data: Buffer): LfsPointer | null {
  if (data.length > POINTER_MAX) return null;
  const text = data.toString('utf8');
  if (!text.startsWith('version https://git-lfs.github.com/spec/v1\n')) return null;
  const oid = /^oid sha256:([0-9a-f]{64})$/m.exec(text)?.[1];
  const size = /^size (\d+)$/m.exec(text)?.[1];
  return oid && size ? { oid, size: Number(size) } : null;
}

async function planBlob(reader: BlobReader, lfsDir: string, entry: TreeEntry): Promise<BlobPlan> {
  if (entry.size > POINTER_MAX) return { kind: 'git', size: entry.size };
  const pointer = parsePointer(await reader.read(entry.sha));
  if (!pointer) return { kind: 'git', size: entry.size };
  const file = path.join(lfsDir, pointer.oid.slice(0, 2), pointer.oid.slice(2, 4), pointer.oid);
  const info = await stat(file).catch(() => null);
  // A partial download (wrong size) is as missing as no file at all.
  if (!info?.isFile() || info.size !== pointer.size) return { kind: 'missing', size: entry.size };
  return { kind: 'lfs', file, size: pointer.size };
}

/** A git blob as a file to ingest: small ones through the batch reader, big ones streamed. */
async function blobFile(
  dir: string,
  reader: BlobReader,
  entry: TreeEntry,
  scratch: string,
): Promise<string> {
  const file = path.join(scratch, entry.sha);
  if (entry.size <= SMALL_BLOB) await writeFile(file, await reader.read(entry.sha));
  else await blobToFile(dir, entry.sha, file);
  return file;
}

/** A git commit object's author, committer and message; extra headers (signatures) are dropped. */
function parseGitCommit(data: Buffer): Omit<Commit, 'tree' | 'parents'> {
  const text = data.toString('utf8');
  const end = text.indexOf('\n\n');
  const headers = (end < 0 ? text : text.slice(0, end)).split('\n');
  const message = end < 0 ? '' : text.slice(end + 2);
  const header = (key: string): string => {
    const line = headers.find((h) => h.startsWith(`${key} `));
    if (!line) throw new GitError(`git commit without ${key}`);
    return line.slice(key.length + 1);
  };
  return {
    author: parseSignature(header('author')),
    committer: parseSignature(header('committer')),
    message,
  };
}

// ---- refs, HEAD and lockable patterns -----------------------------------------------------

async function updateRefs(
  repo: Repository,
  reader: BlobReader,
  refs: GitRef[],
  state: ImportState,
  fresh: boolean,
): Promise<{ ref: string; old: Oid | null; new: Oid }[]> {
  const moved: { ref: string; old: Oid | null; new: Oid }[] = [];
  const head = await repo.readHead();
  for (const r of refs) {
    let target: Oid | undefined;
    if (r.type === 'commit') target = state.commits.get(r.sha);
    else if (r.type === 'tag' && r.peeledType === 'commit') {
      const commit = state.commits.get(r.peeled!);
      if (commit) target = (await writeTag(repo, reader, r, commit)).oid;
    }
    if (!target) continue;
    const old = await repo.readRef(r.ref);
    if (old === target) continue;
    if (r.ref === head.ref) {
      // The checked-out branch: the working tree moves with it (refused over local changes).
      await switchTo(repo, target, { ref: r.ref });
    }
    await repo.updateRef(r.ref, target, old);
    moved.push({ ref: r.ref, old, new: target });
  }
  // A fresh import whose source HEAD names no branch it has: check out the first branch there is.
  if (fresh && head.ref && (await repo.readRef(head.ref)) === null) {
    const first = refs.find((r) => r.ref.startsWith('refs/heads/'));
    const oid = first && state.commits.get(first.sha);
    if (first && oid) await switchTo(repo, oid, { ref: first.ref });
  }
  return moved;
}

async function writeTag(
  repo: Repository,
  reader: BlobReader,
  ref: GitRef,
  commit: Oid,
): Promise<{ oid: Oid }> {
  const text = (await reader.read(ref.sha)).toString('utf8');
  const end = text.indexOf('\n\n');
  const headers = (end < 0 ? text : text.slice(0, end)).split('\n');
  const get = (key: string): string | undefined =>
    headers.find((h) => h.startsWith(`${key} `))?.slice(key.length + 1);
  const taggerText = get('tagger');
  // Very old tags have no tagger: the tagged commit's committer stands in.
  const tagger: Signature = taggerText
    ? parseSignature(taggerText)
    : (await repo.odb.readCommit(commit)).committer;
  const message =
    end < 0 ? '' : text.slice(end + 2).replace(/-----BEGIN PGP SIGNATURE-----[\s\S]*$/, '');
  const written = await repo.odb.writeTag({
    object: commit,
    objectKind: 'commit',
    name: get('tag') ?? ref.ref.slice('refs/tags/'.length),
    tagger,
    message,
  });
  return { oid: written.oid };
}

/** `lockable` patterns of the source's .gitattributes (HEAD's branch) become `lock.lockable`. */
async function importLockable(
  repo: Repository,
  dir: string,
  refs: GitRef[],
  headBranch: string | null,
): Promise<string[]> {
  const branch =
    refs.find((r) => r.ref === `refs/heads/${headBranch}`) ??
    refs.find((r) => r.ref.startsWith('refs/heads/'));
  if (!branch) return [];
  let text: string;
  try {
    text = (await git(dir, ['show', `${branch.sha}:.gitattributes`])).toString('utf8');
  } catch {
    return [];
  }
  const patterns: string[] = [];
  for (const line of text.split('\n')) {
    const [pattern, ...attrs] = line.trim().split(/\s+/);
    if (!pattern || pattern.startsWith('#')) continue;
    if (attrs.includes('lockable')) patterns.push(pattern);
  }
  if (patterns.length === 0) return [];
  const current = String(repo.config.get('lock.lockable') ?? '')
    .split('\n')
    .filter((p) => p !== '');
  const merged = [...new Set([...current, ...patterns])];
  if (merged.length !== current.length) {
    repo.config.set('lock.lockable', merged.join('\n'));
    await repo.config.save();
  }
  return patterns;
}

// ---- the mapping ----------------------------------------------------------------------------

/** git commit → mediagit commit and git blob → manifest, kept as append-only text files. */
class ImportState {
  private constructor(
    private readonly dir: string,
    readonly commits: Map<string, Oid>,
    readonly blobs: Map<string, FileRecord>,
  ) {}

  static async load(dir: string): Promise<ImportState> {
    const commits = new Map<string, Oid>();
    const blobs = new Map<string, FileRecord>();
    for (const line of await lines(path.join(dir, 'commits'))) {
      const [sha, oid] = line.split(' ');
      if (sha && oid) commits.set(sha, oid);
    }
    for (const line of await lines(path.join(dir, 'blobs'))) {
      const [sha, oid, size] = line.split(' ');
      if (sha && oid && size) blobs.set(sha, { type: 'file', oid, size: Number(size) });
    }
    return new ImportState(dir, commits, blobs);
  }

  async addCommit(sha: string, oid: Oid): Promise<void> {
    await appendFile(path.join(this.dir, 'commits'), `${sha} ${oid}\n`);
    this.commits.set(sha, oid);
  }

  async addBlob(sha: string, record: FileRecord): Promise<void> {
    await appendFile(path.join(this.dir, 'blobs'), `${sha} ${record.oid} ${record.size}\n`);
    this.blobs.set(sha, record);
  }
}

/** A line cut short by a crash is ignored: the object it named is simply imported again. */
async function lines(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) =>
    err.code === 'ENOENT' ? '' : Promise.reject(err),
  );
  const all = text.split('\n');
  all.pop();
  return all;
}

// ---- folders --------------------------------------------------------------------------------

async function pathExists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function isRepository(dir: string): Promise<boolean> {
  return pathExists(path.join(dir, '.mediagit', 'HEAD'));
}

async function assertEmptyOrAbsent(dir: string): Promise<void> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) =>
    err.code === 'ENOENT' ? [] : Promise.reject(err),
  );
  if (names.length > 0)
    throw new AlreadyExistsError(`${dir} exists, is not empty and is not a mediagit repository`, {
      hint: 'import into a new folder, or into a repository an earlier import made',
    });
}

/** The folder an import goes to by default: the source's last part without `.git`. */
export function defaultImportDirectory(source: string): string {
  const last =
    source
      .replace(/[/\\]+$/, '')
      .split(/[/\\:]/)
      .pop() ?? '';
  return last.replace(/\.git$/, '') || 'imported';
}
