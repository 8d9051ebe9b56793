import { addKey, listKeys, removeKey } from '../crypto/index.js';
import { UsageError } from '../errors/index.js';
import type { Repository } from '../repo/index.js';
import { openRepository, type CommandIo } from './context.js';

async function openEncrypted(io: CommandIo): Promise<{ repo: Repository; master: Buffer; keyId: string }> {
  const repo = await openRepository(io);
  const master = repo.unlockedMasterKey();
  if (!repo.encrypted || master === null || repo.keyId === null) {
    throw new UsageError('this repository is not encrypted, so it has no keys', { hint: "create an encrypted one with 'mediagit init --encrypt'" });
  }
  return { repo, master, keyId: repo.keyId };
}

export async function runKeyList(io: CommandIo, options: { json?: boolean }): Promise<void> {
  const { repo, keyId } = await openEncrypted(io);
  const keys = await listKeys(repo.store);
  if (options.json) {
    io.out(JSON.stringify(keys.map((k) => ({ ...k, current: k.id === keyId })), null, 2));
    return;
  }
  for (const k of keys) {
    io.out(`${k.id === keyId ? '*' : ' '} ${k.id}  ${k.created}  argon2id m=${k.kdf.memoryKiB}KiB t=${k.kdf.iterations} p=${k.kdf.parallelism}${k.label ? `  ${k.label}` : ''}`);
  }
}

export async function runKeyAdd(io: CommandIo, options: { label?: string }): Promise<void> {
  const { repo, master } = await openEncrypted(io);
  const added = await addKey(repo.store, master, await io.passphrase('new'), options.label ?? '');
  io.out(`added key ${added.id}`);
}

export async function runKeyRemove(io: CommandIo, id: string): Promise<void> {
  const { repo, keyId } = await openEncrypted(io);
  await removeKey(repo.store, id, keyId);
  io.out(`removed key ${id}`);
}

export async function runKeyPasswd(io: CommandIo): Promise<void> {
  const { repo, master, keyId } = await openEncrypted(io);
  const added = await addKey(repo.store, master, await io.passphrase('new'), 'passwd');
  // Add before remove: a crash in between leaves two working keys, never none.
  await repo.store.delete(`keys/${keyId}`);
  io.out(`changed passphrase: key ${keyId} replaced by ${added.id}`);
}
