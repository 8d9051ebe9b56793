/**
 * The declarative option tables: docs/backends/*.md documents exactly the keys each table holds
 * (both directions), unknown keys and tokens are refused with the valid keys listed, values are
 * typed and bounded, and a multi remote gives each side its own options.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, MediagitError } from '../../../src/errors/index.js';
import {
  OPTION_TABLES,
  isSecretOption,
  multiSides,
  openBackend,
  parseStoreUrl,
  validateStoreOptions,
  type StoreOptions,
} from '../../../src/store/index.js';
import { S3Store } from '../../../src/store/s3/index.js';
import { REPO_ROOT } from '../../support/cli.js';

const DOCS = path.join(REPO_ROOT, 'docs', 'backends');
const KIND_OF_DOC: Record<string, keyof typeof OPTION_TABLES> = {
  'local.md': 'local',
  's3.md': 's3',
  'azure.md': 'azure',
  'gcs.md': 'gcs',
  'http.md': 'http',
  'multi.md': 'multi',
};

/** The backticked keys in the first column of the first table under "## Options". */
function documentedKeys(markdown: string): string[] {
  const section = markdown.split(/^## Options\s*$/m)[1]?.split(/^## /m)[0];
  assert.ok(section, 'the page has an "## Options" section');
  const rows = section
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .slice(2);
  const table: string[] = [];
  for (const row of rows) {
    const first = row.split('|')[1] ?? '';
    for (const m of first.matchAll(/`([a-z][a-z0-9_]*)`/g)) table.push(m[1]!);
  }
  // The table ends at the first line that is not a row; anything after is prose.
  return table;
}

function rejectsConfig(fn: () => unknown, check: (err: ConfigError) => void = () => {}): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'E_CONFIG');
    assert.equal(err.exitCode, 11);
    check(err);
    return true;
  });
}

describe('option tables match docs/backends', () => {
  test('every page maps to a remote kind and every kind has a page', async () => {
    const pages = (await readdir(DOCS)).filter((f) => f.endsWith('.md')).sort();
    assert.deepEqual(pages, Object.keys(KIND_OF_DOC).sort());
    assert.deepEqual(
      [...new Set(Object.values(KIND_OF_DOC))].sort(),
      Object.keys(OPTION_TABLES).sort(),
    );
  });

  for (const [page, kind] of Object.entries(KIND_OF_DOC)) {
    test(`${page}: documented keys = ${kind} schema keys`, async () => {
      const documented = documentedKeys(await readFile(path.join(DOCS, page), 'utf8'));
      const schema = Object.keys(OPTION_TABLES[kind]);
      assert.equal(new Set(documented).size, documented.length, `${page} lists a key twice`);
      const undocumented = schema.filter((k) => !documented.includes(k));
      const unknown = documented.filter((k) => !schema.includes(k));
      assert.deepEqual(undocumented, [], `${kind} keys missing from ${page}`);
      assert.deepEqual(unknown, [], `${page} documents keys the ${kind} schema does not take`);
      for (const [key, spec] of Object.entries(OPTION_TABLES[kind]))
        assert.ok(spec.doc.length > 10, `${kind}.${key} has a doc line`);
    });
  }
});

describe('option validation', () => {
  const cwd = REPO_ROOT;

  test('an unknown key is refused with the valid keys listed', () => {
    rejectsConfig(
      // The bucket name is too short as well; the option is still what gets reported.
      () => validateStoreOptions('s3://b/p', { no_such_key: 1 }, cwd),
      (err) => {
        assert.match(err.message, /no_such_key/);
        for (const key of Object.keys(OPTION_TABLES.s3))
          assert.match(err.hint ?? '', new RegExp(key));
      },
    );
    // Keys of another backend are unknown here, not silently ignored.
    rejectsConfig(() => validateStoreOptions('gs://b/p', { block_size: 1048576 }, cwd));
    rejectsConfig(() => validateStoreOptions('/tmp/x', { endpoint: 'http://127.0.0.1:1' }, cwd));
  });

  test('a token is refused, pointing at mediagit login / MEDIAGIT_TOKEN', () => {
    for (const url of ['https://example.invalid/repo', 's3://bkt/p'])
      for (const key of ['token', 'password'])
        rejectsConfig(
          () => validateStoreOptions(url, { [key]: 'secret-value' }, cwd),
          (err) => {
            assert.match(err.hint ?? '', /mediagit login/);
            assert.match(err.hint ?? '', /MEDIAGIT_TOKEN/);
            assert.ok(!err.message.includes('secret-value'));
          },
        );
  });

  test('values are typed and bounded, and messages never quote them', () => {
    const bad: [string, StoreOptions][] = [
      ['s3://bkt/p', { part_size: 1024 }],
      ['s3://bkt/p', { connect_timeout_ms: 'soon' }],
      ['s3://bkt/p', { force_path_style: 'maybe' }],
      ['azure://c-1/p', { list_page_size: 5001 }],
      ['azure://c-1/p', { block_size: 0 }],
      ['gs://b-1/p', { chunk_size: 300 * 1024 }],
      ['gs://b-1/p', { verify_downloads: 'yes' }],
      ['https://example.invalid/repo', { connections: 0 }],
      ['/tmp/x', { fsync: 'sometimes' }],
    ];
    for (const [url, options] of bad) rejectsConfig(() => validateStoreOptions(url, options, cwd));
    rejectsConfig(
      () =>
        validateStoreOptions('s3://bkt/p', { secret_key: 'x', part_size: 'hunter2-secret' }, cwd),
      (err) => assert.ok(!err.message.includes('hunter2')),
    );
    // Strings from the command line convert.
    validateStoreOptions(
      'gs://b-1/p',
      { chunk_size: String(512 * 1024), verify_downloads: 'true' },
      cwd,
    );
  });

  test('every documented key of every kind is accepted', () => {
    const sample = { integer: undefined, string: 'x', boolean: true } as const;
    const urls = {
      local: '/tmp/x',
      s3: 's3://bkt/p',
      azure: 'azure://c-1/p',
      gcs: 'gs://b-1/p',
      http: 'https://example.invalid/repo',
    } as const;
    for (const [kind, url] of Object.entries(urls)) {
      const table = OPTION_TABLES[kind as keyof typeof urls];
      for (const [key, spec] of Object.entries(table)) {
        const value =
          spec.type === 'integer'
            ? (spec.default ?? spec.min)
            : spec.type === 'string'
              ? 'choices' in spec && spec.choices
                ? spec.choices[0]!
                : sample.string
              : sample.boolean;
        validateStoreOptions(url, { [key]: value }, cwd);
      }
    }
  });

  test('secret keys are recognised, also per multi side', () => {
    for (const key of ['secret_key', 'account_key', 'connection_string', 'session_token', 'token'])
      assert.ok(isSecretOption(key), key);
    assert.ok(isSecretOption('secondary.secret_key'));
    assert.ok(!isSecretOption('secondary.endpoint'));
  });
});

describe('multi remote options', () => {
  const cwd = REPO_ROOT;

  test('side keys go to one side, shared keys to every side that takes them', () => {
    const sides = multiSides(
      {
        primary: 's3://aws-bucket/hero',
        secondary: 's3://mirror/hero',
        'primary.region': 'eu-west-1',
        'secondary.endpoint': 'https://r2.example.invalid',
        'secondary.access_key': 'AK',
        max_retries: 5,
        region: 'auto',
      },
      cwd,
    );
    assert.deepEqual(sides.primary.options, { region: 'eu-west-1', max_retries: 5 });
    assert.deepEqual(sides.secondary.options, {
      region: 'auto',
      max_retries: 5,
      endpoint: 'https://r2.example.invalid',
      access_key: 'AK',
    });
    assert.equal(sides.primary.location.target, 'aws-bucket');
  });

  test('a shared key reaches only the sides whose backend takes it', () => {
    const sides = multiSides(
      {
        primary: '/tmp/primary',
        secondary: 's3://bkt/p',
        endpoint: 'http://127.0.0.1:1',
        fsync: false,
      },
      cwd,
    );
    assert.deepEqual(sides.primary.options, { fsync: false });
    assert.deepEqual(sides.secondary.options, { endpoint: 'http://127.0.0.1:1' });
  });

  test('unknown keys, side keys the side does not take, and nested multi are refused', () => {
    const base = { primary: '/tmp/primary', secondary: 's3://bkt/p' };
    rejectsConfig(
      () => validateStoreOptions('multi:', { ...base, no_such_key: 1 }, cwd),
      (err) => {
        assert.match(err.hint ?? '', /secondary\.endpoint/);
        assert.match(err.hint ?? '', /primary\.fsync/);
      },
    );
    rejectsConfig(() => validateStoreOptions('multi:', { ...base, 'primary.endpoint': 'x' }, cwd));
    rejectsConfig(() => validateStoreOptions('multi:', { ...base, 'tertiary.endpoint': 'x' }, cwd));
    rejectsConfig(() => validateStoreOptions('multi:', { ...base, 'secondary.part_size': 1 }, cwd));
    rejectsConfig(() => validateStoreOptions('multi:', { ...base, 'secondary.token': 'x' }, cwd));
    rejectsConfig(() =>
      validateStoreOptions('multi:', { primary: 'multi:', secondary: 's3://bkt/p' }, cwd),
    );
    rejectsConfig(() => validateStoreOptions('multi:', { primary: '/tmp/p' }, cwd));
  });

  test('each side is opened with its own options', async () => {
    const store = await openBackend(
      parseStoreUrl('multi:', cwd),
      {
        primary: 's3://aws-bucket/hero',
        secondary: 's3://mirror/hero',
        'primary.region': 'eu-west-1',
        'secondary.endpoint': 'http://127.0.0.1:9',
        'secondary.part_size': 8 * 1024 * 1024,
      },
      cwd,
    );
    const sides = store as unknown as { primary: S3Store; secondary: S3Store };
    assert.ok(sides.primary instanceof S3Store && sides.secondary instanceof S3Store);
    assert.equal(sides.primary.endpoint, 'AWS S3 (eu-west-1)');
    assert.equal(sides.primary.partSize, 100 * 1024 * 1024);
    assert.equal(sides.secondary.endpoint, 'http://127.0.0.1:9');
    assert.equal(sides.secondary.partSize, 8 * 1024 * 1024);
    await store.close();
  });

  test('opening refuses what validation refuses', async () => {
    await assert.rejects(
      openBackend(parseStoreUrl('s3://bkt/p', cwd), { no_such_key: 1 }, cwd),
      (err: unknown) => err instanceof MediagitError && err.code === 'E_CONFIG',
    );
  });
});
