/**
 * Command-line entry of the fake GCS server:
 *   node dist/test/servers/gcs/server.js [--port 4443] [--host 127.0.0.1] [--verbose]
 *     [--object-write-interval-ms N]   (GCS's one-write-per-second-per-object limit; default off)
 * Prints one "fake-gcs listening on <url>" line once it accepts connections (test/servers/gcs.sh
 * waits for it) and stops cleanly on SIGTERM or SIGINT.
 */
import { parseArgs } from 'node:util';
import { startFakeGcs } from './fake-gcs.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4443' },
    host: { type: 'string', default: '127.0.0.1' },
    verbose: { type: 'boolean', default: false },
    'object-write-interval-ms': { type: 'string', default: '0' },
  },
  strict: true,
});

// Test infrastructure with no authentication: it must never be reachable from another machine.
if (!['127.0.0.1', '::1', 'localhost'].includes(values.host)) {
  console.error(
    `fake-gcs: refusing to listen on ${values.host}; only loopback addresses are allowed`,
  );
  process.exit(2);
}

const port = Number(values.port);
const objectWriteIntervalMs = Number(values['object-write-interval-ms']);
if (!Number.isInteger(objectWriteIntervalMs) || objectWriteIntervalMs < 0) {
  console.error(
    `fake-gcs: invalid --object-write-interval-ms ${values['object-write-interval-ms']}`,
  );
  process.exit(2);
}
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`fake-gcs: invalid --port ${values.port}`);
  process.exit(2);
}

try {
  const server = await startFakeGcs({
    host: values.host,
    port,
    objectWriteIntervalMs,
    ...(values.verbose ? { log: (line: string) => console.error(`fake-gcs: ${line}`) } : {}),
  });
  console.log(`fake-gcs listening on ${server.url}`);
  const stop = (signal: string): void => {
    console.log(`fake-gcs: ${signal}, shutting down`);
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
} catch (err) {
  console.error(
    `fake-gcs: cannot listen on ${values.host}:${port}: ${err instanceof Error ? err.message : String(err)}`,
  );
  process.exit(1);
}
