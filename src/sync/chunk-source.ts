/**
 * Content on demand: a lean (tip-only or sparse) clone holds every commit, tree and manifest but
 * not every chunk. The repository's object database falls back to a RemoteChunkSource, which
 * fetches exactly the missing chunks from the remote the repository's content comes from —
 * verified before they are stored, as in any fetch.
 */
import {
  ContentUnavailableError,
  ExpiredError,
  MediagitError,
  NotFoundError,
  StoreUnavailableError,
} from '../errors/index.js';
import type { ChunkSource, Oid } from '../objects/index.js';
import {
  chunksFromWorktree,
  silentProgress,
  worktreeChunkLocations,
  type ChunkLocation,
  type Repository,
} from '../repo/index.js';
import type { OpenedStore } from '../store/index.js';
import { readDescriptor } from './descriptor.js';
import { expiredChunks, expiryOfChunks } from './gc/expiry.js';
import { copyObjects, missingOn, type TransferStats } from './transfer.js';
import { contentRemoteName } from './content-remote.js';
import { getRemote, openRemoteStore } from './remotes.js';

export { CONTENT_REMOTE_KEY, contentRemoteName } from './content-remote.js';

export class RemoteChunkSource implements ChunkSource {
  private opened: Promise<OpenedStore> | undefined;
  private locations: Promise<Map<Oid, ChunkLocation>> | undefined;
  /** Chunks fetched on demand so far, and their stored bytes (for reports and tests). */
  readonly stats: TransferStats = { objects: 0, bytes: 0 };

  constructor(
    private readonly repo: Repository,
    readonly remoteName: string,
    private readonly cwd: string,
  ) {}

  async has(oids: readonly Oid[]): Promise<boolean[]> {
    if (oids.length === 0) return [];
    try {
      const missing = new Set(await missingOn((await this.remote()).store, 'chunk', oids));
      return oids.map((oid) => !missing.has(oid));
    } catch (err) {
      this.opened = undefined;
      throw err;
    }
  }

  async expired(oids: readonly Oid[]): Promise<Set<Oid>> {
    if (oids.length === 0) return new Set();
    const expired = await expiredChunks((await this.remote()).store);
    return new Set(oids.filter((oid) => expired.has(oid)));
  }

  private remote(): Promise<OpenedStore> {
    this.opened ??= (async () => {
      const remote = getRemote(this.repo, this.remoteName);
      const opened = await openRemoteStore(remote, this.cwd);
      // An unmounted share or a moved folder opens as an empty store: that is "unreachable",
      // not "the remote lacks every chunk".
      if (!(await readDescriptor(opened.store)))
        throw new StoreUnavailableError(`no mediagit repository at ${remote.url}`);
      return opened;
    })();
    return this.opened;
  }

  async fetch(wanted: readonly Oid[], path?: string): Promise<void> {
    if (wanted.length === 0) return;
    // Evicted chunks whose bytes still sit in a checked-out file come from there, offline.
    this.locations ??= worktreeChunkLocations(this.repo);
    const oids = await chunksFromWorktree(this.repo, wanted, await this.locations);
    if (oids.length === 0) return;
    try {
      const remote = await this.remote();
      // Read, verified and written one by one: a hard link from a folder remote would skip the check.
      await copyObjects(
        remote.store,
        this.repo.store,
        'chunk',
        oids,
        this.repo.odb,
        silentProgress,
        this.stats,
        { hardlinks: false },
      );
    } catch (err) {
      const expiredAt = await this.expiry(oids, err);
      if (expiredAt !== null)
        throw new ExpiredError(path ?? 'content', expiredAt, {
          hint: 'a retention policy (gc --remote) deleted this version; newer versions are kept',
          cause: err,
        });
      this.opened = undefined;
      throw new ContentUnavailableError(path, this.remoteName, reasonOf(err), {
        hint: 'check that the remote is reachable, then run the command again',
        cause: err,
      });
    }
  }

  /** When the remote says the content is gone, whether a retention policy deleted it, and when. */
  private async expiry(oids: readonly Oid[], err: unknown): Promise<string | null> {
    if (err instanceof ExpiredError) return err.expiredAt;
    if (!(err instanceof NotFoundError) || this.opened === undefined) return null;
    try {
      return await expiryOfChunks((await this.opened).store, oids);
    } catch {
      return null;
    }
  }
}

function reasonOf(err: unknown): string {
  if (err instanceof NotFoundError) return 'the remote does not have it';
  if (err instanceof MediagitError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

/** Installs the repository's remote as the source of chunks it lacks (no remote: nothing to do). */
export function installChunkSource(repo: Repository, cwd: string): RemoteChunkSource | null {
  const name = contentRemoteName(repo);
  if (name === null) return null;
  const source = new RemoteChunkSource(repo, name, cwd);
  repo.odb.chunkSource = source;
  return source;
}
