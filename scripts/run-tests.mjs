#!/usr/bin/env node
// Runs the compiled test suites with Node's built-in runner, one group at a
// time (unit, then e2e, then integration, then security) so that slow groups never compete
// with fast ones for the two cores, and prints one combined summary.
//
// Usage: node scripts/run-tests.mjs [node/test-runner options] [FILTER...]
//   Options (anything starting with "-") are passed to node, e.g.
//   --test-name-pattern=chunk or --test-only.
//   A FILTER is a group name (unit, e2e, integration, security) or keeps only test files
//   whose path contains it; it may name the TypeScript source
//   (test/unit/foo.test.ts) or the compiled file (dist/test/unit/foo.test.js).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const distTest = path.join(repoRoot, 'dist', 'test');
const GROUPS = ['unit', 'e2e', 'integration', 'security'];

// Node options that take their value as the next argument; without this list
// `--test-name-pattern foo` would turn "foo" into a file filter.
const OPTIONS_WITH_VALUE = new Set([
  '--test-name-pattern',
  '--test-skip-pattern',
  '--test-timeout',
  '--test-shard',
  '--test-coverage-include',
  '--test-coverage-exclude',
  '--test-coverage-branches',
  '--test-coverage-functions',
  '--test-coverage-lines',
  '--test-global-setup',
  '--import',
  '--require',
  '-r',
  '--conditions',
  '-C',
  '--env-file',
  '--stack-trace-limit',
]);

function parseArgs(argv) {
  const nodeOptions = [];
  const filters = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      filters.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('-')) {
      nodeOptions.push(arg);
      if (OPTIONS_WITH_VALUE.has(arg) && i + 1 < argv.length) nodeOptions.push(argv[++i]);
    } else {
      filters.push(arg);
    }
  }
  return { nodeOptions, filters: filters.map(normalizeFilter) };
}

// Lets a filter written against src paths match the compiled output.
function normalizeFilter(filter) {
  let f = filter.split(path.sep).join('/').replace(/^\.\//, '');
  const abs = path.resolve(filter).split(path.sep).join('/');
  const root = repoRoot.split(path.sep).join('/') + '/';
  if (abs.startsWith(root)) f = abs.slice(root.length);
  f = f.replace(/^dist\//, '');
  return f.replace(/\.ts$/, '.js');
}

function findTests(group) {
  const dir = path.join(distTest, group);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.test.js'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort();
}

const SUMMARY_KEYS = [
  'tests',
  'suites',
  'pass',
  'fail',
  'cancelled',
  'skipped',
  'todo',
  'duration_ms',
];

// Reads the top-level TAP trailer ("# pass 3" at column 0); nested subtest
// diagnostics are indented, so they never match.
function parseTapSummary(text) {
  const counts = {};
  for (const line of text.split('\n')) {
    const m = /^# (\w+) (\d+(?:\.\d+)?)\s*$/.exec(line);
    if (m && SUMMARY_KEYS.includes(m[1])) counts[m[1]] = Number(m[2]);
  }
  return 'pass' in counts && 'fail' in counts ? counts : null;
}

function runGroup(group, files, nodeOptions, tapFile) {
  const args = [
    '--test',
    '--test-concurrency=2',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...nodeOptions,
    ...files,
  ];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: repoRoot,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', (err) => {
      console.error(`run-tests: could not start node for ${group}: ${err.message}`);
      resolve({ code: 1, signal: null });
    });
    child.on('close', (code, signal) => resolve({ code: code ?? 1, signal }));
  });
}

async function main() {
  const { nodeOptions, filters } = parseArgs(process.argv.slice(2));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mediagit-run-tests-'));
  const total = Object.fromEntries(SUMMARY_KEYS.map((k) => [k, 0]));
  let failedGroups = 0;
  let ranFiles = 0;

  try {
    for (const group of GROUPS) {
      let files = findTests(group);
      if (filters.length > 0) {
        files = files.filter((f) => {
          const rel = path.relative(distTest, f).split(path.sep).join('/');
          return filters.some((flt) =>
            GROUPS.includes(flt) ? flt === group : `test/${rel}`.includes(flt) || rel.includes(flt),
          );
        });
      }
      if (files.length === 0) continue;
      ranFiles += files.length;

      console.log(`\n=== ${group}: ${files.length} file${files.length === 1 ? '' : 's'} ===`);
      const tapFile = path.join(tmp, `${group}.tap`);
      const { code, signal } = await runGroup(group, files, nodeOptions, tapFile);
      const tap = fs.existsSync(tapFile) ? fs.readFileSync(tapFile, 'utf8') : '';
      const counts = parseTapSummary(tap);

      if (counts) {
        for (const k of SUMMARY_KEYS) total[k] += counts[k] ?? 0;
      } else {
        // The runner died before its summary; count the group as one failure
        // so the closing line never reads "0 failed" for a broken run.
        console.error(`run-tests: ${group} ended without a test summary (exit ${signal ?? code})`);
        total.tests += 1;
        total.fail += 1;
      }
      if (code !== 0 || signal !== null || (counts && counts.fail + counts.cancelled > 0)) {
        failedGroups += 1;
        // A non-zero exit with every test passing (e.g. a bad option) is still a failure.
        if (counts && counts.fail + counts.cancelled === 0) {
          console.error(
            `run-tests: ${group} exited with ${signal ?? code} although no test failed`,
          );
          total.fail += 1;
        }
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  if (filters.length > 0 && ranFiles === 0) {
    console.error(`run-tests: no test file matches ${filters.join(', ')}`);
    failedGroups += 1;
    total.fail += 1;
  }

  const failed = total.fail + total.cancelled;
  const skipped = total.skipped + total.todo;
  console.log('\n=== all groups ===');
  for (const k of SUMMARY_KEYS) {
    const v = k === 'duration_ms' ? total[k].toFixed(3) : String(total[k]);
    console.log(`# ${k} ${v}`);
  }
  console.log(`${total.pass} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
  process.exitCode = failedGroups > 0 || failed > 0 ? 1 : 0;
}

await main();
