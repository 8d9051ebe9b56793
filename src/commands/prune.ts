import { ConfigError } from '../errors/index.js';
import {
  ONE_COPY_KEY,
  contentRemoteName,
  getRemote,
  oneCopyEnabled,
  parseDuration,
  prune,
} from '../sync/index.js';
import { formatBytes, openRepository, plural, type CommandIo } from './context.js';
import { openRemote } from './shared/remotes.js';

export interface PruneCommandOptions {
  keepRecent?: string;
  remote?: string;
  dryRun?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export async function runPrune(io: CommandIo, options: PruneCommandOptions): Promise<void> {
  const keepRecentMs =
    options.keepRecent === undefined
      ? undefined
      : parseDuration(options.keepRecent, '--keep-recent');
  const repo = await openRepository(io);
  if (!oneCopyEnabled(repo))
    throw new ConfigError(`prune is turned off in this repository (${ONE_COPY_KEY} = false)`, {
      hint: `'mediagit config --unset ${ONE_COPY_KEY}' turns it back on`,
    });
  const name = options.remote ?? contentRemoteName(repo);
  if (name === null)
    throw new ConfigError(
      'prune needs a remote to confirm what it evicts, and none is configured',
      {
        hint: "add one with 'mediagit remote add origin <url>' and push",
      },
    );
  const opened = await openRemote(io, repo, getRemote(repo, name));
  const report = await prune(repo, opened.store, {
    ...(keepRecentMs === undefined ? {} : { keepRecentMs }),
    dryRun: options.dryRun ?? false,
  });
  if (options.json) io.out(JSON.stringify({ remote: name, ...report }, null, 2));
  else if (!options.quiet) {
    const kept: string[] = [];
    if (report.notOnRemote > 0) kept.push(`${report.notOnRemote} not on '${name}'`);
    if (report.recent > 0) kept.push(`${report.recent} used by recent commits`);
    io.out(
      `${options.dryRun ? 'would evict' : 'evicted'} ${plural(report.evicted, 'chunk')} (${formatBytes(report.evictedBytes)}) that '${name}' holds${kept.length ? `; kept ${kept.join(', ')}` : ''}`,
    );
  }
}
