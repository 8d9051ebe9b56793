import type { Conflict, ConflictSide } from './index-file.js';
import type { FileMap, FileRecord } from './tree-map.js';

export interface MergePlan {
  /** Cleanly merged paths: become index entries. */
  readonly merged: FileMap;
  /** Unmerged paths, each with its three sides. */
  readonly conflicts: Conflict[];
  /** What the working tree should hold: merged paths plus, for each conflict, the surviving side. */
  readonly worktree: FileMap;
}

const same = (a: FileRecord | undefined, b: FileRecord | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.oid === b.oid && a.type === b.type);

const side = (r: FileRecord | undefined): ConflictSide | null =>
  r ? { type: r.type, oid: r.oid, size: r.size } : null;

/**
 * Three-way merge of snapshots at file granularity. Media files are not merged line by line: a
 * path changed differently on both sides (modify/modify, add/add, modify/delete) is a conflict
 * to be settled with `checkout --ours/--theirs` + `add`, as in git for binary files.
 */
export function threeWayMerge(base: FileMap, ours: FileMap, theirs: FileMap): MergePlan {
  const merged: FileMap = new Map();
  const conflicts: Conflict[] = [];
  const worktree: FileMap = new Map();
  for (const path of new Set([...base.keys(), ...ours.keys(), ...theirs.keys()])) {
    const b = base.get(path);
    const o = ours.get(path);
    const t = theirs.get(path);
    let result: FileRecord | undefined;
    if (same(o, t)) result = o;
    else if (same(b, o)) result = t;
    else if (same(b, t)) result = o;
    else {
      conflicts.push({ path, base: side(b), ours: side(o), theirs: side(t) });
      const keep = o ?? t;
      if (keep) worktree.set(path, keep);
      continue;
    }
    if (result) {
      merged.set(path, result);
      worktree.set(path, result);
    }
  }
  // A file on one side where the other has a folder of the same name cannot both exist on disk.
  for (const path of [...merged.keys()]) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      const clash = merged.get(prefix);
      if (!clash) continue;
      merged.delete(prefix);
      worktree.delete(prefix);
      conflicts.push({
        path: prefix,
        base: side(base.get(prefix)),
        ours: side(ours.get(prefix)),
        theirs: side(theirs.get(prefix)),
      });
    }
  }
  conflicts.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  return { merged, conflicts, worktree };
}
