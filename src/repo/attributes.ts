/**
 * `.mediagitattributes`: attributes of paths, kept in the repository so every clone agrees.
 * One rule per line, `<pattern> <attribute>…`; `lockable` sets the attribute, `-lockable` unsets
 * it, and the last rule that matches a path decides. `#` starts a comment. A pattern without a
 * slash matches the file name at any depth (`*.blend`); one with a slash matches the whole path
 * from the repository root (a leading `/` is dropped). The config key `lock.lockable` (one glob
 * per line) adds patterns for this clone only.
 */
import { readFileSync } from 'node:fs';
import picomatch from 'picomatch';
import { isErrno } from '../util/fs.js';
import type { Repository } from './repository.js';

export const ATTRIBUTES_FILE = '.mediagitattributes';

export interface AttributeRule {
  readonly pattern: string;
  /** Attribute name → true (set) or false (unset with `-name`). */
  readonly attributes: ReadonlyMap<string, boolean>;
}

/** The rules of an attributes file, in order; malformed lines (a pattern alone) are skipped. */
export function parseAttributes(text: string): AttributeRule[] {
  const rules: AttributeRule[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [pattern, ...names] = line.split(/\s+/);
    if (pattern === undefined || names.length === 0) continue;
    const attributes = new Map<string, boolean>();
    for (const name of names) {
      if (name.startsWith('-') || name.startsWith('!')) attributes.set(name.slice(1), false);
      else attributes.set(name.split('=', 1)[0]!, true);
    }
    rules.push({ pattern, attributes });
  }
  return rules;
}

function globMatcher(pattern: string): (path: string) => boolean {
  const anchored = pattern.startsWith('/') ? pattern.slice(1) : pattern;
  const dirOnly = anchored.endsWith('/');
  const glob = dirOnly ? `${anchored}**` : anchored;
  const basename = !pattern.includes('/');
  return picomatch(glob, { dot: true, basename });
}

/** Whether `attribute` is set for each path, by the last matching rule (unset when none matches). */
export function attributeMatcher(
  rules: readonly AttributeRule[],
  attribute: string,
): ((path: string) => boolean) | null {
  const relevant = rules
    .filter((r) => r.attributes.has(attribute))
    .map((r) => ({ match: globMatcher(r.pattern), value: r.attributes.get(attribute)! }));
  if (!relevant.some((r) => r.value)) return null;
  return (path) => {
    let value = false;
    for (const rule of relevant) if (rule.match(path)) value = rule.value;
    return value;
  };
}

/** The working tree's attributes file, or '' when there is none. */
export function readAttributesText(repo: Repository): string {
  try {
    return readFileSync(repo.absPath(ATTRIBUTES_FILE), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR') || isErrno(err, 'EISDIR')) return '';
    throw err;
  }
}

/**
 * Files that must be locked before they are edited: `lockable` in `.mediagitattributes` (as in
 * the working tree) or a glob in config `lock.lockable`. Checkout writes them read-only;
 * `mediagit lock` makes one writable, `unlock` read-only again. null = none.
 */
export function lockableMatcher(repo: Repository): ((path: string) => boolean) | null {
  const rules = parseAttributes(readAttributesText(repo));
  for (const pattern of String(repo.config.get('lock.lockable') ?? '').split('\n')) {
    const p = pattern.trim();
    if (p !== '' && !p.startsWith('#'))
      rules.unshift({ pattern: p, attributes: new Map([['lockable', true]]) });
  }
  return attributeMatcher(rules, 'lockable');
}
