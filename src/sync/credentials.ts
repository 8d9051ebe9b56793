/**
 * Tokens for mediagit servers, per user, never per repository: `credentials.toml` in the user's
 * config folder (`$XDG_CONFIG_HOME/mediagit/`, default `~/.config/mediagit/`), one table per
 * server origin + repository:
 *
 *   ["https://assets.example.com/hero-game"]
 *   token = "…"
 *
 * A table named by the origin alone (`["https://assets.example.com"]`) applies to every
 * repository on that server that has no entry of its own. The file is written atomically with
 * mode 0600 and refused when anyone but its owner could read it. Tokens never appear in
 * messages: parse errors name the line, not its text.
 */
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { userConfigDir } from '../util/user-dirs.js';
import { dirname, join } from 'node:path';
import { parse, stringify, type TomlTable } from 'smol-toml';
import { ConfigError } from '../errors/index.js';
import { LockFile, isErrno, writeFileAtomic } from '../util/fs.js';

export const TOKEN_ENV = 'MEDIAGIT_TOKEN';

export interface CredentialEntry {
  readonly token: string;
}

/** Where credentials live: `$XDG_CONFIG_HOME/mediagit/credentials.toml`, else `~/.config/mediagit/credentials.toml`. */
export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(userConfigDir(env), 'credentials.toml');
}

/** The table name for a repository: normalised origin (scheme, lowercase host, port only if not default) + "/" + repo. */
export function credentialKey(origin: string, repo: string): string {
  const normalized = new URL(origin).origin;
  const name = repo.replace(/^\/+|\/+$/g, '');
  return name === '' ? normalized : `${normalized}/${name}`;
}

/** Refuses a file that group or others can read or write (POSIX only; Windows has no mode bits to check). */
async function checkMode(path: string): Promise<boolean> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw new ConfigError(
      `cannot read the credentials file ${path}: ${(err as { code?: string }).code ?? 'error'}`,
    );
  }
  if (!info.isFile()) throw new ConfigError(`the credentials file ${path} is not a regular file`);
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    throw new ConfigError(
      `refusing to use the credentials file ${path}: its mode is ${(info.mode & 0o777).toString(8).padStart(4, '0')}, so others could read the tokens in it`,
      {
        hint: `run 'chmod 600 ${path}' (and consider renewing the tokens it holds)`,
      },
    );
  }
  return true;
}

function parseCredentials(text: string, path: string): Map<string, CredentialEntry> {
  let data: TomlTable;
  try {
    data = parse(text);
  } catch (err) {
    // smol-toml's message quotes the offending line, which may hold a token: report the position only.
    const line =
      typeof err === 'object' && err !== null ? (err as { line?: unknown }).line : undefined;
    throw new ConfigError(
      `the credentials file ${path} is not valid TOML${typeof line === 'number' ? ` (line ${line})` : ''}`,
      {
        hint: "fix it by hand, or delete it and run 'mediagit login' again",
      },
    );
  }
  const out = new Map<string, CredentialEntry>();
  for (const [name, value] of Object.entries(data)) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) continue;
    const token = (value as Record<string, unknown>)['token'];
    if (typeof token === 'string' && token !== '') out.set(name, { token });
  }
  return out;
}

/** Every entry of the file; empty when there is no file. Throws ConfigError on a bad mode or bad TOML. */
export async function readCredentials(
  path: string = credentialsPath(),
): Promise<Map<string, CredentialEntry>> {
  if (!(await checkMode(path))) return new Map();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return new Map();
    throw new ConfigError(
      `cannot read the credentials file ${path}: ${(err as { code?: string }).code ?? 'error'}`,
    );
  }
  return parseCredentials(text, path);
}

/** The stored token for a repository (its own entry, else its server's), or undefined. */
export async function lookupToken(
  origin: string,
  repo: string,
  path: string = credentialsPath(),
): Promise<string | undefined> {
  const entries = await readCredentials(path);
  return (entries.get(credentialKey(origin, repo)) ?? entries.get(credentialKey(origin, '')))
    ?.token;
}

/**
 * The token a request to this repository carries: MEDIAGIT_TOKEN when set (CI), else the
 * credentials file. Never the repository's config: that file is shared and sometimes committed.
 */
export async function resolveToken(
  origin: string,
  repo: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  const fromEnv = env[TOKEN_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') return fromEnv.trim();
  return lookupToken(origin, repo, credentialsPath(env));
}

const HEADER =
  '# mediagit credentials: tokens for mediagit servers, written by `mediagit login`.\n# Keep this file private (mode 0600).\n\n';

/**
 * Adds or replaces the token for a repository, keeping every other entry. Read-modify-write under
 * a lock file, then an atomic rename of a file created 0600, so the token is never readable by
 * others even for a moment and two logins at once cannot lose each other's entries.
 */
export async function saveToken(
  origin: string,
  repo: string,
  token: string,
  path: string = credentialsPath(),
): Promise<string> {
  if (token === '' || /[\r\n]/.test(token))
    throw new ConfigError('the token is empty or spans several lines');
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const lock = await LockFile.acquire(`${path}.lock`, { what: 'the credentials file' });
  try {
    const entries = await readCredentials(path);
    entries.set(credentialKey(origin, repo), { token });
    const table: TomlTable = {};
    for (const [name, entry] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      table[name] = { token: entry.token };
    await writeFileAtomic(path, HEADER + stringify(table) + '\n', { mode: 0o600, fsync: true });
    // The mode given to open() is filtered by the umask, which can only remove bits; make it exact anyway.
    await chmod(path, 0o600);
  } finally {
    await lock.release();
  }
  return path;
}

/** Removes a repository's entry; true when there was one. */
export async function removeToken(
  origin: string,
  repo: string,
  path: string = credentialsPath(),
): Promise<boolean> {
  if (!(await checkMode(path))) return false;
  const lock = await LockFile.acquire(`${path}.lock`, { what: 'the credentials file' });
  try {
    const entries = await readCredentials(path);
    if (!entries.delete(credentialKey(origin, repo))) return false;
    const table: TomlTable = {};
    for (const [name, entry] of entries) table[name] = { token: entry.token };
    await writeFileAtomic(path, HEADER + stringify(table) + '\n', { mode: 0o600, fsync: true });
    await chmod(path, 0o600);
    return true;
  } finally {
    await lock.release();
  }
}
