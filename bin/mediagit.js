#!/usr/bin/env node
// Entry point. Kept tiny: `--version` answers without loading the CLI, and an old Node gets a
// clear message instead of a crash deep inside node:zlib (require-node.js, evaluated first).
import './require-node.js';
import { readFileSync, statSync } from 'node:fs';
// The namespace, not a named import: a Node without enableCompileCache (20 and older) would fail
// to link a named one before the version check could say anything useful.
import * as nodeModule from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Hashing, zstd and file I/O all run on libuv's pool; four threads leave the second core idle
// whenever one of them sits in fsync. Must be set before the pool's first use.
process.env.UV_THREADPOOL_SIZE ??= '8';
/**
 * The bundle npm run build makes (dist/bundle: ~15 ms faster to load than tsc's ~150 modules),
 * unless tsc's output is newer, as after a bare `tsc` while developing: never a stale bundle.
 */
function entryModule() {
  const modified = (rel) =>
    statSync(new URL(rel, import.meta.url), { throwIfNoEntry: false })?.mtimeMs ?? -1;
  const bundled = modified('../dist/bundle/mediagit.js');
  const compiled = modified('../dist/src/cli/main.js');
  if (bundled < 0 && compiled < 0) {
    // A clone installed without its build step: say so instead of ERR_MODULE_NOT_FOUND.
    process.stderr.write(
      `error: mediagit is not built (no dist/ in ${fileURLToPath(new URL('..', import.meta.url))})\nhint: run 'npm run build' there, or install with 'npm install -g <folder or git URL>', which builds it\n`,
    );
    process.exit(1);
  }
  return bundled >= 0 && bundled >= compiled
    ? '../dist/bundle/mediagit.js'
    : '../dist/src/cli/main.js';
}

const arg = process.argv[2];
if (process.argv.length === 3 && (arg === '--version' || arg === '-V')) {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${pkg.version}\n`);
} else {
  process.stdout.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  // V8's compiled code for our modules, kept between runs (~20 ms off every command). Per user, under
  // the user's cache folder: a compile cache in a shared /tmp could be planted by someone else.
  // NODE_DISABLE_COMPILE_CACHE=1 turns it off; failing to create it just means no cache.
  nodeModule.enableCompileCache?.(
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'mediagit', 'compile-cache'),
  );
  const { main } = await import(entryModule());
  process.exitCode = await main(process.argv);
}
