/**
 * A command loads only what its remote needs: push, clone and pull through an http(s) remote
 * (a `mediagit server`) never import the cloud SDKs (@aws-sdk/client-s3 alone took 0.8–1 s to load
 * on this machine; issue 18), which only the s3://, azure:// and gs:// stores import, lazily; and
 * status, add and commit, which talk to no remote, load no remote's code at all. The evidence is
 * every module the process loaded, logged by a module hook the CLI is started with, and the
 * built-in modules Node loaded (process.moduleLoadList), logged as the process exits.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, test } from 'node:test';
import { REPO_ROOT, runCli, tempDir } from '../support/cli.js';
import { Prng } from '../support/corpus.js';
import { createS3TestBucket } from '../support/s3-bucket.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';
import { skipUnlessServer } from '../support/test-servers.js';

/**
 * Appends the URL of every module loaded to $MODULE_LOG (synchronous hooks: Node 22.15 and later),
 * and at exit the main thread's built-ins as `builtin:<id>`, which no load hook sees when they are
 * taken with process.getBuiltinModule.
 */
const HOOK = `import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
const log = process.env.MODULE_LOG;
registerHooks({
  load(url, context, next) {
    appendFileSync(log, url + '\\n');
    return next(url, context);
  },
});
if (isMainThread)
  process.on('exit', () => {
    const builtins = process.moduleLoadList.filter((m) => m.startsWith('NativeModule '));
    appendFileSync(log, builtins.map((m) => 'builtin:' + m.slice(13) + '\\n').join(''));
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

/**
 * Our source modules among the logged URLs, as `sync/transfer.js`: a file of dist/src names itself,
 * a bundle chunk names each module it holds in esbuild's `// dist/src/<path>` comments.
 */
async function sourceModules(urls: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (const url of urls) {
    const src = /\/dist\/src\/(.+\.js)$/.exec(url);
    if (src) found.add(src[1]!);
    else if (/\/dist\/bundle\/[^/]+\.js$/.test(url))
      for (const m of (await readFile(new URL(url), 'utf8')).matchAll(
        /^\/\/ dist\/src\/(.+\.js)$/gm,
      ))
        found.add(m[1]!);
  }
  return found;
}

let server: TestServer | undefined;
after(() => server?.close());

describe('modules a command loads', () => {
  test('status, add and commit in a plain repository with remotes load no remote code, no key agent client and no unused built-ins', async () => {
    const work = await tempDir('module-load-local');
    const hook = await writeHook(work);
    const env = { XDG_CONFIG_HOME: path.join(work, 'xdg') };
    const logged = loggedRun(work, hook, env);
    const repo = path.join(work, 'repo');
    await runCli(['init', '-q', repo], { cwd: work, env });
    await writeFile(path.join(repo, 'a.bin'), new Prng('local-a').fill(Buffer.alloc(300_000)));
    await runCli(['add', '.'], { cwd: repo, env });
    await runCli(['commit', '-q', '-m', 'v1'], { cwd: repo, env });
    // A content remote (where a lean workspace's missing chunks would come from) and a server
    // remote that is never contacted: neither may pull its code into a local command.
    await runCli(['remote', 'add', 'origin', path.join(work, 'remote')], { cwd: repo, env });
    await runCli(['push', '-q', '--create', 'origin', 'main'], { cwd: repo, env });
    await runCli(['remote', 'add', 'web', 'http://127.0.0.1:9/modules'], { cwd: repo, env });
    await writeFile(path.join(repo, 'b.bin'), new Prng('local-b').fill(Buffer.alloc(200_000)));
    const loads = {
      status: await logged('status', repo, ['status', '--porcelain']),
      add: await logged('add', repo, ['add', '.']),
      commit: await logged('commit', repo, ['commit', '-q', '-m', 'v2']),
    };
    // The fetching machinery, and the HTTP client with the TLS stack it loads (its option table,
    // which checks a remote's options, is not code that talks to it).
    const remoteCode =
      /^(sync\/(transfer|fetch|push|clone|chunk-source|negotiation)\.js|store\/http\/(?!options\.js))/;
    for (const [what, urls] of Object.entries(loads)) {
      const ours = await sourceModules(urls);
      assert.ok(ours.has('repo/repository.js'), `${what}: the hook did not see the CLI's modules`);
      assert.deepEqual(
        [...ours].filter((m) => remoteCode.test(m)),
        [],
        `${what} loaded remote code`,
      );
      // The key agent's client (sockets, child processes) is for encrypted repositories.
      assert.ok(!ours.has('agent/client.js'), `${what} loaded the key agent's client`);
      // 200 KB to add, a status and a commit: nothing worth a worker thread's start.
      assert.ok(!urls.some((u) => u.endsWith('/chunk-worker.js')), `${what} started a worker`);
      const builtins = urls.filter((u) => u.startsWith('builtin:')).map((u) => u.slice(8));
      assert.ok(builtins.includes('fs'), `${what}: no built-ins were logged`);
      assert.deepEqual(
        builtins.filter((b) => ['http', 'https', 'tls', '_http_client'].includes(b)),
        [],
        `${what} loaded the HTTP stack`,
      );
      // The collector a worker thread sets up (node:v8, node:vm) only in a worker. (Not
      // node:worker_threads: the hook itself loads it.)
      assert.deepEqual(
        builtins.filter((b) => ['v8', 'vm'].includes(b)),
        [],
        `${what} loaded a worker's modules`,
      );
      // Each file of the bundle costs ~0.24 ms to resolve, read and link, compile cache or not
      // (docs/bench.md "Start-up: files on a command's path"): status loaded 37 when the workers'
      // entries split the CLI's chunks and the built-ins' stand-ins were shared, 27 since.
      const bundleFiles = urls.filter((u) => /\/dist\/bundle\/[^/]+\.js$/.test(u));
      if (what === 'status' && bundleFiles.length > 0)
        assert.ok(bundleFiles.length <= 29, `status loaded ${bundleFiles.length} bundle files`);
      // A status compresses and decodes nothing here: zstd's module is not loaded.
      if (what === 'status') assert.ok(!builtins.includes('zlib'), 'status loaded node:zlib');
      // An ES import of a built-in reads every export it has; node:process's \`report\` getter then
      // loads the diagnostic report module. Taken with getBuiltinModule, nothing reads it.
      assert.ok(
        !builtins.includes('internal/process/report'),
        `${what} built a namespace of a built-in module (it loaded internal/process/report)`,
      );
    }
  });

  test('a worker thread and the key agent each start from one file of the bundle', async () => {
    // Built apart from the CLI (scripts/bundle.mjs): a worker shares no loaded module with the CLI,
    // so a shared chunk would only cost it files and split the CLI's chunks further.
    for (const name of ['chunk-worker.js', 'verify-worker.js', 'agent-process.js']) {
      const code = await readFile(path.join(REPO_ROOT, 'dist', 'bundle', name), 'utf8').catch(
        () => undefined,
      );
      if (code === undefined) continue; // no bundle: dist/src runs, file per module
      assert.deepEqual(
        [...code.matchAll(/(?:from|import)\s*\(?\s*["'](\.\/[^"']+)["']/g)].map((m) => m[1]),
        [],
        `${name} imports other files of the bundle`,
      );
    }
  });

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
