import { ObjectCorruptError, ObjectMissingError, NotFoundError } from '../errors/index.js';
// The contract alone: the store index would pull every backend and wrapper into a worker thread.
import { chunkKey, objectKey, type Store } from '../store/store.js';
import {
  decodeCommit,
  decodeTag,
  encodeCommit,
  encodeTag,
  type Commit,
  type Tag,
} from './commit.js';
import { decodeEnvelopeHeader } from './envelope.js';
import type { ObjectKind } from './kinds.js';
import { decodeManifest, encodeManifest, type Manifest } from './manifest.js';
import type { Oid } from './oid.js';
import { plainSealer, type ObjectSealer } from './sealer.js';
import { ObjectSealing } from './sealing.js';
import { decodeTree, encodeTree, type TreeEntry } from './tree.js';

export interface PutResult {
  readonly oid: Oid;
  /** False when the store already held the object (deduplicated). */
  readonly written: boolean;
  /** Bytes the stored envelope occupies (0 when deduplicated). */
  readonly storedBytes: number;
}

export interface ObjectDatabaseOptions {
  compressionLevel: number;
  /** Naming and at-rest wrapping; plain SHA-256 + envelope unless the repository is encrypted. */
  sealer?: ObjectSealer;
}

/**
 * Where chunks the local store lacks come from (the remote a tip-only or sparse clone came from).
 * `fetch` stores each chunk locally, verified, before it returns; `path` names the file the chunks
 * are for, for the error when they cannot be had.
 */
export interface ChunkSource {
  /** The remote's name, for reports ("fetchable from 'origin'"). */
  readonly remoteName: string;
  fetch(oids: readonly Oid[], path?: string): Promise<void>;
  /** Which of these chunks the source holds; throws when it cannot be asked (offline). */
  has(oids: readonly Oid[]): Promise<boolean[]>;
  /** Which of these chunks (absent from the source) a retention policy deleted there on purpose. */
  expired?(oids: readonly Oid[]): Promise<Set<Oid>>;
}

export type StructuredKind = Exclude<ObjectKind, 'chunk'>;

/**
 * Typed, verified access to objects in a Store. Every read checks the envelope, decodes, and
 * re-hashes; any mismatch is an ObjectCorruptError naming the object — never bad bytes returned.
 */
export class ObjectDatabase {
  readonly sealer: ObjectSealer;
  /** Compression, sealing and their reverse: the same code the chunk workers run. */
  readonly sealing: ObjectSealing;
  /** Consulted for chunks the store lacks; without one, a missing chunk is an ObjectMissingError. */
  chunkSource: ChunkSource | undefined;
  /**
   * Chunks verified (deciphered, decoded and hashed) here and by the repository's chunk workers:
   * the work docs/transfer.md says a transfer does once per chunk. Tests count it.
   */
  readonly verified = { chunks: 0 };

  constructor(
    readonly store: Store,
    options: ObjectDatabaseOptions,
  ) {
    this.sealer = options.sealer ?? plainSealer;
    this.sealing = new ObjectSealing(this.sealer, options.compressionLevel);
  }

  static keyFor(kind: ObjectKind, oid: Oid): string {
    return kind === 'chunk' ? chunkKey(oid) : objectKey(oid);
  }

  oidOf(kind: ObjectKind, plain: Uint8Array): Oid {
    return this.sealer.oidOf(kind, plain);
  }

  /**
   * Stores one chunk unless the store has it. Hashing and compression run on the thread pool, so
   * several chunks proceed on every core while the caller keeps reading and chunking.
   */
  async putChunk(
    plain: Buffer,
    options: { skipCompression: boolean; oid?: Oid },
  ): Promise<PutResult & { compressed: boolean }> {
    const oid = options.oid ?? (await this.sealer.oidOfAsync('chunk', plain));
    const key = chunkKey(oid);
    const [present] = await this.store.has([key]);
    if (present) return { oid, written: false, storedBytes: 0, compressed: false };
    const { stored, compressed } = await this.sealing.seal(
      'chunk',
      oid,
      plain,
      options.skipCompression,
    );
    await this.store.put(key, stored);
    return { oid, written: true, storedBytes: stored.length, compressed };
  }

  async putStructured(kind: StructuredKind, plain: Buffer): Promise<PutResult> {
    const oid = this.oidOf(kind, plain);
    const key = objectKey(oid);
    const [present] = await this.store.has([key]);
    if (present) return { oid, written: false, storedBytes: 0 };
    const { stored } = await this.sealing.seal(kind, oid, plain);
    await this.store.put(key, stored);
    return { oid, written: true, storedBytes: stored.length };
  }

  /** Reads, authenticates and decodes one object; `kind` is what the caller expects it to be. */
  async read(kind: ObjectKind, oid: Oid): Promise<Buffer> {
    let stored: Buffer;
    try {
      stored = await this.store.get(ObjectDatabase.keyFor(kind, oid));
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      if (kind !== 'chunk' || !this.chunkSource) throw new ObjectMissingError(oid, kind);
      await this.chunkSource.fetch([oid]);
      try {
        stored = await this.store.get(ObjectDatabase.keyFor(kind, oid));
      } catch (again) {
        if (again instanceof NotFoundError) throw new ObjectMissingError(oid, kind);
        throw again;
      }
    }
    return this.openStored(kind, oid, stored);
  }

  /**
   * Makes sure the store holds these chunks, fetching the missing ones from the chunk source in
   * one go, so a command fails before it writes anything rather than halfway through a file.
   */
  async ensureChunks(oids: Iterable<Oid>, path?: string): Promise<void> {
    if (!this.chunkSource) return;
    const unique = [...new Set(oids)];
    const present = await this.has('chunk', unique);
    const missing = unique.filter((_, i) => !present[i]);
    if (missing.length > 0) await this.chunkSource.fetch(missing, path);
  }

  /** Verifies stored bytes fetched by someone else (a remote, fsck) and returns the canonical bytes. */
  async openStored(kind: ObjectKind, oid: Oid, stored: Buffer): Promise<Buffer> {
    const plain = await this.sealing.open(kind, oid, stored);
    if (kind === 'chunk') this.verified.chunks++;
    return plain;
  }

  /** openStored for threads that may block: the canonical bytes as pieces (ObjectSealing.openSync). */
  openStoredSync(kind: ObjectKind, oid: Oid, stored: Buffer): Buffer[] {
    const pieces = this.sealing.openSync(kind, oid, stored);
    if (kind === 'chunk') this.verified.chunks++;
    return pieces;
  }

  async has(kind: ObjectKind, oids: readonly Oid[]): Promise<boolean[]> {
    return this.store.has(oids.map((oid) => ObjectDatabase.keyFor(kind, oid)));
  }

  private async decoded<T>(kind: ObjectKind, oid: Oid, decode: (bytes: Buffer) => T): Promise<T> {
    const bytes = await this.read(kind, oid);
    try {
      return decode(bytes);
    } catch (err) {
      throw new ObjectCorruptError(
        oid,
        `undecodable ${kind}: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }

  readManifest(oid: Oid): Promise<Manifest> {
    return this.decoded('manifest', oid, decodeManifest);
  }

  readTree(oid: Oid): Promise<TreeEntry[]> {
    return this.decoded('tree', oid, decodeTree);
  }

  readCommit(oid: Oid): Promise<Commit> {
    return this.decoded('commit', oid, decodeCommit);
  }

  readTag(oid: Oid): Promise<Tag> {
    return this.decoded('tag', oid, decodeTag);
  }

  writeManifest(manifest: Manifest): Promise<PutResult> {
    return this.putStructured('manifest', encodeManifest(manifest));
  }

  writeTree(entries: readonly TreeEntry[]): Promise<PutResult> {
    return this.putStructured('tree', encodeTree(entries));
  }

  writeCommit(commit: Commit): Promise<PutResult> {
    return this.putStructured('commit', encodeCommit(commit));
  }

  writeTag(tag: Tag): Promise<PutResult> {
    return this.putStructured('tag', encodeTag(tag));
  }

  /** Identifies what kind of structured object an OID names (for `show`), or null if absent. */
  async kindOf(oid: Oid): Promise<ObjectKind | null> {
    let stored: Buffer;
    try {
      stored = await this.store.get(objectKey(oid));
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
    try {
      return decodeEnvelopeHeader(stored).kind;
    } catch (err) {
      throw new ObjectCorruptError(oid, err instanceof Error ? err.message : String(err));
    }
  }
}
