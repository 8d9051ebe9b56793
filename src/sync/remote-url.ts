import { parseStoreUrl } from '../store/index.js';

/**
 * A remote URL as it is saved in the config: local paths absolute, because a relative one would
 * mean something else from another folder; every other URL as given.
 */
export function canonicalRemoteUrl(url: string, cwd: string): string {
  const location = parseStoreUrl(url, cwd);
  return location.kind === 'local' && !/^file:/i.test(url) ? location.target : url;
}
