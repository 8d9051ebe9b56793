/**
 * Every failure a user can meet is one of these classes. Each has a stable `code` (what tests and
 * scripts match on), an exit code, and an optional hint the CLI prints under the one-line message.
 * Messages must never contain credentials or passphrases.
 */
export interface ErrorDetails {
  hint?: string;
  cause?: unknown;
}

export class MediagitError extends Error {
  readonly code: string = 'E_MEDIAGIT';
  readonly exitCode: number = 1;
  readonly hint: string | undefined;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.hint = details.hint;
  }
}

/** Bad command-line usage: unknown option, missing argument, contradictory flags. */
export class UsageError extends MediagitError {
  override readonly code = 'E_USAGE';
  override readonly exitCode = 2;
}

export class NotARepositoryError extends MediagitError {
  override readonly code = 'E_NOT_A_REPOSITORY';
  override readonly exitCode = 3;
  constructor(dir: string) {
    super(`not a mediagit repository (or any parent up to /): ${dir}`, {
      hint: "run 'mediagit init' to create one, or cd into an existing repository",
    });
  }
}

export class AlreadyExistsError extends MediagitError {
  override readonly code = 'E_ALREADY_EXISTS';
  override readonly exitCode = 4;
}

export class UnknownRevisionError extends MediagitError {
  override readonly code = 'E_UNKNOWN_REVISION';
  override readonly exitCode = 5;
  constructor(rev: string) {
    super(`unknown revision or path: '${rev}'`, {
      hint: "use 'mediagit log --oneline' or 'mediagit branch' to see what exists",
    });
  }
}

export class PathspecError extends MediagitError {
  override readonly code = 'E_PATHSPEC';
  override readonly exitCode = 5;
}

/** A stored object failed verification: hash mismatch, bad tag, truncated, undecodable. */
export class ObjectCorruptError extends MediagitError {
  override readonly code = 'E_OBJECT_CORRUPT';
  override readonly exitCode = 6;
  readonly oid: string;
  constructor(oid: string, reason: string, details: ErrorDetails = {}) {
    super(`object ${oid} is corrupt: ${reason}`, {
      hint: details.hint ?? "run 'mediagit fsck --full' to list every damaged object",
      cause: details.cause,
    });
    this.oid = oid;
  }
}

/**
 * A ref file that cannot be a ref: not a plain file (a symlink, a FIFO), or content that is not an
 * object ID. The message names the ref and what is wrong, never the file's content, which may be
 * anything someone planted there.
 */
export class RefCorruptError extends MediagitError {
  override readonly code = 'E_REF_CORRUPT';
  override readonly exitCode = 6;
  readonly ref: string;
  constructor(ref: string, reason: string, details: ErrorDetails = {}) {
    super(`ref ${ref} is corrupt: ${reason}`, {
      hint:
        details.hint ??
        'mediagit never writes a ref like this; restore or remove that file in the repository, then run the command again',
      cause: details.cause,
    });
    this.ref = ref;
  }
}

export class ObjectMissingError extends MediagitError {
  override readonly code = 'E_OBJECT_MISSING';
  override readonly exitCode = 16;
  readonly oid: string;
  constructor(oid: string, kind: string, details: ErrorDetails = {}) {
    super(`${kind} object ${oid} is missing from the store`, {
      hint: details.hint ?? "run 'mediagit fsck' to check the repository",
      cause: details.cause,
    });
    this.oid = oid;
  }
}

/**
 * `import git-lfs`: files whose LFS content is not in the source's LFS store. Nothing is imported;
 * the list names each (path, commit, LFS object ID) so the user can fetch them or pass --allow-missing.
 */
export class LfsObjectMissingError extends MediagitError {
  override readonly code = 'E_LFS_MISSING';
  override readonly exitCode = 16;
}

/** A name in a tree (or a path given to us) that could escape the working tree or clash with .mediagit. */
export class UnsafePathError extends MediagitError {
  override readonly code = 'E_UNSAFE_PATH';
  override readonly exitCode = 15;
}

/** Working tree or index state forbids the operation (uncommitted changes, unresolved conflicts…). */
export class DirtyWorktreeError extends MediagitError {
  override readonly code = 'E_DIRTY_WORKTREE';
  override readonly exitCode = 7;
}

export class ConflictError extends MediagitError {
  override readonly code = 'E_MERGE_CONFLICT';
  override readonly exitCode = 8;
}

export class NothingToCommitError extends MediagitError {
  override readonly code = 'E_NOTHING_TO_COMMIT';
  override readonly exitCode = 1;
}

export class LockedError extends MediagitError {
  override readonly code = 'E_LOCKED';
  override readonly exitCode = 9;
}

/** A commit changes a lockable path that someone else holds (refused unless --no-verify-locks). */
export class LockHeldError extends MediagitError {
  override readonly code = 'E_LOCK_HELD';
  override readonly exitCode = 20;
}

export class RefConflictError extends MediagitError {
  override readonly code = 'E_REF_CONFLICT';
  override readonly exitCode = 10;
}

export class NonFastForwardError extends MediagitError {
  override readonly code = 'E_NON_FAST_FORWARD';
  override readonly exitCode = 10;
}

export class ConfigError extends MediagitError {
  override readonly code = 'E_CONFIG';
  override readonly exitCode = 11;
}

export class IdentityError extends MediagitError {
  override readonly code = 'E_NO_IDENTITY';
  override readonly exitCode = 11;
  constructor() {
    super('author identity unknown', {
      hint: "run 'mediagit config user.name \"Your Name\"' and 'mediagit config user.email you@example.com', or set MEDIAGIT_AUTHOR_NAME / MEDIAGIT_AUTHOR_EMAIL",
    });
  }
}

/** A backend-level failure the caller may retry (network blip, 5xx, throttling). */
export class StoreUnavailableError extends MediagitError {
  override readonly code = 'E_STORE_UNAVAILABLE';
  override readonly exitCode = 12;
  readonly retryAfterMs: number | undefined;
  constructor(message: string, details: ErrorDetails & { retryAfterMs?: number } = {}) {
    super(message, details);
    this.retryAfterMs = details.retryAfterMs;
  }
}

/**
 * The remote is out of space (HTTP 507). Same exit code as an unavailable remote, but not a
 * StoreUnavailableError: retrying cannot free space, so the retry wrapper gives up at once.
 */
export class StoreFullError extends MediagitError {
  override readonly code = 'E_STORE_FULL';
  override readonly exitCode = 12;
}

/**
 * The remote keeps this object under a retention policy (a bucket or object retention period) and
 * refuses to replace or delete it until the period ends. Not an authentication problem, and not
 * retried: waiting seconds cannot end a period of days.
 */
export class RetentionLockedError extends MediagitError {
  override readonly code = 'E_RETENTION_LOCKED';
  override readonly exitCode = 12;
}

export class NotFoundError extends MediagitError {
  override readonly code = 'E_NOT_FOUND';
  override readonly exitCode = 16;
  readonly key: string;
  constructor(key: string, details: ErrorDetails = {}) {
    super(`not found in store: ${key}`, details);
    this.key = key;
  }
}

export class AuthError extends MediagitError {
  override readonly code = 'E_AUTH';
  override readonly exitCode = 13;
}

export class PassphraseError extends MediagitError {
  override readonly code = 'E_BAD_PASSPHRASE';
  override readonly exitCode = 14;
}

/** The key agent's private folder or socket could be reached or replaced by another user. */
export class AgentUnsafeError extends MediagitError {
  override readonly code = 'E_AGENT_UNSAFE';
  override readonly exitCode = 17;
}

/** The key agent was needed explicitly (`key cache`, `key forget`) and could not be reached or started. */
export class AgentUnavailableError extends MediagitError {
  override readonly code = 'E_AGENT_UNAVAILABLE';
  override readonly exitCode = 17;
}

/**
 * Content deliberately deleted by a retention policy (`gc --remote --keep/--older-than`): the
 * manifest survives, its chunks do not. Distinct from a corrupt or missing object, which is damage.
 */
export class ExpiredError extends MediagitError {
  override readonly code = 'E_EXPIRED';
  override readonly exitCode = 18;
  /** When the sweep that deleted the content ran (ISO 8601). */
  readonly expiredAt: string;

  constructor(what: string, expiredAt: string, details: ErrorDetails = {}) {
    const day = /^\d{4}-\d{2}-\d{2}/.test(expiredAt) ? expiredAt.slice(0, 10) : expiredAt;
    super(`${what} expired by retention policy on ${day}`, details);
    this.expiredAt = expiredAt;
  }
}

/**
 * Content the local store lacks (a tip-only or sparse clone) could not be fetched from the remote
 * it came from: the remote is unreachable, refuses, or no longer has it.
 */
export class ContentUnavailableError extends MediagitError {
  override readonly code = 'E_CONTENT_UNAVAILABLE';
  override readonly exitCode = 19;
  constructor(
    readonly path: string | undefined,
    readonly remote: string | undefined,
    readonly reason: string,
    details: ErrorDetails = {},
  ) {
    super(
      `${path ?? 'content'} is not stored locally and could not be fetched${remote ? ` from remote '${remote}'` : ''}: ${reason}`,
      details,
    );
  }

  /** The same failure, naming the file it was needed for. */
  forPath(path: string): ContentUnavailableError {
    if (this.path !== undefined) return this;
    return new ContentUnavailableError(path, this.remote, this.reason, {
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      cause: this.cause,
    });
  }
}

export class InterruptedError extends MediagitError {
  override readonly code = 'E_INTERRUPTED';
  override readonly exitCode = 130;
}

export function isMediagitError(err: unknown): err is MediagitError {
  return err instanceof MediagitError;
}

/** True for errors a retry wrapper may try again. */
export function isRetriable(err: unknown): boolean {
  return err instanceof StoreUnavailableError;
}
