/**
 * The first chunks a pull's merge or a clone's checkout will fetch, asked for as soon as the fetch
 * has named them. Between the fetch's last round trip and the checkout's first chunk request the
 * merge reads the two trees, locks the index, checks the working tree and reads the clean files'
 * manifests; over a 200 Mbit/s, 40 ms link that left the link idle ~90-140 ms of a 1.6 s pull
 * (full bench corpus). A clone stores the trees and manifests, then the checkout reads them and
 * starts its chunk workers: ~80 ms of a 0.45 s clone of the small corpus from a server on loopback.
 * One wave only, as many requests as the checkout keeps in flight and at most HEAD_START_BYTES,
 * so what waits in memory is bounded whatever the pull's size; the checkout takes each one as it
 * reaches it (still verifying it once, as it would a chunk it asked for) and asks for the rest
 * itself.
 */
import type { Oid } from '../objects/index.js';
import { STREAM_CONCURRENCY } from '../repo/index.js';
import { chunkKey, type Store } from '../store/index.js';

/** At most this many bytes of chunks are asked for ahead of the checkout. */
export const HEAD_START_BYTES = 64 * 1024 * 1024;

export class ChunkHeadStart {
  private readonly started = new Map<Oid, Promise<Buffer>>();
  /** Every chunk asked for ahead, taken or not. */
  readonly asked: ReadonlySet<Oid>;

  /**
   * Asks `store` for the first chunks of `wanted` (chunk → size, in the order the caller expects
   * to need them) that fit one wave. `wanted` must hold only chunks the repository lacks.
   */
  constructor(store: Store, wanted: Iterable<readonly [Oid, number]>) {
    const first: Oid[] = [];
    let bytes = 0;
    for (const [oid, size] of wanted) {
      if (first.length >= STREAM_CONCURRENCY || bytes + size > HEAD_START_BYTES) break;
      first.push(oid);
      bytes += size;
    }
    this.asked = new Set(first);
    for (const oid of first) {
      const got = store.get(chunkKey(oid));
      // Whoever takes it hears the failure; one nobody takes must not be an unhandled rejection.
      got.catch(() => undefined);
      this.started.set(oid, got);
    }
  }

  /** The request started for `oid`, once (the caller then owns its buffer); else undefined. */
  take(oid: Oid): Promise<Buffer> | undefined {
    const got = this.started.get(oid);
    if (got) this.started.delete(oid);
    return got;
  }

  /** Waits for the requests nobody took (a merge that stopped early), so none outlives the store. */
  async settle(): Promise<void> {
    const left = [...this.started.values()];
    this.started.clear();
    await Promise.allSettled(left);
  }
}
