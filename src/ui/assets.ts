/**
 * The web view's stylesheet and its one small script, served from memory (no build step, no files
 * to locate beside the bundle). Pages work without the script: it adds the image-compare slider,
 * and hands a login link's token from the URL fragment to the login form.
 */

export const CSS = `
:root {
  --bg: #f6f7f9; --panel: #fff; --text: #1d2430; --muted: #5b6575; --line: #dde1e7;
  --accent: #2f5bd3; --accent-soft: #e8eefc; --warn: #9a5b00; --warn-soft: #fff4e0;
  --bad: #b42318; --bad-soft: #fdecea; --good: #1a7f37; --radius: 8px;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; border-radius: 3px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--panel); padding: 8px 12px; z-index: 10; }
.skip:focus { left: 8px; }
header.top { display: flex; align-items: center; gap: 16px; padding: 10px 24px; background: #141a24; color: #e8ecf2; flex-wrap: wrap; }
header.top a { color: #e8ecf2; }
.brand { font-weight: 700; letter-spacing: .02em; font-size: 17px; }
.crumbs { flex: 1; min-width: 0; }
.crumbs ol { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px; }
.crumbs li { color: #aab4c3; overflow-wrap: anywhere; }
.crumbs li + li::before { content: "/"; margin-right: 4px; color: #6c778a; }
.crumbs li[aria-current] { color: #fff; }
.who { display: flex; align-items: center; gap: 8px; color: #aab4c3; font-size: 14px; margin: 0; }
.who button { background: transparent; color: #e8ecf2; border: 1px solid #4a5568; border-radius: 6px; padding: 3px 10px; cursor: pointer; font: inherit; }
nav.tabs { display: flex; gap: 4px; padding: 0 24px; background: var(--panel); border-bottom: 1px solid var(--line); overflow-x: auto; }
nav.tabs a { padding: 11px 14px; color: var(--muted); border-bottom: 2px solid transparent; white-space: nowrap; }
nav.tabs a[aria-current] { color: var(--text); border-bottom-color: var(--accent); font-weight: 600; }
main { max-width: 1180px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 17px; margin: 28px 0 10px; }
.sub { color: var(--muted); margin: 0 0 18px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); }
.pad { padding: 16px 18px; }
table { width: 100%; border-collapse: collapse; background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); overflow: hidden; }
th, td { text-align: left; padding: 9px 12px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-size: 13px; color: var(--muted); font-weight: 600; background: #fafbfc; }
tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.name { overflow-wrap: anywhere; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; background: var(--accent-soft); color: var(--accent); }
.badge.added { background: #e6f4ea; color: var(--good); }
.badge.deleted { background: var(--bad-soft); color: var(--bad); }
.badge.modified { background: var(--warn-soft); color: var(--warn); }
.notice { padding: 14px 18px; border-radius: var(--radius); background: var(--warn-soft); border: 1px solid #f0d9b5; margin: 0 0 18px; }
.notice.error { background: var(--bad-soft); border-color: #f5c2bd; }
.actions { display: flex; flex-wrap: wrap; gap: 8px; margin: 0 0 18px; }
.button, button.primary { display: inline-block; padding: 7px 14px; border-radius: 6px; border: 1px solid var(--line); background: var(--panel); color: var(--text); font: inherit; font-size: 14px; cursor: pointer; }
.button:hover { text-decoration: none; border-color: #b9c0cb; }
.button.primary, button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
.lead { width: 72px; }
svg.inline-glyph { width: 14px; height: 14px; fill: currentColor; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
svg.glyph { display: block; width: 40px; height: 40px; margin: 0 8px; fill: #9fb3d9; }
.ext { display: flex; align-items: center; justify-content: center; width: 56px; height: 40px; border-radius: 5px; font-size: 11px; font-weight: 700; letter-spacing: .04em; background: #eef0f4; color: #5b6575; }
.ext.audio { background: #efe7fb; color: #6b3fb5; }
.ext.video { background: #fde8ec; color: #b0304f; }
.ext.text { background: #e7f3ee; color: #2c7a57; }
.ext.image { background: #e8eefc; color: var(--accent); }
.thumb { display: block; width: 56px; height: 56px; object-fit: contain; background: #eceef2; border-radius: 4px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 14px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); overflow: hidden; display: flex; flex-direction: column; }
.card img { width: 100%; aspect-ratio: 4 / 3; object-fit: contain; background: #eceef2; display: block; }
.card .meta { padding: 10px 12px; font-size: 14px; }
.preview { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); padding: 16px; margin-bottom: 18px; }
.preview img.full { max-width: 100%; height: auto; display: block; margin: 0 auto; background: #eceef2; }
.preview audio, .preview video { width: 100%; }
.preview video { max-height: 70vh; background: #000; border-radius: 6px; }
pre.text { margin: 0; padding: 14px; overflow: auto; max-height: 70vh; background: #fbfcfd; border: 1px solid var(--line); border-radius: 6px; font-size: 13px; line-height: 1.45; white-space: pre-wrap; overflow-wrap: anywhere; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 6px 18px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.two { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 1fr); gap: 18px; align-items: start; }
.compare { position: relative; width: fit-content; max-width: 100%; margin: 0 auto; line-height: 0; }
.slider-label { display: block; margin-top: 12px; color: var(--muted); font-size: 14px; text-align: center; }
.compare img { max-width: 100%; height: auto; display: block; }
.compare .over { position: absolute; inset: 0; overflow: hidden; }
.compare .over img { max-width: none; height: 100%; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
.side figure { margin: 0; }
.side img { width: 100%; height: auto; background: #eceef2; border-radius: 4px; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; }
.slider { width: 100%; margin-top: 12px; }
.pager { display: flex; gap: 8px; justify-content: flex-end; margin-top: 14px; }
form.login { max-width: 520px; margin: 40px auto; }
form.login label { display: block; font-weight: 600; margin-bottom: 6px; }
form.login textarea { width: 100%; min-height: 110px; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; padding: 10px; border: 1px solid var(--line); border-radius: 6px; resize: vertical; }
form.inline { display: flex; gap: 8px; flex-wrap: wrap; }
form.inline input { flex: 1; min-width: 180px; padding: 7px 10px; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
.lock { display: inline-flex; align-items: center; gap: 6px; background: var(--warn-soft); color: var(--warn); padding: 3px 10px; border-radius: 999px; font-size: 13px; font-weight: 600; }
@media (max-width: 820px) {
  main { padding: 16px; }
  .two, .side { grid-template-columns: 1fr; }
  header.top { padding: 10px 16px; }
  nav.tabs { padding: 0 12px; }
  .hide-narrow { display: none; }
}
`;

export const JS = `
(function () {
  // Login links carry the token in the fragment, which never reaches a server or a log:
  // move it into the form, drop it from the address bar and history, and submit.
  var form = document.querySelector('form.login');
  if (form && location.hash.indexOf('#token=') === 0) {
    var token = decodeURIComponent(location.hash.slice(7));
    history.replaceState(null, '', location.pathname + location.search);
    form.querySelector('textarea').value = token;
    form.submit();
  }
  // Image comparison: the slider uncovers the newer version over the older one.
  document.querySelectorAll('.compare').forEach(function (box) {
    var over = box.querySelector('.over');
    var inner = over.querySelector('img');
    var slider = box.parentNode.querySelector('.slider');
    var base = box.querySelector('img.base');
    function fit() { inner.style.width = base.clientWidth + 'px'; }
    function move() { over.style.width = slider.value + '%'; }
    base.addEventListener('load', fit);
    window.addEventListener('resize', fit);
    slider.addEventListener('input', move);
    fit(); move();
  });
})();
`;
