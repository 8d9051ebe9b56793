import type { Authenticator } from '../server/auth.js';
import type { Services } from '../server/context.js';

/** What the server hands the web view: the API's own services, authenticator and rate limit. */
export interface UiDeps {
  readonly services: Services;
  readonly authenticator: Authenticator;
  /** Takes one token from the bucket of `key` (`id:<sub>` or `ip:<address>`); throws 429. */
  readonly limit: (key: string) => void;
  /** The server's own diagnostics (internal errors). */
  readonly log: (line: string) => void;
}
