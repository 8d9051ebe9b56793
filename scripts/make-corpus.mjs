#!/usr/bin/env node
// Builds the test / benchmark media corpus.
// Usage: node scripts/make-corpus.mjs DIR 1|2 [small|full|tiny]   (profile defaults to full)
// Version 2 edits the version 1 that DIR holds, in place; use the same profile for both.
// Needs the compiled test support: run `npm run build` first.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const USAGE = 'usage: node scripts/make-corpus.mjs DIR 1|2 [small|full|tiny]';
const [dir, versionArg, profile = 'full', ...extra] = process.argv.slice(2);

if (
  !dir ||
  !['1', '2'].includes(versionArg ?? '') ||
  !['small', 'full', 'tiny'].includes(profile) ||
  extra.length > 0
) {
  console.error(USAGE);
  process.exit(2);
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const modulePath = path.join(repoRoot, 'dist', 'test', 'support', 'corpus.js');
if (!fs.existsSync(modulePath)) {
  console.error(
    `make-corpus: ${path.relative(process.cwd(), modulePath)} not found; run \`npm run build\` first`,
  );
  process.exit(1);
}

const { makeCorpus } = await import(pathToFileURL(modulePath).href);
const started = performance.now();
try {
  const { files, bytes } = await makeCorpus(path.resolve(dir), Number(versionArg), profile);
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `corpus v${versionArg} (${profile}): ${files} files, ${(bytes / 1048576).toFixed(1)} MiB in ${dir} (${secs}s)`,
  );
} catch (err) {
  console.error(`make-corpus: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
