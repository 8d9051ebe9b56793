import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/**
 * mediagit's version, from the package.json above this module. Looked up by walking up rather than
 * by a fixed relative path: the code runs both from dist/src/<layer>/ (tsc) and from dist/bundle/.
 */
export function packageVersion(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'mediagit' && typeof pkg.version === 'string') return (cached = pkg.version);
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("mediagit's package.json was not found above its code");
    dir = parent;
  }
}
