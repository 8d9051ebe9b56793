/**
 * `login`: a token for a mediagit server, checked against it (GET /<repo>/info with it) and then
 * stored in the user's credentials file for that server and repository.
 */
import { AuthError, UsageError } from '../errors/index.js';
import { HttpStore } from '../store/http/index.js';
import { parseStoreUrl, type StoreLocation } from '../store/index.js';
import { saveToken } from './credentials.js';

export interface LoginResult {
  /** The server remote's URL, as the store names it. */
  url: string;
  /** 'empty': the repository exists on the server but nothing has been pushed yet. */
  state: 'ready' | 'empty';
  /** The credentials file the token went to. */
  savedIn: string;
}

/** The server location of a login URL; refuses URLs of other kinds of remote. */
export function serverLocation(url: string, cwd: string): StoreLocation {
  const location = parseStoreUrl(url, cwd);
  if (location.kind !== 'http')
    throw new UsageError(`'${url}' is not a mediagit server URL`, {
      hint: 'login is for http(s)://host[:port]/<repo> remotes; other remotes use their own credentials',
    });
  return location;
}

/** Checks `token` with the server and saves it; nothing is saved when the server refuses it. */
export async function login(location: StoreLocation, token: string): Promise<LoginResult> {
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
  return { url: store.url, state, savedIn: await saveToken(store.origin, store.repo, token) };
}
