/**
 * The repository pages: overview, files, commits, one commit, one file, a file's history, a
 * comparison of two versions, locks. Each reads one page of data (a folder, 30 commits, 20
 * versions) and renders it; cursors in the query string take the reader to the next page.
 */
import type { Commit, Oid, TreeEntry } from '../objects/index.js';
import { badRequest } from '../server/errors.js';
import { listLocks, lockIdOf, readLock } from '../server/locks.js';
import { mapLimit } from '../util/limit.js';
import type { PageResult, RepoRequest } from './context.js';
import { readHead } from './content.js';
import { Html, formatBytes, formatDate, html, page, query, type Crumb } from './html.js';
import { canThumbnail, mediaTypeOf, sniffMediaType, type PreviewKind } from './media.js';
import { noSuchPath, pathSegments, type Change, type FileVersion } from './reader.js';

const TREE_PAGE = 200;
const COMMIT_PAGE = 30;
const HISTORY_PAGE = 20;
/** Commits one history page may walk looking for versions of a file. */
const HISTORY_BUDGET = 2000;
const TEXT_PREVIEW_BYTES = 256 * 1024;
const CHANGES_SHOWN = 500;
/** Branches and tags shown on the overview (each costs a commit read). */
const REFS_SHOWN = 400;

const short = (oid: Oid): string => oid.slice(0, 10);
const firstLine = (message: string): string => message.split('\n', 1)[0] ?? '';

function intParam(value: string | undefined, name: string): number {
  if (value === undefined || value === '') return 0;
  if (!/^\d{1,9}$/.test(value)) throw badRequest(`${name} must be a whole number`);
  return Number(value);
}

function frame(
  ctx: RepoRequest,
  title: string,
  current: string,
  crumbs: readonly Crumb[],
  body: Html,
  rev?: string,
): Html {
  return page({
    title,
    user: ctx.user,
    crumbs: [{ label: ctx.repo, href: ctx.base }, ...crumbs],
    repoNav: rev === undefined ? { base: ctx.base, current } : { base: ctx.base, current, rev },
    body,
  });
}

/** Breadcrumbs for a path inside the tree at `rev`. */
function pathCrumbs(ctx: RepoRequest, rev: string, segments: readonly string[]): Crumb[] {
  const label = /^[0-9a-f]{64}$/.test(rev) ? short(rev) : rev;
  const crumbs: Crumb[] = [{ label, href: `${ctx.base}tree${query({ rev })}` }];
  segments.forEach((name, i) => {
    const path = segments.slice(0, i + 1).join('/');
    crumbs.push({ label: name, href: `${ctx.base}tree${query({ rev, path })}` });
  });
  return crumbs;
}

function who(commit: Commit): string {
  return commit.author.name;
}

const ok = (body: Html): PageResult => ({ status: 200, body });

export function rawUrl(ctx: RepoRequest, oid: Oid, name: string, download = false): string {
  return `${ctx.base}raw${query({ id: oid, name, download: download ? '1' : undefined })}`;
}

export function thumbUrl(ctx: RepoRequest, oid: Oid, width: number): string {
  return `${ctx.base}thumb${query({ id: oid, w: width })}`;
}

// ---- overview ----

export async function overview(ctx: RepoRequest): Promise<PageResult> {
  const [heads, tags] = await Promise.all([
    ctx.reader.refs('refs/heads/'),
    ctx.reader.refs('refs/tags/'),
  ]);
  if (heads.length === 0 && tags.length === 0)
    return ok(
      frame(
        ctx,
        ctx.repo,
        'overview',
        [],
        html`<h1>${ctx.repo}</h1>
          <p class="sub">Nothing has been pushed to this repository yet.</p>`,
      ),
    );
  const tips = await mapLimit([...heads, ...tags].slice(0, REFS_SHOWN), 16, async (ref) => {
    try {
      const commit = await ctx.reader.peel(ref.oid, ref.short);
      return { ref, commit, info: await ctx.reader.readCommit(commit) };
    } catch {
      return { ref, commit: ref.oid, info: null };
    }
  });
  const table = (kind: 'branch' | 'tag', rows: typeof tips): Html =>
    rows.length === 0
      ? html`<p class="muted">No ${kind === 'branch' ? 'branches' : 'tags'}.</p>`
      : html`<table>
          <thead>
            <tr>
              <th scope="col">${kind === 'branch' ? 'Branch' : 'Tag'}</th>
              <th scope="col">Last commit</th>
              <th scope="col" class="hide-narrow">Author</th>
              <th scope="col" class="num">Date</th>
            </tr>
          </thead>
          <tbody>
            ${rows.map(
              (t) =>
                html`<tr>
                  <td class="name">
                    <a href="${ctx.base}tree${query({ rev: t.ref.short })}">${t.ref.short}</a>
                  </td>
                  <td>
                    ${
                      t.info === null
                        ? html`<span class="muted">${short(t.commit)} (missing)</span>`
                        : html`<a href="${ctx.base}commit${query({ id: t.commit })}" class="mono"
                              >${short(t.commit)}</a
                            >
                            ${firstLine(t.info.message)}`
                    }
                  </td>
                  <td class="hide-narrow">${t.info === null ? '' : who(t.info)}</td>
                  <td class="num">${t.info === null ? '' : formatDate(t.info.committer.time)}</td>
                </tr>`,
            )}
          </tbody>
        </table>`;
  const headTips = tips.slice(0, heads.length);
  const tagTips = tips.slice(heads.length);
  const main = await ctx.reader.defaultBranch();
  return ok(
    frame(
      ctx,
      ctx.repo,
      'overview',
      [],
      html`<h1>${ctx.repo}</h1>
        <p class="sub">
          ${heads.length} branch${heads.length === 1 ? '' : 'es'} · ${tags.length}
          tag${tags.length === 1 ? '' : 's'}
        </p>
        ${
          main !== null
            ? html`<div class="actions">
                <a class="button primary" href="${ctx.base}tree${query({ rev: main.short })}"
                  >Browse files on ${main.short}</a
                ><a class="button" href="${ctx.base}commits${query({ rev: main.short })}">Commits</a
                ><a class="button" href="${ctx.base}locks">Locks</a>
              </div>`
            : ''
        }
        <h2>Branches</h2>
        ${table('branch', headTips)}
        <h2>Tags</h2>
        ${table('tag', tagTips)}`,
    ),
  );
}

// ---- files ----

const LOCK_ICON = new Html(
  '<svg class="inline-glyph" viewBox="0 0 24 24" aria-hidden="true"><path d="M7 10V7a5 5 0 0 1 10 0v3h1a1 1 0 0 1 1 1v9a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1v-9a1 1 0 0 1 1-1zm2 0h6V7a3 3 0 0 0-6 0z"/></svg>',
);

const FOLDER_ICON = new Html(
  '<svg class="glyph" viewBox="0 0 24 24" aria-hidden="true"><path d="M3 6.5A1.5 1.5 0 0 1 4.5 5h4.4l2 2h8.6A1.5 1.5 0 0 1 21 8.5v9a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 3 17.5z"/></svg>',
);

/** A folder glyph, or the file's extension in a small tile coloured by its kind. */
function entryIcon(entry: TreeEntry): Html {
  if (entry.type === 'dir') return FOLDER_ICON;
  const kind = mediaTypeOf(entry.name).preview;
  const dot = entry.name.lastIndexOf('.');
  const ext = dot > 0 ? entry.name.slice(dot + 1, dot + 5).toUpperCase() : 'FILE';
  return html`<span class="ext ${kind}" aria-hidden="true">${ext}</span>`;
}

export async function tree(ctx: RepoRequest): Promise<PageResult> {
  const { rev, commit } = await ctx.reader.resolve(ctx.param('rev'));
  const path = ctx.param('path') ?? '';
  const segments = pathSegments(path);
  const entry = await ctx.reader.entryAt(commit, segments);
  if (entry === null) throw noSuchPath(path, rev);
  if (entry.type !== 'dir') {
    ctx.reply.redirect(`${ctx.base}file${query({ rev, path })}`, 303);
    return 'sent';
  }
  const all = await ctx.reader.readTree(entry.oid);
  const after = ctx.param('after');
  // Folders first, as file browsers show them; within each, the tree's own (byte) order.
  const ordered = [...all.filter((e) => e.type === 'dir'), ...all.filter((e) => e.type !== 'dir')];
  const from = after === undefined ? 0 : ordered.findIndex((e) => e.name === after) + 1;
  const shown = ordered.slice(from, from + TREE_PAGE);
  const more = from + TREE_PAGE < ordered.length;
  const joined = segments.join('/');
  const child = (name: string): string => (joined === '' ? name : `${joined}/${name}`);
  const info = await ctx.reader.readCommit(commit);
  const rows = shown.map((e) => {
    const href =
      e.type === 'dir'
        ? `${ctx.base}tree${query({ rev, path: child(e.name) })}`
        : `${ctx.base}file${query({ rev, path: child(e.name) })}`;
    const thumb =
      e.type !== 'dir' && canThumbnail(e.name)
        ? html`<img class="thumb" loading="lazy" alt="" src="${thumbUrl(ctx, e.oid, 160)}" />`
        : entryIcon(e);
    return html`<tr>
      <td class="lead">${thumb}</td>
      <td class="name"><a href="${href}">${e.name}${e.type === 'dir' ? '/' : ''}</a></td>
      <td class="num">${formatBytes(e.size)}</td>
    </tr>`;
  });
  const archive = (format: string): string =>
    `${ctx.base}archive${query({ rev, path: joined === '' ? undefined : joined, format })}`;
  return ok(
    frame(
      ctx,
      joined === '' ? `${ctx.repo} at ${rev}` : joined,
      'files',
      pathCrumbs(ctx, rev, segments),
      html`<h1>${joined === '' ? ctx.repo : (segments[segments.length - 1] ?? '')}</h1>
        <p class="sub">
          At <a class="mono" href="${ctx.base}commit${query({ id: commit })}">${short(commit)}</a> —
          ${firstLine(info.message)} · ${all.length} entr${all.length === 1 ? 'y' : 'ies'} ·
          ${formatBytes(entry.type === 'dir' && segments.length === 0 ? all.reduce((s, e) => s + e.size, 0) : entry.size)}
        </p>
        <div class="actions">
          <a class="button" href="${archive('zip')}">Download folder (.zip)</a
          ><a class="button" href="${archive('tar')}">Download folder (.tar)</a>
        </div>
        <table>
          <thead>
            <tr>
              <th scope="col" class="lead"><span class="visually-hidden">Preview</span></th>
              <th scope="col">Name</th>
              <th scope="col" class="num">Size</th>
            </tr>
          </thead>
          <tbody>
            ${rows}
          </tbody>
        </table>
        ${
          more || from > 0
            ? html`<div class="pager">
                ${from > 0 ? html`<a class="button" href="${ctx.base}tree${query({ rev, path: joined || undefined })}">First page</a>` : ''}${
                  more
                    ? html`<a
                        class="button"
                        href="${ctx.base}tree${query({ rev, path: joined || undefined, after: shown[shown.length - 1]?.name })}"
                        >Next ${TREE_PAGE}</a
                      >`
                    : ''
                }
              </div>`
            : ''
        }`,
      rev,
    ),
  );
}

// ---- commits ----

function summaryCells(changes: number, truncated: boolean, bytesAdded: number | null): Html {
  return html`<td class="num">${changes}${truncated ? '+' : ''}</td>
    <td class="num">${bytesAdded === null ? '—' : formatBytes(bytesAdded)}</td>`;
}

export async function commits(ctx: RepoRequest): Promise<PageResult> {
  const { rev, commit } = await ctx.reader.resolve(ctx.param('rev'));
  const skip = intParam(ctx.param('skip'), 'skip');
  const { items, more } = await ctx.reader.log(commit, skip, COMMIT_PAGE);
  const rows: Html[] = [];
  for (const item of items) {
    const summary = await ctx.reader.summarize(item.commit);
    rows.push(
      html`<tr>
        <td>
          <a href="${ctx.base}commit${query({ id: item.oid })}"
            >${firstLine(item.commit.message) || '(no message)'}</a
          >
          <div class="muted mono">${short(item.oid)}</div>
        </td>
        <td class="hide-narrow">${who(item.commit)}</td>
        <td class="num">${formatDate(item.commit.author.time)}</td>
        ${summaryCells(summary.changes.length, summary.truncated, summary.bytesAdded)}
      </tr>`,
    );
  }
  return ok(
    frame(
      ctx,
      `Commits on ${rev}`,
      'commits',
      [{ label: `commits on ${rev}` }],
      html`<h1>Commits on ${rev}</h1>
        <p class="sub">
          Newest first. “New data” counts the chunks a commit stored that the versions it replaced
          did not already hold (after deduplication).
        </p>
        <table>
          <thead>
            <tr>
              <th scope="col">Message</th>
              <th scope="col" class="hide-narrow">Author</th>
              <th scope="col" class="num">Date</th>
              <th scope="col" class="num">Files</th>
              <th scope="col" class="num">New data</th>
            </tr>
          </thead>
          <tbody>
            ${rows}
          </tbody>
        </table>
        <div class="pager">
          ${skip > 0 ? html`<a class="button" href="${ctx.base}commits${query({ rev, skip: Math.max(0, skip - COMMIT_PAGE) || undefined })}">Newer</a>` : ''}${
            more
              ? html`<a
                  class="button"
                  href="${ctx.base}commits${query({ rev, skip: skip + COMMIT_PAGE })}"
                  >Older</a
                >`
              : ''
          }
        </div>`,
      rev,
    ),
  );
}

function changeRow(ctx: RepoRequest, commit: Oid, parent: Oid | undefined, c: Change): Html {
  const at = c.status === 'deleted' ? (parent ?? commit) : commit;
  const delta =
    c.before !== null && c.after !== null
      ? html` <span class="muted"
          >${formatBytes(c.before.size)} → ${formatBytes(c.after.size)}</span
        >`
      : '';
  const comparable =
    c.status === 'modified' && parent !== undefined && mediaTypeOf(c.path).preview !== 'none';
  return html`<tr>
    <td><span class="badge ${c.status}">${c.status}</span></td>
    <td class="name">
      <a href="${ctx.base}file${query({ rev: at, path: c.path })}">${c.path}</a>${delta}
    </td>
    <td class="num">
      ${
        comparable
          ? html`<a href="${ctx.base}compare${query({ path: c.path, a: parent, b: commit })}"
                >compare</a
              >
              · `
          : ''
      }<a href="${ctx.base}history${query({ rev: at, path: c.path })}">history</a>
    </td>
  </tr>`;
}

export async function commitPage(ctx: RepoRequest): Promise<PageResult> {
  const id = ctx.param('id');
  if (id === undefined) throw badRequest('which commit? (id=…)');
  const { commit } = await ctx.reader.resolve(id);
  const info = await ctx.reader.readCommit(commit);
  const summary = await ctx.reader.summarize(info);
  const parent = info.parents[0];
  const shown = summary.changes.slice(0, CHANGES_SHOWN);
  return ok(
    frame(
      ctx,
      firstLine(info.message),
      'commits',
      [{ label: `commit ${short(commit)}` }],
      html`<h1>${firstLine(info.message) || '(no message)'}</h1>
        <div class="panel pad" style="margin-bottom:18px">
          <dl class="facts">
            <dt>Commit</dt>
            <dd class="mono">${commit}</dd>
            <dt>Author</dt>
            <dd>
              ${info.author.name} &lt;${info.author.email}&gt; · ${formatDate(info.author.time)}
            </dd>
            ${
              info.committer.name !== info.author.name
                ? html`<dt>Committer</dt>
                    <dd>${info.committer.name} · ${formatDate(info.committer.time)}</dd>`
                : ''
            }
            <dt>Parents</dt>
            <dd>
              ${info.parents.length === 0 ? html`<span class="muted">none (first commit)</span>` : info.parents.map((p) => html`<a class="mono" href="${ctx.base}commit${query({ id: p })}">${short(p)}</a> `)}
            </dd>
            <dt>Files changed</dt>
            <dd>${summary.changes.length}${summary.truncated ? '+' : ''}</dd>
            <dt>New data</dt>
            <dd>${summary.bytesAdded === null ? '—' : formatBytes(summary.bytesAdded)}</dd>
            <dt>Browse</dt>
            <dd><a href="${ctx.base}tree${query({ rev: commit })}">files at this commit</a></dd>
          </dl>
          ${info.message.includes('\n') && info.message.trim().includes('\n') ? html`<pre class="text" style="margin-top:14px">${info.message.trim()}</pre>` : ''}
        </div>
        <h2>Changes</h2>
        ${
          shown.length === 0
            ? html`<p class="muted">No file changes.</p>`
            : html`<table>
                <thead>
                  <tr>
                    <th scope="col">Change</th>
                    <th scope="col">Path</th>
                    <th scope="col" class="num">Look</th>
                  </tr>
                </thead>
                <tbody>
                  ${shown.map((c) => changeRow(ctx, commit, parent, c))}
                </tbody>
              </table>`
        }
        ${summary.changes.length > shown.length || summary.truncated ? html`<p class="muted">Only the first ${shown.length} changes are listed.</p>` : ''}`,
    ),
  );
}

// ---- one file ----

async function preview(
  ctx: RepoRequest,
  entry: TreeEntry,
  name: string,
  kind: PreviewKind,
): Promise<Html> {
  const raw = rawUrl(ctx, entry.oid, name);
  switch (kind) {
    case 'image':
      return html`<a href="${raw}"
        ><img class="full" src="${thumbUrl(ctx, entry.oid, 480)}" alt="Preview of ${name}"
      /></a>`;
    case 'audio':
      return html`<audio
        controls
        preload="metadata"
        src="${raw}"
        aria-label="Play ${name}"
      ></audio>`;
    case 'video':
      return html`<video
        controls
        preload="metadata"
        src="${raw}"
        aria-label="Play ${name}"
      ></video>`;
    case 'text': {
      const manifest = await ctx.reader.readManifest(entry.oid);
      const head = await readHead(ctx.reader.odb, manifest, TEXT_PREVIEW_BYTES, ctx.signal);
      let text = head.toString('utf8');
      if (
        mediaTypeOf(name).contentType.startsWith('application/json') &&
        manifest.size <= TEXT_PREVIEW_BYTES
      ) {
        try {
          text = JSON.stringify(JSON.parse(text), null, 2);
        } catch {
          // shown as it is
        }
      }
      return html`<pre class="text" tabindex="0" aria-label="Contents of ${name}">${text}</pre>
        ${
          manifest.size > TEXT_PREVIEW_BYTES
            ? html`<p class="muted">
                The first ${formatBytes(TEXT_PREVIEW_BYTES)} of ${formatBytes(manifest.size)}.
              </p>`
            : ''
        }`;
    }
    case 'none':
      return html`<p class="muted">No preview for this kind of file: download it to open it.</p>`;
  }
}

async function lockBadge(ctx: RepoRequest, path: string): Promise<Html> {
  const held = await readLock(ctx.store, lockIdOf(path), { signal: ctx.signal });
  if (held === null) return html``;
  return html`<p>
    <span class="lock" role="status"
      >${LOCK_ICON} Locked by <strong>${held.lock.owner || 'someone'}</strong>${
        held.lock.locked_at !== ''
          ? html` since ${formatDate(Date.parse(held.lock.locked_at) / 1000)}`
          : ''
      }</span
    >
  </p>`;
}

export async function file(ctx: RepoRequest): Promise<PageResult> {
  const { rev, commit } = await ctx.reader.resolve(ctx.param('rev'));
  const path = ctx.param('path') ?? '';
  const segments = pathSegments(path);
  if (segments.length === 0) throw badRequest('which file? (path=…)');
  const entry = await ctx.reader.entryAt(commit, segments);
  if (entry === null) throw noSuchPath(path, rev);
  if (entry.type === 'dir') {
    ctx.reply.redirect(`${ctx.base}tree${query({ rev, path })}`, 303);
    return 'sent';
  }
  const name = segments[segments.length - 1]!;
  const manifest = await ctx.reader.readManifest(entry.oid);
  const kind =
    mediaTypeOf(name).preview !== 'none'
      ? mediaTypeOf(name)
      : sniffMediaType(name, await readHead(ctx.reader.odb, manifest, 4096, ctx.signal));
  return ok(
    frame(
      ctx,
      segments.join('/'),
      'files',
      pathCrumbs(ctx, rev, segments),
      html`<h1>${name}</h1>
        ${await lockBadge(ctx, segments.join('/'))}
        <div class="two">
          <div class="preview">${await preview(ctx, entry, name, kind.preview)}</div>
          <div class="panel pad">
            <dl class="facts">
              <dt>Size</dt>
              <dd>
                ${formatBytes(manifest.size)}
                <span class="muted">(${manifest.size.toLocaleString('en')} bytes)</span>
              </dd>
              <dt>Type</dt>
              <dd>${kind.contentType.split(';')[0]}</dd>
              <dt>Chunks</dt>
              <dd>${manifest.chunks.length}</dd>
              <dt>Content ID</dt>
              <dd class="mono">${short(entry.oid)}…</dd>
              <dt>At</dt>
              <dd>
                <a class="mono" href="${ctx.base}commit${query({ id: commit })}"
                  >${short(commit)}</a
                >
                (${rev})
              </dd>
            </dl>
            <div class="actions" style="margin:14px 0 0">
              <a class="button primary" href="${rawUrl(ctx, entry.oid, name, true)}" download
                >Download</a
              ><a
                class="button"
                href="${ctx.base}history${query({ rev, path: segments.join('/') })}"
                >History</a
              >
            </div>
          </div>
        </div>`,
      rev,
    ),
  );
}

// ---- a file's history ----

function versionChange(v: FileVersion, newBytes: number | null): Html {
  if (v.entry === null) return html`<span class="badge deleted">deleted</span>`;
  if (v.previous === null) return html`<span class="badge added">added</span>`;
  const delta = v.entry.size - v.previous.size;
  const size =
    delta === 0 ? 'same size' : `${delta > 0 ? '+' : '−'}${formatBytes(Math.abs(delta))}`;
  return html`<span class="badge modified">modified</span>
    <span class="muted"
      >${size}${newBytes === null ? '' : `, ${formatBytes(newBytes)} new data`}</span
    >`;
}

/** Bytes of the version's chunks that the previous version did not hold: what it cost to store. */
async function newData(ctx: RepoRequest, v: FileVersion): Promise<number | null> {
  if (
    v.entry === null ||
    v.previous === null ||
    v.previous.type === 'dir' ||
    v.entry.type === 'dir'
  )
    return null;
  const [now, before] = await Promise.all([
    ctx.reader.readManifest(v.entry.oid),
    ctx.reader.readManifest(v.previous.oid),
  ]);
  const had = new Set(before.chunks.map((c) => c.oid));
  return now.chunks.reduce((sum, c) => (had.has(c.oid) ? sum : sum + c.size), 0);
}

export async function history(ctx: RepoRequest): Promise<PageResult> {
  const { rev, commit } = await ctx.reader.resolve(ctx.param('rev'));
  const path = ctx.param('path') ?? '';
  const segments = pathSegments(path);
  if (segments.length === 0) throw badRequest('which file? (path=…)');
  const joined = segments.join('/');
  const name = segments[segments.length - 1]!;
  const skip = intParam(ctx.param('skip'), 'skip');
  const { versions, next } = await ctx.reader.fileHistory(
    commit,
    segments,
    skip,
    HISTORY_PAGE,
    HISTORY_BUDGET,
  );
  if (versions.length === 0 && skip === 0 && next === null) throw noSuchPath(path, rev);
  const image = canThumbnail(name);
  const kind = mediaTypeOf(name).preview;
  const costs = await Promise.all(versions.map((v) => newData(ctx, v)));
  const cards = versions.map((v, i) => {
    const older = versions[i + 1]?.commit ?? v.info.parents[0];
    const compare =
      v.entry !== null && v.previous !== null && older !== undefined && kind !== 'none'
        ? html` ·
            <a
              href="${ctx.base}compare${query({ path: joined, a: v.info.parents[0] ?? older, b: v.commit })}"
              >compare with previous</a
            >`
        : '';
    const media =
      v.entry === null
        ? ''
        : image
          ? html`<a href="${ctx.base}file${query({ rev: v.commit, path: joined })}"
              ><img
                loading="lazy"
                src="${thumbUrl(ctx, v.entry.oid, 480)}"
                alt="${name} at ${short(v.commit)}"
            /></a>`
          : kind === 'audio'
            ? html`<audio
                controls
                preload="none"
                src="${rawUrl(ctx, v.entry.oid, name)}"
                aria-label="Play ${name} at ${short(v.commit)}"
                style="width:100%"
              ></audio>`
            : '';
    return html`<article class="card version" aria-label="Version at ${short(v.commit)}">
      ${media}
      <div class="meta">
        <div>${versionChange(v, costs[i] ?? null)}</div>
        <div>
          <a href="${ctx.base}commit${query({ id: v.commit })}"
            >${firstLine(v.info.message) || '(no message)'}</a
          >
        </div>
        <div class="muted">${v.info.author.name} · ${formatDate(v.info.author.time)}</div>
        <div class="muted">
          ${v.entry === null ? '' : formatBytes(v.entry.size)} ·
          <span class="mono">${short(v.commit)}</span>
        </div>
        <div>
          ${v.entry !== null ? html`<a href="${ctx.base}file${query({ rev: v.commit, path: joined })}">open</a> · <a href="${rawUrl(ctx, v.entry.oid, name, true)}">download</a>` : ''}${compare}
        </div>
      </div>
    </article>`;
  });
  return ok(
    frame(
      ctx,
      `History of ${joined}`,
      'files',
      [...pathCrumbs(ctx, rev, segments), { label: 'history' }],
      html`<h1>History of ${name}</h1>
        <p class="sub">
          Every version of <span class="mono">${joined}</span> reachable from ${rev}, newest first.
        </p>
        ${await lockBadge(ctx, joined)}
        ${versions.length === 0 ? html`<p class="muted">No versions in this stretch of history.</p>` : html`<div class="grid">${cards}</div>`}
        <div class="pager">
          ${skip > 0 ? html`<a class="button" href="${ctx.base}history${query({ rev, path: joined })}">Newest</a>` : ''}${
            next !== null
              ? html`<a
                  class="button"
                  href="${ctx.base}history${query({ rev, path: joined, skip: next })}"
                  >Older versions</a
                >`
              : ''
          }
        </div>`,
      rev,
    ),
  );
}

// ---- two versions ----

export async function compare(ctx: RepoRequest): Promise<PageResult> {
  const path = ctx.param('path') ?? '';
  const segments = pathSegments(path);
  if (segments.length === 0) throw badRequest('which file? (path=…)');
  const joined = segments.join('/');
  const name = segments[segments.length - 1]!;
  const [a, b] = await Promise.all([
    ctx.reader.resolve(ctx.param('a')),
    ctx.reader.resolve(ctx.param('b')),
  ]);
  const [ea, eb] = await Promise.all([
    ctx.reader.entryAt(a.commit, segments),
    ctx.reader.entryAt(b.commit, segments),
  ]);
  if (ea === null || ea.type === 'dir') throw noSuchPath(joined, a.rev);
  if (eb === null || eb.type === 'dir') throw noSuchPath(joined, b.rev);
  const kind = mediaTypeOf(name).preview;
  const label = (r: { rev: string; commit: Oid }): string =>
    r.rev === r.commit ? short(r.commit) : r.rev;
  let body: Html;
  if (kind === 'image') {
    const ua = thumbUrl(ctx, ea.oid, 480);
    const ub = thumbUrl(ctx, eb.oid, 480);
    body = html`<div class="preview">
        <div class="compare">
          <img class="base" src="${ua}" alt="${name} at ${label(a)}" />
          <div class="over" style="width:50%"><img src="${ub}" alt="${name} at ${label(b)}" /></div>
        </div>
        <label class="slider-label"
          >Drag to uncover: ${label(b)} on the left, ${label(a)} on the right<input
            class="slider"
            type="range"
            min="0"
            max="100"
            value="50"
            aria-label="Share of the image showing ${label(b)}"
        /></label>
      </div>
      <h2>Side by side</h2>
      <div class="side">
        <figure>
          <img src="${ua}" alt="${name} at ${label(a)}" />
          <figcaption>${label(a)} · ${formatBytes(ea.size)}</figcaption>
        </figure>
        <figure>
          <img src="${ub}" alt="${name} at ${label(b)}" />
          <figcaption>${label(b)} · ${formatBytes(eb.size)}</figcaption>
        </figure>
      </div>`;
  } else if (kind === 'audio' || kind === 'video') {
    const player = (e: TreeEntry, r: { rev: string; commit: Oid }): Html =>
      kind === 'audio'
        ? html`<audio
            controls
            preload="metadata"
            src="${rawUrl(ctx, e.oid, name)}"
            aria-label="Play ${label(r)}"
          ></audio>`
        : html`<video
            controls
            preload="metadata"
            src="${rawUrl(ctx, e.oid, name)}"
            aria-label="Play ${label(r)}"
          ></video>`;
    body = html`<div class="preview">
        <h2 style="margin-top:0">
          ${label(a)} <span class="muted">· ${formatBytes(ea.size)}</span>
        </h2>
        ${player(ea, a)}
      </div>
      <div class="preview">
        <h2 style="margin-top:0">
          ${label(b)} <span class="muted">· ${formatBytes(eb.size)}</span>
        </h2>
        ${player(eb, b)}
      </div>`;
  } else {
    body = html`<table>
      <thead>
        <tr>
          <th scope="col">Version</th>
          <th scope="col" class="num">Size</th>
          <th scope="col">Content ID</th>
          <th scope="col"></th>
        </tr>
      </thead>
      <tbody>
        ${[[a, ea] as const, [b, eb] as const].map(
          ([r, e]) =>
            html`<tr>
              <td>${label(r)}</td>
              <td class="num">${formatBytes(e.size)}</td>
              <td class="mono">${short(e.oid)}</td>
              <td><a href="${rawUrl(ctx, e.oid, name, true)}">download</a></td>
            </tr>`,
        )}
      </tbody>
    </table>`;
  }
  return ok(
    frame(
      ctx,
      `Compare ${joined}`,
      'files',
      [...pathCrumbs(ctx, b.rev, segments), { label: 'compare' }],
      html`<h1>${name}: ${label(a)} → ${label(b)}</h1>
        <p class="sub">
          ${ea.oid === eb.oid ? 'The two versions are identical.' : `${formatBytes(ea.size)} → ${formatBytes(eb.size)}`}
        </p>
        ${body}`,
    ),
  );
}

// ---- locks ----

export async function locks(ctx: RepoRequest): Promise<PageResult> {
  const all = await listLocks(ctx.store, '', { signal: ctx.signal });
  const skip = intParam(ctx.param('skip'), 'skip');
  const shown = all.slice(skip, skip + TREE_PAGE);
  const main = await ctx.reader.defaultBranch();
  return ok(
    frame(
      ctx,
      `Locks in ${ctx.repo}`,
      'locks',
      [{ label: 'locks' }],
      html`<h1>Locks</h1>
        <p class="sub">
          Files locked for editing: nobody else can push changes to them until they are unlocked.
        </p>
        ${
          all.length === 0
            ? html`<p class="muted">No file is locked.</p>`
            : html`<table>
                <thead>
                  <tr>
                    <th scope="col">Path</th>
                    <th scope="col">Held by</th>
                    <th scope="col" class="num">Since</th>
                  </tr>
                </thead>
                <tbody>
                  ${shown.map(
                    (l) =>
                      html`<tr>
                        <td class="name">
                          ${
                            l.path === ''
                              ? html`<span class="muted">(unreadable lock record)</span>`
                              : main !== null
                                ? html`<a
                                    href="${ctx.base}file${query({ rev: main.short, path: l.path })}"
                                    >${l.path}</a
                                  >`
                                : l.path
                          }
                        </td>
                        <td>${l.owner}</td>
                        <td class="num">
                          ${l.locked_at === '' ? '' : formatDate(Date.parse(l.locked_at) / 1000)}
                        </td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
        ${all.length > skip + TREE_PAGE ? html`<div class="pager"><a class="button" href="${ctx.base}locks${query({ skip: skip + TREE_PAGE })}">Next</a></div>` : ''}`,
    ),
  );
}

export function encryptedNotice(ctx: RepoRequest): PageResult {
  return {
    status: 200,
    body: page({
      title: ctx.repo,
      user: ctx.user,
      crumbs: [{ label: ctx.repo }],
      body: html`<h1>${ctx.repo}</h1>
        <div class="notice" role="status">
          <strong>This repository is encrypted.</strong> Its files, names and history are encrypted
          on the clients before they reach this server, which holds no key and cannot read them, so
          there is nothing it can show here. Use <span class="mono">mediagit clone</span> with the
          repository's key to work with it.
        </div>`,
    }),
  };
}
