import { MediagitError } from '../errors/index.js';
import {
  decodeCommit,
  decodeEnvelopeHeader,
  decodeManifest,
  decodeTag,
  decodeTree,
  ObjectDatabase,
  type ObjectKind,
  type Oid,
} from '../objects/index.js';
import type { Repository } from '../repo/index.js';
import { MultiStore, unwrapStore } from '../store/index.js';
import { getRemote, missingOn, openRemoteStore } from '../sync/index.js';
import { mapLimit } from '../util/limit.js';
import { formatBytes, plural, type CommandIo } from './context.js';

export class RemoteFsckError extends MediagitError {
  override readonly code = 'E_FSCK';
  override readonly exitCode = 6;
}

interface Problem {
  kind: ObjectKind | 'divergence';
  oid: string;
  problem: string;
}

/**
 * Checks a remote the way fsck checks the local repository: every object reachable from its
 * refs is present and verifies (read through this repository's keys), and for a multi remote the
 * primary and secondary hold the same objects and refs.
 */
export async function fsckRemote(
  io: CommandIo,
  repo: Repository,
  name: string,
  options: { full?: boolean; json?: boolean },
): Promise<void> {
  const remote = getRemote(repo, name);
  const opened = await openRemoteStore(remote, repo.root);
  const store = opened.store;
  const problems: Problem[] = [];
  const counts = { commits: 0, trees: 0, manifests: 0, chunks: 0, chunkBytes: 0 };

  const read = async (kind: ObjectKind, oid: Oid): Promise<Buffer | null> => {
    try {
      const stored = await store.get(ObjectDatabase.keyFor(kind, oid));
      return await repo.odb.openStored(kind, oid, stored);
    } catch (err) {
      problems.push({ kind, oid, problem: err instanceof Error ? err.message : String(err) });
      return null;
    }
  };

  const refs = await store.listRefs('refs/');
  const commits = new Set<Oid>();
  const stack = [...refs.values()].map((v) => v.oid);
  const trees: Oid[] = [];
  while (stack.length > 0) {
    const oid = stack.pop()!;
    if (commits.has(oid)) continue;
    commits.add(oid);
    let kind: ObjectKind = 'commit';
    try {
      kind = decodeEnvelopeHeader(await store.get(`objects/${oid}`)).kind;
    } catch {
      // read() below reports the object as missing or corrupt.
    }
    const plain = await read(kind === 'tag' ? 'tag' : 'commit', oid);
    if (!plain) continue;
    if (kind === 'tag') stack.push(decodeTag(plain).object);
    else {
      const commit = decodeCommit(plain);
      counts.commits++;
      trees.push(commit.tree);
      stack.push(...commit.parents);
    }
  }
  const seenTrees = new Set<Oid>();
  const manifests = new Set<Oid>();
  let level = trees;
  while (level.length > 0) {
    const next: Oid[] = [];
    await mapLimit(
      level.filter((t) => !seenTrees.has(t) && seenTrees.add(t)),
      8,
      async (oid) => {
        const plain = await read('tree', oid);
        if (!plain) return;
        counts.trees++;
        for (const e of decodeTree(plain)) {
          if (e.type === 'dir') next.push(e.oid);
          else manifests.add(e.oid);
        }
      },
    );
    level = next;
  }
  const chunks = new Map<Oid, number>();
  await mapLimit([...manifests], 8, async (oid) => {
    const plain = await read('manifest', oid);
    if (!plain) return;
    counts.manifests++;
    for (const c of decodeManifest(plain).chunks) chunks.set(c.oid, c.size);
  });
  counts.chunks = chunks.size;
  for (const size of chunks.values()) counts.chunkBytes += size;
  for (const oid of await missingOn(store, 'chunk', chunks.keys()))
    problems.push({ kind: 'chunk', oid, problem: 'missing from the remote' });
  if (options.full) {
    const progress = io.progress();
    progress.start('fsck', chunks.size, counts.chunkBytes);
    await mapLimit([...chunks.keys()], 8, async (oid) => {
      const plain = await read('chunk', oid);
      if (plain) progress.bytes(plain.length);
      progress.fileDone();
    });
    progress.stop();
  }
  const mirror = unwrapStore(opened.store, MultiStore);
  if (mirror) {
    const d = await mirror.divergence();
    for (const key of d.onlyPrimary)
      problems.push({ kind: 'divergence', oid: key, problem: 'only on the primary' });
    for (const key of d.onlySecondary)
      problems.push({ kind: 'divergence', oid: key, problem: 'only on the secondary' });
    for (const m of d.sizeMismatches)
      problems.push({
        kind: 'divergence',
        oid: m.key,
        problem: 'different sizes on primary and secondary',
      });
    for (const m of d.refMismatches)
      problems.push({
        kind: 'divergence',
        oid: m.name,
        problem: `ref differs: primary ${m.primary ?? '(none)'}, secondary ${m.secondary ?? '(none)'}`,
      });
  }
  if (options.json)
    io.out(JSON.stringify({ remote: name, ok: problems.length === 0, counts, problems }, null, 2));
  else {
    for (const p of problems)
      io.out(
        `${p.kind === 'divergence' ? 'divergence' : `${p.kind} ${p.oid}`}${p.kind === 'divergence' ? ` ${p.oid}` : ''}: ${p.problem}`,
      );
    const summary = `remote ${name}: checked ${plural(counts.commits, 'commit')}, ${plural(counts.trees, 'tree')}, ${plural(counts.manifests, 'manifest')}, ${plural(counts.chunks, 'chunk')} (${formatBytes(counts.chunkBytes)})`;
    io.out(
      problems.length === 0
        ? `${summary}: no problems found`
        : `${summary}: ${plural(problems.length, 'problem')}`,
    );
  }
  if (problems.length > 0)
    throw new RemoteFsckError(`remote ${name} has ${plural(problems.length, 'problem')}`, {
      hint: options.json ? 'see the JSON report' : 'see the lines above',
    });
}
