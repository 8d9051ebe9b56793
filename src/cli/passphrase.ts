import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InterruptedError, PassphraseError } from '../errors/index.js';

/** unlock: an existing key; new: another key of a repository; first: a new repository's key. */
export type PassphraseKind = 'unlock' | 'new' | 'first';

/** True when the user named a passphrase (file or MEDIAGIT_PASSPHRASE): it is checked, not skipped. */
export function passphraseGiven(sources: PassphraseSources): boolean {
  const env = process.env.MEDIAGIT_PASSPHRASE;
  return Boolean(sources.passphraseFile) || (env !== undefined && env !== '');
}

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
  kind: PassphraseKind,
  sources: PassphraseSources,
): Promise<string> {
  if (kind !== 'unlock') {
    if (sources.newPassphraseFile) return fromFile(sources.newPassphraseFile, sources.cwd);
    const env = process.env.MEDIAGIT_NEW_PASSPHRASE;
    if (env !== undefined && env !== '') return env;
  }
  // A new repository's first passphrase may come from the one variable, as restic's init takes
  // it; a second key (key add, passwd) may not, or it would silently repeat the first.
  if (kind === 'unlock' || kind === 'first') {
    if (sources.passphraseFile) return fromFile(sources.passphraseFile, sources.cwd);
    const env = process.env.MEDIAGIT_PASSPHRASE;
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
            : kind === 'first'
              ? 'set MEDIAGIT_NEW_PASSPHRASE (or MEDIAGIT_PASSPHRASE) or pass --new-passphrase-file <path>'
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
