/** How `diff` and `show` print a list of changed files. */
import { UsageError } from '../../errors/index.js';
import { shortOid, type Manifest, type Oid } from '../../objects/index.js';
import {
  readSmallText,
  unifiedHunks,
  withRenames,
  type Change,
  type FileRecord,
  type RenamedChange,
  type Repository,
} from '../../repo/index.js';
import { formatBytes, plural, type CommandIo } from '../context.js';

export type ChangeFormat = 'patch' | 'stat' | 'name-status' | 'name-only' | 'json';

export interface ChangeJson {
  path: string;
  /** U: unmerged (a conflict awaiting resolution; no single staged version). */
  status: Change['status'] | 'U';
  oldOid: Oid | null;
  newOid: Oid | null;
  oldSize: number | null;
  newSize: number | null;
}

export function changeJson(change: Change): ChangeJson {
  return {
    path: change.path,
    status: change.status,
    oldOid: change.before?.oid ?? null,
    newOid: change.after?.oid ?? null,
    oldSize: change.before?.size ?? null,
    newSize: change.after?.size ?? null,
  };
}

const mode = (record: FileRecord): string => (record.type === 'exec' ? '100755' : '100644');
const ZERO = '0'.repeat(12);

/** A manifest if the store has it (working-tree content usually is not stored), else null. */
async function storedManifest(repo: Repository, oid: Oid): Promise<Manifest | null> {
  const [present] = await repo.odb.has('manifest', [oid]);
  return present ? repo.odb.readManifest(oid) : null;
}

/** "(1.2 MiB → 1.3 MiB; 2 of 9 chunks changed)": sizes, plus chunk reuse when the manifests are at hand. */
async function sizeSummary(
  repo: Repository,
  change: Pick<Change, 'before' | 'after'>,
): Promise<string> {
  const sizes = `${formatBytes(change.before?.size ?? 0)} → ${formatBytes(change.after?.size ?? 0)}`;
  const before = change.before ? await storedManifest(repo, change.before.oid) : null;
  const after = change.after ? await storedManifest(repo, change.after.oid) : null;
  if (change.before && change.after) {
    if (!before || !after) return `(${sizes})`;
    const old = new Set(before.chunks.map((c) => c.oid));
    const changed = after.chunks.filter((c) => !old.has(c.oid)).length;
    return `(${sizes}; ${changed} of ${plural(after.chunks.length, 'chunk')} changed)`;
  }
  const only = after ?? before;
  return only ? `(${sizes}; ${plural(only.chunks.length, 'chunk')})` : `(${sizes})`;
}

/** Hunks when every side present is small UTF-8 text, else null (the file is shown as binary). */
async function textPatch(repo: Repository, change: RenamedChange): Promise<string[] | null> {
  const old = change.before
    ? await readSmallText(repo, change.from ?? change.path, change.before)
    : '';
  if (old === null) return null;
  const now = change.after ? await readSmallText(repo, change.path, change.after) : '';
  if (now === null) return null;
  return unifiedHunks(old, now);
}

async function printPatch(io: CommandIo, repo: Repository, change: RenamedChange): Promise<void> {
  const { path, before, after } = change;
  const from = change.from ?? path;
  io.out(`diff --mediagit a/${from} b/${path}`);
  if (change.status === 'R') {
    io.out(`similarity index ${change.similarity}%\nrename from ${from}\nrename to ${path}`);
    if (before && after && before.oid !== after.oid)
      io.out(`index ${shortOid(before.oid)}..${shortOid(after.oid)} ${mode(after)}`);
  } else if (!before && after) {
    io.out(`new file mode ${mode(after)}`);
    io.out(`index ${ZERO}..${shortOid(after.oid)}`);
  } else if (before && !after) {
    io.out(`deleted file mode ${mode(before)}`);
    io.out(`index ${shortOid(before.oid)}..${ZERO}`);
  } else if (before && after) {
    if (before.type !== after.type) io.out(`old mode ${mode(before)}\nnew mode ${mode(after)}`);
    if (before.oid !== after.oid)
      io.out(
        `index ${shortOid(before.oid)}..${shortOid(after.oid)}${before.type === after.type ? ` ${mode(after)}` : ''}`,
      );
  }
  if (before?.oid === after?.oid) return;
  const a = before ? `a/${from}` : '/dev/null';
  const b = after ? `b/${path}` : '/dev/null';
  const text = await textPatch(repo, change);
  if (text) {
    io.out(`--- ${a}\n+++ ${b}`);
    for (const line of text) io.out(line);
    return;
  }
  io.out(`Binary files ${a} and ${b} differ ${await sizeSummary(repo, change)}`);
}

/** git's --stat for binary files: " path | Bin 1234 -> 5678 bytes", aligned, then a summary line. */
function printStat(io: CommandIo, changes: readonly RenamedChange[]): void {
  if (changes.length === 0) return;
  const name = (c: RenamedChange): string => (c.from ? `${c.from} => ${c.path}` : c.path);
  const width = Math.max(...changes.map((c) => name(c).length));
  for (const c of changes) {
    const detail =
      c.before?.oid === c.after?.oid
        ? '0'
        : `Bin ${c.before?.size ?? 0} -> ${c.after?.size ?? 0} bytes`;
    io.out(` ${name(c).padEnd(width)} | ${detail}`);
  }
  io.out(` ${plural(changes.length, 'file')} changed`);
}

/**
 * Prints changes in one of the diff formats (json prints the whole array at once). `unmerged`
 * paths (conflicts in the index) are listed as git does: `U` lines, "* Unmerged path" notes.
 */
export async function printChanges(
  io: CommandIo,
  repo: Repository,
  changes: readonly Change[],
  format: ChangeFormat,
  unmerged: readonly string[] = [],
): Promise<void> {
  switch (format) {
    case 'json': {
      const list: ChangeJson[] = changes.map(changeJson);
      for (const path of unmerged)
        list.push({ path, status: 'U', oldOid: null, newOid: null, oldSize: null, newSize: null });
      list.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      io.out(JSON.stringify(list, null, 2));
      return;
    }
    case 'name-only':
      for (const path of mergePaths(
        changes.map((c) => c.path),
        unmerged,
      ))
        io.out(path);
      return;
    case 'name-status': {
      // A rename is one line, as in git: R<similarity>, old path, new path.
      const status = new Map<string, string>(
        (await withRenames(repo, changes)).map((c) => [
          c.path,
          c.status === 'R' ? `R${String(c.similarity).padStart(3, '0')}\t${c.from}` : c.status,
        ]),
      );
      for (const path of unmerged) status.set(path, 'U');
      for (const path of mergePaths([...status.keys()], unmerged))
        io.out(`${status.get(path)}\t${path}`);
      return;
    }
    case 'stat':
      printStat(io, await withRenames(repo, changes));
      return;
    case 'patch':
      for (const path of unmerged) io.out(`* Unmerged path ${path}`);
      for (const c of await withRenames(repo, changes)) await printPatch(io, repo, c);
      return;
  }
}

function mergePaths(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
}

export function changeFormat(
  options: { stat?: boolean; nameStatus?: boolean; nameOnly?: boolean; json?: boolean },
  fallback: ChangeFormat = 'patch',
): ChangeFormat {
  const chosen = [
    options.nameOnly && 'name-only',
    options.nameStatus && 'name-status',
    options.stat && 'stat',
  ].filter((f): f is ChangeFormat => typeof f === 'string');
  if (chosen.length > 1)
    throw new UsageError(`--${chosen[0]} and --${chosen[1]} cannot be combined`);
  if (options.json) return 'json';
  return chosen[0] ?? fallback;
}
