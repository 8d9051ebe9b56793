import { MediagitError } from '../errors/index.js';

interface CommanderLike {
  code: string;
  exitCode: number;
  message: string;
}

function isCommanderError(err: unknown): err is CommanderLike {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { code?: unknown }).code === 'string' &&
    String((err as { code: string }).code).startsWith('commander.')
  );
}

const ERRNO_TEXT: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
  ENAMETOOLONG: 'file name too long',
  EISDIR: 'is a folder',
  ENOTDIR: 'not a folder',
  ENOENT: 'no such file or folder',
};

/**
 * Turns any failure into one line (plus a hint line) on stderr and an exit code. Stack traces
 * only with --debug: users get what went wrong and what to do, not our internals.
 */
export function reportError(err: unknown, debug: boolean, write: (text: string) => void): number {
  if (isCommanderError(err)) {
    // commander already printed its message; help/version displays exit 0.
    return err.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof MediagitError) {
    write(`error: ${err.message}\n`);
    if (err.hint) write(`hint: ${err.hint}\n`);
    if (debug) write(`[${err.code}]\n${err.stack ?? ''}\n`);
    return err.exitCode;
  }
  const errno =
    typeof err === 'object' && err !== null ? (err as { code?: unknown; path?: unknown }) : {};
  if (typeof errno.code === 'string' && errno.code in ERRNO_TEXT) {
    write(
      `error: ${ERRNO_TEXT[errno.code]}${typeof errno.path === 'string' ? `: ${errno.path}` : ''}\n`,
    );
    if (debug && err instanceof Error) write(`${err.stack ?? ''}\n`);
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  write(`error: unexpected failure: ${message.split('\n')[0]}\n`);
  write(
    debug && err instanceof Error
      ? `${err.stack ?? ''}\n`
      : 'hint: run again with --debug for details, and report it if it persists\n',
  );
  return 1;
}
