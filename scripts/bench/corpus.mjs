// The generated corpus (two versions of an asset project, cached) and the machine's floors on it.
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { cache, profile, root, sh, work } from './measure.mjs';

const { makeCorpus } = await import(path.join(root, 'dist/test/support/corpus.js'));
export { makeCorpus };

export async function corpus(version) {
  const dir = path.join(cache, `corpus-${profile}-v${version}`);
  if (existsSync(path.join(dir, '.complete'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  if (version === 1) await makeCorpus(dir, 1, profile);
  else {
    sh(`cp -a "${await corpus(1)}/." "${dir}/"`, root);
    rmSync(path.join(dir, '.complete'), { force: true });
    await makeCorpus(dir, 2, profile);
  }
  sh(`touch "${dir}/.complete"`, root);
  return dir;
}

// Each floor is the median of three runs: a single cp -r swings 4× with the page cache's mood.
const median3 = (f) => [f(), f(), f()].sort((a, b) => a - b)[1];

/** Reading, hashing and copying v1, page cache warm: measured again in every round. */
export function measureFloors(v1) {
  return {
    read: median3(() => sh(`find "${v1}" -type f -exec cat {} + | wc -c > /dev/null`, root).secs),
    sha256: median3(
      () => sh(`find "${v1}" -type f -exec openssl dgst -sha256 {} + > /dev/null`, root).secs,
    ),
    cp: median3(() => {
      const dst = path.join(work, 'cp-floor');
      rmSync(dst, { recursive: true, force: true });
      const secs = sh(`cp -r "${v1}" "${dst}"`, root).secs;
      rmSync(dst, { recursive: true, force: true });
      return secs;
    }),
  };
}
