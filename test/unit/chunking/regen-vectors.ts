/**
 * Regenerates fixtures/vectors/chunking.json. Only writes with --write, because the default test
 * runner patterns would also execute this file and must never silently "fix" a boundary change.
 *
 *   npx tsc -p tsconfig.json && node dist/test/unit/chunking/regen-vectors.js --write
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { computeVectorFile, vectorFilePath } from './vectors.js';

const path = vectorFilePath();
const fresh = `${JSON.stringify(computeVectorFile(), null, 2)}\n`;
if (process.argv.includes('--write')) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, fresh);
  console.log(`wrote ${path}`);
} else {
  const same = existsSync(path) && readFileSync(path, 'utf8') === fresh;
  console.log(
    same
      ? `${path} is up to date`
      : `${path} differs from a fresh computation (pass --write to overwrite)`,
  );
}
