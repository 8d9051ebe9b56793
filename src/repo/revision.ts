import { UnknownRevisionError } from '../errors/index.js';
import { isOid, type Oid } from '../objects/index.js';
import { isValidRefName } from '../store/index.js';
import { readReflog, resolveReflogSelector } from './reflog.js';
import type { Repository } from './repository.js';

const SUFFIX = /(~\d*|\^\d*)$/;

/**
 * Resolves git-style revisions to a commit OID: `HEAD`, `@`, branch and tag names, `refs/...`,
 * full or abbreviated (≥ 4 hex) object IDs, `MERGE_HEAD`, `ORIG_HEAD`, `CHERRY_PICK_HEAD`,
 * `REVERT_HEAD`, reflog selectors (`HEAD@{n}`, `<branch>@{n}`, `@{n}`, `stash@{n}`), followed by any number of
 * `~N` (N-th first-parent ancestor) and `^N` (N-th parent) suffixes.
 */
export async function resolveCommit(repo: Repository, rev: string): Promise<Oid> {
  const steps: string[] = [];
  let base = rev;
  for (let m = SUFFIX.exec(base); m && base.length > m[0].length; m = SUFFIX.exec(base)) {
    steps.unshift(m[0]);
    base = base.slice(0, -m[0].length);
  }
  let oid = await resolveBase(repo, base, rev);
  for (const step of steps) {
    const n = step.length > 1 ? Number(step.slice(1)) : 1;
    if (step.startsWith('~')) {
      for (let i = 0; i < n; i++) {
        const commit = await repo.odb.readCommit(oid);
        const parent = commit.parents[0];
        if (!parent) throw new UnknownRevisionError(rev);
        oid = parent;
      }
    } else if (n !== 0) {
      const commit = await repo.odb.readCommit(oid);
      const parent = commit.parents[n - 1];
      if (!parent) throw new UnknownRevisionError(rev);
      oid = parent;
    }
  }
  return oid;
}

/** Like resolveCommit, but returns null instead of throwing when the revision names nothing. */
export async function tryResolveCommit(repo: Repository, rev: string): Promise<Oid | null> {
  try {
    return await resolveCommit(repo, rev);
  } catch (err) {
    if (err instanceof UnknownRevisionError) return null;
    throw err;
  }
}

async function resolveBase(repo: Repository, base: string, whole: string): Promise<Oid> {
  const selector = /^(.*)@\{(\d+)\}$/.exec(base);
  if (selector)
    return peelToCommit(
      repo,
      await resolveReflogSelector(repo, selector[1]!, Number(selector[2]), whole),
      whole,
    );
  const found = await lookup(repo, base);
  if (found === null) throw new UnknownRevisionError(whole);
  return peelToCommit(repo, found, whole);
}

async function lookup(repo: Repository, name: string): Promise<Oid | null> {
  if (name === 'HEAD' || name === '@') return (await repo.readHead()).oid;
  if (
    name === 'MERGE_HEAD' ||
    name === 'ORIG_HEAD' ||
    name === 'CHERRY_PICK_HEAD' ||
    name === 'REVERT_HEAD'
  )
    return repo.readStateOid(name);
  // The stash list is refs/stash's reflog; its newest entry is what `stash` names.
  if (name === 'stash') return (await readReflog(repo, 'refs/stash'))[0]?.new ?? null;
  const candidates = name.startsWith('refs/')
    ? [name]
    : [`refs/heads/${name}`, `refs/tags/${name}`, `refs/remotes/${name}`];
  for (const ref of candidates) {
    if (!isValidRefName(ref)) continue;
    const oid = await repo.readRef(ref);
    if (oid) return oid;
  }
  if (isOid(name)) return name;
  if (/^[0-9a-f]{4,63}$/.test(name)) {
    const matches: Oid[] = [];
    for await (const { key } of repo.store.list(`objects/${name}`)) {
      matches.push(key.slice('objects/'.length));
      if (matches.length > 1) break;
    }
    if (matches.length > 1)
      throw new UnknownRevisionError(`${name} (ambiguous: several objects start with it)`);
    return matches[0] ?? null;
  }
  return null;
}

async function peelToCommit(repo: Repository, oid: Oid, rev: string): Promise<Oid> {
  for (let depth = 0; depth < 10; depth++) {
    const kind = await repo.odb.kindOf(oid);
    if (kind === 'commit') return oid;
    if (kind === 'tag') {
      oid = (await repo.odb.readTag(oid)).object;
      continue;
    }
    throw new UnknownRevisionError(rev);
  }
  throw new UnknownRevisionError(rev);
}
