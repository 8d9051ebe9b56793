/**
 * TLS: with MEDIAGIT_TLS_CERT / MEDIAGIT_TLS_KEY the server speaks HTTPS only. The certificate is
 * a throwaway self-signed one for 127.0.0.1 made with openssl (skipped when openssl is absent).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadServerConfig } from '../../src/server/index.js';
import { tempDir } from '../support/cli.js';
import { startTestServer } from '../support/server-harness.js';

const openssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

function get(url: string, ca: Buffer, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { ca, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (t: string) => (body += t));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('mediagit server: TLS', () => {
  test(
    'HTTPS with the configured certificate; plain HTTP is not answered',
    { skip: openssl ? false : 'openssl not installed' },
    async () => {
      const dir = await tempDir('tls');
      const cert = path.join(dir, 'server.crt');
      const key = path.join(dir, 'server.key');
      const made = spawnSync(
        'openssl',
        [
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
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
        ],
        { encoding: 'utf8' },
      );
      assert.equal(made.status, 0, made.stderr);
      const server = await startTestServer({
        env: { MEDIAGIT_TLS_CERT: cert, MEDIAGIT_TLS_KEY: key },
      });
      try {
        assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
        const ca = await readFile(cert);
        assert.equal((await get(`${server.url}/health`, ca)).status, 200);
        const token = await server.token('secure', 'read');
        assert.equal((await get(`${server.url}/secure/refs`, ca, token)).status, 200);
        const plain = await fetch(server.url.replace('https:', 'http:') + '/health').then(
          (r) => r.status,
          () => 'failed',
        );
        assert.notEqual(plain, 200);
      } finally {
        await server.close();
      }
    },
  );

  test('a certificate without its key (or the reverse) is a configuration error', async () => {
    await assert.rejects(loadServerConfig({ env: { MEDIAGIT_TLS_CERT: '/x.crt' } }), {
      code: 'E_CONFIG',
    });
    await assert.rejects(loadServerConfig({ env: { MEDIAGIT_TLS_KEY: '/x.key' } }), {
      code: 'E_CONFIG',
    });
  });
});
