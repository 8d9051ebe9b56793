// The one Node version check, shared by the CLI (imported first by mediagit.js, so it runs before
// anything that needs a newer Node can fail to link) and by `npm test` / `npm run demo`, which run
// it on its own: an old Node stops at once with one line instead of minutes of SyntaxErrors.
// Plain syntax only: it must parse on any Node.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(
    `error: mediagit needs Node.js 22.19 or newer (this is ${process.versions.node})\nhint: install Node 24 LTS\n`,
  );
  process.exit(1);
}
