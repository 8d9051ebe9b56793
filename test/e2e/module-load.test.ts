/**
 * A command loads only what its remote needs: push, clone and pull through an http(s) remote
 * (a `mediagit server`) never import the cloud SDKs (@aws-sdk/client-s3 alone took 0.8–1 s to load
 * on this machine; issue 18), which only the s3://, azure:// and gs:// stores import, lazily. The
 * evidence is every module the process loaded, logged by a module hook the CLI is started with.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, test } from 'node:test';
import { runCli, tempDir } from '../support/cli.js';
import { Prng } from '../support/corpus.js';
import { createS3TestBucket } from '../support/s3-bucket.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';
import { skipUnlessServer } from '../support/test-servers.js';

/** Appends the URL of every module loaded to $MODULE_LOG (synchronous hooks: Node 22.15 and later). */
const HOOK = `import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
const log = process.env.MODULE_LOG;
registerHooks({
  load(url, context, next) {
    appendFileSync(log, url + '\\n');
    return next(url, context);
  },
});
`;

const SDKS = /\/node_modules\/@(aws-sdk|smithy|azure|google-cloud)\//;

async function writeHook(work: string): Promise<string> {
  const hook = path.join(work, 'hook.mjs');
  await writeFile(hook, HOOK);
  return hook;
}

/** Runs the CLI with the hook; answers the URLs of every module it loaded. */
const loggedRun =
  (work: string, hook: string, env: Record<string, string>) =>
  async (what: string, cwd: string, args: string[]): Promise<string[]> => {
    const log = path.join(work, `${what}.log`);
    await writeFile(log, '');
    await runCli(args, {
      cwd,
      env: { ...env, MODULE_LOG: log, NODE_OPTIONS: `--import=${pathToFileURL(hook).href}` },
    });
    return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
  };

let server: TestServer | undefined;
after(() => server?.close());

describe('modules a command loads', () => {
  test('push, clone and pull through a mediagit server load no cloud SDK', async () => {
    server = await startTestServer();
    const work = await tempDir('module-load');
    const hook = await writeHook(work);
    const env = {
      MEDIAGIT_TOKEN: await server.token('*', 'write'),
      XDG_CONFIG_HOME: path.join(work, 'xdg'),
    };
    const logged = loggedRun(work, hook, env);
    const repo = path.join(work, 'repo');
    await runCli(['init', '-q', repo], { cwd: work, env });
    await writeFile(path.join(repo, 'a.bin'), new Prng('a').fill(Buffer.alloc(300_000)));
    await runCli(['add', '.'], { cwd: repo, env });
    await runCli(['commit', '-q', '-m', 'v1'], { cwd: repo, env });
    await runCli(['remote', 'add', 'origin', `${server.url}/modules`], { cwd: repo, env });
    const loads = {
      push: await logged('push', repo, ['push', '-q', 'origin', 'main']),
      clone: await logged('clone', work, ['clone', '-q', `${server.url}/modules`, 'clone']),
    };
    await writeFile(path.join(repo, 'b.bin'), new Prng('b').fill(Buffer.alloc(100_000)));
    await runCli(['add', '.'], { cwd: repo, env });
    await runCli(['commit', '-q', '-m', 'v2'], { cwd: repo, env });
    await runCli(['push', '-q'], { cwd: repo, env });
    const pulled = await logged('pull', path.join(work, 'clone'), ['pull', '-q']);
    for (const [what, urls] of Object.entries({ ...loads, pull: pulled })) {
      // The hook saw the command's own modules: the evidence is real. (Not node:http: the HTTP
      // client takes it with process.getBuiltinModule, which no load hook sees.)
      assert.ok(
        urls.some((u) => u.endsWith('/bin/mediagit.js')) &&
          urls.some((u) => /\/dist\/(bundle|src)\//.test(u)),
        `${what}: the hook logged ${urls.length} modules, not the CLI's`,
      );
      const sdk = urls.filter((u) => SDKS.test(u));
      assert.deepEqual(sdk.slice(0, 3), [], `${what} loaded ${sdk.length} cloud SDK modules`);
    }
  });

  test(
    'push, clone and fetch with an s3:// remote with static keys load no AWS SDK',
    { skip: skipUnlessServer('s3') },
    async () => {
      const work = await tempDir('module-load-s3');
      const hook = await writeHook(work);
      const bucket = `mg-modules-${Date.now().toString(36)}`;
      const options = Object.entries(await createS3TestBucket(bucket)).flatMap(([k, v]) => [
        '-o',
        `${k}=${String(v)}`,
      ]);
      const env = { XDG_CONFIG_HOME: path.join(work, 'xdg') };
      const logged = loggedRun(work, hook, env);
      const repo = path.join(work, 'repo');
      await runCli(['init', '-q', repo], { cwd: work, env });
      await writeFile(path.join(repo, 'a.bin'), new Prng('s3a').fill(Buffer.alloc(300_000)));
      await runCli(['add', '.'], { cwd: repo, env });
      await runCli(['commit', '-q', '-m', 'v1'], { cwd: repo, env });
      const url = `s3://${bucket}/modules`;
      await runCli(['remote', 'add', 'origin', url, ...options], { cwd: repo, env });
      const loads = {
        push: await logged('push', repo, ['push', '-q', 'origin', 'main']),
        clone: await logged('clone', work, ['clone', '-q', url, 'clone', ...options]),
        fetch: await logged('fetch', repo, ['fetch', '-q', 'origin']),
      };
      for (const [what, urls] of Object.entries(loads)) {
        assert.ok(
          urls.some((u) => /\/dist\/(bundle\/s3-store|src\/store\/s3\/)/.test(u)),
          `${what}: the hook did not see the S3 store load`,
        );
        const sdk = urls.filter((u) => SDKS.test(u));
        assert.deepEqual(sdk.slice(0, 3), [], `${what} loaded ${sdk.length} cloud SDK modules`);
      }
    },
  );
});
