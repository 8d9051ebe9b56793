/**
 * Which remote a lean workspace's missing chunks come from. Kept apart from chunk-source.ts so
 * that every command can name it without loading the fetching code (see on-demand-chunks.ts).
 */
import type { Repository } from '../repo/index.js';
import { defaultRemote, listRemotes } from './remotes.js';

/** Config key naming the remote missing content is fetched from (set by clone). */
export const CONTENT_REMOTE_KEY = 'content.remote';

/** The remote missing content comes from: content.remote, else the default remote; null if none. */
export function contentRemoteName(repo: Repository): string | null {
  const named = repo.config.get(CONTENT_REMOTE_KEY);
  if (typeof named === 'string' && named !== '') return named;
  if (listRemotes(repo).length === 0) return null;
  try {
    return defaultRemote(repo);
  } catch {
    return null;
  }
}
