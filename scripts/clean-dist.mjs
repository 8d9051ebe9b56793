#!/usr/bin/env node
// Empties dist/ before a build: tsc never deletes the output of a source that was renamed or
// removed, and the test runner would go on running those stale compiled tests.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
fs.rmSync(dist, { recursive: true, force: true });
