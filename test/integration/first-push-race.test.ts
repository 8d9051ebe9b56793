/**
 * Two first pushes racing to one empty remote, one from a plain repository and one from an
 * encrypted one, with forced interleavings: both read "no descriptor", then their descriptor
 * writes land in a chosen order (or together), and one push finishes before the other goes on.
 * Whatever the order, the remote must end with one descriptor, `main` holding objects of exactly
 * the kind it promises, and the other push refused with E_CONFIG before it stored anything.
 * Before descriptors were created with a create-only write, a folder remote (first writer kept)
 * or an S3 bucket (last writer kept) ended with an encrypted descriptor over plain objects, or the
 * reverse. Run on a folder, radosgw and through `mediagit server`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeEnvelopeHeader, CIPHER_NONE, type Oid } from '../../src/objects/index.js';
import { Repository, silentProgress } from '../../src/repo/index.js';
import {
  ForwardingStore,
  openStore,
  type PackOptions,
  type Passage,
  type Store,
  type TokenProvider,
} from '../../src/store/index.js';
import { checkRemote, push, readDescriptor } from '../../src/sync/index.js';
import { PROXIED_BACKENDS, type PreparedBackend } from '../support/proxied-backends.js';
import {
  descriptorBytes,
  http,
  startTestServer,
  type TestServer,
} from '../support/server-harness.js';
import { MAIN, SMALL_CHUNKING, commitFiles, initRepo } from '../support/sync-fixtures.js';

const DESCRIPTOR = 'meta/repository';
const PASSPHRASE = 'first push race passphrase';

/**
 * Who writes the descriptor first. P is the push that is let through to the end first, Q the
 * other: 'QP' is the order a first-writer-wins store (a folder) used to get wrong, 'PQ' the one
 * a last-writer-wins store (S3) did, 'together' releases both writes at once.
 */
type Order = 'QP' | 'PQ' | 'together';
const ORDERS: readonly Order[] = ['QP', 'PQ', 'together'];

class Latch {
  readonly promise: Promise<void>;
  open!: () => void;
  constructor() {
    this.promise = new Promise<void>((resolve) => (this.open = resolve));
  }
}

interface Hooks {
  afterCheck(): Promise<void>;
  beforeWrite(): Promise<void>;
  afterWrite(): Promise<void>;
}

/** Pauses one pusher around its descriptor check and its descriptor write (the first of each). */
class Interleaved extends ForwardingStore {
  private checked = false;
  private wrote = false;

  constructor(
    inner: Store,
    private readonly hooks: Hooks,
  ) {
    super(inner);
  }

  protected override async pass<T>(passage: Passage<T>): Promise<T> {
    // A mediagit server tells the descriptor in its negotiate answer instead of a GET.
    const check =
      (passage.target === DESCRIPTOR && passage.operation === 'get') ||
      passage.target === 'negotiate';
    if (check && !this.checked) {
      this.checked = true;
      try {
        return await passage.run();
      } finally {
        await this.hooks.afterCheck();
      }
    }
    // Through a mediagit server a plain first push's packs carry the descriptor instead of a PUT.
    const write =
      passage.operation === 'put' &&
      (passage.target === DESCRIPTOR || (passage.options as PackOptions)?.descriptor !== undefined);
    if (write && !this.wrote) {
      this.wrote = true;
      await this.hooks.beforeWrite();
      try {
        return await passage.run();
      } finally {
        await this.hooks.afterWrite();
      }
    }
    return passage.run();
  }
}

interface Pusher {
  readonly label: 'plain' | 'encrypted';
  readonly repo: Repository;
  readonly tip: Oid;
}

interface Signals {
  checked: Latch;
  wrote: Latch;
  done: Latch;
}

const signals = (): Signals => ({ checked: new Latch(), wrote: new Latch(), done: new Latch() });

/** The hooks of pusher `me` (P or Q) for one order. */
function hooksFor(order: Order, me: 'P' | 'Q', mine: Signals, theirs: Signals): Hooks {
  return {
    async afterCheck() {
      mine.checked.open();
      await theirs.checked.promise;
    },
    async beforeWrite() {
      if ((order === 'QP' && me === 'P') || (order === 'PQ' && me === 'Q'))
        await theirs.wrote.promise;
    },
    async afterWrite() {
      mine.wrote.open();
      if (me === 'Q') await theirs.done.promise;
      else if (order === 'PQ') await theirs.wrote.promise;
    },
  };
}

interface Round {
  readonly order: Order;
  readonly p: Pusher;
  readonly q: Pusher;
}

function rounds(plain: Pusher, encrypted: Pusher): Round[] {
  const out: Round[] = [];
  for (const order of ORDERS) {
    out.push({ order, p: plain, q: encrypted });
    out.push({ order, p: encrypted, q: plain });
  }
  return out;
}

/** Every object stored on the remote: encrypted or not, as its envelope says. */
async function storedCiphers(store: Store): Promise<{ plain: number; encrypted: number }> {
  const counts = { plain: 0, encrypted: 0 };
  for (const prefix of ['chunks/', 'objects/']) {
    for await (const { key } of store.list(prefix)) {
      const cipher = decodeEnvelopeHeader(await store.get(key)).cipher;
      if (cipher === CIPHER_NONE) counts.plain++;
      else counts.encrypted++;
    }
  }
  return counts;
}

function codeOf(err: unknown): string {
  return String((err as { code?: unknown }).code ?? err);
}

interface Target {
  readonly name: string;
  readonly skip: string | false;
  setUp(): Promise<void>;
  /** A fresh, empty remote for one round. */
  open(round: number): Promise<Store>;
  tearDown(): Promise<void>;
}

function cloudTarget(backendName: string): Target {
  const backend = PROXIED_BACKENDS.find((b) => b.name === backendName)!;
  let prepared: PreparedBackend | undefined;
  return {
    name: backend.name,
    skip: backend.skip,
    async setUp() {
      prepared = await backend.prepare('firstpush');
    },
    async open(round) {
      const prefix = `race-${round}`;
      const { url, options } = prepared!.remote(prepared!.target, prefix);
      const tokens: TokenProvider | undefined = prepared!.tokens;
      return (await openStore(url, options, process.cwd(), undefined, tokens)).store;
    },
    async tearDown() {
      await prepared?.close?.();
    },
  };
}

let scratch = '';
const folderTarget: Target = {
  name: 'folder',
  skip: false,
  setUp: () => Promise.resolve(),
  async open(round) {
    return (await openStore(path.join(scratch, `folder-remote-${round}-${Date.now()}`))).store;
  },
  tearDown: () => Promise.resolve(),
};

const TARGETS: readonly Target[] = [
  folderTarget,
  cloudTarget('S3 (radosgw)'),
  cloudTarget('mediagit server'),
];

let plain: Pusher;
let encrypted: Pusher;

before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'mediagit-first-push-'));
  const plainRepo = await initRepo(path.join(scratch, 'plain'));
  await Repository.init(path.join(scratch, 'encrypted'), {
    chunking: SMALL_CHUNKING,
    encryptWith: PASSPHRASE,
  });
  const encryptedRepo = await Repository.open(path.join(scratch, 'encrypted'), {
    passphrase: () => Promise.resolve(PASSPHRASE),
    agent: false,
  });
  const files = (who: string): Map<string, Buffer> =>
    new Map([[`${who}.bin`, Buffer.from(`${who}'s first commit\n`.repeat(5000))]]);
  plain = {
    label: 'plain',
    repo: plainRepo,
    tip: await commitFiles(plainRepo, [], files('plain'), 'plain'),
  };
  encrypted = {
    label: 'encrypted',
    repo: encryptedRepo,
    tip: await commitFiles(encryptedRepo, [], files('encrypted'), 'encrypted'),
  };
});

after(() => rm(scratch, { recursive: true, force: true }));

for (const target of TARGETS) {
  describe(`first push race: ${target.name}`, { skip: target.skip }, () => {
    before(() => target.setUp());
    after(() => target.tearDown());

    test('a plain and an encrypted first push, forced interleavings: one descriptor, objects of its kind only, the loser refused with E_CONFIG', async () => {
      const all = rounds(plain, encrypted);
      for (const [i, { order, p, q }] of all.entries()) {
        const what = `round ${i} (${order}, P ${p.label}, Q ${q.label})`;
        const remote = await target.open(i);
        try {
          const ps = signals();
          const qs = signals();
          const run = async (who: Pusher, me: 'P' | 'Q', mine: Signals, theirs: Signals) => {
            const store = new Interleaved(remote, hooksFor(order, me, mine, theirs));
            try {
              return await push(
                who.repo,
                store,
                { oid: who.tip, ref: MAIN, force: false },
                silentProgress,
              );
            } finally {
              // A push that stopped early must not leave the other one waiting for it.
              mine.checked.open();
              mine.wrote.open();
              mine.done.open();
            }
          };
          const results = await Promise.allSettled([run(p, 'P', ps, qs), run(q, 'Q', qs, ps)]);
          const won = results.flatMap((r, k) => (r.status === 'fulfilled' ? [[p, q][k]!] : []));
          const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
          assert.equal(won.length, 1, `${what}: exactly one push succeeds`);
          const winner = won[0]!;
          const descriptor = await readDescriptor(remote);
          assert.equal((await remote.readRef(MAIN))?.oid, winner.tip, `${what}: main`);
          assert.equal(
            descriptor?.encryption ?? null,
            winner.label === 'encrypted' ? 'aes-256-gcm' : null,
            `${what}: the descriptor must be that of the push whose objects main holds`,
          );
          const ciphers = await storedCiphers(remote);
          assert.equal(
            winner.label === 'encrypted' ? ciphers.plain : ciphers.encrypted,
            0,
            `${what}: no object of the loser's kind is stored (${JSON.stringify(ciphers)})`,
          );
          assert.equal(
            codeOf(lost[0]),
            'E_CONFIG',
            `${what}: the loser's error: ${String(lost[0])}`,
          );
          const report = await checkRemote(winner.repo, remote, { full: true });
          assert.deepEqual(report.problems, [], `${what}: fsck --remote --full of the result`);
        } finally {
          await remote.close();
        }
      }
    });
  });
}

describe('first push race: concurrent descriptor PUTs to one mediagit server', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  test('8 different descriptors PUT at once to a fresh repository: exactly one 201, the rest 409, the stored one is the 201, 5 rounds', async () => {
    const token = await server.token('*', 'admin');
    for (let round = 0; round < 5; round++) {
      const base = `${server.url}/descriptor-race-${round}`;
      const bodies = Array.from({ length: 8 }, (_, i) =>
        descriptorBytes(i % 2 === 1, 2 ** (20 + (i % 4))),
      );
      const answers = await Promise.all(
        bodies.map((body) => http(`${base}/meta/repository`, { method: 'PUT', token, body })),
      );
      const created = answers.flatMap((a, i) => (a.status === 201 ? [i] : []));
      const statuses = answers.map((a) => a.status);
      assert.equal(created.length, 1, `round ${round}: statuses ${statuses.join(' ')}`);
      for (const [i, a] of answers.entries())
        if (i !== created[0] && !bodies[i]!.equals(bodies[created[0]!]!))
          assert.equal(a.status, 409, `round ${round}: contender ${i}`);
      const stored = await http(`${base}/meta/repository`, { token });
      assert.ok(
        stored.body.equals(bodies[created[0]!]!),
        `round ${round}: the 201's bytes are kept`,
      );
    }
  });
});
