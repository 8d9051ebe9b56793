import { readFile } from 'node:fs/promises';
import { userConfigDir } from '../util/user-dirs.js';
import { join } from 'node:path';
import { parse, stringify, type TomlTable } from 'smol-toml';
import {
  DEFAULT_CHUNKING,
  validateChunkingParams,
  type ChunkingParams,
} from '../chunking/index.js';
import { DEFAULT_ZSTD_LEVEL } from '../compression/index.js';
import { ConfigError } from '../errors/index.js';
import { ensureDir, isErrno, writeFileAtomic } from '../util/fs.js';

export const REPOSITORY_FORMAT_VERSION = 1;

/** The settings code reads, parsed and checked once from `.mediagit/config.toml`. */
export interface RepoSettings {
  readonly formatVersion: number;
  readonly chunking: ChunkingParams;
  readonly compressionLevel: number;
  readonly fsync: boolean;
}

export type ConfigValue = string | number | boolean;

/**
 * A TOML file viewed as dotted keys (`user.name`, `core.compression_level`), which is how
 * `mediagit config` and git users address settings. Unknown keys are kept untouched.
 */
export class ConfigFile {
  private constructor(
    readonly path: string,
    private data: TomlTable,
  ) {}

  static async load(path: string, options: { mustExist?: boolean } = {}): Promise<ConfigFile> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (isErrno(err, 'ENOENT') && !options.mustExist) return new ConfigFile(path, {});
      throw new ConfigError(
        `cannot read config ${path}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    try {
      return new ConfigFile(path, parse(text));
    } catch (err) {
      throw new ConfigError(
        `config ${path} is not valid TOML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
        {
          hint: 'fix the file by hand or restore it; mediagit will not guess',
        },
      );
    }
  }

  static fresh(path: string, data: TomlTable): ConfigFile {
    return new ConfigFile(path, data);
  }

  get(key: string): ConfigValue | undefined {
    let node: unknown = this.data;
    for (const part of keyParts(key)) {
      if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
      node = (node as Record<string, unknown>)[part];
    }
    return typeof node === 'string' || typeof node === 'number' || typeof node === 'boolean'
      ? node
      : undefined;
  }

  set(key: string, value: ConfigValue): void {
    const parts = splitKey(key);
    let node = this.data as Record<string, unknown>;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      if (next === undefined) node[part] = {};
      else if (typeof next !== 'object' || next === null || Array.isArray(next))
        throw new ConfigError(`config key ${key} would replace the value at ${part}`);
      node = node[part] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]!] = value;
  }

  unset(key: string): boolean {
    const parts = splitKey(key);
    let node = this.data as Record<string, unknown>;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      if (typeof next !== 'object' || next === null) return false;
      node = next as Record<string, unknown>;
    }
    const last = parts[parts.length - 1]!;
    if (!(last in node)) return false;
    delete node[last];
    return true;
  }

  /** Every scalar as [dotted key, value], in file order. */
  entries(): [string, ConfigValue][] {
    const out: [string, ConfigValue][] = [];
    const walk = (node: Record<string, unknown>, prefix: string): void => {
      for (const [k, v] of Object.entries(node)) {
        const key = prefix ? `${prefix}.${k}` : k;
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
          out.push([key, v]);
        else if (typeof v === 'object' && v !== null && !Array.isArray(v))
          walk(v as Record<string, unknown>, key);
      }
    };
    walk(this.data, '');
    return out;
  }

  async save(): Promise<void> {
    await writeFileAtomic(this.path, stringify(this.data) + '\n', { fsync: true, mode: 0o644 });
  }
}

/**
 * A key's path in the TOML tree. `branch.<name>.<key>` keeps the branch name whole, as git's
 * subsections do: branch names may hold '.' and '/' ("release/v1.2").
 */
function keyParts(key: string): string[] {
  const parts = key.split('.');
  if (parts[0] === 'branch' && parts.length > 3)
    return ['branch', parts.slice(1, -1).join('.'), parts[parts.length - 1]!];
  return parts;
}

function splitKey(key: string): string[] {
  const parts = keyParts(key);
  const valid = (p: string, i: number): boolean =>
    parts[0] === 'branch' && i === 1 && parts.length === 3
      ? /^[A-Za-z0-9_][A-Za-z0-9_./-]*$/.test(p) && !p.includes('..')
      : /^[A-Za-z0-9_-]+$/.test(p);
  if (parts.length < 2 || !parts.every(valid)) {
    throw new ConfigError(`invalid config key '${key}'`, {
      hint: "keys look like 'section.name', e.g. user.name",
    });
  }
  return parts;
}

/** Per-user settings (identity and defaults), like git's ~/.gitconfig. */
export function globalConfigPath(): string {
  return join(userConfigDir(), 'config.toml');
}

export async function loadGlobalConfig(): Promise<ConfigFile> {
  return ConfigFile.load(process.env.MEDIAGIT_CONFIG_GLOBAL ?? globalConfigPath());
}

export async function ensureGlobalConfigDir(file: ConfigFile): Promise<void> {
  await ensureDir(join(file.path, '..'));
}

export function initialConfig(chunking: ChunkingParams, compressionLevel: number): TomlTable {
  return {
    core: {
      format_version: REPOSITORY_FORMAT_VERSION,
      compression_level: compressionLevel,
      fsync: true,
    },
    chunking: {
      min_size: chunking.minSize,
      avg_size: chunking.avgSize,
      max_size: chunking.maxSize,
    },
  };
}

function intSetting(file: ConfigFile, key: string, fallback: number): number {
  const value = file.get(key);
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value))
    throw new ConfigError(`config ${key} must be an integer, found ${JSON.stringify(value)}`);
  return value;
}

export function readSettings(file: ConfigFile): RepoSettings {
  const formatVersion = intSetting(file, 'core.format_version', REPOSITORY_FORMAT_VERSION);
  if (formatVersion !== REPOSITORY_FORMAT_VERSION) {
    throw new ConfigError(
      `repository format version ${formatVersion} is not supported by this mediagit`,
      { hint: 'upgrade mediagit' },
    );
  }
  const chunking = {
    minSize: intSetting(file, 'chunking.min_size', DEFAULT_CHUNKING.minSize),
    avgSize: intSetting(file, 'chunking.avg_size', DEFAULT_CHUNKING.avgSize),
    maxSize: intSetting(file, 'chunking.max_size', DEFAULT_CHUNKING.maxSize),
  };
  try {
    validateChunkingParams(chunking);
  } catch (err) {
    throw new ConfigError(
      `bad [chunking] settings: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const compressionLevel = intSetting(file, 'core.compression_level', DEFAULT_ZSTD_LEVEL);
  if (compressionLevel < 0 || compressionLevel > 22)
    throw new ConfigError('core.compression_level must be between 0 (off) and 22');
  const fsync = file.get('core.fsync');
  return {
    formatVersion,
    chunking,
    compressionLevel,
    fsync: fsync === undefined ? true : fsync === true,
  };
}
