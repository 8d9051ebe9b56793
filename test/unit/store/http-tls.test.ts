/**
 * https remotes: a server with a self-signed certificate is trusted exactly when its certificate
 * is in NODE_EXTRA_CA_CERTS (read by Node at start-up, hence a child process per case); an
 * untrusted one is a ConfigError naming the fix, not a retried network failure.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';

const run = promisify(execFile);
const HTTP_STORE = new URL('../../../src/store/http/index.js', import.meta.url).href;

async function hasOpenssl(): Promise<boolean> {
  try {
    await run('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}

/** Runs `checkAccess` through HttpStore in a fresh Node with the given environment; prints the outcome. */
function probe(origin: string, extraEnv: Record<string, string>): Promise<string> {
  const script = `
    const { HttpStore } = await import(${JSON.stringify(HTTP_STORE)});
    const store = new HttpStore({ origin: ${JSON.stringify(origin)}, repo: 'studio/hero', token: 'tls-test-token' });
    try { console.log('ok ' + (await store.checkAccess())); }
    catch (err) { console.log('error ' + err.constructor.name + ' ' + err.code + ' ' + err.message); }
    finally { await store.close(); }`;
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
  if (!('NODE_EXTRA_CA_CERTS' in extraEnv)) delete env['NODE_EXTRA_CA_CERTS'];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', () => resolve((out || err).trim()));
  });
}

describe('https remotes', async () => {
  const available = await hasOpenssl();
  let dir = '';
  let origin = '';
  let close: (() => Promise<void>) | undefined;

  before(async () => {
    if (!available) return;
    dir = await mkdtemp(path.join(os.tmpdir(), 'mediagit-tls-'));
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    const server = createServer(
      { key: await readFile(key), cert: await readFile(cert) },
      (req, res) => {
        if (
          req.url === '/studio/hero/info' &&
          req.headers.authorization === 'Bearer tls-test-token'
        ) {
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end('{"format":"mediagit","version":1}');
        } else
          res
            .writeHead(401, { 'content-type': 'application/json' })
            .end('{"error":"unauthorized","message":"no"}');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    };
  });

  after(async () => {
    await close?.();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test(
    'a self-signed certificate listed in NODE_EXTRA_CA_CERTS is trusted',
    { skip: !available && 'openssl not installed' },
    async () => {
      assert.equal(
        await probe(origin, { NODE_EXTRA_CA_CERTS: path.join(dir, 'cert.pem') }),
        'ok ready',
      );
    },
  );

  test(
    'without it the certificate is refused as a ConfigError (not retried), with the NODE_EXTRA_CA_CERTS hint',
    { skip: !available && 'openssl not installed' },
    async () => {
      const outcome = await probe(origin, {});
      assert.match(
        outcome,
        /^error ConfigError E_CONFIG the TLS certificate of https:\/\/127\.0\.0\.1:\d+\/studio\/hero is not trusted \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)\)/,
      );
      assert.ok(!outcome.includes('tls-test-token'));
    },
  );
});
