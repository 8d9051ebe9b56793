import {
  listRemotes,
  redactedOptions,
  addRemote,
  canonicalRemoteUrl,
  parseOptionArgs,
  getRemote,
  remoteShow,
  removeRemote,
  setRemoteUrl,
} from '../sync/index.js';
import { validateStoreOptions } from '../store/index.js';
import { openRepository, type CommandIo } from './context.js';
import { openRemote } from './shared/remotes.js';

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

/** git's layout: fetch/push URL, HEAD branch, remote branches, pull and push configuration. */
export async function runRemoteShow(
  io: CommandIo,
  name: string,
  options: { json?: boolean },
): Promise<void> {
  const repo = await openRepository(io);
  const remote = getRemote(repo, name);
  const report = await remoteShow(repo, remote, await openRemote(io, repo, remote));
  if (options.json) {
    io.out(JSON.stringify(report, null, 2));
    return;
  }
  const heading = (n: number, one: string, many: string): string => `  ${n === 1 ? one : many}:`;
  io.out(`* remote ${report.name}`);
  io.out(`  Fetch URL: ${report.url}`);
  io.out(`  Push  URL: ${report.url}`);
  io.out(`  HEAD branch: ${report.headBranch ?? '(unknown)'}`);
  const rows = [
    ...report.branches.map((b) => ({
      name: b.name,
      state: b.tracked ? 'tracked' : `new (next fetch will store in remotes/${report.name})`,
    })),
    ...report.stale.map((s) => ({
      name: `refs/remotes/${report.name}/${s}`,
      state: `stale (use 'mediagit fetch --prune ${report.name}' to remove)`,
    })),
  ];
  if (rows.length > 0) {
    io.out(heading(rows.length, 'Remote branch', 'Remote branches'));
    const width = Math.max(...rows.map((r) => r.name.length));
    for (const r of rows) io.out(`    ${r.name.padEnd(width)} ${r.state}`);
  }
  if (report.pull.length > 0) {
    io.out(
      heading(
        report.pull.length,
        "Local branch configured for 'mediagit pull'",
        "Local branches configured for 'mediagit pull'",
      ),
    );
    const width = Math.max(...report.pull.map((p) => p.branch.length));
    for (const p of report.pull)
      io.out(`    ${p.branch.padEnd(width)} merges with remote ${p.merges}`);
  }
  if (report.push.length > 0) {
    io.out(
      heading(
        report.push.length,
        "Local ref configured for 'mediagit push'",
        "Local refs configured for 'mediagit push'",
      ),
    );
    const width = Math.max(...report.push.map((p) => p.branch.length));
    const toWidth = Math.max(...report.push.map((p) => p.to.length));
    for (const p of report.push)
      io.out(`    ${p.branch.padEnd(width)} pushes to ${p.to.padEnd(toWidth)} (${p.state})`);
  }
}
