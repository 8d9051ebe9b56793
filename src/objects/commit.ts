import { isOid, type Oid } from './oid.js';

export interface Signature {
  readonly name: string;
  readonly email: string;
  /** Seconds since the Unix epoch. */
  readonly time: number;
  /** Minutes east of UTC, as git records it. */
  readonly tzOffset: number;
}

export interface Commit {
  readonly tree: Oid;
  readonly parents: readonly Oid[];
  readonly author: Signature;
  readonly committer: Signature;
  readonly message: string;
}

export interface Tag {
  readonly object: Oid;
  readonly objectKind: 'commit';
  readonly name: string;
  readonly tagger: Signature;
  readonly message: string;
}

function formatTz(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
}

export function formatSignature(sig: Signature): string {
  if (/[<>\n\0]/.test(sig.name) || /[<>\n\0]/.test(sig.email))
    throw new Error('names and emails may not contain <, >, newline or NUL');
  if (!Number.isSafeInteger(sig.time) || sig.time < 0) throw new Error('bad signature time');
  if (!Number.isInteger(sig.tzOffset) || Math.abs(sig.tzOffset) > 24 * 60)
    throw new Error('bad time zone offset');
  return `${sig.name} <${sig.email}> ${sig.time} ${formatTz(sig.tzOffset)}`;
}

const SIGNATURE_PATTERN = /^([^<>\n\0]*) <([^<>\n\0]*)> (\d{1,15}) ([+-])(\d{2})(\d{2})$/;

export function parseSignature(text: string): Signature {
  const m = SIGNATURE_PATTERN.exec(text);
  if (!m) throw new Error(`malformed signature: ${text.slice(0, 80)}`);
  const minutes = Number(m[5]) * 60 + Number(m[6]);
  return {
    name: m[1]!,
    email: m[2]!,
    time: Number(m[3]),
    tzOffset: m[4] === '-' ? -minutes : minutes,
  };
}

/**
 * Canonical bytes (UTF-8 text, git's shape): "tree <oid>\n", one "parent <oid>\n" per parent in
 * order, "author <sig>\n", "committer <sig>\n", "\n", then the message verbatim.
 */
export function encodeCommit(commit: Commit): Buffer {
  if (!isOid(commit.tree)) throw new Error('bad tree OID');
  let text = `tree ${commit.tree}\n`;
  for (const parent of commit.parents) {
    if (!isOid(parent)) throw new Error('bad parent OID');
    text += `parent ${parent}\n`;
  }
  text += `author ${formatSignature(commit.author)}\ncommitter ${formatSignature(commit.committer)}\n\n${commit.message}`;
  return Buffer.from(text, 'utf8');
}

function splitHeaders(bytes: Buffer): { headers: string[]; message: string } {
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) throw new Error('not valid UTF-8');
  const end = text.indexOf('\n\n');
  if (end < 0) throw new Error('missing blank line after headers');
  return { headers: text.slice(0, end).split('\n'), message: text.slice(end + 2) };
}

function takeHeader(headers: string[], index: number, key: string): string {
  const line = headers[index];
  if (line === undefined || !line.startsWith(`${key} `))
    throw new Error(`expected '${key}' header`);
  return line.slice(key.length + 1);
}

export function decodeCommit(bytes: Buffer): Commit {
  const { headers, message } = splitHeaders(bytes);
  let i = 0;
  const tree = takeHeader(headers, i++, 'tree');
  if (!isOid(tree)) throw new Error('bad tree OID');
  const parents: Oid[] = [];
  while (headers[i]?.startsWith('parent ')) {
    const parent = takeHeader(headers, i++, 'parent');
    if (!isOid(parent)) throw new Error('bad parent OID');
    parents.push(parent);
  }
  const author = parseSignature(takeHeader(headers, i++, 'author'));
  const committer = parseSignature(takeHeader(headers, i++, 'committer'));
  if (i !== headers.length) throw new Error('unexpected commit header');
  const commit = { tree, parents, author, committer, message };
  if (!encodeCommit(commit).equals(bytes)) throw new Error('commit is not in canonical form');
  return commit;
}

/**
 * Canonical bytes: "object <oid>\n", "type commit\n", "tag <name>\n", "tagger <sig>\n", "\n",
 * then the message verbatim.
 */
export function encodeTag(tag: Tag): Buffer {
  if (!isOid(tag.object)) throw new Error('bad tagged object OID');
  if (/[\s\0]/.test(tag.name) || tag.name.length === 0) throw new Error('bad tag name');
  return Buffer.from(
    `object ${tag.object}\ntype ${tag.objectKind}\ntag ${tag.name}\ntagger ${formatSignature(tag.tagger)}\n\n${tag.message}`,
    'utf8',
  );
}

export function decodeTag(bytes: Buffer): Tag {
  const { headers, message } = splitHeaders(bytes);
  if (headers.length !== 4) throw new Error('tag must have exactly four headers');
  const object = takeHeader(headers, 0, 'object');
  const type = takeHeader(headers, 1, 'type');
  if (type !== 'commit') throw new Error(`unsupported tagged kind ${type}`);
  const tag: Tag = {
    object,
    objectKind: 'commit',
    name: takeHeader(headers, 2, 'tag'),
    tagger: parseSignature(takeHeader(headers, 3, 'tagger')),
    message,
  };
  if (!encodeTag(tag).equals(bytes)) throw new Error('tag is not in canonical form');
  return tag;
}
