import {
  listRemotes,
  redactedOptions,
  addRemote,
  canonicalRemoteUrl,
  parseOptionArgs,
  removeRemote,
  setRemoteUrl,
} from '../sync/index.js';
import { validateStoreOptions } from '../store/index.js';
import { openRepository, type CommandIo } from './context.js';

export async function runRemoteList(
  io: CommandIo,
  options: { verbose?: boolean; json?: boolean },
): Promise<void> {
  const repo = await openRepository(io);
  const remotes = listRemotes(repo);
  if (options.json) {
    io.out(
      JSON.stringify(
        remotes.map((r) => ({ name: r.name, url: r.url, options: redactedOptions(r.options) })),
        null,
        2,
      ),
    );
    return;
  }
  for (const r of remotes) {
    if (!options.verbose) io.out(r.name);
    else {
      const opts = Object.entries(redactedOptions(r.options)).map(([k, v]) => `${k}=${String(v)}`);
      io.out(`${r.name}\t${r.url}${opts.length ? `\t(${opts.join(', ')})` : ''}`);
    }
  }
}

export async function runRemoteAdd(
  io: CommandIo,
  name: string,
  url: string,
  options: { option?: string[] },
): Promise<void> {
  const repo = await openRepository(io);
  const parsed = parseOptionArgs(options.option);
  // Options first: a mistyped key is reported with the valid ones even if the URL is also wrong.
  validateStoreOptions(url, parsed, io.cwd);
  await addRemote(repo, name, canonicalRemoteUrl(url, io.cwd), parsed);
}

export async function runRemoteRemove(io: CommandIo, name: string): Promise<void> {
  await removeRemote(await openRepository(io), name);
}

export async function runRemoteSetUrl(io: CommandIo, name: string, url: string): Promise<void> {
  await setRemoteUrl(await openRepository(io), name, canonicalRemoteUrl(url, io.cwd));
}
