/**
 * Folder remotes are created on purpose, never by accident: a push to a mistyped path must fail
 * (as git's does) instead of leaving a new repository where nobody will look for it.
 */
import { readdir } from 'node:fs/promises';
import { ConfigError } from '../errors/index.js';
import { LocalStore, parseStoreUrl } from '../store/index.js';
import type { RemoteConfig } from './remotes.js';

/** What marks a folder as a mediagit remote: the skeleton LocalStore.initialize creates. */
const MARKERS = ['meta', 'refs'];

export type FolderState = 'missing' | 'empty' | 'repository' | 'other';

export async function folderState(path: string): Promise<FolderState> {
  let names: string[];
  try {
    names = await readdir(path);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOENT') return 'missing';
    if (code === 'ENOTDIR') return 'other';
    throw err;
  }
  if (names.length === 0) return 'empty';
  return MARKERS.every((m) => names.includes(m)) ? 'repository' : 'other';
}

/**
 * Creates an empty remote repository in a folder (`init --bare`): the store's skeleton only. The
 * first push writes the descriptor, so the pushing repository's chunking and encryption decide.
 * Returns false when the folder already was one.
 */
export async function initBareFolder(path: string): Promise<boolean> {
  const state = await folderState(path);
  if (state === 'other')
    throw new ConfigError(`${path} exists and is not an empty folder or a mediagit remote`, {
      hint: 'choose a new path',
    });
  await new LocalStore(path).initialize();
  return state !== 'repository';
}

/**
 * Before a push: a folder remote must already be a repository (or an empty folder someone made
 * for it). With `create`, a missing one is made; an unrelated non-empty folder is never used.
 */
export async function ensurePushTarget(
  remote: RemoteConfig,
  cwd: string,
  create: boolean,
): Promise<void> {
  const location = parseStoreUrl(remote.url, cwd);
  if (location.kind !== 'local') return;
  if (await isWorkingStore(location.target))
    throw new ConfigError(
      `remote '${remote.name}' (${location.target}) is someone's working repository; pushing there would change files under their feet`,
      {
        hint: "push to a bare repository ('mediagit init --bare <path>'), or have them pull from you",
      },
    );
  const state = await folderState(location.target);
  if (state === 'repository') return;
  if (state === 'other')
    throw new ConfigError(
      `remote '${remote.name}' (${location.target}) is not a mediagit repository`,
      { hint: "check the path with 'mediagit remote -v'" },
    );
  if (state === 'missing' && !create)
    throw new ConfigError(
      `remote '${remote.name}' does not exist: no folder at ${location.target}`,
      {
        hint: `check the path with 'mediagit remote -v'; to start a new remote there, run 'mediagit init --bare ${location.target}' or 'mediagit push --create'`,
      },
    );
  await new LocalStore(location.target).initialize();
}

/** A working repository's `.mediagit/` (HEAD and config beside the store), not a bare remote. */
async function isWorkingStore(path: string): Promise<boolean> {
  const names = await readdir(path).catch(() => [] as string[]);
  return names.includes('HEAD') && names.includes('config.toml');
}
