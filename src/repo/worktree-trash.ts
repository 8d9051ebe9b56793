/**
 * Where a staged checkout (pull's merge) puts the old versions of the files it replaces or
 * removes: `.mediagit/trash/<batch>/`, freed by a detached process once the command is done.
 *
 * Freeing a file's last link is kernel work proportional to its size (its page cache and its
 * blocks): on the full bench corpus's pull, the old versions of the replaced files (hundreds of
 * MB) took 120–150 ms to free when the last handle on them closed, and renaming a new file over
 * an old one made ext4 start writing the new one back there and then (auto_da_alloc: 5–55 ms per
 * 150 MB file in a micro-benchmark, 13–159 ms for a pull's renames). A rename into the trash and
 * then of the new file onto the freed name is two renames with no data work at all; the user does
 * not wait for the freeing.
 *
 * The price: between its two renames a path is briefly absent, where a rename over it never was.
 * Only in the final phase of a checkout that has every new file complete; a rename that fails
 * puts the old version back; a crash in that instant leaves the file missing from the working
 * tree (status shows it deleted, `restore` brings it back) and its old version in the trash.
 * Trash left by a crash is debris: fsck counts it and calls the repository clean, gc removes it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, rmdir, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { commitTemp, isErrno } from '../util/fs.js';
import type { Repository } from './repository.js';

/** The trash folder inside `.mediagit`. */
export const TRASH_DIR = 'trash';

/**
 * Frees a batch folder off the command's path: a detached process removes it and nobody waits
 * for it. Replaceable for tests (which then free it themselves, or inspect it first).
 */
export const trashFreeing = {
  free(dir: string): void {
    try {
      const child =
        process.platform === 'win32'
          ? spawn(
              process.execPath,
              ['-e', `require('fs').rmSync(${JSON.stringify(dir)},{recursive:true,force:true})`],
              { detached: true, stdio: 'ignore', windowsHide: true },
            )
          : spawn('rm', ['-rf', '--', dir], { detached: true, stdio: 'ignore' });
      // No rm to run: the batch stays as debris until gc, which is no error of the checkout.
      child.on('error', () => undefined);
      child.unref();
    } catch {
      // as above: gc removes it
    }
  },
};

/** One checkout's batch of old versions. */
export class WorktreeTrash {
  private dir: Promise<string> | undefined;
  private next = 0;
  /** Old versions moved here so far (for tests and reports). */
  moved = 0;

  constructor(private readonly repo: Repository) {}

  /** The batch folder, made on first use. */
  private batch(): Promise<string> {
    this.dir ??= (async () => {
      const dir = join(
        this.repo.path(TRASH_DIR),
        `${process.pid}-${randomBytes(6).toString('hex')}`,
      );
      await mkdir(dir, { recursive: true });
      return dir;
    })();
    return this.dir;
  }

  /** A fresh name in the batch, or null when the trash cannot be made (then nothing moves). */
  private async slot(): Promise<string | null> {
    try {
      return join(await this.batch(), String(this.next++));
    } catch {
      return null;
    }
  }

  /**
   * Moves the file at `abs` (a file or symbolic link, never a folder) into the trash; false when
   * there is none there or it cannot be moved (the caller then does what it did without a trash).
   */
  private async moveAway(abs: string): Promise<string | null> {
    const info = await lstat(abs).catch(() => null);
    if (!info || info.isDirectory()) return null;
    const slot = await this.slot();
    if (!slot) return null;
    try {
      await rename(abs, slot);
    } catch {
      return null;
    }
    this.moved++;
    return slot;
  }

  /**
   * Puts the complete temporary file `tmp` (writeToTemp) at `abs`: the old version goes to the
   * trash first, so the rename replaces nothing. If the rename fails the old version goes back.
   */
  async replace(tmp: string, abs: string): Promise<void> {
    const old = await this.moveAway(abs);
    try {
      await commitTemp(tmp, abs);
    } catch (err) {
      if (old) await rename(old, abs).catch(() => undefined);
      throw err;
    }
  }

  /** Removes a tracked file (into the trash) and the folders it leaves empty (never the root). */
  async remove(path: string): Promise<void> {
    const abs = this.repo.absPath(path);
    if (!(await this.moveAway(abs))) {
      try {
        const info = await lstat(abs);
        if (!info.isDirectory()) await unlink(abs);
      } catch (err) {
        if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err;
      }
    }
    const root = this.repo.root;
    for (let dir = dirname(abs); dir.startsWith(root + '/') && dir !== root; dir = dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break;
      }
    }
  }

  /** Hands the batch to trashFreeing (once the command no longer needs the old versions). */
  async release(): Promise<void> {
    const dir = this.dir;
    this.dir = undefined;
    const made = await dir?.catch(() => null);
    if (made) trashFreeing.free(made);
  }
}

/** Entries in the trash: old versions a crash or a missing `rm` left behind (fsck counts them). */
export async function trashEntries(repo: Repository): Promise<number> {
  let batches: string[];
  try {
    batches = await readdir(repo.path(TRASH_DIR));
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return 0;
    throw err;
  }
  let count = 0;
  for (const batch of batches) {
    try {
      count += (await readdir(join(repo.path(TRASH_DIR), batch))).length;
    } catch {
      count++;
    }
  }
  return count;
}

/**
 * Removes the whole trash (gc, which holds the index lock, so no checkout is filling a batch):
 * returns how many entries there were.
 */
export async function emptyTrash(repo: Repository, dryRun: boolean): Promise<number> {
  const count = await trashEntries(repo);
  if (!dryRun) await rm(repo.path(TRASH_DIR), { recursive: true, force: true });
  return count;
}
