import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AuthError, UsageError } from '../errors/index.js';
import { HttpStore } from '../store/http/index.js';
import { parseStoreUrl } from '../store/index.js';
import { TOKEN_ENV, saveToken } from '../sync/credentials.js';
import type { CommandIo } from './context.js';

export interface LoginOptions {
  tokenFile?: string;
}

async function tokenFrom(io: CommandIo, options: LoginOptions): Promise<string> {
  if (options.tokenFile) {
    try {
      // One trailing newline belongs to the file, not to the token.
      return (await readFile(resolve(io.cwd, options.tokenFile), 'utf8')).trim();
    } catch (err) {
      throw new UsageError(
        `cannot read token file ${options.tokenFile}: ${(err as { code?: string }).code ?? 'error'}`,
      );
    }
  }
  const env = process.env[TOKEN_ENV];
  if (env !== undefined && env.trim() !== '') return env.trim();
  if (!process.stdin.isTTY) {
    throw new UsageError('a token is needed and there is no terminal to ask on', {
      hint: `pass --token-file <path> or set ${TOKEN_ENV}`,
    });
  }
  return (await io.promptSecret('Token: ')).trim();
}

/**
 * `mediagit login URL`: checks a token against the server (GET /<repo>/info with it) and stores
 * it in the user's credentials file for that server and repository. The token is taken from
 * --token-file, MEDIAGIT_TOKEN or a no-echo prompt — never from an argument — and never printed.
 */
export async function runLogin(
  io: CommandIo,
  url: string,
  options: LoginOptions = {},
): Promise<void> {
  const location = parseStoreUrl(url, io.cwd);
  if (location.kind !== 'http')
    throw new UsageError(`'${url}' is not a mediagit server URL`, {
      hint: 'login is for http(s)://host[:port]/<repo> remotes; other remotes use their own credentials',
    });
  const token = await tokenFrom(io, options);
  if (token === '') throw new UsageError('the token is empty');
  if (/\s/.test(token))
    throw new UsageError('the token contains whitespace; check that you copied it whole');
  const store = new HttpStore({ origin: location.target, repo: location.prefix, token });
  let state: 'ready' | 'empty';
  try {
    state = await store.checkAccess();
  } catch (err) {
    if (err instanceof AuthError)
      throw new AuthError(err.message, {
        hint: 'check that the token is current and issued for this repository (with at least the read role); nothing was saved',
      });
    throw err;
  } finally {
    await store.close();
  }
  const path = await saveToken(store.origin, store.repo, token);
  io.out(`Logged in to ${store.url}${state === 'empty' ? ' (nothing pushed there yet)' : ''}`);
  io.err(`token saved in ${path}`);
}
