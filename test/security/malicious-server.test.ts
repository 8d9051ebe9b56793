/**
 * The client against a malicious server: a Node HTTP server on 127.0.0.1 that answers with huge
 * or lying bodies. The client must refuse what is over its limits at once, with a typed error,
 * and its memory must stay bounded — measured as the peak RSS of a child process that runs only
 * the client (`process.resourceUsage().maxRSS`).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { HttpStore, encodePack, type PackRecord } from '../../src/store/http/index.js';
import { oidFor } from '../support/store-contract.js';

const MiB = 1024 * 1024;
/** What the hostile answers stream at most: far over every client limit, yet cheap to send. */
const FLOOD_BYTES = 256 * MiB;
/** Peak RSS a client child may reach: Node and undici, plus the largest limit (64 MiB) once or twice. */
const RSS_BOUND_MIB = 200;
const OID = oidFor('malicious server');

/** Writes `total` bytes of `fill` in 1 MiB pieces, minding backpressure, until done or the client leaves. */
async function flood(res: ServerResponse, total: number, first = ''): Promise<void> {
  const piece = Buffer.alloc(MiB, 0x61);
  let sent = 0;
  if (first) {
    res.write(first);
    sent += first.length;
  }
  while (sent < total && !res.destroyed) {
    if (!res.write(piece)) {
      // Whichever comes first removes both: a listener left on 'close' per wait piles up over a
      // long flood (Node warned at the 11th).
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.once('drain', done);
        res.once('close', done);
      });
    }
    sent += piece.length;
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** Behaviours by path below the repository `r`. */
const behaviours: Record<string, Handler> = {
  // A ref listing that never ends (chunked: no length to refuse up front).
  '/r/refs?prefix=refs%2Fheads%2F': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    void flood(res, FLOOD_BYTES, '{"refs":{"refs/heads/a":{"oid":"').then(() => res.end());
  },
  // A ref listing declaring 3 GiB, streaming until the client leaves (or 256 MiB, then a cut).
  '/r/refs?prefix=refs%2Ftags%2F': (_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': String(3 * 1024 * MiB),
    });
    void flood(res, FLOOD_BYTES).then(() => res.destroy());
  },
  // An object declaring 3 GiB.
  [`/r/chunks/${OID}`]: (_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(3 * 1024 * MiB),
    });
    void flood(res, FLOOD_BYTES).then(() => res.destroy());
  },
  // An object without a length, far over 64 MiB.
  [`/r/objects/${OID}`]: (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    void flood(res, FLOOD_BYTES).then(() => res.end());
  },
  // An error whose body never ends.
  '/r/list?prefix=chunks%2F&limit=1000': (_req, res) => {
    res.writeHead(500, { 'content-type': 'application/json' });
    void flood(res, FLOOD_BYTES, '{"error":"internal","message":"').then(() => res.end());
  },
  // Short: declares 1 MiB, sends 1000 bytes, hangs up.
  [`/r/chunks/${oidFor('short')}`]: (_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(MiB),
    });
    res.write(Buffer.alloc(1000, 1), () => res.destroy());
  },
  // Long: declares 100 bytes and sends 100 more after them.
  [`/r/chunks/${oidFor('long')}`]: (req, res) => {
    const socket = req.socket;
    socket.write(
      'HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 100\r\n\r\n',
    );
    socket.write(Buffer.concat([Buffer.alloc(100, 2), Buffer.alloc(100, 3)]));
    void res;
  },
};

let server: ReturnType<typeof createServer>;
let origin: string;
/** Answers `POST /r/objects/fetch` with this pack. */
let fetchAnswer: Buffer = Buffer.alloc(0);

before(async () => {
  server = createServer((req, res) => {
    req.resume();
    if (req.method === 'POST' && req.url === '/r/objects/fetch') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(fetchAnswer);
      return;
    }
    const handle = behaviours[req.url ?? ''];
    if (handle) return void handle(req, res);
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not_found","message":"no such thing"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

interface ChildOutcome {
  code: string | null;
  message: string;
  maxRssMiB: number;
}

const STORE_MODULE = fileURLToPath(new URL('../../src/store/http/index.js', import.meta.url));

/** Runs one client call in a fresh Node process and reports its error code and peak RSS. */
function inChild(call: string): Promise<ChildOutcome> {
  const script = `
    const { HttpStore } = await import(${JSON.stringify(STORE_MODULE)});
    const store = new HttpStore({ origin: ${JSON.stringify(origin)}, repo: 'r', token: 'tok', rateLimitRetries: 0 });
    let code = null, message = 'no error';
    try { await (${call}); } catch (err) { code = err.code ?? null; message = String(err.message); }
    await store.close().catch(() => {});
    process.stdout.write(JSON.stringify({ code, message, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
    process.exit(0);
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (status) => {
      try {
        resolve(JSON.parse(out) as ChildOutcome);
      } catch {
        reject(new Error(`client child exited ${status}: ${err.slice(0, 2000)}`));
      }
    });
  });
}

function assertBounded(
  t: { diagnostic(message: string): void },
  outcome: ChildOutcome,
  code: string,
  label: string,
): void {
  t.diagnostic(`${label}: ${outcome.code}, client peak RSS ${outcome.maxRssMiB.toFixed(0)} MiB`);
  assert.equal(outcome.code, code, `${label}: ${outcome.message}`);
  assert.ok(
    outcome.maxRssMiB < RSS_BOUND_MIB,
    `${label}: the client peaked at ${outcome.maxRssMiB.toFixed(0)} MiB RSS (bound ${RSS_BOUND_MIB} MiB)`,
  );
}

describe('the HTTP client against a malicious server', () => {
  test('a ref listing that never ends: E_PROTOCOL at the 16 MiB JSON limit, RSS bounded', async (t) => {
    const outcome = await inChild("store.listRefs('refs/heads/')");
    assertBounded(t, outcome, 'E_PROTOCOL', 'endless JSON');
    assert.match(outcome.message, /over the client's limit of 16777216 bytes/);
  });

  test('a ref listing declaring 3 GiB: refused before the body is read', async (t) => {
    const outcome = await inChild("store.listRefs('refs/tags/')");
    assertBounded(t, outcome, 'E_PROTOCOL', 'declared 3 GiB JSON');
    assert.match(outcome.message, /a body of 3221225472 bytes/);
  });

  test('an object declaring 3 GiB, and one streaming past 64 MiB without a length: E_PROTOCOL', async (t) => {
    assertBounded(
      t,
      await inChild(`store.get('chunks/${OID}')`),
      'E_PROTOCOL',
      'declared 3 GiB object',
    );
    assertBounded(t, await inChild(`store.get('objects/${OID}')`), 'E_PROTOCOL', 'endless object');
  });

  test('an error answer whose body never ends: the status counts, the body is dropped after 64 KiB', async (t) => {
    const outcome = await inChild(
      "(async () => { for await (const _ of store.list('chunks/')) {} })()",
    );
    assertBounded(t, outcome, 'E_STORE_UNAVAILABLE', 'endless 500 body');
  });

  test('a body shorter than its Content-Length is a cut answer (retriable); a longer one is read only up to it', async () => {
    const store = new HttpStore({ origin, repo: 'r', token: 'tok', rateLimitRetries: 0 });
    try {
      await assert.rejects(store.get(`chunks/${oidFor('short')}`), {
        code: 'E_STORE_UNAVAILABLE',
      });
      const long = await store.get(`chunks/${oidFor('long')}`);
      assert.equal(long.length, 100);
      assert.ok(
        long.every((b) => b === 2),
        'bytes past the declared length were taken',
      );
    } finally {
      await store.close();
    }
  });

  test('a fetched pack over the object limit keeps its complete records and leaves the rest out', async () => {
    const record = (i: number): PackRecord => ({
      kind: 'chunk',
      oid: oidFor(`pack ${i}`),
      data: Buffer.alloc(400 * 1024, i),
    });
    const records = [0, 1, 2, 3, 4].map(record);
    fetchAnswer = encodePack(records);
    const store = new HttpStore({
      origin,
      repo: 'r',
      token: 'tok',
      rateLimitRetries: 0,
      maxObjectBytes: MiB,
    });
    try {
      const got = await store.getMany(records.map((r) => `chunks/${r.oid}`));
      // 1 MiB holds two whole 400 KiB records; the third is cut, and with it the rest.
      assert.deepEqual(
        [...got.keys()],
        records.slice(0, 2).map((r) => `chunks/${r.oid}`),
      );
      assert.ok(got.get(`chunks/${records[1]!.oid}`)!.equals(records[1]!.data));
    } finally {
      await store.close();
    }
  });
});
