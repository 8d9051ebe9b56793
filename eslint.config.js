// Flat config. typescript-eslint's non-type-checked preset keeps `eslint .`
// fast: it needs no TypeScript program, so lint time does not grow with the
// type graph. `tsc` already enforces the type-level rules.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Declared inline rather than through the `globals` package so linting adds no
// dependency; extend when a script needs another runtime global.
const nodeGlobals = Object.fromEntries(
  [
    'AbortController',
    'AbortSignal',
    'Blob',
    'Buffer',
    'DOMException',
    'Event',
    'EventTarget',
    'TextDecoder',
    'TextEncoder',
    'URL',
    'URLSearchParams',
    'clearImmediate',
    'clearInterval',
    'clearTimeout',
    'console',
    'crypto',
    'fetch',
    'global',
    'performance',
    'process',
    'queueMicrotask',
    'setImmediate',
    'setInterval',
    'setTimeout',
    'structuredClone',
  ].map((name) => [name, 'readonly']),
);

// A leading underscore marks a binding that is unused on purpose: a callback parameter kept for
// its position, or a loop variable when only the iteration count matters.
const unusedVars = {
  argsIgnorePattern: '^_',
  varsIgnorePattern: '^_',
  caughtErrorsIgnorePattern: '^_',
  destructuredArrayIgnorePattern: '^_',
};

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'fixtures/', '.cache/']),

  {
    name: 'mediagit/typescript',
    files: ['src/**/*.ts', 'test/**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      'no-unused-vars': 'off',
      '@typescript-eslint/no-unused-vars': ['error', unusedVars],
    },
  },

  {
    name: 'mediagit/node-scripts',
    files: ['scripts/**/*.{js,mjs}', 'bin/**/*.{js,mjs}', '*.{js,mjs}'],
    extends: [js.configs.recommended],
    languageOptions: {
      ecmaVersion: 'latest',
      sourceType: 'module',
      globals: nodeGlobals,
    },
    rules: {
      'no-unused-vars': ['error', unusedVars],
    },
  },
);
