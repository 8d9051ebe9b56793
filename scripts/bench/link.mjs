#!/usr/bin/env node
// One link emulator in its own process (node scripts/bench/link.mjs <target-url> <rate>,<rtt>),
// so that the bench's synchronous spawns never stall it and it competes for the CPU as a router
// would, not inside a contender. Forked with IPC: sends {url} when ready, answers 'counters'.
import path from 'node:path';
import { root } from './measure.mjs';

const { startLinkEmulator, parseLinkSpec } = await import(
  path.join(root, 'dist/test/support/link-emulator.js')
);
const [target, spec] = process.argv.slice(2);
const link = await startLinkEmulator({ target, ...parseLinkSpec(spec) });
process.on('message', (m) => {
  if (m === 'counters') process.send({ counters: link.counters() });
  if (m === 'close') link.close().then(() => process.exit(0));
});
process.send({ url: link.url });
