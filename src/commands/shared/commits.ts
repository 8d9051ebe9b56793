/** How `log` and `show` print commits: dates, JSON, ref decorations. */
import type { Commit, Oid, Signature } from '../../objects/index.js';
import type { Repository } from '../../repo/index.js';

export function isoDate(sig: Signature): string {
  return new Date(sig.time * 1000).toISOString().replace('.000Z', 'Z');
}

/** git's default date format: "Wed Nov 25 20:00:00 2026 +0100", in the signature's own zone. */
export function gitDate(sig: Signature): string {
  const local = new Date((sig.time + sig.tzOffset * 60) * 1000);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = [
    'Jan',
    'Feb',
    'Mar',
    'Apr',
    'May',
    'Jun',
    'Jul',
    'Aug',
    'Sep',
    'Oct',
    'Nov',
    'Dec',
  ];
  const pad = (n: number): string => String(n).padStart(2, '0');
  const sign = sig.tzOffset < 0 ? '-' : '+';
  const tz = `${sign}${pad(Math.floor(Math.abs(sig.tzOffset) / 60))}${pad(Math.abs(sig.tzOffset) % 60)}`;
  return `${days[local.getUTCDay()]} ${months[local.getUTCMonth()]} ${local.getUTCDate()} ${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())} ${local.getUTCFullYear()} ${tz}`;
}

export function commitJson(oid: Oid, commit: Commit): object {
  return {
    oid,
    tree: commit.tree,
    parents: commit.parents,
    author: { name: commit.author.name, email: commit.author.email, date: isoDate(commit.author) },
    committer: {
      name: commit.committer.name,
      email: commit.committer.email,
      date: isoDate(commit.committer),
    },
    date: isoDate(commit.author),
    message: commit.message,
  };
}

/** Ref decorations per commit, as in `git log --decorate`: "HEAD -> main, tag: v1". */
export async function decorations(repo: Repository): Promise<Map<Oid, string[]>> {
  const map = new Map<Oid, string[]>();
  const add = (oid: Oid, label: string): void => {
    const list = map.get(oid) ?? [];
    list.push(label);
    map.set(oid, list);
  };
  const head = await repo.readHead();
  const refs = await repo.store.listRefs('refs/');
  const branchOfHead = head.ref;
  if (head.oid && !branchOfHead) add(head.oid, 'HEAD');
  for (const [name, value] of refs) {
    if (name.startsWith('refs/heads/'))
      add(value.oid, name === branchOfHead ? `HEAD -> ${name.slice(11)}` : name.slice(11));
    else if (name.startsWith('refs/tags/')) {
      let target = value.oid;
      if ((await repo.odb.kindOf(target)) === 'tag')
        target = (await repo.odb.readTag(target)).object;
      add(target, `tag: ${name.slice(10)}`);
    } else if (name.startsWith('refs/remotes/')) add(value.oid, name.slice(13));
  }
  for (const list of map.values())
    list.sort((a, b) => (a.startsWith('HEAD') ? -1 : b.startsWith('HEAD') ? 1 : 0));
  return map;
}
