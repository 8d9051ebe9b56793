/**
 * The web view of `mediagit server` (docs/server.md "Web view"): read-only pages under `/ui/`
 * with history, versions and previews, authenticated exactly as the API. Loaded by the server
 * only when it starts listening, so no command but `mediagit server` pays for it.
 */
import type { FastifyInstance } from 'fastify';
import type { UiDeps } from './deps.js';
import { registerUiRoutes } from './routes.js';

export type { UiDeps } from './deps.js';

/** Registers the routes in a fastify scope whose prefix is `/ui`. */
export function registerUi(scope: FastifyInstance, deps: UiDeps): void {
  registerUiRoutes(scope, deps);
}
