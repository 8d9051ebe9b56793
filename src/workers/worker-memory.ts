/**
 * Every zstd call leaves a native context (MiBs) behind a tiny JS wrapper. A worker thread's heap
 * is so small that V8 would let ~70 MiB of them pile up before collecting on its own; a
 * young-generation collection every few MiB of work (well under a millisecond) keeps the worker's
 * memory flat. Workers refuse --expose-gc in execArgv, so the flag is set at run time and the
 * collector taken from a fresh context. For worker threads only.
 */

/** A function to call with the bytes each job went through; it collects every `everyBytes`. */
export function periodicCollection(everyBytes = 8 * 1024 * 1024): (bytes: number) => void {
  // Taken here, not imported: the main thread bundles this module beside code it does use, and
  // an import would load node:v8 and node:vm into every command.
  const { setFlagsFromString } = process.getBuiltinModule('node:v8');
  const { runInNewContext } = process.getBuiltinModule('node:vm');
  setFlagsFromString('--expose-gc');
  const collect = runInNewContext('gc') as (options: { type: 'minor' | 'major' }) => void;
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since >= everyBytes) {
      since = 0;
      collect({ type: 'minor' });
    }
  };
}
