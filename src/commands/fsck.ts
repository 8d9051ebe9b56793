import { MediagitError, UsageError } from '../errors/index.js';
import {
  checkRepository,
  type FsckCounts,
  type FsckProblem,
  type Repository,
} from '../repo/index.js';
import type { MirrorRepairReport, RemoteFsckReport } from '../sync/index.js';
import { formatBytes, plural, type CommandIo, openRepository } from './context.js';

/** fsck found missing or corrupt objects (the report has already been printed). */
export class FsckError extends MediagitError {
  override readonly code = 'E_FSCK';
  override readonly exitCode = 6;
}

export interface FsckCommandOptions {
  full?: boolean;
  json?: boolean;
  /** Check a remote instead of the local repository (multi remotes: also primary/secondary divergence). */
  remote?: string;
  /** With `remote` (a multi remote): repair the mirror first, then check. */
  repair?: boolean;
}

export async function runFsck(io: CommandIo, options: FsckCommandOptions): Promise<void> {
  if (options.repair && options.remote === undefined)
    throw new UsageError('--repair works with --remote <name>', {
      hint: "'mediagit fsck --remote <name> --repair' repairs a multi remote's mirror",
    });
  const repo = await openRepository(io);
  if (options.remote !== undefined) return fsckRemote(io, repo, options.remote, options);
  const { counts, problems } = await checkRepository(repo, {
    full: options.full,
    progress: io.progress(),
  });
  if (options.json)
    io.out(
      JSON.stringify(
        { ok: problems.length === 0, full: options.full ?? false, counts, problems },
        null,
        2,
      ),
    );
  else printReport(io, counts, problems, options.full ?? false);
  if (problems.length > 0) {
    throw new FsckError(
      `the repository has ${plural(problems.length, 'missing or corrupt object', 'missing or corrupt objects')}`,
      {
        hint: 'restore the listed objects from a clone or a remote that has them; files that use them cannot be checked out',
      },
    );
  }
}

function printReport(
  io: CommandIo,
  counts: FsckCounts,
  problems: readonly FsckProblem[],
  full: boolean,
): void {
  for (const p of problems) {
    const detail = p.problem === 'corrupt' ? `: ${p.reason}` : '';
    io.out(`${p.problem} ${p.kind} ${p.oid}${detail} (${p.where})`);
  }
  const checked = [
    ...(counts.tags > 0 ? [plural(counts.tags, 'tag')] : []),
    plural(counts.commits, 'commit'),
    plural(counts.trees, 'tree'),
    plural(counts.manifests, 'manifest'),
    `${plural(counts.chunks, 'chunk')} (${formatBytes(counts.chunkBytes)})`,
  ].join(', ');
  const verdict =
    problems.length === 0 ? 'no problems found' : `${plural(problems.length, 'problem')} found`;
  io.out(
    `checked ${checked}${full ? `, read ${plural(counts.verifiedChunks, 'stored chunk')}` : ''}: ${verdict}`,
  );
  const info: string[] = [];
  if (counts.danglingObjects > 0) info.push(plural(counts.danglingObjects, 'unreachable object'));
  if (counts.danglingChunks > 0) info.push(plural(counts.danglingChunks, 'unreachable chunk'));
  if (counts.tempFiles > 0) info.push(plural(counts.tempFiles, 'leftover temporary file'));
  if (counts.trashFiles > 0) info.push(plural(counts.trashFiles, 'old file version in the trash'));
  if (info.length > 0)
    io.out(`note: ${info.join(', ')} (not a problem; 'mediagit gc' removes them)`);
  const remote = `'${counts.contentRemote ?? 'origin'}'`;
  if (counts.remoteOnlyChunks > 0)
    io.out(
      `note: ${plural(counts.remoteOnlyChunks, 'chunk')} not present locally (fetchable from ${remote} when needed)`,
    );
  if (counts.expiredChunks > 0)
    io.out(
      `note: ${plural(counts.expiredChunks, 'chunk')} of old versions expired on ${remote} by a retention policy (not a problem; those versions can no longer be read)`,
    );
  if (counts.unconfirmedChunks > 0)
    io.out(
      `note: ${plural(counts.unconfirmedChunks, 'chunk')} not present locally; ${remote} could not be reached to confirm it has them`,
    );
}

export class RemoteFsckError extends MediagitError {
  override readonly code = 'E_FSCK';
  override readonly exitCode = 6;
}

/** `fsck --remote NAME`: sync is loaded only for this. */
async function fsckRemote(
  io: CommandIo,
  repo: Repository,
  name: string,
  options: FsckCommandOptions,
): Promise<void> {
  const { checkRemote, getRemote, openRemoteStore, recordMirrorFailures, repairMirror } =
    await import('../sync/index.js');
  const opened = await openRemoteStore(getRemote(repo, name), repo.root);
  let repair: MirrorRepairReport | null = null;
  if (options.repair) {
    repair = await repairMirror(repo, name, opened.store, { full: true });
    if (!repair)
      throw new UsageError(`remote ${name} is not a multi remote: --repair has nothing to do`);
    if (!options.json) printRepair(io, repair);
  }
  const { counts, problems } = await checkRemote(repo, opened.store, {
    full: options.full,
    progress: io.progress(),
  });
  // Reading a multi remote repairs what the side read first lacked; what could not be is recorded.
  await recordMirrorFailures(repo, name, opened.store);
  if (options.json)
    io.out(
      JSON.stringify(
        {
          remote: name,
          ok: problems.length === 0,
          counts,
          problems,
          ...(repair ? { repair } : {}),
        },
        null,
        2,
      ),
    );
  else printRemoteReport(io, name, { counts, problems });
  if (problems.length > 0) {
    const diverged = problems.some((p) => p.kind === 'divergence');
    throw new RemoteFsckError(`remote ${name} has ${plural(problems.length, 'problem')}`, {
      hint:
        diverged && !options.repair
          ? `run 'mediagit fsck --remote ${name} --repair' to copy what one side lacks from the other and move lagging refs forward`
          : options.json
            ? 'see the JSON report'
            : 'see the lines above',
    });
  }
}

function printRepair(io: CommandIo, r: MirrorRepairReport): void {
  for (const c of r.copied) io.out(`repaired: copied ${c.key} to the ${c.to}`);
  for (const c of r.replaced) io.out(`repaired: replaced the damaged ${c.key} on the ${c.side}`);
  for (const m of r.refsMoved)
    io.out(`repaired: ${m.name} on the secondary ${m.from ?? '(none)'} -> ${m.to}`);
  for (const l of r.left) io.out(`not repaired: ${l.what}: ${l.why}`);
}

function printRemoteReport(io: CommandIo, name: string, report: RemoteFsckReport): void {
  const { counts, problems } = report;
  for (const p of problems)
    io.out(
      `${p.kind === 'divergence' ? 'divergence' : `${p.kind} ${p.oid}`}${p.kind === 'divergence' ? ` ${p.oid}` : ''}: ${p.problem}`,
    );
  const summary = `remote ${name}: checked ${plural(counts.commits, 'commit')}, ${plural(counts.trees, 'tree')}, ${plural(counts.manifests, 'manifest')}, ${plural(counts.chunks, 'chunk')} (${formatBytes(counts.chunkBytes)})`;
  io.out(
    problems.length === 0
      ? `${summary}: no problems found`
      : `${summary}: ${plural(problems.length, 'problem')}`,
  );
}
