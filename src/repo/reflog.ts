/**
 * Reflogs: where HEAD and each branch have been (`.mediagit/logs/HEAD`,
 * `.mediagit/logs/refs/heads/<name>`, `.mediagit/logs/refs/stash`), one line per move in git's
 * format, so `HEAD@{n}` can name a commit that no ref reaches any more and gc keeps it until the
 * entry expires (gc.reflogExpire, 90 days by default).
 */
import type { Dirent } from 'node:fs';
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UnknownRevisionError } from '../errors/index.js';
import { isOid, type Oid, type Signature } from '../objects/index.js';
import { LockFile, ensureDir, isErrno, writeFileAtomic } from '../util/fs.js';
import { loadGlobalConfig } from './config.js';

/**
 * What the reflog needs of a repository. Stated here rather than importing Repository, which
 * itself writes through this module on every ref move.
 */
export interface ReflogHome {
  path(...parts: string[]): string;
  readonly settings: { readonly fsync: boolean };
  readonly encrypted: boolean;
  readonly odb: { readCommit(oid: Oid): Promise<{ readonly message: string }> };
  identity(): Promise<Pick<Signature, 'name' | 'email'>>;
  readHead(): Promise<{ readonly ref: string | null }>;
}

export interface ReflogEntry {
  /** null where the ref did not exist before (git writes zeros). */
  readonly old: Oid | null;
  /** null where the ref was deleted. */
  readonly new: Oid | null;
  readonly who: string;
  /** Seconds since the epoch. */
  readonly time: number;
  readonly tz: string;
  readonly message: string;
}

const ZERO = '0'.repeat(64);

/** The default of gc.reflogExpire, as in git: entries younger than this keep their commits. */
export const DEFAULT_REFLOG_EXPIRE = '90.days';

/** Refs that keep a reflog, as git's core.logAllRefUpdates does by default (tags do not). */
export function keepsReflog(ref: string): boolean {
  return ref === 'HEAD' || ref.startsWith('refs/heads/') || ref === 'refs/stash';
}

function logPath(repo: ReflogHome, ref: string): string {
  return repo.path('logs', ...ref.split('/'));
}

function formatEntry(e: ReflogEntry): string {
  // A message is one line: git folds newlines the same way.
  const message = e.message.replace(/\s*\n\s*/g, ' ').trim();
  return `${e.old ?? ZERO} ${e.new ?? ZERO} ${e.who} ${e.time} ${e.tz}\t${message}\n`;
}

function parseEntry(line: string): ReflogEntry | null {
  const m = /^([0-9a-f]{64}) ([0-9a-f]{64}) (.*) (\d+) ([+-]\d{4})(?:\t(.*))?$/.exec(line);
  if (!m) return null;
  const oid = (hex: string): Oid | null => (hex === ZERO || !isOid(hex) ? null : hex);
  return {
    old: oid(m[1]!),
    new: oid(m[2]!),
    who: m[3]!,
    time: Number(m[4]),
    tz: m[5]!,
    message: m[6] ?? '',
  };
}

function tzText(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
}

/** Who moved the ref: the commit identity when there is one, else what git falls back to. */
async function mover(repo: ReflogHome): Promise<Pick<Signature, 'name' | 'email'>> {
  try {
    return await repo.identity();
  } catch {
    const global = await loadGlobalConfig().catch(() => null);
    const name = global?.get('user.name');
    return { name: typeof name === 'string' ? name : 'unknown', email: 'unknown' };
  }
}

/**
 * Appends one entry to `ref`'s reflog. The line is written with one append under the log's lock
 * file, so concurrent movers and an expiring gc never interleave or lose lines.
 */
export async function appendReflog(
  repo: ReflogHome,
  ref: string,
  old: Oid | null,
  next: Oid | null,
  message: string,
): Promise<void> {
  if (!keepsReflog(ref)) return;
  // An encrypted repository keeps authors and messages only inside its sealed commits: the log
  // holds the move and its kind ("commit", "reset"), and readers take the rest from the commit.
  const sealed = repo.encrypted;
  const who = sealed ? { name: '-', email: '' } : await mover(repo);
  const now = new Date();
  const line = formatEntry({
    old,
    new: next,
    who: `${who.name} <${who.email}>`,
    time: Math.floor(now.getTime() / 1000),
    tz: tzText(-now.getTimezoneOffset()),
    message: sealed ? reflogAction(message) : message,
  });
  const path = logPath(repo, ref);
  await ensureDir(dirname(path));
  const lock = await LockFile.acquire(`${path}.lock`, { what: `the reflog of ${ref}` });
  try {
    const handle = await open(path, 'a');
    try {
      await handle.write(line);
      if (repo.settings.fsync) await handle.sync();
    } finally {
      await handle.close();
    }
  } finally {
    await lock.release();
  }
}

/** The kind of move a reflog message names, without the user's text after it ("commit: …"). */
function reflogAction(message: string): string {
  const colon = message.indexOf(':');
  return colon === -1 ? message : message.slice(0, colon);
}

/**
 * The message to show for an entry. In an encrypted repository the log holds only the kind of
 * move, so the subject comes from the (sealed) commit the entry moved to, as stored elsewhere.
 */
export async function reflogMessage(
  repo: ReflogHome,
  ref: string,
  entry: ReflogEntry,
): Promise<string> {
  if (!repo.encrypted || entry.new === null) return entry.message;
  const subject = await repo.odb
    .readCommit(entry.new)
    .then((c) => c.message.split('\n')[0] ?? '')
    .catch(() => '');
  if (ref === 'refs/stash') return subject || entry.message;
  return subject ? `${entry.message}: ${subject}` : entry.message;
}

/** `ref`'s reflog, newest first (entry 0 is `ref@{0}`); empty when it has none. */
export async function readReflog(repo: ReflogHome, ref: string): Promise<ReflogEntry[]> {
  let text: string;
  try {
    text = await readFile(logPath(repo, ref), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return [];
    throw err;
  }
  const entries: ReflogEntry[] = [];
  for (const line of text.split('\n')) {
    const entry = parseEntry(line);
    if (entry) entries.push(entry);
  }
  return entries.reverse();
}

/**
 * Rewrites `ref`'s reflog through `edit` (given and returning entries newest first), atomically
 * under the log's lock. An empty result removes the log. Returns the entries written.
 */
export async function rewriteReflog(
  repo: ReflogHome,
  ref: string,
  edit: (entries: ReflogEntry[]) => ReflogEntry[],
): Promise<ReflogEntry[]> {
  const path = logPath(repo, ref);
  await ensureDir(dirname(path));
  const lock = await LockFile.acquire(`${path}.lock`, { what: `the reflog of ${ref}` });
  try {
    const before = await readReflog(repo, ref);
    const after = edit([...before]);
    if (after.length === 0) await removeFile(path);
    else
      await writeFileAtomic(path, [...after].reverse().map(formatEntry).join(''), {
        fsync: repo.settings.fsync,
      });
    return after;
  } finally {
    await lock.release();
  }
}

/** Drops a deleted branch's reflog, as git does. */
export async function deleteReflog(repo: ReflogHome, ref: string): Promise<void> {
  await removeFile(logPath(repo, ref));
}

/** Moves a renamed branch's reflog with it. */
export async function renameReflog(repo: ReflogHome, from: string, to: string): Promise<void> {
  const target = logPath(repo, to);
  await ensureDir(dirname(target));
  try {
    await rename(logPath(repo, from), target);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

async function removeFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

/** Every ref that has a reflog (HEAD first). */
export async function reflogRefs(repo: ReflogHome): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    let names: Dirent[];
    try {
      names = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    for (const d of names) {
      const name = prefix === '' ? d.name : `${prefix}/${d.name}`;
      if (d.isDirectory()) await walk(join(dir, d.name), name);
      else if (
        d.isFile() &&
        !d.name.startsWith('.') &&
        !d.name.endsWith('.lock') &&
        keepsReflog(name)
      )
        found.push(name);
    }
  };
  await walk(repo.path('logs'), '');
  return found.sort((a, b) => (a === 'HEAD' ? -1 : b === 'HEAD' ? 1 : a < b ? -1 : 1));
}

/**
 * The ref a reflog selector's name stands for: '' and '@' are the current branch (HEAD when
 * detached), 'HEAD' is HEAD, 'stash' is refs/stash, other names are branches or full refs.
 */
export async function reflogRefFor(repo: ReflogHome, name: string): Promise<string> {
  if (name === '' || name === '@') return (await repo.readHead()).ref ?? 'HEAD';
  if (name === 'HEAD') return 'HEAD';
  if (name.startsWith('refs/')) return name;
  if (name === 'stash') return 'refs/stash';
  return `refs/heads/${name}`;
}

/** The commit `name@{n}` designates: where the ref was n moves ago. */
export async function resolveReflogSelector(
  repo: ReflogHome,
  name: string,
  n: number,
  whole: string,
): Promise<Oid> {
  const ref = await reflogRefFor(repo, name);
  const entries = await readReflog(repo, ref);
  const entry = entries[n];
  if (!entry) {
    throw new UnknownRevisionError(
      `${whole} (the reflog of ${ref === 'HEAD' ? 'HEAD' : ref.replace(/^refs\/heads\//, '')} has ${entries.length} ${entries.length === 1 ? 'entry' : 'entries'})`,
    );
  }
  if (entry.new === null) throw new UnknownRevisionError(whole);
  return entry.new;
}

/** What reflog entries younger than `cutoff` (seconds) still name: gc keeps these objects. */
export async function reflogOids(
  repo: ReflogHome,
  cutoffSeconds: number,
): Promise<{ oid: Oid; where: string }[]> {
  const found: { oid: Oid; where: string }[] = [];
  for (const ref of await reflogRefs(repo)) {
    const entries = await readReflog(repo, ref);
    entries.forEach((e, n) => {
      if (ref !== 'refs/stash' && e.time <= cutoffSeconds) return;
      const where = `${ref === 'HEAD' ? 'HEAD' : ref}@{${n}}`;
      if (e.new) found.push({ oid: e.new, where });
      if (e.old) found.push({ oid: e.old, where: `${where} (before)` });
    });
  }
  return found;
}

/** Removes entries older than `cutoff` (seconds) from every reflog; returns how many went. */
export async function expireReflogs(
  repo: ReflogHome,
  cutoffSeconds: number,
  refs?: readonly string[],
): Promise<number> {
  let removed = 0;
  for (const ref of refs ?? (await reflogRefs(repo))) {
    // The stash's reflog is the stash list itself: stashes are dropped by the user, never by age.
    if (ref === 'refs/stash') continue;
    await rewriteReflog(repo, ref, (entries) => {
      // As git: expiring at 'now' removes entries written this very second too.
      const kept = entries.filter((e) => e.time > cutoffSeconds);
      removed += entries.length - kept.length;
      return kept;
    });
  }
  return removed;
}
