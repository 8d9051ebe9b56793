/**
 * Starts a mediagit server for tests, on 127.0.0.1 and a free port, over a fresh local folder (or
 * a given storage URL), with a random JWT secret and tokens minted on demand.
 *
 *   const server = await startTestServer();
 *   const token = await server.token('hero-game', 'write', 'alice');
 *   …fetch(`${server.url}/hero-game/refs`, { headers: { authorization: `Bearer ${token}` } })…
 *   await server.close();
 *
 * In-process by default (fast, and audit lines are collected in `auditLines` instead of filling
 * the test output); `child: true` runs the built CLI (`mediagit server`) as a separate process,
 * for tests that need real processes (several replicas, signals).
 *
 * The test defaults lift the rate limit out of the way (rate_limit_rps/burst 1e6) unless `config`
 * sets them, and turn fsync off for local storage.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import {
  encodeCommit,
  encodeEnvelope,
  encodeManifest,
  encodePayload,
  encodeTree,
  sha256Hex,
  type ObjectKind,
} from '../../src/objects/index.js';
import { loadServerConfig, mintToken, startServer, type Role } from '../../src/server/index.js';
import type { Store } from '../../src/store/index.js';
import { CLI_PATH, cliEnv } from './cli.js';

export interface TestServerOptions {
  /** 'local' (default): a fresh temporary folder. Or any storage URL with its options. */
  storage?: 'local' | { url: string; options: Record<string, string | number | boolean> };
  /** Server environment (MEDIAGIT_*); MEDIAGIT_HOST is always 127.0.0.1 and MEDIAGIT_PORT 0. */
  env?: Record<string, string>;
  /** Extra mediagit.toml text ([server], [auth], …). */
  config?: string;
  /** Run `mediagit server` as a child process instead of in this one. */
  child?: boolean;
  /** Listen on this port instead of any free one (a restart on the same address). */
  port?: number;
  /** In-process only: wraps each repository's store (instrumenting what the server asks of it). */
  wrapStore?: (store: Store, area: string) => Store;
}

export interface TestServer {
  /** Base URL, e.g. http://127.0.0.1:41234; a repository is `${url}/<name>`. */
  url: string;
  /** When MEDIAGIT_METRICS_ENABLED=true: http://127.0.0.1:<port>/metrics. */
  metricsUrl?: string;
  /** A JWT for `repo` ('*' for all) with `role`, identity `sub` (default "test"), valid 1 h. */
  token(repo: string, role: 'read' | 'write' | 'admin', sub?: string): Promise<string>;
  /** Graceful stop (SIGTERM for a child); removes the temporary folder it created. */
  close(): Promise<void>;
  /** The JWT secret the server runs with. */
  readonly secret: string;
  /** The local storage folder, when the storage is local. */
  readonly dataDir: string | undefined;
  /** Audit lines written so far (parsed JSON). */
  readonly auditLines: Record<string, unknown>[];
  /** Child mode: the process, and its exit code once it ended. */
  readonly process?: ChildProcess;
  readonly exited?: Promise<number | null>;
}

type TomlTable = Record<string, unknown>;

const isTable = (v: unknown): v is TomlTable =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function table(doc: TomlTable, key: string): TomlTable {
  const existing = doc[key];
  if (isTable(existing)) return existing;
  const created: TomlTable = {};
  doc[key] = created;
  return created;
}

/** The TOML the server runs with: the caller's, plus storage and the test defaults. */
function serverToml(options: TestServerOptions, dataDir: string | undefined): string {
  const doc = parseToml(options.config ?? '') as TomlTable;
  const server = table(doc, 'server');
  server['rate_limit_rps'] ??= 1_000_000;
  server['rate_limit_burst'] ??= 1_000_000;
  if (typeof options.storage === 'object')
    doc['storage'] = { url: options.storage.url, options: options.storage.options };
  else if (dataDir !== undefined)
    doc['storage'] = { backend: 'local', local: { path: dataDir, fsync: false } };
  return stringifyToml(doc);
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'mediagit-server-'));
  try {
    return await (options.child ? startChild : startInProcess)(options, prepare(options, scratch));
  } catch (err) {
    await rm(scratch, { recursive: true, force: true });
    throw err;
  }
}

/** What both ways of starting share: folders, secret, environment, TOML, audit collection. */
interface Prepared {
  readonly scratch: string;
  readonly dataDir: string | undefined;
  readonly secret: string;
  readonly env: Record<string, string>;
  readonly toml: string;
  readonly auditLines: Record<string, unknown>[];
  collect(line: string): void;
  token(repo: string, role: Role, sub?: string): Promise<string>;
  removeScratch(): Promise<void>;
}

function prepare(options: TestServerOptions, scratch: string): Prepared {
  const hasOwnStorage =
    typeof options.storage === 'object' || /^\s*\[storage[\].]/m.test(options.config ?? '');
  const dataDir = hasOwnStorage ? undefined : path.join(scratch, 'data');
  const secret = options.env?.['MEDIAGIT_JWT_SECRET'] ?? randomBytes(32).toString('hex');
  const auditLines: Record<string, unknown>[] = [];
  return {
    scratch,
    dataDir,
    secret,
    env: {
      MEDIAGIT_METRICS_PORT: '0',
      ...options.env,
      MEDIAGIT_HOST: '127.0.0.1',
      MEDIAGIT_PORT: String(options.port ?? 0),
      MEDIAGIT_JWT_SECRET: secret,
    },
    toml: serverToml(options, dataDir),
    auditLines,
    collect(line) {
      try {
        const parsed: unknown = JSON.parse(line);
        if (isTable(parsed) && typeof parsed['event'] === 'string') auditLines.push(parsed);
      } catch {
        // not an audit line
      }
    },
    token: (repo, role, sub = 'test') => mintToken(secret, { repo, role, sub }, 3600),
    removeScratch: () => rm(scratch, { recursive: true, force: true }),
  };
}

async function startInProcess(options: TestServerOptions, p: Prepared): Promise<TestServer> {
  const config = await loadServerConfig({ configText: p.toml, env: p.env, cwd: p.scratch });
  const running = await startServer(config, {
    audit: {
      write: (text) =>
        text
          .split('\n')
          .filter(Boolean)
          .forEach((line) => p.collect(line)),
      close: async () => {},
    },
    log: () => {},
    ...(options.wrapStore ? { wrapStore: options.wrapStore } : {}),
  });
  return {
    url: running.url,
    ...(running.metricsUrl !== null ? { metricsUrl: running.metricsUrl } : {}),
    token: p.token,
    secret: p.secret,
    dataDir: p.dataDir,
    auditLines: p.auditLines,
    async close() {
      await running.close();
      await p.removeScratch();
    },
  };
}

async function startChild(_options: TestServerOptions, p: Prepared): Promise<TestServer> {
  const configFile = path.join(p.scratch, 'mediagit.toml');
  await writeFile(configFile, p.toml);
  const child = spawn(process.execPath, [CLI_PATH, 'server', '--config', configFile], {
    cwd: p.scratch,
    env: cliEnv(p.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  let stderr = '';
  let pending = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    lines.forEach((line) => p.collect(line));
  });
  const urls = await new Promise<{ url: string; metricsUrl?: string }>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(
      () => reject(new Error(`mediagit server did not start in 20 s\n${stderr}`)),
      20_000,
    );
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
      const url = /listening on (https?:\/\/\S+)/.exec(stdout)?.[1];
      const wantsMetrics = p.env['MEDIAGIT_METRICS_ENABLED'] === 'true';
      const metricsUrl = /metrics on (https?:\/\/\S+)/.exec(stdout)?.[1];
      if (url !== undefined && (!wantsMetrics || metricsUrl !== undefined)) {
        clearTimeout(timer);
        resolve(metricsUrl !== undefined ? { url, metricsUrl } : { url });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`mediagit server exited with ${code} before listening\n${stderr}`));
    });
  }).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  return {
    ...urls,
    token: p.token,
    secret: p.secret,
    dataDir: p.dataDir,
    auditLines: p.auditLines,
    process: child,
    exited,
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
      await p.removeScratch();
    },
  };
}

// ---- helpers for talking to a test server ----

export interface HttpAnswer {
  status: number;
  headers: Headers;
  body: Buffer;
  /** The body parsed as JSON (undefined when it is not JSON). */
  json: Record<string, unknown> | undefined;
}

export interface HttpCall {
  method?: string;
  token?: string;
  /** Sent as application/json. */
  json?: unknown;
  /** Sent as application/octet-stream. */
  body?: Uint8Array;
  headers?: Record<string, string>;
}

/** One request with fetch; never throws for an HTTP status. */
export async function http(url: string, call: HttpCall = {}): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...call.headers };
  if (call.token !== undefined) headers['authorization'] = `Bearer ${call.token}`;
  let body: Uint8Array | string | undefined;
  if (call.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(call.json);
  } else if (call.body !== undefined) {
    headers['content-type'] ??= 'application/octet-stream';
    body = call.body;
  }
  const res = await fetch(url, {
    method: call.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: Record<string, unknown> | undefined;
  if ((res.headers.get('content-type') ?? '').includes('application/json') && bytes.length > 0) {
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    if (isTable(parsed)) json = parsed;
  }
  return { status: res.status, headers: res.headers, body: bytes, json };
}

/** A plain stored envelope of `canonical` and its OID (zstd-compressed when `compress`). */
export async function storedObject(
  kind: ObjectKind,
  canonical: Buffer,
  compress = false,
): Promise<{ oid: string; stored: Buffer }> {
  const encoded = await encodePayload(kind, canonical, { level: 3, skip: !compress });
  return {
    oid: sha256Hex(canonical),
    stored: encodeEnvelope(kind, encoded.codec, canonical.length, encoded.payload),
  };
}

/** A pack (docs/protocol.md) of the given records. */
export function encodeTestPack(
  records: readonly { kind: ObjectKind; oid: string; stored: Buffer }[],
): Buffer {
  const codes: Record<ObjectKind, number> = { chunk: 1, manifest: 2, tree: 3, commit: 4, tag: 5 };
  const parts: Buffer[] = [Buffer.from('MGPK', 'latin1'), Buffer.from([1]), u32(records.length)];
  for (const r of records)
    parts.push(
      Buffer.from([codes[r.kind]]),
      Buffer.from(r.oid, 'hex'),
      u32(r.stored.length),
      r.stored,
    );
  return Buffer.concat(parts);
}

/** Records of a pack (for checking fetch answers). */
export function decodeTestPack(pack: Buffer): { kind: number; oid: string; stored: Buffer }[] {
  if (pack.subarray(0, 4).toString('latin1') !== 'MGPK' || pack[4] !== 1)
    throw new Error('not a pack');
  const out: { kind: number; oid: string; stored: Buffer }[] = [];
  let at = 9;
  for (let i = 0; i < pack.readUInt32BE(5); i++) {
    const length = pack.readUInt32BE(at + 33);
    out.push({
      kind: pack[at]!,
      oid: pack.toString('hex', at + 1, at + 33),
      stored: pack.subarray(at + 37, at + 37 + length),
    });
    at += 37 + length;
  }
  if (at !== pack.length) throw new Error('trailing bytes after the pack');
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** A repository descriptor as a first push writes it (docs/protocol.md `/info`). */
export function descriptorBytes(encrypted = false, maxSize = 4 * 1024 * 1024): Buffer {
  return Buffer.from(
    JSON.stringify({
      format: 'mediagit',
      version: 1,
      chunking: { min_size: maxSize / 16, avg_size: maxSize / 4, max_size: maxSize },
      encryption: encrypted ? 'aes-256-gcm' : null,
    }),
  );
}

/** PUTs the descriptor of `base` (a repository URL), as the first push does before anything else. */
export async function describeRepository(
  base: string,
  token: string,
  options: { encrypted?: boolean; maxChunkSize?: number } = {},
): Promise<void> {
  const res = await http(`${base}/meta/repository`, {
    method: 'PUT',
    token,
    body: descriptorBytes(options.encrypted ?? false, options.maxChunkSize),
  });
  if (res.status !== 201 && res.status !== 200)
    throw new Error(`describing ${base} failed: ${res.status} ${res.body.toString('utf8')}`);
}

const SIGNATURE = { name: 'Test', email: 'test@example.com', time: 1_700_000_000, tzOffset: 0 };

/**
 * A whole commit's objects for a plain repository — a chunk, its manifest, a one-file tree and
 * the commit, in that order — as pack records.
 */
export async function commitRecords(
  parents: readonly string[] = [],
  label: string = randomBytes(8).toString('hex'),
): Promise<{ commit: string; records: { kind: ObjectKind; oid: string; stored: Buffer }[] }> {
  const content = Buffer.from(`content of ${label}\n`);
  const chunk = await storedObject('chunk', content);
  const manifest = await storedObject(
    'manifest',
    encodeManifest({ size: content.length, chunks: [{ oid: chunk.oid, size: content.length }] }),
  );
  const tree = await storedObject(
    'tree',
    encodeTree([{ name: `${label}.txt`, type: 'file', oid: manifest.oid, size: content.length }]),
  );
  const commit = await storedObject(
    'commit',
    encodeCommit({
      tree: tree.oid,
      parents: [...parents],
      author: SIGNATURE,
      committer: SIGNATURE,
      message: `${label}\n`,
    }),
  );
  return {
    commit: commit.oid,
    records: [
      { kind: 'chunk', ...chunk },
      { kind: 'manifest', ...manifest },
      { kind: 'tree', ...tree },
      { kind: 'commit', ...commit },
    ],
  };
}

/**
 * Uploads a whole commit to a described plain repository (commitRecords, one PUT each) and
 * returns the commit's ID, for ref updates the server can check.
 */
export async function uploadCommit(
  base: string,
  token: string,
  parents: readonly string[] = [],
  label: string = randomBytes(8).toString('hex'),
): Promise<string> {
  const { commit, records } = await commitRecords(parents, label);
  const segment = { chunk: 'chunks', manifest: 'manifests', tree: 'objects', commit: 'objects' };
  for (const { kind, oid, stored } of records) {
    const res = await http(`${base}/${segment[kind as keyof typeof segment]}/${oid}`, {
      method: 'PUT',
      token,
      body: stored,
    });
    if (res.status !== 201 && res.status !== 200)
      throw new Error(`uploading ${kind} ${oid} failed: ${res.status}`);
  }
  return commit;
}
