import { ObjectCorruptError, PathspecError, UsageError } from '../errors/index.js';
import {
  isOid,
  shortOid,
  type Commit,
  type Oid,
  type Tag,
  type TreeEntry,
} from '../objects/index.js';
import { isValidRefName } from '../store/index.js';
import {
  Repository,
  commitTreeMap,
  ensureManifestChunks,
  diffMaps,
  flattenTree,
  resolveCommit,
  type Change,
  type FileType,
  under,
} from '../repo/index.js';
import { openRepository, pathspecs, type CommandIo } from './context.js';
import { changeFormat, changeJson, printChanges, type ChangeFormat } from './shared/changes.js';
import { commitJson, decorations, gitDate, isoDate } from './shared/commits.js';

export interface ShowOptions {
  /** Patches instead of the default name-status list. */
  patch?: boolean;
  stat?: boolean;
  nameStatus?: boolean;
  json?: boolean;
}

/** Chunks fetched ahead while streaming a file: bounded memory, overlapping reads. */
const PREFETCH = 4;

export async function runShow(
  io: CommandIo,
  objects: string[],
  dashDash: string[] | undefined,
  options: ShowOptions,
): Promise<void> {
  const repo = await openRepository(io);
  const specs = pathspecs(repo, io, dashDash ?? []);
  const format = changeFormat(options, options.patch ? 'patch' : 'name-status');
  const args = objects.length > 0 ? objects : ['HEAD'];
  if (objects.length === 0) {
    const head = await repo.readHead();
    if (head.oid === null)
      throw new UsageError(
        `your current branch '${head.ref?.replace(/^refs\/heads\//, '') ?? 'HEAD'}' does not have any commits yet`,
      );
  }
  const json: object[] = [];
  let decorate: Map<Oid, string[]> | undefined;
  let first = true;
  for (const arg of args) {
    if (!options.json && !first) io.out('');
    first = false;
    const colon = arg.indexOf(':');
    if (colon >= 0) {
      const result = await showPath(
        io,
        repo,
        arg.slice(0, colon),
        arg.slice(colon + 1),
        arg,
        options.json ?? false,
      );
      if (result) json.push(result);
      continue;
    }
    decorate ??= options.json ? new Map() : await decorations(repo);
    const tagged = await annotatedTag(repo, arg);
    if (tagged) {
      const commitOid = await resolveCommit(repo, tagged.oid);
      const commit = await repo.odb.readCommit(commitOid);
      if (options.json) {
        json.push({
          type: 'tag',
          oid: tagged.oid,
          name: tagged.tag.name,
          object: tagged.tag.object,
          tagger: signatureJson(tagged.tag),
          message: tagged.tag.message,
          commit: await commitWithChanges(repo, commitOid, commit, specs),
        });
        continue;
      }
      io.out(`tag ${tagged.tag.name}`);
      io.out(`Tagger: ${tagged.tag.tagger.name} <${tagged.tag.tagger.email}>`);
      io.out(`Date:   ${gitDate(tagged.tag.tagger)}`);
      io.out('');
      for (const line of tagged.tag.message.replace(/\n$/, '').split('\n')) io.out(line);
      io.out('');
      await printCommit(io, repo, commitOid, commit, decorate, format, specs);
      continue;
    }
    const oid = await resolveCommit(repo, arg);
    const commit = await repo.odb.readCommit(oid);
    if (options.json) json.push(await commitWithChanges(repo, oid, commit, specs));
    else await printCommit(io, repo, oid, commit, decorate, format, specs);
  }
  if (options.json) io.out(JSON.stringify(json.length === 1 ? json[0] : json, null, 2));
}

function signatureJson(tag: Tag): object {
  return { name: tag.tagger.name, email: tag.tagger.email, date: isoDate(tag.tagger) };
}

/**
 * Changes against the first parent (for a root commit, everything is added), limited to `specs`
 * when there are any.
 */
async function changesOf(
  repo: Repository,
  commit: Commit,
  specs: readonly string[],
): Promise<Change[]> {
  const [before, after] = await Promise.all([
    commitTreeMap(repo, commit.parents[0] ?? null),
    flattenTree(repo.odb, commit.tree),
  ]);
  const changes = diffMaps(before, after);
  return specs.length === 0 ? changes : changes.filter((c) => specs.some((s) => under(c.path, s)));
}

async function commitWithChanges(
  repo: Repository,
  oid: Oid,
  commit: Commit,
  specs: readonly string[],
): Promise<object> {
  return {
    type: 'commit',
    ...commitJson(oid, commit),
    changes: (await changesOf(repo, commit, specs)).map(changeJson),
  };
}

/** Log-style header, then the changes against the first parent. */
async function printCommit(
  io: CommandIo,
  repo: Repository,
  oid: Oid,
  commit: Commit,
  decorate: Map<Oid, string[]>,
  format: ChangeFormat,
  specs: readonly string[],
): Promise<void> {
  const labels = decorate.get(oid);
  io.out(`commit ${oid}${labels ? ` (${labels.join(', ')})` : ''}`);
  if (commit.parents.length > 1) io.out(`Merge: ${commit.parents.map(shortOid).join(' ')}`);
  io.out(`Author: ${commit.author.name} <${commit.author.email}>`);
  io.out(`Date:   ${gitDate(commit.author)}`);
  io.out('');
  for (const line of commit.message.replace(/\n$/, '').split('\n')) io.out(`    ${line}`);
  const changes = await changesOf(repo, commit, specs);
  if (changes.length === 0) return;
  io.out('');
  await printChanges(io, repo, changes, format);
}

/**
 * The annotated tag an argument names, if it names one directly (`v1`, `refs/tags/v1`, a tag
 * object's ID). Branches win over tags of the same name, as in revision lookup.
 */
async function annotatedTag(repo: Repository, arg: string): Promise<{ oid: Oid; tag: Tag } | null> {
  let candidate: Oid | null = null;
  if (arg === 'HEAD' || arg === '@' || /[~^]/.test(arg)) return null;
  if (arg.startsWith('refs/')) candidate = isValidRefName(arg) ? await repo.readRef(arg) : null;
  else if (
    isValidRefName(`refs/heads/${arg}`) &&
    (await repo.readRef(`refs/heads/${arg}`)) !== null
  )
    return null;
  else if (isValidRefName(`refs/tags/${arg}`)) candidate = await repo.readRef(`refs/tags/${arg}`);
  if (candidate === null && isOid(arg)) candidate = arg;
  if (candidate === null && /^[0-9a-f]{4,63}$/.test(arg)) {
    const matches: Oid[] = [];
    for await (const { key } of repo.store.list(`objects/${arg}`)) {
      matches.push(key.slice('objects/'.length));
      if (matches.length > 1) return null;
    }
    candidate = matches[0] ?? null;
  }
  if (candidate === null || (await repo.odb.kindOf(candidate)) !== 'tag') return null;
  return { oid: candidate, tag: await repo.odb.readTag(candidate) };
}

interface Located {
  readonly type: FileType | 'dir';
  readonly oid: Oid;
  readonly size: number;
}

/** `REV:PATH` (or `:PATH` for the index): a file's exact bytes, or a folder's listing. */
async function showPath(
  io: CommandIo,
  repo: Repository,
  rev: string,
  rawPath: string,
  whole: string,
  json: boolean,
): Promise<object | null> {
  // Paths are relative to the repository root, unless they start with ./ or ../ (as in git).
  const path = /^\.\.?(\/|$)/.test(rawPath)
    ? repo.toRepoPath(rawPath, io.cwd)
    : rawPath.replace(/\/+$/, '').replace(/^\/+/, '');
  let located: Located;
  let listing: { name: string; type: FileType | 'dir'; oid: Oid; size: number }[] | null = null;
  if (rev === '') {
    const index = await repo.readIndex();
    const entry = index.entries.get(path);
    if (entry) located = { type: entry.type, oid: entry.oid, size: entry.size };
    else {
      const prefix = path === '' ? '' : `${path}/`;
      const names = new Map<
        string,
        { name: string; type: FileType | 'dir'; oid: Oid; size: number }
      >();
      for (const e of index.entries.values()) {
        if (!e.path.startsWith(prefix)) continue;
        const rest = e.path.slice(prefix.length);
        const slash = rest.indexOf('/');
        const name = slash < 0 ? rest : rest.slice(0, slash);
        const existing = names.get(name);
        if (slash < 0) names.set(name, { name, type: e.type, oid: e.oid, size: e.size });
        else names.set(name, { name, type: 'dir', oid: '', size: (existing?.size ?? 0) + e.size });
      }
      if (names.size === 0) throw new PathspecError(`path '${path}' is not in the index`);
      listing = [...names.values()].sort((a, b) =>
        a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
      );
      located = { type: 'dir', oid: '', size: listing.reduce((n, e) => n + e.size, 0) };
    }
  } else {
    const commit = await repo.odb.readCommit(await resolveCommit(repo, rev));
    located = { type: 'dir', oid: commit.tree, size: 0 };
    let walked = '';
    for (const name of path === '' ? [] : path.split('/')) {
      if (located.type !== 'dir')
        throw new PathspecError(`path '${path}' does not exist in '${rev}': '${walked}' is a file`);
      const entry: TreeEntry | undefined = (await repo.odb.readTree(located.oid)).find(
        (e) => e.name === name,
      );
      if (!entry) throw new PathspecError(`path '${path}' does not exist in '${rev}'`);
      walked = walked === '' ? name : `${walked}/${name}`;
      located = { type: entry.type, oid: entry.oid, size: entry.size };
    }
    if (located.type === 'dir') listing = await repo.odb.readTree(located.oid);
  }

  if (listing) {
    if (json)
      return {
        type: 'tree',
        object: whole,
        path,
        entries: listing.map((e) => ({
          name: e.name,
          type: e.type,
          oid: e.oid || null,
          size: e.size,
        })),
      };
    io.out(`tree ${whole}`);
    io.out('');
    for (const e of listing) io.out(e.type === 'dir' ? `${e.name}/` : e.name);
    return null;
  }
  const manifest = await repo.odb.readManifest(located.oid);
  if (json)
    return {
      type: 'file',
      object: whole,
      path,
      mode: located.type,
      oid: located.oid,
      size: manifest.size,
      chunks: manifest.chunks.length,
    };
  // All of it before the first byte goes out: content that cannot be had must not leave half a file.
  await ensureManifestChunks(repo.odb, manifest, path);
  await streamManifest(io, repo, located.oid, manifest.chunks);
  return null;
}

/** Writes a file's bytes chunk by chunk, each verified against its ID, a few reads ahead. */
async function streamManifest(
  io: CommandIo,
  repo: Repository,
  manifestOid: Oid,
  chunks: readonly { oid: Oid; size: number }[],
): Promise<void> {
  const inflight: Promise<Buffer>[] = [];
  let next = 0;
  const fill = (): void => {
    while (inflight.length < PREFETCH && next < chunks.length) {
      const read = repo.odb.read('chunk', chunks[next++]!.oid);
      read.catch(() => undefined);
      inflight.push(read);
    }
  };
  fill();
  for (const chunk of chunks) {
    const data = await inflight.shift()!;
    fill();
    if (data.length !== chunk.size)
      throw new ObjectCorruptError(
        manifestOid,
        `chunk ${chunk.oid} has ${data.length} bytes, the manifest says ${chunk.size}`,
      );
    await io.writeRaw(data);
  }
}
