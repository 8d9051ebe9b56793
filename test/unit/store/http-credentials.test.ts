/**
 * The credentials file: where it lives, the 0600 rule (refused otherwise, with the chmod hint),
 * atomic 0600 writes that keep other entries, lookup by origin + repository, MEDIAGIT_TOKEN first,
 * and tokens kept out of error messages.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError } from '../../../src/errors/index.js';
import {
  credentialKey,
  credentialsPath,
  lookupToken,
  readCredentials,
  removeToken,
  resolveToken,
  saveToken,
} from '../../../src/sync/credentials.js';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function configHome(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mediagit-creds-'));
  dirs.push(dir);
  return dir;
}

const posix = process.platform !== 'win32';

describe('credentials file', () => {
  test('lives under XDG_CONFIG_HOME, else ~/.config', () => {
    assert.equal(
      credentialsPath({ XDG_CONFIG_HOME: '/x/conf' }),
      path.join('/x/conf', 'mediagit', 'credentials.toml'),
    );
    assert.equal(
      credentialsPath({}),
      path.join(os.homedir(), '.config', 'mediagit', 'credentials.toml'),
    );
  });

  test('keys normalise the origin (case, default port) and trim slashes from the repository', () => {
    assert.equal(
      credentialKey('HTTPS://Assets.Example.com:443', '/hero-game/'),
      'https://assets.example.com/hero-game',
    );
    assert.equal(
      credentialKey('http://127.0.0.1:8080', 'studio/hero'),
      'http://127.0.0.1:8080/studio/hero',
    );
    assert.equal(credentialKey('http://127.0.0.1:8080', ''), 'http://127.0.0.1:8080');
  });

  test('saveToken writes mode 0600 atomically and keeps other entries; lookups fall back to the server entry', async () => {
    const home = await configHome();
    const file = credentialsPath({ XDG_CONFIG_HOME: home });
    await saveToken('http://127.0.0.1:3000', 'hero', 'token-one', file);
    await saveToken('http://127.0.0.1:3000', 'studio/villain', 'token-two', file);
    await saveToken('http://127.0.0.1:3000', '', 'server-wide', file);
    await saveToken('http://127.0.0.1:3000', 'hero', 'token-one-renewed', file);
    if (posix) assert.equal((await stat(file)).mode & 0o777, 0o600);
    // Nothing left behind by the atomic write or the lock.
    assert.deepEqual((await readdir(path.dirname(file))).sort(), ['credentials.toml']);
    assert.equal(await lookupToken('http://127.0.0.1:3000', 'hero', file), 'token-one-renewed');
    assert.equal(await lookupToken('http://127.0.0.1:3000', 'studio/villain', file), 'token-two');
    assert.equal(await lookupToken('http://127.0.0.1:3000', 'unknown', file), 'server-wide');
    assert.equal(await lookupToken('http://127.0.0.1:4000', 'hero', file), undefined);
    assert.equal((await readCredentials(file)).size, 3);
    assert.equal(await removeToken('http://127.0.0.1:3000', 'hero', file), true);
    assert.equal(await lookupToken('http://127.0.0.1:3000', 'hero', file), 'server-wide');
  });

  test(
    'a file others can read is refused with a chmod hint, and used again once fixed',
    { skip: !posix && 'POSIX modes only' },
    async () => {
      const home = await configHome();
      const file = credentialsPath({ XDG_CONFIG_HOME: home });
      await saveToken('http://127.0.0.1:3000', 'hero', 'secret-token-xyz', file);
      for (const mode of [0o644, 0o640, 0o604, 0o660]) {
        await chmod(file, mode);
        await assert.rejects(lookupToken('http://127.0.0.1:3000', 'hero', file), (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.match(err.message, new RegExp(mode.toString(8)));
          assert.match(err.hint ?? '', /chmod 600/);
          assert.ok(!String(err).includes('secret-token-xyz'));
          return true;
        });
        // Saving does not silently rewrite a file it refuses to read either.
        await assert.rejects(
          saveToken('http://127.0.0.1:3000', 'other', 'x-token', file),
          ConfigError,
        );
      }
      await chmod(file, 0o600);
      assert.equal(await lookupToken('http://127.0.0.1:3000', 'hero', file), 'secret-token-xyz');
    },
  );

  test('a missing file means no token; invalid TOML is reported by line, without its text', async () => {
    const home = await configHome();
    const file = credentialsPath({ XDG_CONFIG_HOME: home });
    assert.equal(await lookupToken('http://127.0.0.1:3000', 'hero', file), undefined);
    await saveToken('http://127.0.0.1:3000', 'hero', 'placeholder', file);
    await writeFile(file, '["http://127.0.0.1:3000/hero"]\ntoken = "leaky-secret-value\n', {
      mode: 0o600,
    });
    await chmod(file, 0o600);
    await assert.rejects(
      readCredentials(file),
      (err: unknown) =>
        err instanceof ConfigError &&
        /line/.test(err.message) &&
        !String(err).includes('leaky-secret-value'),
    );
  });

  test('MEDIAGIT_TOKEN wins over the file; the file is only consulted without it', async () => {
    const home = await configHome();
    const env = { XDG_CONFIG_HOME: home };
    await saveToken('http://127.0.0.1:3000', 'hero', 'from-file', credentialsPath(env));
    assert.equal(await resolveToken('http://127.0.0.1:3000', 'hero', env), 'from-file');
    assert.equal(
      await resolveToken('http://127.0.0.1:3000', 'hero', { ...env, MEDIAGIT_TOKEN: 'from-env' }),
      'from-env',
    );
    if (posix) {
      // A bad file does not matter when the environment provides the token (CI).
      await chmod(credentialsPath(env), 0o644);
      assert.equal(
        await resolveToken('http://127.0.0.1:3000', 'hero', { ...env, MEDIAGIT_TOKEN: 'from-env' }),
        'from-env',
      );
      await assert.rejects(resolveToken('http://127.0.0.1:3000', 'hero', env), ConfigError);
    }
    const text = await readFile(credentialsPath(env), 'utf8');
    assert.match(text, /\["http:\/\/127\.0\.0\.1:3000\/hero"\]/);
  });
});
