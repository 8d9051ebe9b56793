/**
 * A chunk source that loads the fetching machinery (chunk-source.ts: transfers, descriptors,
 * every remote store's client) only when a chunk is actually missing. Every command that opens a
 * repository installs one, so this module stays light: status, add and commit in a complete
 * workspace never ask it anything.
 */
import type { ChunkSource, Oid } from '../objects/index.js';
import type { Repository } from '../repo/index.js';
import type { RemoteChunkSource } from './chunk-source.js';
import { contentRemoteName } from './content-remote.js';

/** A RemoteChunkSource made on first use; until then nothing of it is loaded. */
class OnDemandChunkSource implements ChunkSource {
  private source: Promise<RemoteChunkSource> | undefined;

  constructor(
    private readonly repo: Repository,
    readonly remoteName: string,
    private readonly cwd: string,
  ) {}

  async fetch(oids: readonly Oid[], path?: string): Promise<void> {
    return (await this.real()).fetch(oids, path);
  }

  async has(oids: readonly Oid[]): Promise<boolean[]> {
    return (await this.real()).has(oids);
  }

  async expired(oids: readonly Oid[]): Promise<Set<Oid>> {
    return (await this.real()).expired(oids);
  }

  private real(): Promise<RemoteChunkSource> {
    this.source ??= import('./chunk-source.js').then(
      ({ RemoteChunkSource: Source }) => new Source(this.repo, this.remoteName, this.cwd),
    );
    return this.source;
  }
}

/**
 * Installs the repository's content remote as the source of chunks it lacks, as
 * installChunkSource does, but loads the source's code only when it is first asked.
 */
export function installChunkSourceOnDemand(repo: Repository, cwd: string): ChunkSource | null {
  const name = contentRemoteName(repo);
  if (name === null) return null;
  const source = new OnDemandChunkSource(repo, name, cwd);
  repo.odb.chunkSource = source;
  return source;
}
