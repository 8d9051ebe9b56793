import { constants as osConstants } from 'node:os';
import { resolve } from 'node:path';
import {
  canonicalRemoteUrl,
  clone,
  defaultCloneDirectory,
  parseHistoryContent,
  parseOptionArgs,
} from '../sync/index.js';
import { formatBytes, plural, reportUnlock, type CommandIo } from './context.js';
import { sentLine } from './shared/remotes.js';

export interface CloneCommandOptions {
  branch?: string;
  include?: string[];
  option?: string[];
  origin?: string;
  quiet?: boolean;
  json?: boolean;
  /** false with --no-hardlinks. */
  hardlinks?: boolean;
  /** 'tip' or 'all'. */
  historyContent?: string;
}

export async function runClone(
  io: CommandIo,
  givenUrl: string,
  directory: string | undefined,
  options: CloneCommandOptions,
): Promise<void> {
  const url = canonicalRemoteUrl(givenUrl, io.cwd);
  const result = await clone({
    url,
    directory: resolve(io.cwd, directory ?? defaultCloneDirectory(givenUrl)),
    remoteName: options.origin ?? 'origin',
    options: parseOptionArgs(options.option),
    branch: options.branch,
    include: options.include,
    hardlinks: options.hardlinks,
    historyContent:
      options.historyContent === undefined
        ? undefined
        : parseHistoryContent(options.historyContent, '--history-content'),
    cwd: io.cwd,
    passphrase: () => io.passphrase('unlock'),
    ...(io.passphraseGiven ? { agent: false } : {}),
    progress: () => io.progress(),
    onOpened: (repo) => reportUnlock(io, repo),
    onInterrupted: (_signal, removing) => io.err(`clone interrupted; removing ${removing}`),
    // The usual status of a process ended by a signal, as git's clone exits.
    exit: (signal) => io.exit(128 + (osConstants.signals[signal] ?? 0)),
  });
  if (options.json)
    io.out(
      JSON.stringify(
        {
          directory: result.directory,
          branch: result.branch,
          objects: result.fetched.objects,
          bytes: result.fetched.bytes,
          bytesReceived: result.traffic.totals.bytesRead,
          evictedChunks: result.evicted,
        },
        null,
        2,
      ),
    );
  else if (!options.quiet) {
    io.err(
      `Cloned ${url} into ${result.directory}${result.branch ? ` (branch ${result.branch})` : ' (empty repository)'}`,
    );
    io.err(
      `received ${plural(result.fetched.objects, 'object')}, ${formatBytes(result.fetched.bytes)}; ${sentLine(result.traffic)}`,
    );
  }
}
