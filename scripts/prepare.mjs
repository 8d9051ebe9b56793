#!/usr/bin/env node
// npm's `prepare` hook: runs on `npm install` in a clone, before `npm pack`/`npm publish`, and for
// `npm install -g .` or a git URL. A clone has no dist/ (it is built, not committed), so without
// this an installed `mediagit` answered --version and failed every other command. Builds only
// when the bundle is missing: `npm ci` in a built tree stays fast, and `npm test` rebuilds anyway.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
if (existsSync(path.join(root, 'dist', 'bundle', 'mediagit.js'))) process.exit(0);

const npm = (args) => {
  // The hook inherits the outer command's settings as npm_config_*; a global install's
  // prefix and `global` must not turn the folder's own install into another global one.
  const env = { ...process.env };
  for (const key of Object.keys(env))
    if (/^npm_config_(global|prefix|location|install_links|omit|include|production)$/i.test(key))
      delete env[key];
  const cli = process.env.npm_execpath;
  const result = cli
    ? spawnSync(process.execPath, [cli, ...args], { cwd: root, stdio: 'inherit', env })
    : spawnSync('npm', args, { cwd: root, stdio: 'inherit', env, shell: true });
  if (result.status !== 0) process.exit(result.status ?? 1);
};

// `npm install -g <folder>` links the folder without installing its dependencies, dev ones
// included, and the build needs the compiler and bundler: install them first, without scripts
// (this hook is one of them).
if (!existsSync(path.join(root, 'node_modules', 'typescript', 'package.json')))
  npm(['install', '--include=dev', '--ignore-scripts', '--no-audit', '--no-fund']);
npm(['run', 'build']);
