/**
 * Remote options through the built binary: `remote add` / `remote set-url` refuse what no backend
 * documents (exit 11, valid keys listed) and tokens (pointing at `mediagit login`), nothing is
 * saved when they do, and a multi remote keeps each side's options apart in the config.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { mg, mgFail, parseJson, tempDir } from '../support/cli.js';

async function repo(): Promise<string> {
  const dir = await tempDir('remote-options');
  await mg(dir, 'init', '-q');
  return dir;
}

const config = (dir: string): Promise<string> =>
  readFile(path.join(dir, '.mediagit', 'config.toml'), 'utf8');

test('remote add refuses an undocumented key with exit 11 and the valid keys', async () => {
  const dir = await repo();
  const before = await config(dir);
  const r = await mgFail(dir, 'remote', 'add', 'x', 's3://b/p', '-o', 'no_such_key=1');
  assert.equal(r.code, 11, r.stderr);
  assert.match(r.stderr, /no_such_key/);
  for (const key of ['region', 'endpoint', 'part_size', 'connect_timeout_ms', 'max_retries'])
    assert.match(r.stderr, new RegExp(`\\b${key}\\b`), `valid keys listed: ${r.stderr}`);
  assert.equal(await config(dir), before, 'nothing saved');

  // A key of another backend is not silently kept either.
  const azureKey = await mgFail(
    dir,
    'remote',
    'add',
    'y',
    'gs://bucket/p',
    '-o',
    'block_size=1048576',
  );
  assert.equal(azureKey.code, 11, azureKey.stderr);
  assert.match(azureKey.stderr, /verify_downloads/);
});

test('remote add refuses a token, pointing at mediagit login and MEDIAGIT_TOKEN', async () => {
  const dir = await repo();
  const r = await mgFail(
    dir,
    'remote',
    'add',
    'origin',
    'https://assets.example.invalid/hero',
    '-o',
    'token=abcdef123456',
  );
  assert.equal(r.code, 11, r.stderr);
  assert.match(r.stderr, /mediagit login/);
  assert.match(r.stderr, /MEDIAGIT_TOKEN/);
  assert.ok(!r.stderr.includes('abcdef123456'), 'the token is not echoed');
  assert.ok(!(await config(dir)).includes('abcdef123456'));
});

test('remote set-url refuses a URL whose kind does not take the saved options', async () => {
  const dir = await repo();
  await mg(dir, 'remote', 'add', 'origin', 's3://bucket/p', '-o', 'region=eu-west-1');
  const r = await mgFail(dir, 'remote', 'set-url', 'origin', 'gs://bucket/p');
  assert.equal(r.code, 11, r.stderr);
  assert.match(r.stderr, /region/);
  assert.match(r.stderr, /credentials_path/);
  assert.match(await config(dir), /s3:\/\/bucket\/p/, 'URL unchanged');
  await mg(dir, 'remote', 'set-url', 'origin', 's3://other-bucket/p');
});

test('a multi remote keeps per-side options apart and hides per-side secrets', async () => {
  const dir = await repo();
  const primary = path.join(dir, '..', 'primary.mediagit');
  await mg(
    dir,
    'remote',
    'add',
    'origin',
    'multi:',
    '-o',
    `primary=${primary}`,
    '-o',
    'secondary=s3://mirror-bucket/hero',
    '-o',
    'secondary.endpoint=http://127.0.0.1:9',
    '-o',
    'secondary.secret_key=very-secret-key',
    '-o',
    'secondary.access_key=AK',
    '-o',
    'max_retries=5',
  );
  const text = await config(dir);
  assert.match(text, /\[remote\.origin\.secondary\]/);
  const listed = parseJson<{ name: string; url: string; options: Record<string, unknown> }[]>(
    (await mg(dir, 'remote', '-v', '--json')).stdout,
  );
  assert.deepEqual(listed[0]?.options, {
    primary,
    max_retries: 5,
    secondary: 's3://mirror-bucket/hero',
    'secondary.endpoint': 'http://127.0.0.1:9',
    'secondary.secret_key': '(hidden)',
    'secondary.access_key': 'AK',
  });

  const wrongSide = await mgFail(
    dir,
    'remote',
    'add',
    'other',
    'multi:',
    '-o',
    `primary=${primary}`,
    '-o',
    'secondary=s3://mirror-bucket/hero',
    '-o',
    'primary.endpoint=http://127.0.0.1:9',
  );
  assert.equal(wrongSide.code, 11, wrongSide.stderr);
  assert.match(wrongSide.stderr, /primary\.fsync/);
});
