import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InterruptedError, PassphraseError } from '../errors/index.js';

export interface PassphraseSources {
  cwd: string;
  passphraseFile?: string | undefined;
  newPassphraseFile?: string | undefined;
}

async function fromFile(path: string, cwd: string): Promise<string> {
  try {
    // One trailing newline is the file's, not the passphrase's.
    return (await readFile(resolve(cwd, path), 'utf8')).replace(/\r?\n$/, '');
  } catch (err) {
    throw new PassphraseError(
      `cannot read passphrase file ${path}: ${(err as { code?: string }).code ?? 'error'}`,
    );
  }
}

/** Reads a line from the terminal without echoing it. */
export function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((done, fail) => {
    let answer = '';
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const finish = (err?: Error): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.removeListener('data', onData);
      process.stderr.write('\n');
      if (err) fail(err);
      else done(answer);
    };
    const onData = (text: string): void => {
      for (const ch of text) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003' || ch === '\u0004') return finish(new InterruptedError('interrupted'));
        if (ch === '\u007f' || ch === '\b') answer = answer.slice(0, -1);
        else answer += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/**
 * Passphrases come from a file, the environment, or a terminal prompt — never from a command-line
 * argument (visible in `ps` and shell history) and never echoed or logged.
 */
export async function readPassphrase(
  kind: 'unlock' | 'new',
  sources: PassphraseSources,
): Promise<string> {
  if (kind === 'unlock') {
    if (sources.passphraseFile) return fromFile(sources.passphraseFile, sources.cwd);
    const env = process.env.MEDIAGIT_PASSPHRASE;
    if (env !== undefined && env !== '') return env;
  } else {
    if (sources.newPassphraseFile) return fromFile(sources.newPassphraseFile, sources.cwd);
    const env = process.env.MEDIAGIT_NEW_PASSPHRASE;
    if (env !== undefined && env !== '') return env;
  }
  if (!process.stdin.isTTY) {
    throw new PassphraseError(
      kind === 'unlock'
        ? 'a passphrase is needed and there is no terminal to ask on'
        : 'a new passphrase is needed and there is no terminal to ask on',
      {
        hint:
          kind === 'unlock'
            ? 'set MEDIAGIT_PASSPHRASE or pass --passphrase-file <path>'
            : 'set MEDIAGIT_NEW_PASSPHRASE or pass --new-passphrase-file <path>',
      },
    );
  }
  if (kind === 'unlock') return promptHidden('Passphrase: ');
  const first = await promptHidden('New passphrase: ');
  const second = await promptHidden('Repeat new passphrase: ');
  if (first !== second)
    throw new PassphraseError('the two passphrases differ', {
      hint: 'nothing was changed; try again',
    });
  if (first === '') throw new PassphraseError('the passphrase is empty');
  return first;
}
