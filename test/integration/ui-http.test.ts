/**
 * The web view over plain HTTP: byte ranges, downloads and archives, the thumbnail cache, bad
 * input, sessions and their CSRF guard, encrypted repositories, and the audit log and metrics.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { ObjectDatabase } from '../../src/objects/index.js';
import { LocalStore } from '../../src/store/index.js';
import { runCli } from '../support/cli.js';
import { http, startTestServer, type TestServer } from '../support/server-harness.js';

const REPO = 'art';
const run = promisify(execFile);

async function image(color: { r: number; g: number; b: number }): Promise<Buffer> {
  return sharp({ create: { width: 300, height: 200, channels: 3, background: color } })
    .png()
    .toBuffer();
}

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('web view over HTTP', () => {
  let server: TestServer;
  let work: string;
  let token: string;
  let big: Buffer;

  const ui = (p: string): string => `${server.url}/ui/${p}`;
  const get = (p: string, headers: Record<string, string> = {}) => http(ui(p), { token, headers });

  before(async () => {
    server = await startTestServer({ env: { MEDIAGIT_METRICS_ENABLED: 'true' } });
    token = await server.token(REPO, 'write', 'ada');
    work = await mkdtemp(path.join(os.tmpdir(), 'mediagit-ui-http-'));
    const repo = path.join(work, 'repo');
    await mkdir(path.join(repo, 'art', 'sub'), { recursive: true });
    big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 12)) & 0xff;
    await writeFile(path.join(repo, 'art', 'big.bin'), big);
    await writeFile(path.join(repo, 'art', 'logo.png'), await image({ r: 200, g: 30, b: 30 }));
    await writeFile(path.join(repo, 'art', 'sub', 'notes ünïcode.txt'), 'hello\n');
    await writeFile(path.join(repo, 'meta.json'), '{"a":1}');
    const env = { MEDIAGIT_TOKEN: token };
    const mg = (...args: string[]) => runCli(args, { cwd: repo, env });
    await mg('init', '-q');
    await mg('add', '.');
    await mg('commit', '-q', '-m', 'one');
    await writeFile(path.join(repo, 'art', 'logo.png'), await image({ r: 30, g: 30, b: 200 }));
    await mg('add', '.');
    await mg('commit', '-q', '-m', 'two');
    await mg('remote', 'add', 'origin', `${server.url}/${REPO}`);
    await mg('push', '-q');
  });
  after(async () => {
    await server.close();
    await rm(work, { recursive: true, force: true });
  });

  test('a Range request returns 206 with exactly those bytes', async () => {
    const res = await get(`${REPO}/-/raw?path=art/big.bin`, { range: 'bytes=0-99' });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), `bytes 0-99/${big.length}`);
    assert.deepEqual(res.body, big.subarray(0, 100));
    // Across a chunk boundary, and the suffix form.
    const mid = await get(`${REPO}/-/raw?path=art/big.bin`, { range: 'bytes=1048570-2097160' });
    assert.equal(mid.status, 206);
    assert.deepEqual(mid.body, big.subarray(1048570, 2097161));
    const tail = await get(`${REPO}/-/raw?path=art/big.bin`, { range: 'bytes=-10' });
    assert.deepEqual(tail.body, big.subarray(big.length - 10));
    const whole = await get(`${REPO}/-/raw?path=art/big.bin&download=1`);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('accept-ranges'), 'bytes');
    assert.match(whole.headers.get('content-disposition') ?? '', /^attachment; filename="big.bin"/);
    assert.deepEqual(whole.body, big);
  });

  test('curl -r 0-99 on the raw URL', async (t) => {
    const curl = await run('curl', ['--version']).catch(() => null);
    if (curl === null) return t.skip('curl is not installed');
    const out = path.join(work, 'curl.bin');
    const { stdout } = await run('curl', [
      '-s',
      '-r',
      '0-99',
      '-H',
      `Authorization: Bearer ${token}`,
      '-o',
      out,
      '-w',
      '%{http_code}',
      ui(`${REPO}/-/raw?path=art/big.bin`),
    ]);
    assert.equal(stdout, '206');
    assert.deepEqual(await readFile(out), big.subarray(0, 100));
  });

  test('types and names: Content-Type and Content-Disposition follow the file', async () => {
    const png = await get(`${REPO}/-/raw?path=art/logo.png`);
    assert.equal(png.headers.get('content-type'), 'image/png');
    const txt = await get(`${REPO}/-/raw?path=${encodeURIComponent('art/sub/notes ünïcode.txt')}`);
    assert.equal(txt.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.match(
      txt.headers.get('content-disposition') ?? '',
      /filename\*=UTF-8''notes%20%C3%BCn%C3%AFcode\.txt/,
    );
    const page = await get(`${REPO}/-/file?path=meta.json`);
    assert.equal(page.status, 200);
    assert.match(page.body.toString(), /&quot;a&quot;: 1/);
  });

  test('a thumbnail is made once, then read from the cache (counted)', async () => {
    const file = await get(`${REPO}/-/file?path=art/logo.png`);
    const src = /src="([^"]*\/thumb\?[^"]*)"/
      .exec(file.body.toString())?.[1]
      ?.replace(/&amp;/g, '&');
    assert.ok(src, 'the file page shows a thumbnail');
    const metricsBefore = await (await fetch(server.metricsUrl!)).text();
    const first = await http(`${server.url}${src}`, { token });
    const second = await http(`${server.url}${src}`, { token });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('content-type'), 'image/webp');
    assert.equal(first.headers.get('x-thumbnail'), 'made');
    assert.equal(second.headers.get('x-thumbnail'), 'cache');
    assert.deepEqual(first.body, second.body);
    const meta = await sharp(first.body).metadata();
    assert.equal(meta.width, 300);
    const metricsAfter = await (await fetch(server.metricsUrl!)).text();
    const name = 'mediagit_ui_thumbnails_total';
    assert.equal(
      metric(metricsAfter, name, 'result="made"') - metric(metricsBefore, name, 'result="made"'),
      1,
    );
    assert.equal(
      metric(metricsAfter, name, 'result="cache"') - metric(metricsBefore, name, 'result="cache"'),
      1,
    );
    // UI routes are in the request histogram like the API's.
    assert.match(
      metricsAfter,
      /mediagit_request_duration_seconds_count\{route="\/ui\/:repo\/-\/thumb"/,
    );
  });

  test('folders download as zip and tar streams that unpack to the same bytes', async (t) => {
    const zip = await get(`${REPO}/-/archive?path=art&format=zip`);
    assert.equal(zip.status, 200);
    assert.equal(zip.headers.get('content-type'), 'application/zip');
    assert.match(
      zip.headers.get('content-disposition') ?? '',
      /attachment; filename="art-main-art\.zip"/,
    );
    const tar = await get(`${REPO}/-/archive?format=tar`);
    assert.equal(tar.headers.get('content-type'), 'application/x-tar');
    const python = await run('python3', ['--version']).catch(() => null);
    if (python === null) return t.skip('python3 is not installed to read the archives');
    await writeFile(path.join(work, 'a.zip'), zip.body);
    await writeFile(path.join(work, 'a.tar'), tar.body);
    const script = `
import zipfile, tarfile, hashlib, sys
z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None
t = tarfile.open(sys.argv[2])
print(sorted(z.namelist()))
print(sorted(m.name for m in t.getmembers()))
print(hashlib.sha256(z.read('big.bin')).hexdigest(), hashlib.sha256(t.extractfile('art/big.bin').read()).hexdigest())
`;
    const { stdout } = await run('python3', [
      '-c',
      script,
      path.join(work, 'a.zip'),
      path.join(work, 'a.tar'),
    ]);
    const [zipNames, tarNames, hashes] = stdout.trim().split('\n');
    assert.equal(zipNames, "['big.bin', 'logo.png', 'sub/notes ünïcode.txt']");
    assert.equal(
      tarNames,
      "['art/big.bin', 'art/logo.png', 'art/sub/notes ünïcode.txt', 'meta.json']",
    );
    const { createHash } = await import('node:crypto');
    const digest = createHash('sha256').update(big).digest('hex');
    assert.equal(hashes, `${digest} ${digest}`);
  });

  test('bad input gets a clear 4xx page and reads nothing outside the repository', async () => {
    const cases: [string, number, Record<string, string>?][] = [
      [`${REPO}/-/tree?path=../../etc`, 400],
      [`${REPO}/-/file?path=art/../../../etc/passwd`, 400],
      [`${REPO}/-/raw?path=%2e%2e/%2e%2e/etc/passwd`, 400],
      [`${REPO}/-/raw?path=art\\..\\x`, 400],
      [`${REPO}/-/raw?path=art/big.bin`, 400, { range: 'bytes=abc' }],
      [`${REPO}/-/raw?path=art/big.bin`, 400, { range: 'bytes=9-3' }],
      [`${REPO}/-/raw?path=art/big.bin`, 416, { range: `bytes=${big.length}-` }],
      [`${REPO}/-/tree?rev=no-such-branch`, 404],
      [`${REPO}/-/tree?rev=${'0'.repeat(64)}`, 404],
      [`${REPO}/-/tree?rev=bad..rev`, 400],
      [`${REPO}/-/file?path=art/missing.png`, 404],
      [`${REPO}/-/raw?id=${'a'.repeat(64)}&name=x.png`, 404],
      [`${REPO}/-/thumb?id=${'a'.repeat(64)}&w=160`, 404],
      [`${REPO}/-/thumb?id=zz&w=160`, 400],
      [`${REPO}/-/commits?skip=-1`, 400],
      [`${REPO}/-/archive?format=rar`, 400],
      [`${REPO}/-/no-such-page`, 404],
    ];
    for (const [p, status, headers] of cases) {
      const res = await get(p, headers ?? {});
      assert.equal(res.status, status, `${p} ${JSON.stringify(headers ?? {})}`);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/, p);
      assert.doesNotMatch(res.body.toString(), /root:|at .*\.js:\d+/, p);
    }
    // Sent byte for byte: fetch would resolve the dot segments before sending.
    for (const p of ['..%2F..%2Fetc/-/tree', '%2e%2e/-/tree', `${REPO}/%2e%2e/-/tree`]) {
      const status = await new Promise<number>((resolve, reject) => {
        const url = new URL(server.url);
        request(
          {
            host: url.hostname,
            port: url.port,
            path: `/ui/${p}`,
            headers: { authorization: `Bearer ${token}` },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        )
          .on('error', reject)
          .end();
      });
      assert.ok(status === 400 || status === 404, `${p}: ${status}`);
    }
    const other = await server.token('nope', 'read', 'ada');
    const missing = await http(ui('nope/-/'), { token: other });
    assert.equal(missing.status, 404);
    assert.match(missing.body.toString(), /no repository named nope/);
  });

  test('sessions: the cookie is set only by a same-origin form post, and bad tokens are refused', async () => {
    const form = (body: string, headers: Record<string, string> = {}) =>
      fetch(ui('login'), {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body,
      });
    const good = await form(
      `token=${encodeURIComponent(token)}&next=${encodeURIComponent(`/ui/${REPO}/-/`)}`,
      {
        origin: server.url,
      },
    );
    assert.equal(good.status, 303);
    assert.equal(good.headers.get('location'), `/ui/${REPO}/-/`);
    const cookie = good.headers.get('set-cookie') ?? '';
    assert.match(cookie, /^mediagit_ui=[^;]+; Path=\/ui; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const session = cookie.split(';')[0]!;
    const page = await fetch(ui(`${REPO}/-/`), { headers: { cookie: session } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);

    const forged = await form(`token=${encodeURIComponent(token)}`, {
      origin: 'http://evil.example',
    });
    assert.equal(forged.status, 403);
    assert.equal(forged.headers.get('set-cookie'), null);
    const crossSite = await form(`token=${encodeURIComponent(token)}`, {
      'sec-fetch-site': 'cross-site',
    });
    assert.equal(crossSite.status, 403);
    const offsite = await form(
      `token=${encodeURIComponent(token)}&next=${encodeURIComponent('//evil.example/')}`,
    );
    assert.equal(offsite.headers.get('location'), '/ui/');
    const bad = await form('token=not-a-token');
    assert.equal(bad.status, 401);
    const expired = await fetch(ui(`${REPO}/-/`), {
      headers: { cookie: 'mediagit_ui=eyJhbGciOiJIUzI1NiJ9.e30.x' },
    });
    assert.equal(expired.status, 401);
    assert.match(expired.headers.get('set-cookie') ?? '', /Max-Age=0/);

    // No token in any audit line, and the failures are audited like the API's.
    const lines = JSON.stringify(server.auditLines);
    assert.ok(!lines.includes(token));
    assert.ok(
      server.auditLines.some(
        (l) => l['event'] === 'auth_failure' && l['target'] === 'POST /ui/login',
      ),
    );
  });

  test('anonymous visitors get the sign-in page, unless the server allows anonymous reading', async () => {
    const res = await http(ui(`${REPO}/-/`));
    assert.equal(res.status, 401);
    assert.match(res.body.toString(), /name="token"/);
    const open = await startTestServer({ config: '[auth]\nanonymous_read = true\n' });
    try {
      const page = await http(`${open.url}/ui/`);
      assert.equal(page.status, 200);
      assert.match(page.body.toString(), /anonymous/);
    } finally {
      await open.close();
    }
  });

  test('a folder of 100,000 files is shown a page at a time', async () => {
    // Written straight into the server's folder: one shared file content, one huge folder.
    const store = new LocalStore(path.join(server.dataDir!, 'wide'), { fsync: false });
    const odb = new ObjectDatabase(store, { compressionLevel: 1 });
    const chunk = await odb.putChunk(Buffer.from('frame'), { skipCompression: true });
    const manifest = await odb.writeManifest({ size: 5, chunks: [{ oid: chunk.oid, size: 5 }] });
    const count = 100_000;
    const names = Array.from(
      { length: count },
      (_, i) => `frame_${String(i).padStart(6, '0')}.exr`,
    );
    const frames = await odb.writeTree(
      names.map((name) => ({ name, type: 'file' as const, oid: manifest.oid, size: 5 })),
    );
    const root = await odb.writeTree([
      { name: 'shots', type: 'dir', oid: frames.oid, size: 5 * count },
    ]);
    const who = {
      name: 'Render Farm',
      email: 'farm@example.com',
      time: 1_800_000_000,
      tzOffset: 0,
    };
    const commit = await odb.writeCommit({
      tree: root.oid,
      parents: [],
      author: who,
      committer: who,
      message: 'frames\n',
    });
    assert.ok(await store.compareAndSwapRef('refs/heads/main', null, commit.oid));
    const wide = await server.token('wide', 'read', 'ada');

    const first = await http(ui('wide/-/tree?path=shots'), { token: wide });
    assert.equal(first.status, 200);
    const text = first.body.toString();
    assert.equal(text.match(/<tr>/g)?.length, 201, 'a header row and one page of 200 entries');
    assert.match(text, /100000 entries/);
    const next = /href="([^"]*after=frame_000199[^"]*)"/.exec(text)?.[1]?.replace(/&amp;/g, '&');
    assert.ok(next, 'a link to the next page');
    const second = await http(`${server.url}${next}`, { token: wide });
    assert.match(second.body.toString(), /frame_000200\.exr/);
    assert.doesNotMatch(second.body.toString(), /frame_000199\.exr/);
    // The commit that added them all is summarised without diffing past the cap.
    const commits = await http(ui('wide/-/commits'), { token: wide });
    assert.equal(commits.status, 200);
    assert.match(commits.body.toString(), /2000\+/);
  });

  test('an encrypted repository shows only that it is encrypted', async () => {
    const secret = await server.token('vault', 'write', 'ada');
    const descriptor = {
      format: 'mediagit',
      version: 1,
      chunking: { min_size: 262144, avg_size: 1048576, max_size: 4194304 },
      encryption: 'aes-256-gcm',
    };
    const put = await http(`${server.url}/vault/meta/repository`, {
      method: 'PUT',
      token: secret,
      body: Buffer.from(JSON.stringify(descriptor)),
    });
    assert.equal(put.status, 201);
    const overview = await http(ui('vault/-/'), { token: secret });
    assert.equal(overview.status, 200);
    assert.match(overview.body.toString(), /This repository is encrypted/);
    assert.match(overview.body.toString(), /cannot read them/);
    for (const p of ['vault/-/tree', 'vault/-/commits', `vault/-/raw?id=${'a'.repeat(64)}`]) {
      const res = await http(ui(p), { token: secret });
      assert.equal(res.status, 409, p);
      assert.match(res.body.toString(), /encrypted/);
    }
  });
});
