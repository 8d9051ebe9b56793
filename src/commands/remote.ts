import { readdirSync, rmSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { resolve } from 'node:path';
import picomatch from 'picomatch';
import { ConfigError, NotFoundError, UsageError } from '../errors/index.js';
import { shortOid, type Oid } from '../objects/index.js';
import { Repository, commitTreeMap, loadGlobalConfig, moveWorktree } from '../repo/index.js';
import {
  isValidRefName,
  parseStoreUrl,
  validateStoreOptions,
  type MetricsSnapshot,
  type OpenedStore,
} from '../store/index.js';
import {
  addRemote,
  defaultRemote,
  fetchObjects,
  getRemote,
  listRemotes,
  openRemoteStore,
  parseOptionArgs,
  push,
  readDescriptor,
  redactedOptions,
  remoteConfigEntries,
  removeRemote,
  setRemoteUrl,
  type PushOutcome,
  type RemoteConfig,
} from '../sync/index.js';
import { formatBytes, openRepository, plural, reportUnlock, type CommandIo } from './context.js';
import { mergeCommit } from './merge.js';

async function open(io: CommandIo, repo: Repository, remote: RemoteConfig): Promise<OpenedStore> {
  return openRemoteStore(remote, repo.root, (info) =>
    io.err(
      `note: ${remote.name}: ${info.operation} failed (${info.error instanceof Error ? info.error.message : 'error'}); retry ${info.attempt} in ${Math.round(info.delayMs)} ms`,
    ),
  );
}

/**
 * Whether transfers between two folders may hard-link objects (git's local-clone behaviour):
 * not with `--no-hardlinks` (commander sets `hardlinks: false`), otherwise config
 * `transfer.hardlinks` — the repository's, then the per-user file — defaulting to true.
 */
export async function hardlinksWanted(
  flag: boolean | undefined,
  repo?: Repository,
): Promise<boolean> {
  if (flag === false) return false;
  const value =
    repo?.config.get('transfer.hardlinks') ?? (await loadGlobalConfig()).get('transfer.hardlinks');
  if (value === undefined) return true;
  if (typeof value !== 'boolean')
    throw new ConfigError(
      `config transfer.hardlinks must be true or false, found ${JSON.stringify(value)}`,
    );
  return value;
}

function sentLine(meter: MetricsSnapshot): string {
  return `${formatBytes(meter.totals.bytesWritten)} sent, ${formatBytes(meter.totals.bytesRead)} received in ${meter.totals.calls} requests`;
}

// ---- remote ------------------------------------------------------------------------------

export async function runRemoteList(
  io: CommandIo,
  options: { verbose?: boolean; json?: boolean },
): Promise<void> {
  const repo = await openRepository(io);
  const remotes = listRemotes(repo);
  if (options.json) {
    io.out(
      JSON.stringify(
        remotes.map((r) => ({ name: r.name, url: r.url, options: redactedOptions(r.options) })),
        null,
        2,
      ),
    );
    return;
  }
  for (const r of remotes) {
    if (!options.verbose) io.out(r.name);
    else {
      const opts = Object.entries(redactedOptions(r.options)).map(([k, v]) => `${k}=${String(v)}`);
      io.out(`${r.name}\t${r.url}${opts.length ? `\t(${opts.join(', ')})` : ''}`);
    }
  }
}

/** Local paths are stored absolute: a relative one would mean something else from another folder. */
function canonicalUrl(url: string, cwd: string): string {
  const location = parseStoreUrl(url, cwd);
  return location.kind === 'local' && !/^file:/i.test(url) ? location.target : url;
}

export async function runRemoteAdd(
  io: CommandIo,
  name: string,
  url: string,
  options: { option?: string[] },
): Promise<void> {
  const repo = await openRepository(io);
  const parsed = parseOptionArgs(options.option);
  // Options first: a mistyped key is reported with the valid ones even if the URL is also wrong.
  validateStoreOptions(url, parsed, io.cwd);
  await addRemote(repo, name, canonicalUrl(url, io.cwd), parsed);
}

export async function runRemoteRemove(io: CommandIo, name: string): Promise<void> {
  await removeRemote(await openRepository(io), name);
}

export async function runRemoteSetUrl(io: CommandIo, name: string, url: string): Promise<void> {
  await setRemoteUrl(await openRepository(io), name, canonicalUrl(url, io.cwd));
}

// ---- push --------------------------------------------------------------------------------

export interface PushOptions {
  force?: boolean;
  tags?: boolean;
  json?: boolean;
  quiet?: boolean;
  /** false with --no-hardlinks. */
  hardlinks?: boolean;
}

/** `branch`, `tag`, `src:dst`: resolved to local OID and remote ref. */
async function resolvePushSpecs(
  repo: Repository,
  specs: string[],
  tags: boolean,
): Promise<{ oid: Oid; ref: string; local: string }[]> {
  const out: { oid: Oid; ref: string; local: string }[] = [];
  if (specs.length === 0 && !tags) {
    const branch = await repo.currentBranch();
    if (!branch)
      throw new UsageError('you are not on a branch (detached HEAD)', {
        hint: "name what to push: 'mediagit push origin HEAD:refs/heads/<branch>'",
      });
    specs = [branch];
  }
  for (const spec of specs) {
    const [src, dst] = spec.includes(':') ? (spec.split(':', 2) as [string, string]) : [spec, spec];
    let localRef = src.startsWith('refs/')
      ? src
      : (await repo.readRef(`refs/heads/${src}`))
        ? `refs/heads/${src}`
        : `refs/tags/${src}`;
    const oid = src === 'HEAD' ? (await repo.readHead()).oid : await repo.readRef(localRef);
    if (src === 'HEAD') localRef = 'HEAD';
    if (!oid) throw new UsageError(`src refspec '${src}' does not match any branch or tag`);
    const remoteRef = dst.startsWith('refs/')
      ? dst
      : localRef.startsWith('refs/tags/')
        ? `refs/tags/${dst}`
        : `refs/heads/${dst}`;
    if (!isValidRefName(remoteRef)) throw new UsageError(`invalid destination ref '${dst}'`);
    out.push({ oid, ref: remoteRef, local: localRef });
  }
  if (tags)
    for (const [name, value] of await repo.store.listRefs('refs/tags/'))
      out.push({ oid: value.oid, ref: name, local: name });
  return out;
}

export async function runPush(io: CommandIo, args: string[], options: PushOptions): Promise<void> {
  const repo = await openRepository(io);
  const [remoteName = defaultRemote(repo), ...specs] = args;
  const remote = getRemote(repo, remoteName);
  const opened = await open(io, repo, remote);
  const requests = await resolvePushSpecs(repo, specs, options.tags ?? false);
  const hardlinks = await hardlinksWanted(options.hardlinks, repo);
  const results: PushOutcome[] = [];
  for (const req of requests) {
    const outcome = await push(
      repo,
      opened.store,
      { oid: req.oid, ref: req.ref, force: options.force ?? false },
      io.progress(),
      { hardlinks },
    );
    results.push(outcome);
    if (req.ref.startsWith('refs/heads/')) {
      const tracking = `refs/remotes/${remote.name}/${req.ref.slice('refs/heads/'.length)}`;
      const before = await repo.store.readRef(tracking);
      await repo.store.compareAndSwapRef(tracking, before, outcome.new);
    }
  }
  const meter = opened.meter.snapshot();
  if (options.json) {
    io.out(
      JSON.stringify(
        {
          remote: remote.name,
          url: remote.url,
          refs: results,
          bytesSent: meter.totals.bytesWritten,
          bytesReceived: meter.totals.bytesRead,
          requests: meter.totals.calls,
        },
        null,
        2,
      ),
    );
    return;
  }
  if (options.quiet) return;
  io.out(`To ${remote.url}`);
  for (const r of results) {
    const name = r.ref.replace(/^refs\/(heads|tags)\//, '');
    const range =
      r.status === 'up-to-date'
        ? '[up to date]'
        : r.status === 'created'
          ? r.ref.startsWith('refs/tags/')
            ? '* [new tag]'
            : '* [new branch]'
          : `${shortOid(r.old!)}${r.status === 'forced' ? '...' : '..'}${shortOid(r.new)}${r.status === 'forced' ? ' (forced update)' : ''}`;
    io.out(
      `   ${range}  ${name} -> ${name}${r.stats.objects ? `  (${plural(r.stats.objects, 'object')}, ${formatBytes(r.stats.bytes)})` : ''}`,
    );
  }
  io.out(sentLine(meter));
}

// ---- fetch / pull ------------------------------------------------------------------------

export interface FetchCommandOptions {
  prune?: boolean;
  json?: boolean;
  quiet?: boolean;
  /** false with --no-hardlinks. */
  hardlinks?: boolean;
}

interface FetchReport {
  remote: string;
  updated: { ref: string; old: Oid | null; new: Oid | null }[];
  objects: number;
  bytes: number;
  bytesReceived: number;
}

export async function fetchRemote(
  io: CommandIo,
  repo: Repository,
  remote: RemoteConfig,
  opened: OpenedStore,
  prune: boolean,
  hardlinks: boolean,
): Promise<FetchReport> {
  const descriptor = await readDescriptor(opened.store);
  const refs = await opened.store.listRefs('refs/');
  if (!descriptor && refs.size === 0)
    throw new NotFoundError(`${remote.url}`, {
      hint: 'no mediagit repository there (nothing has been pushed yet, or the URL is wrong)',
    });
  const heads = [...refs].filter(
    ([name]) => name.startsWith('refs/heads/') || name.startsWith('refs/tags/'),
  );
  const stats = await fetchObjects(
    repo,
    opened.store,
    heads.map(([, v]) => v.oid),
    { progress: io.progress(), hardlinks, ...include(repo) },
  );
  const updated: FetchReport['updated'] = [];
  for (const [name, value] of heads) {
    const local = name.startsWith('refs/heads/')
      ? `refs/remotes/${remote.name}/${name.slice('refs/heads/'.length)}`
      : name;
    const before = await repo.store.readRef(local);
    if (before?.oid === value.oid) continue;
    // Tags never move once fetched, as in git; remote-tracking branches always follow the remote.
    if (name.startsWith('refs/tags/') && before) continue;
    if (await repo.store.compareAndSwapRef(local, before, value.oid))
      updated.push({ ref: local, old: before?.oid ?? null, new: value.oid });
  }
  if (prune) {
    for (const [name, value] of await repo.store.listRefs(`refs/remotes/${remote.name}/`)) {
      if (
        !refs.has(`refs/heads/${name.slice(`refs/remotes/${remote.name}/`.length)}`) &&
        (await repo.store.compareAndSwapRef(name, value, null))
      ) {
        updated.push({ ref: name, old: value.oid, new: null });
      }
    }
  }
  return {
    remote: remote.name,
    updated,
    objects: stats.objects,
    bytes: stats.bytes,
    bytesReceived: opened.meter.snapshot().totals.bytesRead,
  };
}

function include(repo: Repository): { include?: (path: string) => boolean } {
  const matcher = repo.includes();
  return matcher ? { include: matcher } : {};
}

function printFetch(io: CommandIo, url: string, report: FetchReport): void {
  if (report.updated.length === 0) return;
  io.out(`From ${url}`);
  for (const u of report.updated) {
    const name = u.ref.replace(/^refs\/(remotes\/|tags\/)/, '');
    io.out(
      u.new === null
        ? ` - [deleted]  ${name}`
        : u.old === null
          ? ` * [new]      ${name}`
          : `   ${shortOid(u.old)}..${shortOid(u.new)}  ${name}`,
    );
  }
  io.out(`received ${plural(report.objects, 'object')} (${formatBytes(report.bytes)})`);
}

export async function runFetch(
  io: CommandIo,
  remoteArg: string | undefined,
  options: FetchCommandOptions,
): Promise<void> {
  const repo = await openRepository(io);
  const remote = getRemote(repo, remoteArg ?? defaultRemote(repo));
  const report = await fetchRemote(
    io,
    repo,
    remote,
    await open(io, repo, remote),
    options.prune ?? false,
    await hardlinksWanted(options.hardlinks, repo),
  );
  if (options.json) io.out(JSON.stringify(report, null, 2));
  else if (!options.quiet) printFetch(io, remote.url, report);
}

export async function runPull(
  io: CommandIo,
  remoteArg: string | undefined,
  branchArg: string | undefined,
  options: { ffOnly?: boolean; quiet?: boolean; hardlinks?: boolean },
): Promise<void> {
  const repo = await openRepository(io);
  const remote = getRemote(repo, remoteArg ?? defaultRemote(repo));
  const report = await fetchRemote(
    io,
    repo,
    remote,
    await open(io, repo, remote),
    false,
    await hardlinksWanted(options.hardlinks, repo),
  );
  if (!options.quiet) printFetch(io, remote.url, report);
  const branch = branchArg ?? (await repo.currentBranch());
  if (!branch)
    throw new UsageError('you are not on a branch; say which remote branch to merge', {
      hint: 'mediagit pull origin <branch>',
    });
  const theirs = await repo.readRef(`refs/remotes/${remote.name}/${branch}`);
  if (!theirs) throw new UsageError(`the remote '${remote.name}' has no branch '${branch}'`);
  await mergeCommit(repo, io, theirs, `branch '${branch}' of ${remote.url}`, {
    ffOnly: options.ffOnly ?? false,
    quiet: options.quiet ?? false,
  });
}

// ---- clone -------------------------------------------------------------------------------

export interface CloneOptions {
  branch?: string;
  include?: string[];
  option?: string[];
  origin?: string;
  quiet?: boolean;
  json?: boolean;
  /** false with --no-hardlinks. */
  hardlinks?: boolean;
}

export async function runClone(
  io: CommandIo,
  givenUrl: string,
  directory: string | undefined,
  options: CloneOptions,
): Promise<void> {
  const name = options.origin ?? 'origin';
  const url = canonicalUrl(givenUrl, io.cwd);
  const target = resolve(io.cwd, directory ?? defaultDirectory(givenUrl));
  const existing = await readdir(target).catch((err: { code?: string }) =>
    err.code === 'ENOENT' ? null : Promise.reject(err),
  );
  if (existing && existing.length > 0)
    throw new UsageError(`destination '${target}' exists and is not empty`);
  const remoteConfig: RemoteConfig = { name, url, options: parseOptionArgs(options.option) };
  const opened = await openRemoteStore(remoteConfig, io.cwd);
  const descriptor = await readDescriptor(opened.store);
  const refs = await opened.store.listRefs('refs/');
  if (!descriptor)
    throw new NotFoundError(url, {
      hint: 'no mediagit repository there (nothing has been pushed yet, or the URL is wrong)',
    });
  const heads = [...refs.keys()]
    .filter((r) => r.startsWith('refs/heads/'))
    .map((r) => r.slice('refs/heads/'.length));
  const branch =
    options.branch ??
    (heads.includes('main') ? 'main' : heads.includes('master') ? 'master' : heads.sort()[0]);
  if (options.branch && !heads.includes(options.branch))
    throw new UsageError(`the remote has no branch '${options.branch}'`, {
      hint: heads.length ? `branches: ${heads.join(', ')}` : 'it has no branches yet',
    });
  if (options.include?.length) for (const g of options.include) picomatch(g);
  const hardlinks = await hardlinksWanted(options.hardlinks);

  const created = existing === null;
  await mkdir(target, { recursive: true });
  // Leave nothing half-made behind: a failed clone is as if it never ran.
  const discard = (): void => {
    const entries = created ? [target] : readdirSync(target).map((entry) => resolve(target, entry));
    // Chunk workers may still be writing when a signal lands: retry until the folder stays empty.
    for (const path of entries)
      rmSync(path, { recursive: true, force: true, maxRetries: 20, retryDelay: 25 });
  };
  // Interrupted (Ctrl-C, a cancelled CI job), too, as git does; then the usual 128 + signal exit.
  const interrupted = (signal: NodeJS.Signals): void => {
    io.err(`clone interrupted; removing ${created ? target : `what it wrote in ${target}`}`);
    try {
      discard();
    } finally {
      process.exit(128 + (osConstants.signals[signal] ?? 0));
    }
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.once(signal, interrupted);
  try {
    await Repository.init(target, {
      chunking: {
        minSize: descriptor.chunking.min_size,
        avgSize: descriptor.chunking.avg_size,
        maxSize: descriptor.chunking.max_size,
      },
      ...(branch ? { initialBranch: branch } : {}),
    });
    let repo = await Repository.open(target);
    if (descriptor.encryption) {
      for await (const { key } of opened.store.list('keys/'))
        await repo.store.put(key, await opened.store.get(key));
      repo.config.set('encryption.enabled', true);
      repo.config.set('encryption.cipher', descriptor.encryption);
    }
    if (options.include?.length) repo.config.set('sparse.include', options.include.join('\n'));
    for (const [k, v] of remoteConfigEntries(name, url, remoteConfig.options))
      repo.config.set(k, v);
    await repo.config.save();
    repo = await Repository.open(target, { passphrase: () => io.passphrase('unlock') });
    reportUnlock(io, repo);
    const report = await fetchRemote(io, repo, remoteConfig, opened, false, hardlinks);
    if (branch) {
      const tip = await repo.readRef(`refs/remotes/${name}/${branch}`);
      if (tip) {
        await repo.updateRef(`refs/heads/${branch}`, tip, null);
        await repo.updateIndex(async (index) => {
          await moveWorktree(repo, index, new Map(), await commitTreeMap(repo, tip), {
            force: true,
            progress: io.progress(),
            operation: 'checkout',
          });
        });
      }
    }
    const meter = opened.meter.snapshot();
    if (options.json)
      io.out(
        JSON.stringify(
          {
            directory: target,
            branch: branch ?? null,
            objects: report.objects,
            bytes: report.bytes,
            bytesReceived: meter.totals.bytesRead,
          },
          null,
          2,
        ),
      );
    else if (!options.quiet) {
      io.err(
        `Cloned ${url} into ${target}${branch ? ` (branch ${branch})` : ' (empty repository)'}`,
      );
      io.err(
        `received ${plural(report.objects, 'object')}, ${formatBytes(report.bytes)}; ${sentLine(meter)}`,
      );
    }
  } catch (err) {
    discard();
    throw err;
  } finally {
    for (const signal of signals) process.off(signal, interrupted);
  }
}

function defaultDirectory(url: string): string {
  const last =
    url
      .replace(/[/\\]+$/, '')
      .split(/[/\\:]/)
      .pop() ?? '';
  const name = last.replace(/\.mediagit$/, '');
  if (!name)
    throw new ConfigError(`cannot guess a folder name from '${url}'`, {
      hint: 'give the directory as the second argument',
    });
  return name;
}
