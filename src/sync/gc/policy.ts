/**
 * Retention policies for `gc --remote`: which old file versions lose their content. Policies
 * never rewrite history: commits, trees and manifests all stay; only chunks that no kept version
 * needs are deleted.
 */
import { UsageError } from '../../errors/index.js';

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** '0', '90s', '30m', '24h', '180d', '2w' → milliseconds. */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d+)(s|m|h|d|w)?$/.exec(text.trim().toLowerCase());
  if (!m || (m[2] === undefined && m[1] !== '0'))
    throw new UsageError(`invalid ${option} value '${text}'`, {
      hint: "use a number with a unit: '0', '90s', '30m', '24h', '180d', '2w'",
    });
  return Number(m[1]) * (m[2] ? UNIT_MS[m[2]]! : 0);
}

/** `--keep 'renders/**=3'`: keep the content of the 3 newest versions of each matching file. */
export interface KeepRule {
  readonly pattern: string;
  readonly versions: number;
  readonly matches: (path: string) => boolean;
}

export interface RetentionPolicy {
  readonly keep: readonly KeepRule[];
  /** Content only reachable from commits older than this (ms) expires; undefined: no age limit. */
  readonly olderThanMs?: number;
}

export const KEEP_EVERYTHING: RetentionPolicy = Object.freeze({ keep: [] });

export function parseKeepRule(text: string): KeepRule {
  const at = text.lastIndexOf('=');
  const pattern = at > 0 ? text.slice(0, at) : '';
  const count = at > 0 ? text.slice(at + 1) : '';
  if (pattern === '' || !/^[1-9]\d*$/.test(count))
    throw new UsageError(`invalid --keep value '${text}'`, {
      hint: "use '<glob>=<versions>', e.g. 'renders/**=3' (at least 1 version)",
    });
  const regex = globToRegExp(pattern);
  return { pattern, versions: Number(count), matches: (path) => regex.test(path) };
}

export function parsePolicy(keep: readonly string[], olderThan?: string): RetentionPolicy {
  const rules = keep.map(parseKeepRule);
  return olderThan === undefined
    ? { keep: rules }
    : { keep: rules, olderThanMs: parseDuration(olderThan, '--older-than') };
}

/** True when the policy expires nothing (gc then deletes only what no ref reaches). */
export function keepsEverything(policy: RetentionPolicy): boolean {
  return policy.keep.length === 0 && policy.olderThanMs === undefined;
}

/**
 * Repository paths are '/'-separated: `**` spans folders, `*` and `?` stay inside one segment;
 * a pattern ending in '/' or naming a folder also matches everything below it.
 */
function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // '**/' may also match no folder at all.
      if (glob[i + 2] === '/') {
        out += '(?:.*/)?';
        i += 2;
      } else {
        out += '.*';
        i += 1;
      }
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out.replace(/\/$/, '')}(?:/.*)?$`);
}
