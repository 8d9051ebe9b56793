/**
 * HTML building: a tagged template that escapes every interpolated value unless it is already
 * Html, and the page frame every UI page shares. Nothing user-controlled (paths, messages, names
 * from tokens) can reach a page unescaped, because the only way to skip escaping is to build an
 * Html value, which only this module's template does.
 */

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

type Value = Html | string | number | null | undefined | false | readonly Value[];

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function render(value: Value): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return (value as readonly Value[]).map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new Html(out);
}

/** Query string from parameters; undefined values are left out. */
export function query(params: Readonly<Record<string, string | number | undefined>>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) search.set(k, String(v));
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

export interface Crumb {
  readonly label: string;
  readonly href?: string;
}

export interface PageFrame {
  readonly title: string;
  /** Breadcrumb after "Repositories". */
  readonly crumbs?: readonly Crumb[];
  /** Repository navigation: the base URL of the repository's pages and which tab is current. */
  readonly repoNav?: { readonly base: string; readonly current: string; readonly rev?: string };
  /** Who is signed in (shown with a sign-out button), or null when anonymous. */
  readonly user: string | null;
  readonly body: Html;
}

const TABS = [
  ['overview', 'Overview', ''],
  ['files', 'Files', 'tree'],
  ['commits', 'Commits', 'commits'],
  ['locks', 'Locks', 'locks'],
] as const;

export function page(frame: PageFrame): Html {
  const crumbs: Crumb[] = [{ label: 'Repositories', href: '/ui/' }, ...(frame.crumbs ?? [])];
  const nav = frame.repoNav;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${frame.title} · mediagit</title>
        <link rel="stylesheet" href="/ui/static/ui.css" />
        <script src="/ui/static/ui.js" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <a class="brand" href="/ui/">mediagit</a>
          <nav class="crumbs" aria-label="Breadcrumb">
            <ol>
              ${crumbs.map((c, i) =>
                c.href !== undefined && i < crumbs.length - 1
                  ? html`<li><a href="${c.href}">${c.label}</a></li>`
                  : html`<li aria-current="page">${c.label}</li>`,
              )}
            </ol>
          </nav>
          ${
            frame.user !== null
              ? html`<form class="who" method="post" action="/ui/logout">
                  <span>${frame.user}</span> <button type="submit">Sign out</button>
                </form>`
              : html`<a class="who" href="/ui/login">Sign in</a>`
          }
        </header>
        ${
          nav
            ? html`<nav class="tabs" aria-label="Repository">
                ${TABS.map(
                  ([key, label, path]) =>
                    html`<a
                      href="${nav.base}${path}${path !== '' && path !== 'locks' && nav.rev !== undefined ? query({ rev: nav.rev }) : ''}"
                      ${key === nav.current ? new Html(' aria-current="page"') : ''}
                      >${label}</a
                    >`,
                )}
              </nav>`
            : ''
        }
        <main id="main">${frame.body}</main>
      </body>
    </html> `;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0
    ? `${n} B`
    : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${UNITS[unit]}`;
}

/** A date as ISO minutes in UTC; the <time> element carries the exact instant. */
export function formatDate(seconds: number): Html {
  const iso = new Date(seconds * 1000).toISOString();
  return html`<time datetime="${iso}">${iso.slice(0, 16).replace('T', ' ')} UTC</time>`;
}
