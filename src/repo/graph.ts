/**
 * git's ASCII history graph (`log --graph`): one column per line of descent still awaiting its next
 * commit, `*` for the commit shown, `|\` where a merge opens a column for its second parent, `|/`
 * where two columns reach the same commit and join.
 */
import type { Oid } from '../objects/index.js';

export interface GraphRow {
  /** Drawn before the commit's first line: the columns, `*` in the commit's own. */
  readonly commit: string;
  /** Drawn before the commit's further lines: every column as `|` (before columns join). */
  readonly continuation: string;
  /** The `|\` line of a merge opening columns: beside the commit's second line, if it has one. */
  readonly opening?: string;
  /** Lines drawn after the commit (and its opening): columns joining. */
  readonly after: readonly string[];
}

/** A line of the graph: `marks` maps character positions (column j sits at 2j) to symbols. */
function draw(marks: readonly (readonly [number, string])[]): string {
  const width = Math.max(0, ...marks.map(([at]) => at + 1));
  const chars = Array.from({ length: width }, () => ' ');
  for (const [at, mark] of marks) chars[at] = mark;
  return chars.join('');
}

export class HistoryGraph {
  /** The commit each column waits for, left to right. */
  private columns: Oid[] = [];

  /** Places one commit (commits come children first) and returns what to draw around it. */
  next(oid: Oid, parents: readonly Oid[]): GraphRow {
    let at = this.columns.indexOf(oid);
    if (at < 0) {
      at = this.columns.length;
      this.columns.push(oid);
    }
    const cells = this.columns.map((_, i) => (i === at ? '*' : '|'));
    // A merge at the right edge leaves room for the column it opens, as git does.
    const merge = parents.length > 1 && at === this.columns.length - 1;
    const commit = cells.join(' ') + (merge ? '   ' : ' ');
    const after: string[] = [];
    let continuation = '';
    let opening: string | undefined;
    // Parents already awaited elsewhere get no new column, except the first, which joins later.
    const fresh = parents.filter((p, i) => i === 0 || !this.columns.includes(p));
    if (fresh.length === 0) {
      // A root commit: its column ends, and those right of it lean left.
      if (at < this.columns.length - 1) after.push(this.closing(at, false));
      this.columns.splice(at, 1);
    } else {
      const before = this.columns.length;
      this.columns.splice(at, 1, ...fresh);
      continuation = this.padding();
      if (fresh.length > 1) {
        const added = fresh.length - 1;
        const marks: [number, string][] = [];
        for (let j = 0; j <= at; j++) marks.push([2 * j, '|']);
        for (let j = at + 1; j < before + added; j++) marks.push([2 * j - 1, '\\']);
        opening = draw(marks);
      }
      // Two columns now wait for the same commit: the right one joins the left.
      for (let i = 0; i < this.columns.length; i++) {
        if (this.columns.indexOf(this.columns[i]!) < i) {
          after.push(this.closing(i));
          this.columns.splice(i, 1);
          i--;
        }
      }
    }
    const row = { commit, continuation: continuation || this.padding(), after };
    return opening === undefined ? row : { ...row, opening };
  }

  /** Every open column as `|`: what goes before lines between commits. */
  padding(): string {
    return this.columns.map(() => '| ').join('');
  }

  /**
   * The line where column `gone` closes: the columns left of it go on, the rest lean left, and the
   * closing one too when it joins the column on its left (not when its line of history ended).
   */
  private closing(gone: number, joins = true): string {
    const marks: [number, string][] = [];
    for (let j = 0; j < this.columns.length; j++)
      if (j < gone) marks.push([2 * j, '|']);
      else if (j > gone || joins) marks.push([2 * j - 1, '/']);
    return draw(marks);
  }
}

/**
 * git's --topo-order, which --graph implies: no commit before all its children, and a merge's
 * second line of history shown whole before its first resumes (the last parent freed goes first).
 * `entries` come newest first; commits outside them are ignored.
 */
export function topoOrder<T extends { oid: Oid; commit: { parents: readonly Oid[] } }>(
  entries: readonly T[],
): T[] {
  const byOid = new Map(entries.map((e) => [e.oid, e]));
  const children = new Map<Oid, number>();
  for (const e of entries)
    for (const p of e.commit.parents) if (byOid.has(p)) children.set(p, (children.get(p) ?? 0) + 1);
  const stack = entries.filter((e) => !children.has(e.oid)).reverse();
  const out: T[] = [];
  while (stack.length > 0) {
    const e = stack.pop()!;
    out.push(e);
    for (const p of e.commit.parents) {
      const left = children.get(p);
      if (left === undefined) continue;
      if (left > 1) children.set(p, left - 1);
      else {
        children.delete(p);
        stack.push(byOid.get(p)!);
      }
    }
  }
  return out;
}
