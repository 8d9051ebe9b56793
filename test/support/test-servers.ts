/**
 * Which integration suites may skip. A developer without a test server running gets a skip with
 * the command that starts it; under CI (`CI=true`) a missing server is a failure instead, because
 * `.ci/run` starts every server, and a suite that silently skips would turn a broken backend green.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

export type TestServerName = 's3' | 'azure' | 'gcs';

const SERVERS: Record<TestServerName, { variable: string; start: string }> = {
  s3: {
    variable: 'MEDIAGIT_TEST_S3_ENDPOINT',
    start: 'test/servers/radosgw.sh start && eval "$(test/servers/radosgw.sh env)"',
  },
  azure: {
    variable: 'MEDIAGIT_TEST_AZURE_ENDPOINT',
    start: 'test/servers/azurite.sh start && eval "$(test/servers/azurite.sh env)"',
  },
  gcs: {
    variable: 'MEDIAGIT_TEST_GCS_ENDPOINT',
    start: 'npm run build && test/servers/gcs.sh start && eval "$(test/servers/gcs.sh env)"',
  },
};

const reported = new Set<TestServerName>();

/** True when running under CI, where every test server must be up. */
export function serversRequired(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env['CI'];
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

/**
 * `false` when the server's endpoint is set, otherwise the reason to skip the tests that need it.
 * Under CI the missing server is also reported once per test file as a failing test, so the run
 * goes red with a line that names the server rather than passing with skips.
 */
export function skipUnlessServer(name: TestServerName): string | false {
  const { variable, start } = SERVERS[name];
  if (process.env[variable]) return false;
  const reason = `${variable} is not set: start the server with \`${start}\``;
  if (serversRequired() && !reported.has(name)) {
    reported.add(name);
    test(`the ${name} test server is running (required under CI=true)`, () => {
      assert.fail(`${reason}; .ci/run starts it, so under CI its absence is a failure`);
    });
  }
  return reason;
}
