import { ConfigError, NotARepositoryError, UsageError } from '../errors/index.js';
import {
  ConfigFile,
  Repository,
  ensureGlobalConfigDir,
  loadGlobalConfig,
  type ConfigValue,
} from '../repo/index.js';
import type { CommandIo } from './context.js';
import { join } from 'node:path';

export interface ConfigOptions {
  global?: boolean;
  list?: boolean;
  unset?: boolean;
  json?: boolean;
}

/** Settings fixed at init: changing them would silently break deduplication or readability. */
const FROZEN = new Set([
  'chunking.min_size',
  'chunking.avg_size',
  'chunking.max_size',
  'core.format_version',
  'encryption.enabled',
  'encryption.cipher',
]);

/** Changing it by hand would leave the working tree out of step (files "deleted", never fetched). */
const SPARSE_KEY = 'sparse.include';

function parseValue(text: string): ConfigValue {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^-?\d+$/.test(text) && Number.isSafeInteger(Number(text))) return Number(text);
  return text;
}

export async function runConfig(
  io: CommandIo,
  key: string | undefined,
  value: string | undefined,
  options: ConfigOptions,
): Promise<void> {
  // Settings never need the passphrase: read the file directly instead of unlocking the repository.
  const root = options.global ? null : await repositoryRoot(io.cwd, key, value, options);
  const global = await loadGlobalConfig();
  const file: ConfigFile =
    root === null
      ? global
      : await ConfigFile.load(join(root, '.mediagit', 'config.toml'), { mustExist: true });
  if (options.list || key === undefined) {
    // Like git: the per-user file, then the repository's, which wins where both set a key.
    const scoped: { origin: 'global' | 'local'; file: ConfigFile }[] =
      root === null
        ? [{ origin: 'global', file }]
        : [
            { origin: 'global', file: global },
            { origin: 'local', file },
          ];
    const rows = scoped.flatMap(({ origin, file: f }) =>
      f.entries().map(([k, v]) => ({ key: k, value: v, origin })),
    );
    if (options.json) io.out(JSON.stringify(rows, null, 2));
    else for (const r of rows) io.out(`${r.origin}\t${r.key}=${String(r.value)}`);
    return;
  }
  if (key === SPARSE_KEY && !options.global && (options.unset || value !== undefined))
    throw new UsageError(`${SPARSE_KEY} is changed with 'mediagit sparse-checkout'`, {
      hint: "it writes the paths a new set adds and removes the ones it drops: 'mediagit sparse-checkout set|add|disable'",
    });
  if (options.unset) {
    if (FROZEN.has(key)) throw new ConfigError(`${key} is fixed when the repository is created`);
    if (!file.unset(key)) throw new ConfigError(`no such key: ${key}`);
    await file.save();
    return;
  }
  if (value === undefined) {
    const current = file.get(key) ?? (root === null ? undefined : global.get(key));
    if (current === undefined) throw new ConfigError(`${key} is not set`);
    io.out(String(current));
    return;
  }
  if (FROZEN.has(key) && !options.global) {
    throw new ConfigError(`${key} is fixed when the repository is created`, {
      hint: 'chunk sizes are part of the format: changing them would break deduplication',
    });
  }
  if (key === 'core.compression_level') {
    const level = Number(value);
    if (!Number.isInteger(level) || level < 0 || level > 22)
      throw new UsageError('core.compression_level must be 0..22');
  }
  file.set(key, parseValue(value));
  if (options.global) await ensureGlobalConfigDir(file);
  await file.save();
}

/**
 * The repository whose file a command means; null for the per-user file. Reading outside a
 * repository falls back to the per-user file, as git does; writing there must say --global.
 */
async function repositoryRoot(
  cwd: string,
  key: string | undefined,
  value: string | undefined,
  options: ConfigOptions,
): Promise<string | null> {
  try {
    return await Repository.findRoot(cwd);
  } catch (err) {
    const reading = key === undefined || options.list || (value === undefined && !options.unset);
    if (reading && err instanceof NotARepositoryError) return null;
    throw err;
  }
}
