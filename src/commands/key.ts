import {
  MAX_TTL_MS,
  MIN_TTL_MS,
  agentLookupEnabled,
  agentSupported,
  agentStatus,
  cacheKey,
  ensureAgentFolder,
  forgetAllKeys,
  forgetKeys,
} from '../agent/index.js';
import { addKey, inspectKeyFiles, keyFileHashes, listKeys, removeKey } from '../crypto/index.js';
import { UsageError } from '../errors/index.js';
import { Repository } from '../repo/index.js';
import { openRepository, plural, type CommandIo } from './context.js';

async function openEncrypted(
  io: CommandIo,
  options: { agent?: boolean } = {},
): Promise<{ repo: Repository; master: Buffer; keyId: string }> {
  const repo = await openRepository(io, options);
  const master = repo.unlockedMasterKey();
  if (!repo.encrypted || master === null || repo.keyId === null) throw notEncrypted();
  return { repo, master, keyId: repo.keyId };
}

function notEncrypted(): UsageError {
  return new UsageError('this repository is not encrypted, so it has no keys', {
    hint: "create an encrypted one with 'mediagit init --encrypt'",
  });
}

async function hashOf(repo: Repository, keyId: string): Promise<string | null> {
  return (await keyFileHashes(repo.store)).find((h) => h.id === keyId)?.sha256 ?? null;
}

export async function runKeyList(io: CommandIo, options: { json?: boolean }): Promise<void> {
  const { repo, keyId } = await openEncrypted(io);
  const keys = await listKeys(repo.store);
  if (options.json) {
    io.out(
      JSON.stringify(
        keys.map((k) => ({ ...k, current: k.id === keyId })),
        null,
        2,
      ),
    );
    return;
  }
  for (const k of keys) {
    io.out(
      `${k.id === keyId ? '*' : ' '} ${k.id}  ${k.created}  argon2id m=${k.kdf.memoryKiB}KiB t=${k.kdf.iterations} p=${k.kdf.parallelism}${k.label ? `  ${k.label}` : ''}`,
    );
  }
  // Key files an unlock never tries (a decoy, a damaged file): shown so they can be removed.
  for (const r of (await inspectKeyFiles(repo.store)).refused)
    io.out(`! ${r.key.slice('keys/'.length)}  refused: ${r.reason}`);
}

export async function runKeyAdd(io: CommandIo, options: { label?: string }): Promise<void> {
  const { repo, master } = await openEncrypted(io);
  const added = await addKey(repo.store, master, await io.passphrase('new'), options.label ?? '');
  io.out(`added key ${added.id}`);
}

export async function runKeyRemove(io: CommandIo, id: string): Promise<void> {
  const { repo, keyId } = await openEncrypted(io);
  if (id === keyId && repo.unlockedVia === 'agent') {
    throw new UsageError(
      'refusing to remove the key cached in the key agent, which unlocked this command',
      {
        hint: "run 'mediagit key forget' first, then remove it with another passphrase",
      },
    );
  }
  const removedHash = await hashOf(repo, id);
  await removeKey(repo.store, id, keyId);
  io.out(`removed key ${id}`);
  // A passphrase is usually removed because it is no longer trusted: its cached copy goes too.
  if (
    removedHash &&
    agentLookupEnabled() &&
    (await agentStatus([removedHash]).catch(() => null))?.expiresInMs != null
  ) {
    await forgetKeys([removedHash]).then(
      () => io.err('also dropped it from the key agent'),
      () => {},
    );
  }
}

export async function runKeyPasswd(io: CommandIo): Promise<void> {
  const { repo, master, keyId } = await openEncrypted(io);
  const oldHash = await hashOf(repo, keyId);
  const added = await addKey(repo.store, master, await io.passphrase('new'), 'passwd');
  // Add before remove: a crash in between leaves two working keys, never none.
  await repo.store.delete(`keys/${keyId}`);
  io.out(`changed passphrase: key ${keyId} replaced by ${added.id}`);
  // The agent knows the repository by the key file that was just deleted; move the cached key to
  // the new one for the time it had left, so the next command does not ask for the passphrase.
  if (oldHash && agentLookupEnabled()) {
    try {
      const status = await agentStatus([oldHash]);
      const newHash = await hashOf(repo, added.id);
      if (status?.expiresInMs != null && newHash) {
        await cacheKey(newHash, master, Math.max(MIN_TTL_MS, status.expiresInMs));
        await forgetKeys([oldHash]);
      }
    } catch {
      // Best effort: at worst the next command asks for the (new) passphrase.
    }
  }
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "30s", "15m", "2h", "1d", or combinations such as "1h30m", between 1 second and 7 days. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  const bad = (why: string): UsageError =>
    new UsageError(`invalid duration '${text}': ${why}`, {
      hint: 'use a number and a unit (s, m, h, d): 30s, 15m, 2h, 1h30m',
    });
  if (!/^(\d{1,7}[smhd])+$/.test(trimmed))
    throw bad(/^\d+$/.test(trimmed) ? 'it needs a unit' : 'not a duration');
  let ms = 0;
  for (const [, n, unit] of trimmed.matchAll(/(\d+)([smhd])/g))
    ms += Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS];
  if (ms < MIN_TTL_MS || ms > MAX_TTL_MS) throw bad('it must be between 1s and 7d');
  return ms;
}

export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const [d, h, m, s] = [
    Math.floor(total / 86_400),
    Math.floor(total / 3600) % 24,
    Math.floor(total / 60) % 60,
    total % 60,
  ];
  const parts = [d && `${d}d`, h && `${h}h`, m && `${m}m`, s && `${s}s`].filter(Boolean);
  return parts.length > 0 ? parts.slice(0, 2).join(' ') : '0s';
}

export async function runKeyCache(
  io: CommandIo,
  options: { timeout?: string; status?: boolean },
): Promise<void> {
  if (options.status) return runKeyCacheStatus(io);
  // Checked before the passphrase is asked for, so a typo or an unsafe agent folder costs nothing.
  const ttlMs = parseDuration(options.timeout ?? '15m');
  if (!agentSupported())
    throw new UsageError(
      'the key agent needs Unix domain sockets and user IDs, which this platform lacks',
      { hint: 'set MEDIAGIT_PASSPHRASE or use --passphrase-file instead' },
    );
  await ensureAgentFolder();
  // The passphrase, never the agent: caching (or refreshing) a key must prove knowledge of it.
  const { repo, master, keyId } = await openEncrypted(io, { agent: false });
  const hash = await hashOf(repo, keyId);
  if (!hash)
    throw new UsageError(`key file keys/${keyId} disappeared while this command ran`, {
      hint: 'run the command again',
    });
  await cacheKey(hash, master, ttlMs);
  io.out(`cached the key of ${repo.root} for ${formatDuration(ttlMs)}`);
  if (!agentLookupEnabled())
    io.err('note: MEDIAGIT_AGENT=0 is set, so commands will not ask the agent for it');
}

async function encryptedKeyHashes(io: CommandIo): Promise<{ root: string; hashes: string[] }> {
  const root = await Repository.findRoot(io.cwd);
  const hashes = (await Repository.keyFileHashes(root)).map((h) => h.sha256);
  if (hashes.length === 0) throw notEncrypted();
  return { root, hashes };
}

async function runKeyCacheStatus(io: CommandIo): Promise<void> {
  const { root, hashes } = await encryptedKeyHashes(io);
  const status = await agentStatus(hashes);
  if (!status) io.out('no key agent is running');
  else if (status.expiresInMs === null)
    io.out(
      `the key agent (pid ${status.pid}, ${plural(status.entries, 'key')}) holds no key for ${root}`,
    );
  else
    io.out(
      `the key of ${root} is cached for another ${formatDuration(status.expiresInMs)} (key agent pid ${status.pid})`,
    );
}

export async function runKeyForget(io: CommandIo, options: { all?: boolean }): Promise<void> {
  if (options.all) {
    const removed = await forgetAllKeys();
    io.out(`forgot ${plural(removed, 'cached key')}; the key agent has stopped`);
    return;
  }
  // Needs no passphrase: the key files' hashes are enough to name what to drop.
  const { root, hashes } = await encryptedKeyHashes(io);
  const removed = await forgetKeys(hashes);
  io.out(removed > 0 ? `forgot the cached key of ${root}` : `no key of ${root} was cached`);
}
