/**
 * `log --pretty` / `--format`: git's named formats (oneline, short, medium, full, fuller) and its
 * common placeholders, so scripts written against `git log --format=…` work unchanged.
 */
import { UsageError } from '../../errors/index.js';
import { shortOid, type Commit, type Oid, type Signature } from '../../objects/index.js';
import { gitDate } from './commits.js';

export type Pretty =
  | { readonly kind: 'named'; readonly name: 'oneline' | 'short' | 'medium' | 'full' | 'fuller' }
  | { readonly kind: 'format'; readonly template: string; readonly terminator: boolean };

/** `--pretty=<x>` / `--format=<x>`: a named format, `format:…` (separator), or `tformat:…`. */
export function parsePretty(text: string, isFormatOption: boolean): Pretty {
  const named = ['oneline', 'short', 'medium', 'full', 'fuller'] as const;
  const found = named.find((n) => n === text);
  if (found) return { kind: 'named', name: found };
  if (text.startsWith('format:'))
    return { kind: 'format', template: text.slice(7), terminator: false };
  if (text.startsWith('tformat:'))
    return { kind: 'format', template: text.slice(8), terminator: true };
  // git takes a bare string with a % as tformat; --format always means a template.
  if (isFormatOption || text.includes('%'))
    return { kind: 'format', template: text, terminator: true };
  throw new UsageError(`invalid --pretty format: '${text}'`, {
    hint: 'oneline, short, medium, full, fuller, format:<template> or tformat:<template>',
  });
}

/** "3 hours ago", as git's %ar does, from `now`. */
export function relativeDate(sig: Signature, now: number = Date.now() / 1000): string {
  const s = Math.max(0, Math.round(now - sig.time));
  const unit = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'} ago`;
  if (s < 90) return unit(s, 'second');
  const m = Math.round(s / 60);
  if (m < 90) return unit(m, 'minute');
  const h = Math.round(m / 60);
  if (h < 36) return unit(h, 'hour');
  const d = Math.round(h / 24);
  if (d < 14) return unit(d, 'day');
  if (d < 70) return unit(Math.round(d / 7), 'week');
  if (d < 365) return unit(Math.round(d / 30), 'month');
  const years = Math.floor(d / 365);
  const months = Math.round((d - years * 365) / 30);
  return months > 0 && years < 5
    ? `${years} year${years === 1 ? '' : 's'}, ${months} month${months === 1 ? '' : 's'} ago`
    : unit(years, 'year');
}

/** git's %aI: ISO 8601 in the signature's own zone, "2023-11-15T09:13:20-07:00". */
function strictIso(sig: Signature): string {
  const local = new Date((sig.time + sig.tzOffset * 60) * 1000).toISOString().slice(0, 19);
  const abs = Math.abs(sig.tzOffset);
  const zone = `${sig.tzOffset < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${local}${zone}`;
}

function subject(message: string): string {
  // git joins the first paragraph's lines into the subject.
  return message
    .split(/\n\s*\n/)[0]!
    .split('\n')
    .join(' ')
    .trim();
}

function body(message: string): string {
  const at = message.search(/\n\s*\n/);
  return at < 0 ? '' : message.slice(at).replace(/^\s*\n/, '');
}

/** One commit's text under a template; unknown placeholders stay as written, as in git. */
export function expand(
  template: string,
  oid: Oid,
  commit: Commit,
  labels: readonly string[],
): string {
  const sig = (s: Signature, c: string): string | undefined => {
    switch (c) {
      case 'n':
        return s.name;
      case 'e':
        return s.email;
      case 'd':
        return gitDate(s);
      case 'D':
        return gitDate(s).replace(/^(\w+) (\w+) (\d+) ([\d:]+) (\d+) (.+)$/, '$1, $3 $2 $5 $4 $6');
      case 'r':
        return relativeDate(s);
      case 't':
        return String(s.time);
      case 'I':
        return strictIso(s);
      case 's':
        return strictIso(s).slice(0, 10);
      default:
        return undefined;
    }
  };
  return template.replace(
    /%(?:([aAcC])([nedDrtIs])|x([0-9a-fA-F]{2})|([HhTtPpsbBdDn%]))/g,
    (all, who, what, hex, one) => {
      if (who) {
        const s = who.toLowerCase() === 'a' ? commit.author : commit.committer;
        return sig(s, what) ?? all;
      }
      if (hex) return String.fromCharCode(parseInt(hex, 16));
      switch (one) {
        case 'H':
          return oid;
        case 'h':
          return shortOid(oid);
        case 'T':
          return commit.tree;
        case 't':
          return shortOid(commit.tree);
        case 'P':
          return commit.parents.join(' ');
        case 'p':
          return commit.parents.map(shortOid).join(' ');
        case 's':
          return subject(commit.message);
        case 'b':
          return body(commit.message);
        case 'B':
          return commit.message;
        case 'd':
          return labels.length ? ` (${labels.join(', ')})` : '';
        case 'D':
          return labels.join(', ');
        case 'n':
          return '\n';
        case '%':
          return '%';
        default:
          return all;
      }
    },
  );
}

/** A named format's lines for one commit (without the blank line git puts between commits). */
export function namedLines(
  name: 'oneline' | 'short' | 'medium' | 'full' | 'fuller',
  oid: Oid,
  commit: Commit,
  labels: readonly string[],
): string[] {
  const deco = labels.length ? ` (${labels.join(', ')})` : '';
  if (name === 'oneline') return [`${oid}${deco} ${subject(commit.message)}`];
  const lines = [`commit ${oid}${deco}`];
  if (commit.parents.length > 1) lines.push(`Merge: ${commit.parents.map(shortOid).join(' ')}`);
  const who = (s: Signature): string => `${s.name} <${s.email}>`;
  if (name === 'fuller') {
    lines.push(`Author:     ${who(commit.author)}`, `AuthorDate: ${gitDate(commit.author)}`);
    lines.push(`Commit:     ${who(commit.committer)}`, `CommitDate: ${gitDate(commit.committer)}`);
  } else {
    lines.push(`Author: ${who(commit.author)}`);
    if (name === 'medium') lines.push(`Date:   ${gitDate(commit.author)}`);
    if (name === 'full') lines.push(`Commit: ${who(commit.committer)}`);
  }
  lines.push('');
  const text = name === 'short' ? subject(commit.message) : commit.message.replace(/\n$/, '');
  for (const line of text.split('\n')) lines.push(`    ${line}`);
  return lines;
}
