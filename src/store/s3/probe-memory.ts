/**
 * Where a passed conditional-write probe is remembered between processes (option `probe_cache`):
 * a small JSON file `{"<endpoint> <region>[ <bucket>]": <ms since epoch>}` in the user's cache
 * folder (the bucket only with `probe_scope=bucket`). The probe costs 33 requests and two round
 * trips, which every `mediagit push` used to pay; remembered, a push pays it once a day per
 * endpoint. Only a pass is kept: a server that failed is probed again (and refused again) every
 * time. A missing, unreadable or damaged file, or an entry from the future, simply means "probe".
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The memory's file name in the user's cache folder, shared by the CLI and `mediagit server`. */
export const PROBE_MEMORY_FILE = 's3-conditional-writes.json';

/** How long a passed probe is trusted for: the software behind an endpoint rarely changes, but it can. */
export const PROBE_MEMORY_MS = 24 * 60 * 60 * 1000;
/** More than any real cache holds: a bigger file is not ours to parse. */
const MAX_FILE_BYTES = 256 * 1024;
/** Clocks of a few machines sharing a home folder disagree a little. */
const CLOCK_SLACK_MS = 5 * 60 * 1000;

async function readEntries(file: string): Promise<Record<string, number>> {
  try {
    const text = await readFile(file, 'utf8');
    if (text.length > MAX_FILE_BYTES) return {};
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
    const out: Record<string, number> = {};
    for (const [key, at] of Object.entries(parsed as Record<string, unknown>))
      if (typeof at === 'number' && Number.isFinite(at)) out[key] = at;
    return out;
  } catch {
    return {};
  }
}

const fresh = (at: number | undefined, now: number): boolean =>
  at !== undefined && at <= now + CLOCK_SLACK_MS && now - at < PROBE_MEMORY_MS;

/** Whether `key` passed the probe within PROBE_MEMORY_MS, by `file`. */
export async function probePassed(file: string, key: string): Promise<boolean> {
  return fresh((await readEntries(file))[key], Date.now());
}

/**
 * Records that `key` passed, dropping expired entries. Written to a temporary file and renamed,
 * so a reader never sees half a file; of two processes writing at once, one's entry may be lost,
 * which costs that bucket one more probe. Best effort: a read-only home just means no memory.
 */
export async function rememberProbePassed(file: string, key: string): Promise<void> {
  const now = Date.now();
  const entries = await readEntries(file);
  const kept: Record<string, number> = {};
  for (const [k, at] of Object.entries(entries)) if (fresh(at, now)) kept[k] = at;
  kept[key] = now;
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(temp, `${JSON.stringify(kept)}\n`, { mode: 0o600 });
    await rename(temp, file);
  } catch {
    await rm(temp, { force: true }).catch(() => undefined);
  }
}
