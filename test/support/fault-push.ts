/**
 * A push of a media corpus to a real `mediagit server` process under two kinds of fault, re-run
 * the way a user or a script would (`until mediagit push; do :; done`, bounded) until it lands:
 *
 * Each run is a fresh `mediagit push`, so only what the remote confirms it has is skipped (the client
 * keeps no record of what it sent).
 *
 * - `kills`: the server is SIGKILLed and restarted on the same address at seeded moments, each
 *   picked as an amount of request-body bytes the push has sent so far (no clocks);
 * - `resets`: every connection is reset once 8 MiB (by default) of request bytes went through it.
 *
 * The client talks to the server through a fault proxy (test/support/fault-proxy.ts) in both, which
 * counts what it sends: every request-body byte, the bytes of requests that were cut before their
 * reply, and the uploads that were answered. Compared with what the remote ends up storing, that
 * shows whether re-runs send only what was missing. Then `fsck --remote origin --full` and a fresh
 * clone, compared file by file (SHA-256) with what was pushed.
 *
 * Used by test/security/fault-push.test.ts (small) and scripts/fault-push.mjs (~500 MB).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCli, type CliResult } from './cli.js';
import { makeCorpus } from './corpus.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { seededRandom } from './faulty-store.js';
import { startTestServer, type TestServer } from './server-harness.js';

const MIB = 1024 * 1024;
/** Version 1 of the full corpus profile, in bytes (makeCorpus at scale 1). */
export const FULL_CORPUS_BYTES = 600 * MIB;

export interface PushSource {
  /** A committed mediagit repository holding the corpus. */
  readonly dir: string;
  readonly files: number;
  /** Bytes of the working files. */
  readonly bytes: number;
  /** SHA-256 of every working file, by path relative to `dir` ('/'-separated). */
  readonly hashes: ReadonlyMap<string, string>;
}

/** Writes ~`mb` MiB of the media corpus into `dir`, then init, add and commit it. */
export async function preparePushSource(
  dir: string,
  mb: number,
  env: Record<string, string> = {},
): Promise<PushSource> {
  await mkdir(dir, { recursive: true });
  const { files, bytes } = await makeCorpus(dir, 1, 'full', {
    scale: (mb * MIB) / FULL_CORPUS_BYTES,
  });
  const hashes = await hashTree(dir);
  const run = (args: string[]): Promise<CliResult> =>
    runCli(args, { cwd: dir, env, timeoutMs: 60 * 60_000 });
  await run(['init', '-q']);
  await run(['add', '.']);
  await run(['commit', '-q', '-m', 'media corpus']);
  return { dir, files, bytes, hashes };
}

/** SHA-256 of every file under `dir`, skipping the `.mediagit` folder. */
export async function hashTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  for (const e of entries) {
    if (!e.isFile()) continue;
    const full = path.join(e.parentPath, e.name);
    const rel = path.relative(dir, full).split(path.sep).join('/');
    if (rel === '.mediagit' || rel.startsWith('.mediagit/')) continue;
    const hash = createHash('sha256');
    for await (const piece of createReadStream(full)) hash.update(piece as Buffer);
    out.set(rel, hash.digest('hex'));
  }
  return out;
}

export type FaultScenario = 'kills' | 'resets';

export interface FaultPushOptions {
  readonly scenario: FaultScenario;
  readonly source: PushSource;
  /** Scratch folder for the server's storage and the clone. */
  readonly workDir: string;
  /** Seeds the kill moments. */
  readonly seed?: number;
  /** `kills`: how many times the server is killed and restarted. Default 3. */
  readonly kills?: number;
  /** `resets`: request bytes after which every connection is reset. Default 8 MiB. */
  readonly resetAfterBytes?: number;
  /** Options of the remote (`remote add -o key=value`), e.g. fewer connections. */
  readonly remoteOptions?: Readonly<Record<string, string | number>>;
  /** Push runs before giving up. Default 20. */
  readonly maxAttempts?: number;
  /** Limit for each command (a safety net against a hang, not a measurement). Default 60 min. */
  readonly commandTimeoutMs?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

export interface FaultPushResult {
  readonly scenario: FaultScenario;
  readonly seed: number;
  /** `kills`: the request-body byte counts at which the server was to be killed. */
  readonly killAt: readonly number[];
  /** Kills that landed while a push was running. */
  readonly killsLanded: number;
  /** Connections reset by the proxy (`resets`). */
  readonly resets: number;
  /** Push runs, and their exit codes in order. */
  readonly attempts: number;
  readonly exitCodes: readonly number[];
  readonly pushed: boolean;
  /** Wall time of all the push runs, restarts included. */
  readonly pushMs: number;
  /** Every request-body byte the client sent. */
  readonly sentBytes: number;
  /** Of those, the bytes of requests cut before their reply. */
  readonly cutBytes: number;
  /** Of those, the bytes of requests answered in full. */
  readonly answeredBytes: number;
  /** Bytes of the object files the remote stores (chunks, structured objects, descriptor). */
  readonly neededBytes: number;
  /** Single-object uploads the server already had (answered 200, not 201), and their bytes. */
  readonly resentUploads: number;
  readonly resentBytes: number;
  /** `fsck --remote origin --full` exit code and its last line. */
  readonly fsckCode: number;
  readonly fsckSummary: string;
  /** A fresh clone: exit code, and whether every file matches the source's SHA-256. */
  readonly cloneCode: number;
  readonly cloneIdentical: boolean;
  readonly cloneMismatches: readonly string[];
  /** The first line of each failed push's error, deduplicated. */
  readonly pushErrors: readonly string[];
}

/** A port nothing listens on right now (taken from the kernel, then released). */
export async function freePort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Bytes of the files of one repository on the server, leaving out its temporary files. */
async function storedBytes(repoDir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(repoDir, { recursive: true, withFileTypes: true });
  for (const e of entries) {
    if (!e.isFile()) continue;
    const rel = path.relative(repoDir, path.join(e.parentPath, e.name));
    if (rel.split(path.sep)[0] === 'tmp') continue;
    total += (await stat(path.join(e.parentPath, e.name))).size;
  }
  return total;
}

/** Seeded kill moments: `kills` points spread over (10 %, 90 %) of `expected` bytes, ascending. */
export function killPoints(seed: number, kills: number, expected: number): number[] {
  const random = seededRandom(seed);
  const points: number[] = [];
  // One point in each equal slice, so kills never bunch up into one retry window.
  for (let i = 0; i < kills; i++) {
    const slice = 0.8 / kills;
    points.push(Math.round(expected * (0.1 + slice * i + slice * (0.15 + 0.7 * random()))));
  }
  return points;
}

/** A single-object upload (chunks one by one; structured objects travel in packs). */
const isObjectPut = (method: string, p: string): boolean =>
  method === 'PUT' && /\/(chunks|manifests|objects)\/[0-9a-f]{64}$/.test(p);

export async function runFaultPush(options: FaultPushOptions): Promise<FaultPushResult> {
  const { scenario, source } = options;
  const seed = options.seed ?? 1;
  const log = options.log ?? ((): void => undefined);
  const timeoutMs = options.commandTimeoutMs ?? 60 * 60_000;
  const maxAttempts = options.maxAttempts ?? 20;
  const repoName = `fault-${scenario}`;
  const data = path.join(options.workDir, `${scenario}-storage`);
  const port = await freePort();
  const secret = randomBytes(32).toString('hex');
  const start = (): Promise<TestServer> =>
    startTestServer({
      child: true,
      port,
      env: { MEDIAGIT_JWT_SECRET: secret },
      config: `[storage]\nbackend = "local"\n[storage.local]\npath = ${JSON.stringify(data)}\nfsync = false\n`,
    });
  const servers: TestServer[] = [await start()];
  const current = (): TestServer => servers[servers.length - 1]!;
  let proxy: FaultProxy | undefined;
  try {
    proxy = await startFaultProxy({
      target: current().url,
      ...(scenario === 'resets'
        ? { resetAfterRequestBytes: options.resetAfterBytes ?? 8 * MIB }
        : {}),
    });
    const token = await current().token(repoName, 'write', 'artist');
    const env = { MEDIAGIT_TOKEN: token };
    const inSource = (args: string[], allowFail = false): Promise<CliResult> =>
      runCli(args, { cwd: source.dir, env, timeoutMs, allowFail });
    await inSource(['remote', 'remove', 'origin'], true);
    await inSource([
      'remote',
      'add',
      'origin',
      `${proxy.url}/${repoName}`,
      ...Object.entries(options.remoteOptions ?? {}).flatMap(([k, v]) => ['-o', `${k}=${v}`]),
    ]);

    // Kill moments are counted in what the push has sent, against what it has to send.
    const local = path.join(source.dir, '.mediagit');
    const expected =
      (await storedBytes(path.join(local, 'chunks'))) +
      (await storedBytes(path.join(local, 'objects')));
    const killAt = scenario === 'kills' ? killPoints(seed, options.kills ?? 3, expected) : [];
    let pushing = true;
    let killsLanded = 0;
    const traffic = proxy.traffic;
    const killer = (async () => {
      for (const [i, at] of killAt.entries()) {
        while (pushing && traffic.bodyBytes < at) await sleep(5);
        if (!pushing) return;
        const victim = current();
        victim.process!.kill('SIGKILL');
        await victim.exited;
        killsLanded++;
        log(`kill ${i + 1}/${killAt.length} at ${(traffic.bodyBytes / MIB).toFixed(1)} MiB sent`);
        servers.push(await start());
      }
    })();

    const exitCodes: number[] = [];
    const errors = new Set<string>();
    const began = performance.now();
    let pushed = false;
    try {
      while (!pushed && exitCodes.length < maxAttempts) {
        const res = await inSource(['push', 'origin'], true);
        exitCodes.push(res.code);
        pushed = res.code === 0;
        if (!pushed) {
          const line =
            res.stderr
              .trim()
              .split('\n')
              .find((l) => l.startsWith('error')) ?? '';
          errors.add(line || res.stderr.trim().split('\n')[0] || `exit ${res.code}`);
          log(`push run ${exitCodes.length} failed (exit ${res.code}): ${line}`);
          // As `until mediagit push; do sleep 1; done`: a server still restarting is not worth a
          // run a millisecond later.
          await sleep(1000);
        }
      }
    } finally {
      pushing = false;
      await killer;
    }
    const pushMs = performance.now() - began;

    // The server answers an object upload 201 when it stored it and 200 when it had it already:
    // every 200 is an object sent again although the remote held it.
    let resentUploads = 0;
    let resentBytes = 0;
    let answeredBytes = 0;
    for (const r of traffic.answered) {
      answeredBytes += r.bodyBytes;
      if (isObjectPut(r.method, r.path) && r.status === 200) {
        resentUploads++;
        resentBytes += r.bodyBytes;
      }
    }
    const neededBytes = await storedBytes(path.join(data, repoName));

    const fsck = await inSource(['fsck', '--remote', 'origin', '--full'], true);
    const clonePath = path.join(options.workDir, `${scenario}-clone`);
    const clone = await runCli(['clone', `${current().url}/${repoName}`, clonePath], {
      cwd: options.workDir,
      env,
      timeoutMs,
      allowFail: true,
    });
    const mismatches: string[] = [];
    if (clone.code === 0) {
      const got = await hashTree(clonePath);
      for (const [rel, hash] of source.hashes)
        if (got.get(rel) !== hash)
          mismatches.push(got.has(rel) ? `${rel} differs` : `${rel} missing`);
      for (const rel of got.keys()) if (!source.hashes.has(rel)) mismatches.push(`${rel} extra`);
    }
    const fsckText = `${fsck.stdout}\n${fsck.stderr}`.trim().split('\n');
    return {
      scenario,
      seed,
      killAt,
      killsLanded,
      resets: proxy.injected.get('reset-after-bytes') ?? 0,
      attempts: exitCodes.length,
      exitCodes,
      pushed,
      pushMs,
      sentBytes: traffic.bodyBytes,
      cutBytes: traffic.cutBodyBytes,
      answeredBytes,
      neededBytes,
      resentUploads,
      resentBytes,
      fsckCode: fsck.code,
      fsckSummary: fsckText[fsckText.length - 1] ?? '',
      cloneCode: clone.code,
      cloneIdentical: clone.code === 0 && mismatches.length === 0,
      cloneMismatches: mismatches.slice(0, 10),
      pushErrors: [...errors],
    };
  } finally {
    await proxy?.close();
    for (const server of servers) await server.close();
  }
}
