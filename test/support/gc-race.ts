/**
 * The gc race (docs/remote-gc.md "The safety argument"), forced every round: 4 clients have
 * checked that the remote has the chunks they reuse (garbage left by a deleted branch), then a
 * sweep deletes them, then the clients update their refs. With the safety on, every acknowledged
 * push is complete; with it off, the same schedule leaves refs pointing at deleted chunks.
 * Shared by the folder-remote unit test and the S3 integration test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { decodeManifest, type Oid } from '../../src/objects/index.js';
import { silentProgress, type Repository } from '../../src/repo/index.js';
import { ForwardingStore, type Passage, type Store } from '../../src/store/index.js';
import { KEEP_EVERYTHING, collectRemoteGarbage, push } from '../../src/sync/index.js';
import { commitFiles, filesOf, initRepo } from './sync-fixtures.js';

/** Holds every client ref update until the test opens the gate, telling it when all arrived. */
export class GatedRefs extends ForwardingStore {
  arrived = 0;
  private open: Promise<void> = Promise.resolve();
  private release: () => void = () => {};
  constructor(inner: Store) {
    super(inner);
  }
  override close(): Promise<void> {
    return Promise.resolve();
  }
  closeGate(): void {
    this.arrived = 0;
    this.open = new Promise((resolve) => (this.release = resolve));
  }
  openGate(): void {
    this.release();
  }
  protected override async pass<T>(passage: Passage<T>): Promise<T> {
    if (
      passage.operation === 'compareAndSwapRef' &&
      passage.target.startsWith('refs/heads/client-')
    ) {
      this.arrived++;
      await this.open;
    }
    return passage.run();
  }
}

/** Every object the commit's files need, read back from the remote and verified. */
export async function assertComplete(repo: Repository, remote: Store, commit: Oid): Promise<void> {
  for (const [p, rec] of await filesOf(repo, commit)) {
    const m = decodeManifest(
      await repo.odb.openStored('manifest', rec.oid, await remote.get(`objects/${rec.oid}`)),
    );
    for (const c of m.chunks)
      await repo.odb
        .openStored('chunk', c.oid, await remote.get(`chunks/${c.oid}`))
        .catch((err: unknown) => {
          throw new Error(`${p}: chunk ${c.oid} of ${commit}`, { cause: err });
        });
  }
}

export interface RaceOptions {
  /** The remote; the clients push through a gate in front of it, the sweeper goes direct. */
  readonly remote: Store;
  /** Where the 4 client repositories go. */
  readonly root: string;
  readonly rounds: number;
  /** false: the pushes' sweep guard is switched off (test hook). */
  readonly sweepGuard: boolean;
  /**
   * The sweep's grace period. Above 0, each round first runs a sweep that only records the
   * garbage, waits out the grace, and the sweep racing the pushes then deletes it.
   */
  readonly graceMs: number;
}

export interface RaceOutcome {
  readonly acknowledged: number;
  readonly broken: number;
  readonly clients: readonly Repository[];
  /** Each client's last acknowledged commit and the data of its round file. */
  readonly tips: readonly { ref: string; commit: Oid; file: string; data: Buffer }[];
}

export async function raceRounds(options: RaceOptions): Promise<RaceOutcome> {
  const { remote, rounds, sweepGuard, graceMs } = options;
  const gated = new GatedRefs(remote);
  const clients: Repository[] = [];
  for (let i = 0; i < 4; i++) clients.push(await initRepo(path.join(options.root, `client-${i}`)));
  const tips: { ref: string; commit: Oid; file: string; data: Buffer }[] = [];
  let acknowledged = 0;
  let broken = 0;
  const sweep = (): Promise<unknown> =>
    collectRemoteGarbage(clients[0]!, remote, { policy: KEEP_EVERYTHING, graceMs });
  for (let round = 0; round < rounds; round++) {
    // Garbage on the remote that the clients are about to reuse.
    const next = await Promise.all(
      clients.map(async (repo, i) => {
        const data = randomBytes(24_000);
        const scratch = await commitFiles(repo, [], new Map([['scratch.bin', data]]), 'scratch');
        const ref = `refs/heads/scratch-${i}`;
        await push(repo, remote, { oid: scratch, ref, force: true }, silentProgress);
        assert.ok(await remote.compareAndSwapRef(ref, await remote.readRef(ref), null));
        const parents = tips[i] ? [tips[i]!.commit] : [];
        const file = `r${round}.bin`;
        return { commit: await commitFiles(repo, parents, new Map([[file, data]]), file), data };
      }),
    );
    if (graceMs > 0) {
      // The first sweep only notes the garbage; once the grace has passed, the next one may delete it.
      await sweep();
      await new Promise((resolve) => setTimeout(resolve, graceMs + 50));
    }
    gated.closeGate();
    const pushes = clients.map((repo, i) =>
      push(
        repo,
        gated,
        { oid: next[i]!.commit, ref: `refs/heads/client-${i}`, force: false },
        silentProgress,
        { sweepGuard },
      ),
    );
    while (gated.arrived < clients.length) await new Promise((resolve) => setTimeout(resolve, 5));
    // The sweep runs to its end while the pushes wait at their ref update; then they go on.
    await sweep();
    gated.openGate();
    await Promise.all(pushes);
    await Promise.all(
      clients.map(async (repo, i) => {
        tips[i] = {
          ref: `refs/heads/client-${i}`,
          commit: next[i]!.commit,
          file: `r${round}.bin`,
          data: next[i]!.data,
        };
        acknowledged++;
        try {
          await assertComplete(repo, remote, next[i]!.commit);
        } catch {
          broken++;
        }
      }),
    );
  }
  return { acknowledged, broken, clients, tips };
}
