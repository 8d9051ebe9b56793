/**
 * `mediagit completion bash|zsh|fish`: generated from the registered commands, so every command
 * `--help` lists is completed; the bash script is run by a real bash.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { mg, mgFail, tempDir } from '../support/cli.js';

const has = (shell: string): boolean => spawnSync(shell, ['-c', 'exit 0']).status === 0;

test('completion scripts name every command; bash completes commands, subcommands and options', async () => {
  const dir = await tempDir('completion');
  const help = (await mg(dir, '--help')).stdout;
  const commands = [...help.slice(help.indexOf('Commands:')).matchAll(/^ {2}([a-z-]+)/gm)]
    .map((m) => m[1]!)
    .filter((c) => c !== 'help');
  assert.ok(commands.includes('import') && commands.includes('completion') && commands.length > 25);

  const bash = (await mg(dir, 'completion', 'bash')).stdout;
  const zsh = (await mg(dir, 'completion', 'zsh')).stdout;
  const fish = (await mg(dir, 'completion', 'fish')).stdout;
  for (const c of commands) {
    assert.match(bash, new RegExp(`^    ${c}\\)$`, 'm'), `bash: ${c}`);
    assert.match(zsh, new RegExp(`'${c}:`), `zsh: ${c}`);
    assert.match(fish, new RegExp(`-a ${c} -d`), `fish: ${c}`);
  }
  assert.equal((await mgFail(dir, 'completion', 'tcsh')).code, 2);

  const script = path.join(dir, 'mediagit.bash');
  await writeFile(script, bash);
  const complete = (...words: string[]): string[] => {
    const r = spawnSync(
      'bash',
      [
        '-c',
        `source "$0"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _mediagit; printf '%s\\n' "\${COMPREPLY[@]}"`,
        script,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    return r.stdout
      .split('\n')
      .filter((l) => l !== '')
      .sort();
  };
  assert.deepEqual(complete('mediagit', 'pu'), ['pull', 'push']);
  assert.deepEqual(complete('mediagit', '-C', 'x', 'sta'), ['stash', 'stats', 'status']);
  assert.deepEqual(complete('mediagit', 'log', '--fol'), ['--follow']);
  assert.deepEqual(complete('mediagit', 'import', 'git'), ['git-lfs']);
  assert.deepEqual(complete('mediagit', 'import', 'git-lfs', '--allow'), ['--allow-missing']);
  assert.deepEqual(complete('mediagit', 'push', '--cr'), ['--create']);

  // The other shells check their script's syntax where they are installed.
  if (has('zsh')) {
    await writeFile(path.join(dir, '_mediagit'), zsh);
    assert.equal(spawnSync('zsh', ['-n', path.join(dir, '_mediagit')]).status, 0);
  }
  if (has('fish')) {
    await writeFile(path.join(dir, 'mediagit.fish'), fish);
    assert.equal(spawnSync('fish', ['--no-execute', path.join(dir, 'mediagit.fish')]).status, 0);
  }
});
