import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Oid } from '../objects/index.js';
import { mapLimit } from '../util/limit.js';

/** How much a fetch keeps in memory of the objects it has verified but may not store yet. */
export interface ParkingWindow {
  readonly objects: number;
  readonly bytes: number;
}

/**
 * Most fetches park everything in memory; the history of a big repository spills to disk. Either
 * way what a fetch holds is bounded by this, not by the size of what it brings in.
 */
export const DEFAULT_PARKING_WINDOW: ParkingWindow = { objects: 4096, bytes: 32 * 1024 * 1024 };

/**
 * Verified objects waiting for everything they point to before they may enter the store (a fetch
 * stores children first, so an object present always means its whole graph is). The first ones
 * wait in memory, up to the window; the rest in files under the repository's `tmp/` folder, which
 * `gc` sweeps should the process die before `clear()`. `held` counts the buffers in memory.
 */
export class ParkedObjects {
  private readonly memory = new Map<Oid, Buffer>();
  private memoryBytes = 0;
  private readonly onDisk = new Set<Oid>();
  private readonly prefix: string;

  constructor(
    tmpDir: string,
    private readonly window: ParkingWindow,
    private readonly held: (change: number) => void,
  ) {
    this.prefix = join(tmpDir, `fetch-${randomBytes(6).toString('hex')}-`);
  }

  /** Takes over `stored`: the caller's count of it moves here (or ends, once on disk). */
  async park(oid: Oid, stored: Buffer): Promise<void> {
    if (
      this.memory.size < this.window.objects &&
      this.memoryBytes + stored.length <= this.window.bytes
    ) {
      this.memory.set(oid, stored);
      this.memoryBytes += stored.length;
      return;
    }
    await writeFile(this.prefix + oid, stored);
    this.onDisk.add(oid);
    this.held(-1);
  }

  /**
   * Hands a parked object to `use` and forgets it once `use` succeeds. The buffer counts as held
   * while `use` runs.
   */
  async unpark(oid: Oid, use: (stored: Buffer) => Promise<void>): Promise<void> {
    const inMemory = this.memory.get(oid);
    if (inMemory) {
      await use(inMemory);
      this.memory.delete(oid);
      this.memoryBytes -= inMemory.length;
      this.held(-1);
      return;
    }
    const stored = await readFile(this.prefix + oid);
    this.held(1);
    try {
      await use(stored);
    } finally {
      this.held(-1);
    }
    this.onDisk.delete(oid);
    await rm(this.prefix + oid, { force: true });
  }

  /** Drops whatever is still parked (after a failure): memory and files alike. */
  async clear(): Promise<void> {
    this.held(-this.memory.size);
    this.memory.clear();
    this.memoryBytes = 0;
    await mapLimit([...this.onDisk], 16, (oid) => rm(this.prefix + oid, { force: true }));
    this.onDisk.clear();
  }
}
