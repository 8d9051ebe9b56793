/**
 * The web view in a real headless Chromium (Debian's `chromium`, driven by playwright-core; no
 * browser is downloaded) against a real `mediagit server` on 127.0.0.1, over the generated corpus
 * (small profile, v1 and v2 pushed, plus a short WebM the browser itself encodes so that the
 * video element has something it can decode and seek in).
 *
 * With MEDIAGIT_UI_SCREENSHOTS=<folder> the suite also saves the screenshots docs/server.md shows.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { makeCorpus } from '../support/corpus.js';
import { runCli } from '../support/cli.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';
import { serversRequired } from '../support/test-servers.js';
import { muxWebm, type EncodedFrame } from '../support/webm.js';

const CHROMIUM = process.env['MEDIAGIT_TEST_CHROMIUM'] ?? '/usr/bin/chromium';
const REPO = 'hero-game';
const OTHER = 'secret-project';
const TEXTURE = 'textures/grass_albedo.tif';
const WAV = 'audio/vo_intro.wav';
const VIDEO = 'video/turntable.webm';
const SHOTS = process.env['MEDIAGIT_UI_SCREENSHOTS'];

/**
 * Runs in the page (the test compiles without DOM types): encodes `count` frames of coloured grain
 * and a frame counter to VP8 with WebCodecs; returns the frames with base64 data.
 */
const ENCODE_IN_BROWSER = `async ({ width, height, fps, count }) => {
  const out = [];
  const encoder = new VideoEncoder({
    output: (chunk) => {
      const bytes = new Uint8Array(chunk.byteLength);
      chunk.copyTo(bytes);
      let text = '';
      for (let i = 0; i < bytes.length; i += 0x8000)
        text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      out.push({ timestamp: chunk.timestamp, key: chunk.type === 'key', data: btoa(text) });
    },
    error: (e) => { throw e; },
  });
  encoder.configure({ codec: 'vp8', width, height, bitrate: 6000000, framerate: fps });
  const canvas = new OffscreenCanvas(width, height);
  const g = canvas.getContext('2d');
  let seed = 1;
  for (let i = 0; i < count; i++) {
    g.fillStyle = 'hsl(' + ((i * 7) % 360) + ' 60% 45%)';
    g.fillRect(0, 0, width, height);
    // Grain, so that every frame costs bytes and the file is large enough to need seeking.
    const image = g.getImageData(0, 0, width, height);
    for (let k = 0; k < image.data.length; k += 4) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      image.data[k] = (image.data[k] + (seed & 0xff)) >> 1;
    }
    g.putImageData(image, 0, 0);
    g.fillStyle = '#fff';
    g.font = 'bold 48px sans-serif';
    g.fillText('frame ' + i, 20, 70);
    const frame = new VideoFrame(canvas, { timestamp: Math.round((i * 1e6) / fps) });
    encoder.encode(frame, { keyFrame: i % fps === 0 });
    frame.close();
  }
  await encoder.flush();
  return out;
}`;

/** The few DOM shapes the page functions touch (they run in the browser, typed here by hand). */
interface MediaElement {
  readyState: number;
  currentTime: number;
  duration: number;
  muted: boolean;
  play(): Promise<void>;
  addEventListener(type: string, listener: () => void, options?: { once: boolean }): void;
}
interface ImageElement {
  complete: boolean;
  naturalWidth: number;
  src: string;
}
interface PageGlobals {
  document: {
    cookie: string;
    querySelector(selector: string): unknown;
    querySelectorAll(selector: string): Iterable<unknown>;
  };
}

function skipReason(): string | false {
  if (existsSync(CHROMIUM)) return false;
  const reason = `${CHROMIUM} is missing: apt-get install chromium`;
  if (serversRequired())
    test('chromium is installed (required under CI=true)', () => assert.fail(reason));
  return reason;
}

const skip = skipReason();

describe('web view in a browser', { skip }, () => {
  let server: TestServer;
  let context: BrowserContext;
  let page: Page;
  let work: string;
  let admin: string;
  let reader: string;
  let videoBytes = 0;

  const ui = (p: string): string => `${server.url}/ui/${p}`;

  async function shot(name: string): Promise<void> {
    if (SHOTS === undefined) return;
    await mkdir(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  }

  /** A few seconds of VP8 encoded by the browser, muxed into WebM here. */
  async function encodeVideo(): Promise<Buffer> {
    const width = 320;
    const height = 240;
    const fps = 25;
    const count = 200;
    const frames = (await page.evaluate(
      `(${ENCODE_IN_BROWSER})(${JSON.stringify({ width, height, fps, count })})`,
    )) as { timestamp: number; key: boolean; data: string }[];
    const encoded: EncodedFrame[] = frames.map((f) => ({
      timestamp: f.timestamp,
      key: f.key,
      data: Buffer.from(f.data, 'base64'),
    }));
    return muxWebm(encoded, width, height, (count * 1000) / fps);
  }

  async function signIn(token: string): Promise<void> {
    await context.clearCookies();
    await page.goto(ui(''));
    await page.fill('textarea[name=token]', token);
    await Promise.all([page.waitForURL(ui('')), page.click('button[type=submit]')]);
  }

  before(async () => {
    const { chromium } = await import('playwright-core');
    work = await mkdtemp(path.join(os.tmpdir(), 'mediagit-ui-'));
    server = await startTestServer({ env: { MEDIAGIT_METRICS_ENABLED: 'true' } });
    context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--autoplay-policy=no-user-gesture-required',
      ],
      viewport: { width: 1280, height: 860 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    admin = await server.token(REPO, 'admin', 'ada');
    reader = await server.token(REPO, 'read', 'rita');

    const repo = path.join(work, 'project');
    await makeCorpus(repo, 1, 'small');
    await page.goto(ui('login'));
    const video = await encodeVideo();
    videoBytes = video.length;
    await writeFile(path.join(repo, ...VIDEO.split('/')), video);
    const env = { MEDIAGIT_TOKEN: admin, MEDIAGIT_AUTHOR_NAME: 'Ada Artist' };
    const mg = (...args: string[]) => runCli(args, { cwd: repo, env });
    await mg('init', '-q');
    await mg('add', '.');
    await mg('commit', '-q', '-m', 'First drop of the asset project');
    await mg('remote', 'add', 'origin', `${server.url}/${REPO}`);
    await mg('push', '-q');
    await makeCorpus(repo, 2, 'small');
    await mg('add', '-A', '.');
    await mg('commit', '-q', '-m', 'Paint the grass and the metal; retitle the trailer');
    await mg('push', '-q');
    await mg('lock', TEXTURE);

    // A second repository the read token for the first must not see.
    const other = path.join(work, 'other');
    await mkdir(other);
    await writeFile(path.join(other, 'plan.txt'), 'the secret plan\n');
    const otherEnv = { MEDIAGIT_TOKEN: await server.token(OTHER, 'write', 'olga') };
    const og = (...args: string[]) => runCli(args, { cwd: other, env: otherEnv });
    await og('init', '-q');
    await og('add', '.');
    await og('commit', '-q', '-m', 'plans');
    await og('remote', 'add', 'origin', `${server.url}/${OTHER}`);
    await og('push', '-q');
  });

  after(async () => {
    await context?.close();
    await server?.close();
    await rm(work, { recursive: true, force: true });
  });

  test('without a session every page answers 401 with the sign-in form', async () => {
    for (const p of [
      '',
      `${REPO}/-/`,
      `${REPO}/-/tree`,
      `${REPO}/-/history?path=${TEXTURE}`,
      `${REPO}/-/raw?path=${WAV}`,
    ]) {
      const res = await page.goto(ui(p));
      assert.equal(res?.status(), 401, p);
      assert.equal(await page.locator('form.login textarea[name=token]').count(), 1, p);
    }
    await shot('login');
  });

  test('signing in with a token sets an HttpOnly, SameSite=Strict cookie and lists the repository', async () => {
    await signIn(admin);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'mediagit_ui');
    assert.ok(session, 'session cookie set');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/ui');
    assert.equal(
      await page.evaluate(() => (globalThis as unknown as PageGlobals).document.cookie),
      '',
      'no script can read it',
    );
    assert.ok(!page.url().includes(admin), 'the token is not in the URL');
    await page.getByRole('link', { name: REPO, exact: true }).click();
    await page.waitForURL(ui(`${REPO}/-/`));
    assert.match(await page.locator('main').innerText(), /main/);
    await shot('overview');
  });

  test('the commit list shows author, date, files changed and new data', async () => {
    await page.goto(ui(`${REPO}/-/commits`));
    const rows = page.locator('main tbody tr');
    assert.equal(await rows.count(), 2);
    const newest = await rows.nth(0).innerText();
    assert.match(newest, /Paint the grass/);
    assert.match(newest, /Ada Artist/);
    assert.match(newest, /\d+(\.\d+)? (KiB|MiB)/);
    await shot('commits');
  });

  test("a TIFF texture's history lists both versions with two thumbnails that differ", async () => {
    await page.goto(ui(`${REPO}/-/history?path=${TEXTURE}`));
    const cards = page.locator('article.version');
    assert.equal(await cards.count(), 2);
    const images = page.locator('article.version img');
    assert.equal(await images.count(), 2);
    await page.waitForFunction(() =>
      [
        ...(globalThis as unknown as PageGlobals).document.querySelectorAll('article.version img'),
      ].every((img) => (img as ImageElement).complete && (img as ImageElement).naturalWidth > 0),
    );
    const sources = await images.evaluateAll((els) => els.map((el) => (el as ImageElement).src));
    // Fetched with the browser's own session cookie (the pages' CSP allows no script fetches).
    const digests = await Promise.all(
      sources.map(async (src) => {
        const res = await context.request.get(src);
        assert.equal(res.status(), 200);
        assert.equal(res.headers()['content-type'], 'image/webp');
        return createHash('sha256')
          .update(await res.body())
          .digest('hex');
      }),
    );
    assert.equal(digests.length, 2);
    assert.notEqual(digests[0], digests[1]);
    assert.match(await cards.nth(0).innerText(), /modified/);
    assert.match(await cards.nth(1).innerText(), /added/);
    await shot('history');
  });

  test('two versions of the texture side by side with a slider', async () => {
    await page.goto(ui(`${REPO}/-/history?path=${TEXTURE}`));
    await page.getByRole('link', { name: 'compare with previous' }).click();
    await page.waitForLoadState('networkidle');
    const slider = page.getByRole('slider');
    await slider.focus();
    await page.keyboard.press('ArrowLeft');
    assert.equal(await slider.inputValue(), '49');
    assert.equal(await page.locator('.side img').count(), 2);
    await shot('compare');
  });

  test('two versions of a sound one after the other, with what each stored', async () => {
    await page.goto(ui(`${REPO}/-/history?path=${WAV}`));
    const cards = page.locator('article.version');
    assert.equal(await cards.count(), 2);
    // v2 appends a second of audio: most of the file is shared with v1, so little is new.
    assert.match(
      await cards.nth(0).innerText(),
      /modified\s+\+[\d.]+ KiB, [\d.]+ (KiB|MiB) new data/,
    );
    await page.getByRole('link', { name: 'compare with previous' }).click();
    await page.waitForLoadState('domcontentloaded');
    assert.equal(await page.locator('main audio').count(), 2);
  });

  test('the WAV page plays', async () => {
    await page.goto(ui(`${REPO}/-/file?path=${WAV}`));
    const audio = page.locator('main audio');
    assert.equal(await audio.count(), 1);
    await audio.evaluate((el: MediaElement) => {
      el.muted = true;
      return el.play();
    });
    await page.waitForFunction(() => {
      const el = (globalThis as unknown as PageGlobals).document.querySelector(
        'main audio',
      ) as MediaElement;
      return el.readyState >= 2 && el.currentTime > 0;
    });
  });

  test('the video seeks to the middle with a 206 Range response', async () => {
    const ranges: { status: number; start: number }[] = [];
    const onResponse = (res: import('playwright-core').Response): void => {
      if (!res.url().includes('/raw?')) return;
      const range = /^bytes (\d+)-/.exec(res.headers()['content-range'] ?? '');
      ranges.push({ status: res.status(), start: range ? Number(range[1]) : -1 });
    };
    page.on('response', onResponse);
    try {
      await page.goto(ui(`${REPO}/-/file?path=${VIDEO}`));
      const video = page.locator('main video');
      await video.evaluate(
        (el: MediaElement) =>
          new Promise<void>((resolve) => {
            if (el.readyState >= 1) resolve();
            else el.addEventListener('loadedmetadata', () => resolve(), { once: true });
          }),
      );
      const seeked = await video.evaluate(
        (el: MediaElement) =>
          new Promise<{ time: number; duration: number; ready: number }>((resolve) => {
            el.addEventListener(
              'seeked',
              () => resolve({ time: el.currentTime, duration: el.duration, ready: el.readyState }),
              { once: true },
            );
            el.currentTime = el.duration / 2;
          }),
      );
      assert.ok(Math.abs(seeked.time - seeked.duration / 2) < 0.5, JSON.stringify(seeked));
      await page.waitForFunction(
        () =>
          (
            (globalThis as unknown as PageGlobals).document.querySelector(
              'main video',
            ) as MediaElement
          ).readyState >= 2,
      );
      const middle = ranges.find((r) => r.status === 206 && r.start > videoBytes / 4);
      assert.ok(middle, `a 206 answer from past the start: ${JSON.stringify(ranges)}`);
    } finally {
      page.off('response', onResponse);
    }
    await shot('video');
  });

  test('a locked file shows its holder', async () => {
    await page.goto(ui(`${REPO}/-/file?path=${TEXTURE}`));
    assert.match(await page.getByRole('status').innerText(), /Locked by\s+ada/);
    await shot('file');
    await page.goto(ui(`${REPO}/-/locks`));
    const row = await page.locator('main tbody tr').first().innerText();
    assert.match(row, /grass_albedo\.tif/);
    assert.match(row, /ada/);
  });

  test('a read token for one repository sees nothing of another', async () => {
    await signIn(reader);
    const listed = await page.locator('main').innerText();
    assert.match(listed, new RegExp(REPO));
    assert.doesNotMatch(listed, new RegExp(OTHER));
    for (const p of [`${OTHER}/-/`, `${OTHER}/-/tree`, `${OTHER}/-/raw?path=plan.txt`]) {
      const res = await page.goto(ui(p));
      assert.equal(res?.status(), 403, p);
      assert.doesNotMatch(await page.content(), /secret plan/);
    }
    const res = await page.goto(ui(`${REPO}/-/tree`));
    assert.equal(res?.status(), 200);
  });

  test('signing out clears the session', async () => {
    await page.goto(ui(''));
    await Promise.all([
      page.waitForURL(/\/ui\/login$/),
      page.getByRole('button', { name: 'Sign out' }).click(),
    ]);
    assert.equal((await context.cookies()).filter((c) => c.name === 'mediagit_ui').length, 0);
    const res = await page.goto(ui(`${REPO}/-/`));
    assert.equal(res?.status(), 401);
  });

  test('a link from `mediagit server token --ui` signs in without the token reaching a URL', async () => {
    await context.clearCookies();
    const { stdout } = await runCli(
      [
        'server',
        'token',
        '--repo',
        REPO,
        '--role',
        'read',
        '--sub',
        'lena',
        '--ttl',
        '10m',
        '--ui',
        server.url,
      ],
      { cwd: work, env: { MEDIAGIT_JWT_SECRET: server.secret } },
    );
    const link = stdout.trim();
    assert.match(link, /\/ui\/login#token=[\w-]+\.[\w-]+\.[\w-]+$/);
    const requested: string[] = [];
    const onRequest = (req: import('playwright-core').Request): void =>
      void requested.push(req.url());
    page.on('request', onRequest);
    try {
      await page.goto(link);
      await page.waitForURL(ui(''));
    } finally {
      page.off('request', onRequest);
    }
    assert.match(await page.locator('header').innerText(), /lena/);
    const token = link.slice(link.indexOf('#token=') + 7);
    assert.ok(
      requested.every((u) => !u.includes(token)),
      'no request URL carries the token',
    );
    assert.ok(
      !(
        await page.evaluate(
          () => (globalThis as unknown as { location: { href: string } }).location.href,
        )
      ).includes('#'),
    );
  });

  test('keyboard: the first Tab reaches the skip link, and every control has a name', async () => {
    await signIn(admin);
    await page.goto(ui(`${REPO}/-/tree?path=textures`));
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(
      () =>
        (globalThis as unknown as { document: { activeElement: { textContent: string } | null } })
          .document.activeElement?.textContent,
    );
    assert.equal(focused, 'Skip to content');
    const unnamed = await page.evaluate(() =>
      [
        ...(globalThis as unknown as PageGlobals).document.querySelectorAll(
          'a, button, input, textarea, audio, video, img',
        ),
      ]
        .map(
          (el) =>
            el as { tagName: string; textContent: string; getAttribute(n: string): string | null },
        )
        .filter(
          (el) =>
            (el.textContent ?? '').trim() === '' &&
            el.getAttribute('aria-label') === null &&
            el.getAttribute('alt') === null &&
            el.getAttribute('id') === null,
        )
        .map((el) => el.tagName),
    );
    // Thumbnails in a listing are decorative (alt=""): the file name next to them is the link.
    assert.deepEqual(unnamed, []);
  });

  test('screenshots at tablet width', { skip: SHOTS === undefined }, async () => {
    await signIn(admin);
    await page.setViewportSize({ width: 820, height: 1100 });
    await page.goto(ui(`${REPO}/-/tree?path=textures`));
    await page.waitForLoadState('networkidle');
    await shot('tree-tablet');
    await page.setViewportSize({ width: 1280, height: 860 });
  });
});
