import { resolve } from 'node:path';
import { ConfigError, UsageError } from '../errors/index.js';
import { Repository } from '../repo/index.js';
import { DEFAULT_CHUNKING, type ChunkingParams } from '../chunking/index.js';
import { initBareFolder } from '../sync/index.js';
import type { CommandIo } from './context.js';

export interface InitOptions {
  initialBranch?: string;
  chunkMin?: string;
  chunkAvg?: string;
  chunkMax?: string;
  compressionLevel?: string;
  quiet?: boolean;
  encrypt?: boolean;
  bare?: boolean;
}

function sizeOption(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const m = /^(\d+)\s*([kKmM]i?[bB]?)?$/.exec(value.trim());
  if (!m) throw new ConfigError(`--${name} must be a size like 262144, 256K or 1M`);
  const unit = (m[2] ?? '').toLowerCase()[0];
  return Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1024 * 1024 : 1);
}

export async function runInit(
  io: CommandIo,
  directory: string | undefined,
  options: InitOptions,
): Promise<void> {
  const root = resolve(io.cwd, directory ?? '.');
  if (options.bare) return initBare(io, root, options);
  const chunking: ChunkingParams = {
    minSize: sizeOption(options.chunkMin, DEFAULT_CHUNKING.minSize, 'chunk-min'),
    avgSize: sizeOption(options.chunkAvg, DEFAULT_CHUNKING.avgSize, 'chunk-avg'),
    maxSize: sizeOption(options.chunkMax, DEFAULT_CHUNKING.maxSize, 'chunk-max'),
  };
  const level =
    options.compressionLevel === undefined ? undefined : Number(options.compressionLevel);
  if (level !== undefined && (!Number.isInteger(level) || level < 0 || level > 22))
    throw new ConfigError('--compression-level must be 0..22');
  const { reinitialized } = await Repository.init(root, {
    ...(options.encrypt ? { encryptWith: await io.passphrase('first') } : {}),
    chunking,
    ...(level === undefined ? {} : { compressionLevel: level }),
    ...(options.initialBranch ? { initialBranch: options.initialBranch } : {}),
  });
  if (!options.quiet) {
    io.out(
      `${reinitialized ? 'Reinitialized existing' : `Initialized empty${options.encrypt ? ' encrypted' : ''}`} mediagit repository in ${resolve(root, '.mediagit')}`,
    );
  }
}

/** A remote in a folder: what the first push fills; its chunking and encryption come with that push. */
async function initBare(io: CommandIo, root: string, options: InitOptions): Promise<void> {
  if (options.encrypt)
    throw new UsageError('--bare takes no --encrypt', {
      hint: 'the first push sets chunking and encryption from the repository it comes from',
    });
  const created = await initBareFolder(root);
  if (!options.quiet)
    io.out(
      `${created ? 'Initialized empty' : 'Reinitialized existing'} mediagit remote repository in ${root}`,
    );
}
