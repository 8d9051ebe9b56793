import { Repository, toRepoPaths, type ProgressSink } from '../repo/index.js';
// Not sync/index.js: that is every remote's code, and every command opens a repository.
import { installChunkSourceOnDemand } from '../sync/on-demand-chunks.js';

// Re-exported for the commands; the CLI's progress bar imports them without the repository code.
export { formatBytes, plural } from './shared/format.js';

/** What a command may use to talk to the user; the CLI provides it, tests can too. */
export interface CommandIo {
  readonly cwd: string;
  /** Writes one line (a newline is added) to standard output. */
  out(line: string): void;
  /** Writes one line to standard error (warnings, notes). */
  err(line: string): void;
  /** Writes raw bytes to standard output (file content for `show REV:PATH`), honouring back-pressure. */
  writeRaw(data: Uint8Array): Promise<void>;
  /** A progress display for one operation: a bar on a terminal, nothing elsewhere. */
  progress(): ProgressSink;
  /**
   * A passphrase from MEDIAGIT_PASSPHRASE, --passphrase-file, or a no-echo terminal prompt ('new'
   * asks twice and reads MEDIAGIT_NEW_PASSPHRASE / --new-passphrase-file; 'first', a new
   * repository's, falls back to the unlock sources). Never from an argument.
   */
  passphrase(kind: 'unlock' | 'new' | 'first'): Promise<string>;
  /**
   * True when the user gave a passphrase explicitly (MEDIAGIT_PASSPHRASE, --passphrase-file): it
   * is then checked, and a key cached in the agent does not stand in for it.
   */
  readonly passphraseGiven?: boolean;
  /** A secret typed at a no-echo terminal prompt (e.g. a server token); throws without a terminal. */
  promptSecret(question: string): Promise<string>;
  /**
   * Ends the process now with `code`, for the rare command that must not return (a clone
   * interrupted by a signal, a server whose sockets never close). The CLI owns the process.
   */
  exit(code: number): never;
}

/**
 * Opens the repository around io.cwd; an encrypted one is unlocked by the key agent when it holds
 * the key, else with the passphrase. `agent: false`, or a passphrase the user gave, insists on
 * the passphrase.
 */
export async function openRepository(
  io: CommandIo,
  options: { agent?: boolean } = {},
): Promise<Repository> {
  const repo = await Repository.discover(io.cwd, {
    passphrase: () => io.passphrase('unlock'),
    ...(io.passphraseGiven ? { agent: false } : {}),
    ...options,
  });
  reportUnlock(io, repo);
  installChunkSourceOnDemand(repo, io.cwd);
  return repo;
}

/** Paths named by the user → repository paths, with `.` meaning the folder the command runs in. */
export function pathspecs(repo: Repository, io: CommandIo, args: readonly string[]): string[] {
  return toRepoPaths(repo, io.cwd, args);
}

/** MEDIAGIT_DEBUG_UNLOCK=1 says how the key was obtained, so tests can tell the agent's fast path from Argon2. */
export function reportUnlock(io: CommandIo, repo: Repository): void {
  if (process.env.MEDIAGIT_DEBUG_UNLOCK === '1' && repo.unlockedVia)
    io.err(`unlocked via ${repo.unlockedVia}`);
}
