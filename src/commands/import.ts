import { resolve } from 'node:path';
import { shortOid } from '../objects/index.js';
import { defaultImportDirectory, importGitLfs } from '../sync/import/index.js';
import { plural, type CommandIo } from './context.js';

export interface ImportOptions {
  allowMissing?: boolean;
  json?: boolean;
  quiet?: boolean;
}

export async function runImportGitLfs(
  io: CommandIo,
  source: string,
  directory: string | undefined,
  options: ImportOptions,
): Promise<void> {
  const result = await importGitLfs({
    source,
    directory: resolve(io.cwd, directory ?? defaultImportDirectory(source)),
    allowMissing: options.allowMissing ?? false,
    progress: io.progress(),
    onWarning: (line) => io.err(`warning: ${line}`),
  });
  if (options.json) {
    io.out(JSON.stringify(result, null, 2));
    return;
  }
  if (options.quiet) return;
  io.out(
    `${result.created ? 'Imported into' : 'Updated'} ${result.directory}: ${plural(result.commits, 'new commit')} (${result.mappedCommits} in all), ${plural(result.lfsObjects, 'LFS object')}`,
  );
  for (const r of result.refs) {
    const name = r.ref.replace(/^refs\/(heads|tags)\//, '');
    io.out(
      r.old === null
        ? `   * [new ${r.ref.startsWith('refs/tags/') ? 'tag' : 'branch'}]  ${name}`
        : `   ${shortOid(r.old)}..${shortOid(r.new)}  ${name}`,
    );
  }
  if (result.lockable.length > 0) {
    io.out(`lockable (lock.lockable): ${result.lockable.join(' ')}`);
    io.err(
      "hint: lock.lockable is this repository's only; commit a .mediagitattributes with the same patterns to give every clone them",
    );
  }
  if (result.missing.length > 0)
    io.out(`${plural(result.missing.length, 'file')} kept as LFS pointers (content missing)`);
}
