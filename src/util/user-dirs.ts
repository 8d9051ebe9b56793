/**
 * mediagit's per-user folders, by the XDG base directory rules git and most CLIs follow:
 * settings and credentials under `$XDG_CONFIG_HOME/mediagit` (else `~/.config/mediagit`),
 * what can be thrown away under `$XDG_CACHE_HOME/mediagit` (else `~/.cache/mediagit`).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function userConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['XDG_CONFIG_HOME'] || join(homedir(), '.config'), 'mediagit');
}

export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env['XDG_CACHE_HOME'] || join(homedir(), '.cache'), 'mediagit');
}
