import { userCacheDir } from '../util/user-dirs.js';
import { join } from 'node:path';
import { AlreadyExistsError, ConfigError, UsageError } from '../errors/index.js';
import type { Repository } from '../repo/index.js';
import {
  isSecretOption,
  openStore,
  parseStoreUrl,
  validateStoreOptions,
  type OpenedStore,
  type StoreOptions,
  type StoreOptionValue,
} from '../store/index.js';
import type { RetryInfo } from '../store/index.js';
import { PROBE_MEMORY_FILE } from '../store/s3/probe-memory.js';
import { resolveToken } from './credentials.js';

export interface RemoteConfig {
  readonly name: string;
  readonly url: string;
  readonly options: StoreOptions;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function assertRemoteName(name: string): void {
  if (!NAME.test(name))
    throw new UsageError(`'${name}' is not a valid remote name`, {
      hint: 'use letters, digits, ".", "_" and "-"',
    });
}

/**
 * Remotes live in config.toml as `[remote.<name>]` tables: `url` plus backend options. A multi
 * remote whose sides have options of their own keeps each side as a table,
 * `[remote.<name>.primary]` with `url` and that side's keys (option `primary.<key>`).
 */
export function listRemotes(repo: Repository): RemoteConfig[] {
  const remotes = new Map<string, { url?: string; options: Record<string, StoreOptionValue> }>();
  for (const [key, value] of repo.config.entries()) {
    const m = /^remote\.([^.]+)\.([^.]+)(?:\.([^.]+))?$/.exec(key);
    if (!m) continue;
    const entry = remotes.get(m[1]!) ?? { options: {} };
    if (m[3] !== undefined) entry.options[m[3] === 'url' ? m[2]! : `${m[2]}.${m[3]}`] = value;
    else if (m[2] === 'url') entry.url = String(value);
    else entry.options[m[2]!] = value;
    remotes.set(m[1]!, entry);
  }
  return [...remotes]
    .filter(([, r]) => r.url !== undefined)
    .map(([name, r]) => ({ name, url: r.url!, options: r.options }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

export function getRemote(repo: Repository, name: string): RemoteConfig {
  const remote = listRemotes(repo).find((r) => r.name === name);
  if (!remote)
    throw new ConfigError(`no remote named '${name}'`, {
      hint: "add one with 'mediagit remote add <name> <url>'",
    });
  return remote;
}

/** The remote a command means when none is named: "origin", or the only one there is. */
export function defaultRemote(repo: Repository): string {
  const remotes = listRemotes(repo);
  if (remotes.some((r) => r.name === 'origin')) return 'origin';
  if (remotes.length === 1) return remotes[0]!.name;
  throw new ConfigError(
    remotes.length === 0 ? 'no remote is configured' : 'several remotes and none is named origin',
    {
      hint:
        remotes.length === 0
          ? "add one with 'mediagit remote add origin <url>'"
          : 'name the remote on the command line',
    },
  );
}

/**
 * The config entries that hold a remote: `remote.<name>.<key>`, except that a multi remote's side
 * with options of its own becomes a table (`remote.<name>.primary.url` beside
 * `remote.<name>.primary.endpoint`), since TOML cannot hold both a value and keys under one name.
 */
export function remoteConfigEntries(
  name: string,
  url: string,
  options: StoreOptions,
): [string, StoreOptionValue][] {
  const tables = new Set(
    Object.keys(options)
      .filter((k) => k.includes('.'))
      .map((k) => k.slice(0, k.indexOf('.'))),
  );
  return [
    [`remote.${name}.url`, url],
    ...Object.entries(options).map(([k, v]): [string, StoreOptionValue] => [
      tables.has(k) ? `remote.${name}.${k}.url` : `remote.${name}.${k}`,
      v,
    ]),
  ];
}

export function parseOptionArgs(pairs: readonly string[] = []): Record<string, StoreOptionValue> {
  const out: Record<string, StoreOptionValue> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`option '${pair}' must look like key=value`);
    const key = pair.slice(0, eq).trim();
    // `side.key` addresses one side of a multi remote (primary.endpoint=…).
    if (!/^(?:(?:primary|secondary)\.)?[a-z][a-z0-9_]*$/.test(key) || key === 'url')
      throw new UsageError(`bad option name '${key}'`);
    const raw = pair.slice(eq + 1);
    out[key] =
      raw === 'true'
        ? true
        : raw === 'false'
          ? false
          : /^\d+$/.test(raw) && Number.isSafeInteger(Number(raw))
            ? Number(raw)
            : raw;
  }
  return out;
}

export async function addRemote(
  repo: Repository,
  name: string,
  url: string,
  options: Record<string, StoreOptionValue>,
): Promise<void> {
  assertRemoteName(name);
  if (listRemotes(repo).some((r) => r.name === name))
    throw new AlreadyExistsError(`remote '${name}' already exists`, {
      hint: "change it with 'mediagit remote set-url'",
    });
  validateStoreOptions(url, options, repo.root);
  for (const [k, v] of remoteConfigEntries(name, url, options)) repo.config.set(k, v);
  await repo.config.save();
}

export async function removeRemote(repo: Repository, name: string): Promise<void> {
  const remote = getRemote(repo, name);
  repo.config.unset(`remote.${remote.name}`);
  await repo.config.save();
  // Remote-tracking refs go with it, as in git.
  for (const [ref, value] of await repo.store.listRefs(`refs/remotes/${name}/`))
    await repo.store.compareAndSwapRef(ref, value, null);
}

export async function setRemoteUrl(repo: Repository, name: string, url: string): Promise<void> {
  const remote = getRemote(repo, name);
  // The options already saved must suit the new URL's kind (an s3 key means nothing to azure).
  validateStoreOptions(url, remote.options, repo.root);
  repo.config.set(`remote.${name}.url`, url);
  await repo.config.save();
}

/** Options for display: secrets replaced, so `remote -v` can be pasted into a bug report. */
export function redactedOptions(options: StoreOptions): Record<string, StoreOptionValue> {
  return Object.fromEntries(
    Object.entries(options).map(([k, v]) => [k, isSecretOption(k) ? '(hidden)' : v]),
  );
}

export function openRemoteStore(
  remote: RemoteConfig,
  cwd: string,
  onRetry?: (info: RetryInfo) => void,
): Promise<OpenedStore> {
  return openStore(remote.url, withProbeMemory(remote, cwd), cwd, onRetry, resolveToken);
}

/**
 * An S3 remote remembers a passed conditional-write probe in the user's cache folder unless its
 * options say otherwise (`probe_cache`, docs/backends/s3.md): one probe a day per bucket instead
 * of one per command.
 */
function withProbeMemory(remote: RemoteConfig, cwd: string): StoreOptions {
  if ('probe_cache' in remote.options || parseStoreUrl(remote.url, cwd).kind !== 's3')
    return remote.options;
  return {
    ...remote.options,
    probe_cache: join(userCacheDir(), PROBE_MEMORY_FILE),
  };
}
