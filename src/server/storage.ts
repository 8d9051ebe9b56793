/**
 * One Store per repository: the configured backend with the repository's name appended — a
 * subfolder of a local path, `<prefix>/<repo>` in a bucket or container — opened on first use and
 * kept for the life of the process. Only the Store objects (clients, connection pools) are kept;
 * no data is: every answer the server gives comes from storage, so replicas over one bucket agree.
 *
 * The server's own records (API keys) live in the same way under `_system`, a name no client can
 * address (repository names start with a letter or digit), so every replica sees them.
 */
import { join } from 'node:path';
import {
  MultiStore,
  openBackend,
  parseStoreUrl,
  type Store,
  type StoreKind,
} from '../store/index.js';
import { PROBE_MEMORY_FILE } from '../store/s3/index.js';
import { userCacheDir } from '../util/user-dirs.js';
import type { StorageSpec } from './config.js';

export const SYSTEM_AREA = '_system';

export interface RepositoryStorageOptions {
  /** Stores kept open at once; the least recently used beyond this are closed. Default 256. */
  readonly maxOpen?: number;
  /** How long an evicted store stays usable for requests still holding it. Default 10 minutes. */
  readonly closeDelayMs?: number;
  /** Wraps each opened store (embedding, tests that inject storage failures). */
  readonly wrap?: (store: Store, area: string) => Store;
}

export class RepositoryStorage {
  /** Open stores, least recently used first (Map keeps insertion order; a hit re-inserts). */
  private readonly opened = new Map<string, Promise<Store>>();
  private readonly retiring = new Set<Promise<Store>>();
  private readonly maxOpen: number;
  private readonly closeDelayMs: number;
  private readonly wrap: ((store: Store, area: string) => Store) | undefined;
  /** Backend kind for /health/detailed ("local", "s3", … or "multi"). */
  readonly backend: StoreKind;

  constructor(
    private readonly spec: StorageSpec,
    private readonly cwd: string,
    options: RepositoryStorageOptions = {},
  ) {
    this.backend = spec.kind === 'multi' ? 'multi' : parseStoreUrl(spec.url, cwd).kind;
    this.maxOpen = options.maxOpen ?? 256;
    this.closeDelayMs = options.closeDelayMs ?? 10 * 60_000;
    this.wrap = options.wrap;
  }

  /** The store of a repository whose name has been validated (names.ts). */
  forRepository(name: string): Promise<Store> {
    let store = this.opened.get(name);
    if (store !== undefined) {
      this.opened.delete(name);
      this.opened.set(name, store);
      return store;
    }
    const wrap = this.wrap;
    store = openSpec(this.spec, name, this.cwd).then((s) => (wrap ? wrap(s, name) : s));
    this.opened.set(name, store);
    // A failed open (bad credentials, unreachable SDK) is retried by the next request.
    const opening = store;
    opening.catch(() => {
      if (this.opened.get(name) === opening) this.opened.delete(name);
    });
    if (this.opened.size > this.maxOpen) this.retire(this.opened.keys().next().value!);
    return store;
  }

  system(): Promise<Store> {
    return this.forRepository(SYSTEM_AREA);
  }

  /** Forgets a store, closing it once requests that may still hold it are over. */
  private retire(name: string): void {
    const store = this.opened.get(name);
    if (store === undefined) return;
    this.opened.delete(name);
    this.retiring.add(store);
    setTimeout(() => {
      if (this.retiring.delete(store)) void store.then((s) => s.close()).catch(() => undefined);
    }, this.closeDelayMs).unref();
  }

  async close(): Promise<void> {
    const stores = [...this.opened.values(), ...this.retiring];
    this.opened.clear();
    this.retiring.clear();
    await Promise.allSettled(stores.map(async (s) => (await s).close()));
  }
}

async function openSpec(spec: StorageSpec, area: string, cwd: string): Promise<Store> {
  if (spec.kind === 'multi') {
    const [primary, secondary] = await Promise.all([
      openSpec(spec.primary, area, cwd),
      openSpec(spec.secondary, area, cwd),
    ]);
    return new MultiStore(primary, secondary);
  }
  const location = parseStoreUrl(spec.url, cwd);
  // As the CLI does (sync/remotes.ts): a passed conditional-write probe is remembered in the
  // user's cache folder, so each repository's store, in this process or the next, skips the
  // probe's 33 requests before its first ref write instead of paying them once per repository
  // and start.
  const options =
    location.kind === 's3' && !('probe_cache' in spec.options)
      ? { ...spec.options, probe_cache: join(userCacheDir(), PROBE_MEMORY_FILE) }
      : spec.options;
  const scoped =
    location.kind === 'local'
      ? { ...location, target: join(location.target, ...area.split('/')) }
      : { ...location, prefix: location.prefix === '' ? area : `${location.prefix}/${area}` };
  return openBackend(scoped, options, cwd);
}
