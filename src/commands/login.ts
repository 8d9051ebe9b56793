import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UsageError } from '../errors/index.js';
import { TOKEN_ENV } from '../sync/credentials.js';
import { login, serverLocation } from '../sync/login.js';
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
  const location = serverLocation(url, io.cwd);
  const result = await login(location, await tokenFrom(io, options));
  io.out(
    `Logged in to ${result.url}${result.state === 'empty' ? ' (nothing pushed there yet)' : ''}`,
  );
  io.err(`token saved in ${result.savedIn}`);
}
