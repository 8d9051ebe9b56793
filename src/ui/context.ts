import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Identity } from '../server/auth.js';
import type { Store } from '../store/index.js';
import type { UiDeps } from './deps.js';
import type { Html } from './html.js';
import type { RepositoryReader } from './reader.js';
import type { Thumbnailer } from './thumbs.js';

/** One UI request on one repository, after authentication and authorisation. */
export interface RepoRequest {
  readonly deps: UiDeps;
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  readonly identity: Identity;
  readonly repo: string;
  /** `/ui/<repo>/-/`: the base every page of this repository links from. */
  readonly base: string;
  readonly store: Store;
  readonly reader: RepositoryReader;
  readonly thumbnails: Thumbnailer;
  /** Aborted when the client goes away (and, for pages, at the request timeout). */
  readonly signal: AbortSignal;
  /** The signed-in user's name for the page header; null when anonymous. */
  readonly user: string | null;
  /** One query parameter, given at most once. */
  param(name: string): string | undefined;
}

/** What a page handler answers: a page (status and HTML), or it has answered itself (streams). */
export type PageResult = { readonly status: number; readonly body: Html } | 'sent';
