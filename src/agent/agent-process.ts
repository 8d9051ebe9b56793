/**
 * Entry point of the detached key agent process (`key cache` starts it with the socket path as
 * its only argument). Kept apart from the CLI so the agent loads nothing it does not need.
 */
import { runAgent } from './server.js';

const socketPath = process.argv[2];
if (!socketPath) {
  process.stderr.write(
    'usage: node agent-process.js <socket path> (started by `mediagit key cache`)\n',
  );
  process.exit(2);
}
process.title = 'mediagit-agent';
try {
  await runAgent({ socketPath });
  process.exit(0);
} catch {
  // Nobody reads a detached process's output; the client notices the agent never answered.
  process.exit(1);
}
