/**
 * Every remote kind's option table in one place, light enough to load without any SDK: `remote
 * add`, `remote set-url` and the server's configuration check options against it before anything
 * is opened. docs/backends/<kind>.md documents each table; a test keeps the two in step.
 */
import { ConfigError } from '../../errors/index.js';
import { AZURE_OPTIONS } from '../azure/options.js';
import { GCS_OPTIONS } from '../gcs/options.js';
import { HTTP_OPTIONS } from '../http/options.js';
import { S3_OPTIONS } from '../s3/options.js';
import type { StoreKind } from '../location.js';
import type { OptionTable } from './schema.js';

/** The keys of a local folder remote (docs/backends/local.md). */
export const LOCAL_OPTIONS = {
  fsync: {
    type: 'boolean',
    default: true,
    doc: 'fsync objects and folders before they become visible.',
  },
} as const satisfies OptionTable;

/**
 * The keys of a `multi:` remote itself (docs/backends/multi.md). Each side also takes its own
 * backend's keys, as `primary.<key>` / `secondary.<key>`, or unprefixed for both sides.
 */
export const MULTI_OPTIONS = {
  primary: { type: 'string', doc: 'URL of the store written first and read first.' },
  secondary: {
    type: 'string',
    doc: 'URL of the mirror: every write reaches it too, reads fall back to it.',
  },
  read_first: {
    type: 'string',
    choices: ['primary', 'secondary'],
    doc: 'Which side object reads ask first; what it lacks is read from the other and copied to it.',
  },
} as const satisfies OptionTable;

export const OPTION_TABLES = {
  local: LOCAL_OPTIONS,
  s3: S3_OPTIONS,
  azure: AZURE_OPTIONS,
  gcs: GCS_OPTIONS,
  http: HTTP_OPTIONS,
  multi: MULTI_OPTIONS,
} as const satisfies Record<StoreKind, OptionTable>;

/** How messages name a remote of each kind. */
export function remoteWhat(kind: StoreKind): string {
  return kind === 'local'
    ? 'a local folder remote'
    : kind === 'http'
      ? 'a mediagit server remote'
      : kind === 'multi'
        ? 'a multi remote'
        : kind === 'gcs'
          ? 'a GCS remote'
          : kind === 'azure'
            ? 'an Azure remote'
            : 'an S3 remote';
}

/** Keys whose values are credentials, in any table; never shown, never put in messages. */
export const SECRET_OPTIONS: ReadonlySet<string> = new Set([
  ...Object.values(OPTION_TABLES).flatMap((table: OptionTable) =>
    Object.entries(table)
      .filter(([, spec]) => spec.secret === true)
      .map(([key]) => key),
  ),
  // Never valid anywhere, but refused by name and still hidden if an old config holds them.
  'token',
  'password',
]);

/** True for a secret key, also when a multi remote names it for one side (`secondary.secret_key`). */
export function isSecretOption(key: string): boolean {
  return SECRET_OPTIONS.has(key.slice(key.lastIndexOf('.') + 1));
}

/**
 * A token in the options would land in the repository's config, which is copied with the
 * repository; the only places for one are the credentials file and the environment.
 */
export function refuseToken(key: string): void {
  const bare = key.slice(key.lastIndexOf('.') + 1);
  if (bare === 'token' || bare === 'password')
    throw new ConfigError(
      `option '${key}' is refused: a token does not belong in the repository config (it would be shared with everyone who copies the repository)`,
      {
        hint: "use 'mediagit login <url>' (stored in your own credentials file) or set MEDIAGIT_TOKEN",
      },
    );
}
