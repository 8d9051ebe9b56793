#!/usr/bin/env node
// npm run build, second step: bundles tsc's output (dist/src) into dist/bundle, which
// bin/mediagit.js runs. One file per entry plus shared chunks instead of ~150 modules cuts
// ~15 ms of module resolution and loading from every command and from every worker thread.
// The heavy SDKs and the server's framework stay external: they are imported lazily, only by the
// commands that talk to them, and load from node_modules as they would without a bundle.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Node's built-in modules, taken with process.getBuiltinModule instead of an ES import. An ES
 * import of a built-in builds a namespace of every export it has, and reading them runs lazy
 * getters that load modules nobody asked for (node:process loads the diagnostic report, node:util
 * the argument parser and diff, node:http the bundled fetch client): ~9 ms of CPU at every start
 * of the CLI and of every worker thread. Each export a module imports is read once, when the
 * module is first evaluated, as the ES import did; unused ones are dropped (the reads are pure).
 */
const builtinsOnDemand = {
  name: 'builtins-on-demand',
  setup(b) {
    // One stand-in per importing module (`node:fs|repo/index-file.js`), not one per built-in: a
    // stand-in shared by modules of different commands became a chunk file of its own (~200-900
    // bytes; 7 of status's 32 files, 8 of a push's 42), while one used by a single module lands
    // in that module's chunk. The copies cost a few hundred bytes each.
    b.onResolve({ filter: /^node:/ }, (args) => ({
      path: `${args.path}|${path.relative(root, args.importer)}`,
      namespace: 'node-builtin',
    }));
    b.onLoad({ filter: /.*/, namespace: 'node-builtin' }, (args) => {
      const id = args.path.slice(0, args.path.indexOf('|'));
      const names = Object.keys(process.getBuiltinModule(id)).filter(
        (n) => n !== 'default' && /^[A-Za-z_$][\w$]*$/.test(n),
      );
      const lines = [
        `const m = process.getBuiltinModule(${JSON.stringify(id)});`,
        'const pick = (name) => m[name];',
        'export default m;',
        ...names.map(
          (n, i) =>
            `const e${i} = /* @__PURE__ */ pick(${JSON.stringify(n)}); export { e${i} as ${n} };`,
        ),
      ];
      return { contents: lines.join('\n'), loader: 'js' };
    });
  },
};

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'bundle');
rmSync(out, { recursive: true, force: true });

const common = {
  absWorkingDir: root,
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  external: [
    '@aws-sdk/*',
    '@smithy/*',
    '@azure/*',
    '@google-cloud/*',
    'fastify',
    'undici',
    'prom-client',
    'jose',
    'hash-wasm',
    'ora',
    'sharp',
  ],
  plugins: [builtinsOnDemand],
  logLevel: 'warning',
};

// The CLI: its entry, one file per lazily imported command or store, and the chunks they share.
// Flat output: code that locates a sibling entry with new URL('./x.js', import.meta.url)
// (the chunk worker, the key agent) finds it from any chunk, as it does in dist/src/<layer>/.
await build({
  ...common,
  entryPoints: { mediagit: 'dist/src/cli/main.js' },
  splitting: true,
});

/**
 * The worker threads' and the key agent's entries, one self-contained file each, built apart from
 * the CLI. A worker or a child process has a module graph of its own (nothing of the CLI's loaded
 * modules is shared with it), so code it has in common with the CLI gains nothing from living in a
 * shared chunk; as entries of the CLI's build they split every chunk they share with it by one
 * more set of importers: 5 more files on each command's way to its first request (status 37 -> 32,
 * push through a server 47 -> 42), and 17 files instead of one at every chunk worker's start. A
 * file costs ~0.24 ms to resolve, read and link even from the compile cache (docs/bench.md).
 */
for (const [name, entry] of Object.entries({
  'chunk-worker': 'dist/src/workers/chunk-worker.js',
  'verify-worker': 'dist/src/server/verify-worker.js',
  'agent-process': 'dist/src/agent/agent-process.js',
}))
  await build({ ...common, entryPoints: { [name]: entry }, splitting: false });
