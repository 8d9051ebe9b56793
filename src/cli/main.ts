import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import type { CommandIo } from '../commands/context.js';
import { DEFAULT_ZSTD_LEVEL } from '../compression/index.js';
import { silentProgress, type ProgressSink } from '../repo/progress.js';
import { reportError } from './errors.js';
import { promptHidden, readPassphrase } from './passphrase.js';
import { TerminalProgress } from './progress.js';
import { packageVersion } from '../util/version.js';

interface GlobalOptions {
  C?: string;
  progress: boolean;
  passphraseFile?: string;
  newPassphraseFile?: string;
}

function makeIo(cwd: string, showProgress: boolean, global: GlobalOptions): CommandIo {
  // A pseudo-terminal that reports no width (some `script`/CI wrappers) would make the spinner's
  // line arithmetic divide by zero: draw bars only on a terminal that knows its size.
  const drawBars =
    showProgress &&
    process.stderr.isTTY === true &&
    !process.env.CI &&
    (process.stderr.columns ?? 0) > 0;
  return {
    cwd,
    out: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
    writeRaw: (data) =>
      new Promise<void>((done, fail) => {
        process.stdout.write(data, (err) => (err ? fail(err) : done()));
      }),
    progress: (): ProgressSink =>
      drawBars ? new TerminalProgress(process.stderr) : silentProgress,
    passphrase: (kind) =>
      readPassphrase(kind, {
        cwd,
        passphraseFile: global.passphraseFile,
        newPassphraseFile: global.newPassphraseFile,
      }),
    promptSecret: (question) => promptHidden(question),
    exit: (code) => process.exit(code),
  };
}

const examples = (lines: string[]): string =>
  `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  // Arguments after `--` are always paths; commander would otherwise mix them with revisions.
  const dd = argv.indexOf('--', 2);
  const dashDash = dd >= 0 ? argv.slice(dd + 1) : undefined;
  // --debug is accepted anywhere on the line, like git's -c options, because users add it last.
  const args = (dd >= 0 ? argv.slice(0, dd) : argv).filter((a, i) => i < 2 || a !== '--debug');

  const program = new Command('mediagit');
  let io: CommandIo = makeIo(process.cwd(), true, { progress: true });
  program
    .description(
      "Version large media like git: chunked, deduplicated, compressed storage with git's commands.",
    )
    .version(packageVersion(), '-V, --version')
    .option('-C <path>', 'run as if started in <path>')
    .option('--debug', 'show stack traces for errors')
    .option('--no-progress', 'never draw progress bars')
    .option(
      '--passphrase-file <path>',
      'read the repository passphrase from a file (else MEDIAGIT_PASSPHRASE, else a prompt)',
    )
    .option(
      '--new-passphrase-file <path>',
      'read a new passphrase (init --encrypt, key add/passwd) from a file (else MEDIAGIT_NEW_PASSPHRASE)',
    )
    .showSuggestionAfterError(true)
    .enablePositionalOptions()
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'error: ')) })
    .exitOverride()
    .hook('preAction', (_thisCommand, actionCommand) => {
      const opts = program.opts<GlobalOptions>();
      io = makeIo(opts.C ? resolve(process.cwd(), opts.C) : process.cwd(), opts.progress, opts);
      void actionCommand;
    });

  program
    .command('init')
    .argument('[directory]', 'where to create the repository (default: current folder)')
    .description('create an empty repository')
    .option('-b, --initial-branch <name>', 'name of the first branch', 'main')
    .option('--chunk-min <size>', 'minimum chunk size (fixed for the repository)', '256K')
    .option('--chunk-avg <size>', 'average chunk size (fixed for the repository)', '1M')
    .option('--chunk-max <size>', 'maximum chunk size (fixed for the repository)', '4M')
    .option('--compression-level <n>', `zstd level 0 (off) to 22 (default ${DEFAULT_ZSTD_LEVEL})`)
    .option('--encrypt', 'encrypt everything client-side (AES-256-GCM; asks for a new passphrase)')
    .option('-q, --quiet', 'print nothing on success')
    .addHelpText(
      'after',
      examples([
        'mediagit init',
        'mediagit init my-project',
        'MEDIAGIT_NEW_PASSPHRASE=… mediagit init --encrypt',
        'mediagit init --chunk-avg 512K assets',
      ]),
    )
    .action(async (directory: string | undefined, options) =>
      (await import('../commands/init.js')).runInit(io, directory, options),
    );

  program
    .command('add')
    .argument('[paths...]', 'files or folders; "." for everything here')
    .description('stage new, changed and deleted files')
    .option('-A, --all', 'stage every change in the whole working tree')
    .option('-f, --force', 'add files even if they are ignored')
    .option('-n, --dry-run', 'show what would be staged')
    .option('--json', 'print a machine-readable summary')
    .addHelpText(
      'after',
      examples(['mediagit add .', 'mediagit add textures/hero.tif audio/', 'mediagit add -A']),
    )
    .action(async (paths: string[], options) =>
      (await import('../commands/add.js')).runAdd(io, paths, options),
    );

  program
    .command('rm')
    .argument('<paths...>', 'tracked files or folders')
    .description('remove files from the working tree and the index')
    .option('--cached', 'unstage only; keep the files on disk')
    .option('-f, --force', 'remove even with uncommitted changes')
    .option('-r', 'allow recursive removal of folders')
    .option('-q, --quiet', 'do not list removed files')
    .addHelpText(
      'after',
      examples(['mediagit rm old/render.exr', 'mediagit rm -r --cached cache/']),
    )
    .action(
      async (
        paths: string[],
        options: { cached?: boolean; force?: boolean; r?: boolean; quiet?: boolean },
      ) =>
        (await import('../commands/rm-mv.js')).runRm(io, paths, {
          ...options,
          recursive: options.r ?? false,
        }),
    );

  program
    .command('mv')
    .argument('<sources...>', 'tracked files or folders, then the destination')
    .description('move or rename tracked files')
    .option('-f, --force', 'overwrite an existing destination')
    .addHelpText(
      'after',
      examples(['mediagit mv hero.tif textures/hero.tif', 'mediagit mv meta metadata']),
    )
    .action(async (paths: string[], options) => {
      if (paths.length < 2)
        throw new (await import('../errors/index.js')).UsageError(
          'mv needs a source and a destination',
        );
      await (
        await import('../commands/rm-mv.js')
      ).runMv(io, paths.slice(0, -1), paths[paths.length - 1]!, options);
    });

  program
    .command('status')
    .description('show staged, unstaged and untracked changes')
    .option('-s, --short', 'one line per path (XY PATH)')
    .option('--porcelain', 'stable short format for scripts')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      examples(['mediagit status', 'mediagit status -s', 'mediagit status --json']),
    )
    .action(async (options) => (await import('../commands/status.js')).runStatus(io, options));

  program
    .command('commit')
    .description('record the staged snapshot as a new commit')
    .option(
      '-m, --message <text>',
      'commit message (repeat for paragraphs)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('-F, --file <path>', 'read the message from a file')
    .option('-a, --all', 'stage changes to tracked files first')
    .option('--allow-empty', 'allow a commit that changes nothing')
    .option('--amend', 'replace the last commit')
    .option('-q, --quiet', 'print nothing on success')
    .option('--json', 'print the new commit as JSON')
    .addHelpText(
      'after',
      examples([
        'mediagit commit -m "Paint hero texture"',
        'mediagit commit -am "Retime dialogue"',
      ]),
    )
    .action(async (options) => (await import('../commands/commit.js')).runCommit(io, options));

  program
    .command('log')
    .argument('[revisions...]', 'where to start (default HEAD)')
    .description('show commit history')
    .option('--oneline', 'one line per commit')
    .option('-n, --max-count <n>', 'show at most n commits')
    .option('--first-parent', 'follow only the first parent of merges')
    .option('--json', 'print an array of commits as JSON')
    .addHelpText(
      'after',
      examples(['mediagit log --oneline -n 10', 'mediagit log --json main', 'mediagit log HEAD~3']),
    )
    .action(async (revs: string[], options) =>
      (await import('../commands/log.js')).runLog(io, revs, options),
    );

  program
    .command('show')
    .argument('[objects...]', 'commits, tags, or REV:PATH (default HEAD)')
    .description("show a commit with its changes, a tag, or a file's content")
    .option('--stat', 'show a per-file size summary')
    .option('--name-status', 'show changed paths with A/M/D')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      examples([
        'mediagit show',
        'mediagit show v1.0',
        'mediagit show HEAD~1:textures/hero.tif > old-hero.tif',
      ]),
    )
    .action(async (objects: string[], options) =>
      (await import('../commands/show.js')).runShow(io, objects, options),
    );

  program
    .command('diff')
    .argument('[revisions...]', 'zero, one or two revisions')
    .description('show changes between the working tree, the index and commits')
    .option('--cached', 'compare the index with HEAD (or a revision)')
    .option('--staged', 'same as --cached')
    .option('--stat', 'per-file summary with sizes')
    .option('--name-status', 'changed paths with A/M/D')
    .option('--name-only', 'changed paths only')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      examples([
        'mediagit diff --stat',
        'mediagit diff --cached --name-status',
        'mediagit diff v1 v2 --stat',
        'mediagit diff HEAD~1 -- textures/',
      ]),
    )
    .action(async (revs: string[], options) =>
      (await import('../commands/diff.js')).runDiff(io, revs, dashDash, options),
    );

  program
    .command('checkout')
    .argument('[args...]', 'a branch, a commit, or paths')
    .description('switch branches, detach at a commit, or restore paths')
    .option('-b <branch>', 'create a branch and switch to it')
    .option('-B <branch>', 'create or reset a branch and switch to it')
    .option('--detach', 'detach HEAD at the commit')
    .option('-f, --force', 'throw away local changes')
    .option('--ours', 'for unmerged paths, take our side')
    .option('--theirs', 'for unmerged paths, take their side')
    .option('-q, --quiet', 'suppress messages')
    .addHelpText(
      'after',
      examples([
        'mediagit checkout main',
        'mediagit checkout -b lighting-pass',
        'mediagit checkout HEAD~2',
        'mediagit checkout v1 -- textures/hero.tif',
        'mediagit checkout --theirs scenes/level01.scene',
      ]),
    )
    .action(
      async (
        rest: string[],
        options: {
          b?: string;
          B?: string;
          detach?: boolean;
          force?: boolean;
          ours?: boolean;
          theirs?: boolean;
          quiet?: boolean;
        },
      ) =>
        (await import('../commands/checkout.js')).runCheckout(io, rest, dashDash, {
          ...(options.b ? { branch: options.b } : {}),
          ...(options.B ? { forceBranch: options.B } : {}),
          detach: options.detach ?? false,
          force: options.force ?? false,
          ours: options.ours ?? false,
          theirs: options.theirs ?? false,
          quiet: options.quiet ?? false,
        }),
    );

  program
    .command('switch')
    .argument('[args...]', 'branch (and start point with -c)')
    .description('switch branches')
    .option('-c, --create <branch>', 'create a branch and switch to it')
    .option('-C, --force-create <branch>', 'create or reset a branch and switch to it')
    .option('-d, --detach', 'switch to a commit, detaching HEAD')
    .option('-f, --force', 'throw away local changes')
    .option('-q, --quiet', 'suppress messages')
    .addHelpText(
      'after',
      examples([
        'mediagit switch main',
        'mediagit switch -c fx-pass',
        'mediagit switch --detach v1.0',
      ]),
    )
    .action(async (rest: string[], options) =>
      (await import('../commands/checkout.js')).runSwitch(io, rest, options),
    );

  program
    .command('restore')
    .argument('<paths...>', 'files or folders')
    .description('restore files in the working tree or the index')
    .option('-s, --source <rev>', 'take content from this commit')
    .option('-S, --staged', 'restore the index (unstage)')
    .option('-W, --worktree', 'restore the working tree (default)')
    .addHelpText(
      'after',
      examples([
        'mediagit restore textures/hero.tif',
        'mediagit restore --staged .',
        'mediagit restore --source HEAD~1 audio/',
      ]),
    )
    .action(async (paths: string[], options) =>
      (await import('../commands/checkout.js')).runRestore(io, paths, options),
    );

  program
    .command('branch')
    .argument('[args...]', 'name [start], or old new with -m')
    .description('list, create, delete or rename branches')
    .option('-d, --delete', 'delete a fully merged branch')
    .option('-D', 'delete a branch even if not merged')
    .option('-m, --move', 'rename a branch')
    .option('-M', 'rename a branch even if the new name exists')
    .option('-v, --verbose', 'show the commit each branch points at')
    .option('--json', 'machine-readable list')
    .addHelpText(
      'after',
      examples([
        'mediagit branch',
        'mediagit branch lighting',
        'mediagit branch -m lighting lighting-v2',
        'mediagit branch -d lighting-v2',
      ]),
    )
    .action(
      async (
        rest: string[],
        options: {
          delete?: boolean;
          D?: boolean;
          move?: boolean;
          M?: boolean;
          verbose?: boolean;
          json?: boolean;
        },
      ) =>
        (await import('../commands/branch.js')).runBranch(io, rest, {
          delete: options.delete ?? false,
          forceDelete: options.D ?? false,
          move: options.move ?? false,
          forceMove: options.M ?? false,
          verbose: options.verbose ?? false,
          json: options.json ?? false,
        }),
    );

  program
    .command('tag')
    .argument('[args...]', 'name [commit]')
    .description('list, create or delete tags')
    .option('-a, --annotate', 'make an annotated tag object')
    .option('-m, --message <text>', 'tag message (implies -a)')
    .option('-d, --delete', 'delete tags')
    .option('-f, --force', 'replace an existing tag')
    .option('-l, --list', 'list tags')
    .option('--json', 'machine-readable list')
    .addHelpText(
      'after',
      examples([
        'mediagit tag v1.0',
        'mediagit tag -a v1.1 -m "Milestone 1"',
        'mediagit tag -d v1.0',
      ]),
    )
    .action(async (rest: string[], options) =>
      (await import('../commands/tag.js')).runTag(io, rest, options),
    );

  program
    .command('reset')
    .argument('[args...]', 'a commit, and/or paths')
    .description('move HEAD and reset the index (and with --hard, the working tree)')
    .addOption(new Option('--soft', 'move HEAD only'))
    .addOption(new Option('--mixed', 'move HEAD and reset the index (default)'))
    .addOption(new Option('--hard', 'move HEAD, reset the index and the working tree'))
    .option('-q, --quiet', 'suppress messages')
    .addHelpText(
      'after',
      examples([
        'mediagit reset HEAD~1',
        'mediagit reset --hard origin',
        'mediagit reset -- textures/hero.tif',
      ]),
    )
    .action(async (rest: string[], options) =>
      (await import('../commands/reset.js')).runReset(io, rest, dashDash, options),
    );

  program
    .command('merge')
    .argument('[revision]', 'branch or commit to merge into the current branch')
    .description('join another line of history into the current branch')
    .option('--abort', 'give up a conflicted merge and go back')
    .option('--ff-only', 'refuse unless a fast-forward is possible')
    .option('--no-ff', 'create a merge commit even when a fast-forward is possible')
    .option('-m, --message <text>', 'merge commit message')
    .option('-q, --quiet', 'suppress messages')
    .addHelpText('after', examples(['mediagit merge lighting', 'mediagit merge --abort']))
    .action(
      async (
        rev: string | undefined,
        options: {
          abort?: boolean;
          ffOnly?: boolean;
          ff?: boolean;
          message?: string;
          quiet?: boolean;
        },
      ) =>
        (await import('../commands/merge.js')).runMerge(io, rev, {
          ...options,
          noFf: options.ff === false,
        }),
    );

  program
    .command('fsck')
    .description('verify the repository: every reachable object present and intact')
    .option('--full', 'also read and verify every chunk')
    .option(
      '--remote <name>',
      'check a remote instead (a multi remote: also primary/secondary divergence)',
    )
    .option('--json', 'machine-readable report')
    .addHelpText(
      'after',
      examples(['mediagit fsck', 'mediagit fsck --full', 'mediagit fsck --remote backup']),
    )
    .action(async (options) => (await import('../commands/fsck.js')).runFsck(io, options));

  program
    .command('gc')
    .description('delete objects no branch, tag, HEAD or the index can reach')
    .option(
      '--prune <when>',
      "grace period for recent objects: 'now', or e.g. '2.hours', '14.days'",
      '1.hour',
    )
    .option('-n, --dry-run', 'only report what would be deleted')
    .option('--json', 'machine-readable report')
    .addHelpText('after', examples(['mediagit gc', 'mediagit gc --prune=now']))
    .action(async (options) => (await import('../commands/gc.js')).runGc(io, options));

  program
    .command('stats')
    .description('logical vs stored bytes, deduplication and compression ratios')
    .option('--json', 'machine-readable output')
    .addHelpText('after', examples(['mediagit stats', 'mediagit stats --json']))
    .action(async (options) => (await import('../commands/stats.js')).runStats(io, options));

  const remote = program
    .command('remote')
    .description('manage remotes: where push, fetch, pull and clone go')
    .option('-v, --verbose', 'show URLs and options (secrets hidden)')
    .option('--json', 'machine-readable list')
    .addHelpText(
      'after',
      examples([
        'mediagit remote add origin s3://studio-assets/hero-game -o endpoint=http://127.0.0.1:7480 -o force_path_style=true',
        'mediagit remote add nas /mnt/nas/hero-game.mediagit',
        'mediagit remote -v',
      ]),
    )
    .action(async (options) => (await import('../commands/remote.js')).runRemoteList(io, options));
  remote
    .command('add')
    .argument('<name>', 'e.g. origin')
    .argument(
      '<url>',
      'path, file://, s3://bucket/prefix, azure://container/prefix, gs://bucket/prefix, multi:',
    )
    .option(
      '-o, --option <key=value>',
      'backend option (region, endpoint, force_path_style, part_size, max_concurrent_parts, max_retries, account_name, project, primary, secondary, …); repeatable',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .description('add a remote')
    .action(async (name: string, url: string, options) =>
      (await import('../commands/remote.js')).runRemoteAdd(io, name, url, options),
    );
  remote
    .command('remove')
    .alias('rm')
    .argument('<name>')
    .description('remove a remote and its remote-tracking branches')
    .action(async (name: string) =>
      (await import('../commands/remote.js')).runRemoteRemove(io, name),
    );
  remote
    .command('list')
    .description('list remotes')
    .option('-v, --verbose', 'show URLs and options (secrets hidden)')
    .option('--json', 'machine-readable list')
    .action(async (options) => (await import('../commands/remote.js')).runRemoteList(io, options));
  remote
    .command('set-url')
    .argument('<name>')
    .argument('<url>')
    .description("change a remote's URL")
    .action(async (name: string, url: string) =>
      (await import('../commands/remote.js')).runRemoteSetUrl(io, name, url),
    );

  program
    .command('push')
    .argument('[remote]', 'default: origin')
    .argument('[refspecs...]', 'branch, tag, or src:dst (default: the current branch)')
    .description('send commits and their content to a remote; only what it lacks travels')
    .option('-f, --force', 'overwrite the remote branch even if that loses commits')
    .option('--tags', 'also push all tags')
    .option(
      '--no-hardlinks',
      'to a local folder: copy and verify every object instead of hard-linking it (also config transfer.hardlinks=false)',
    )
    .option('--json', 'machine-readable report (refs, bytes sent)')
    .option('-q, --quiet', 'print nothing on success')
    .addHelpText(
      'after',
      examples([
        'mediagit push',
        'mediagit push origin main',
        'mediagit push origin lighting:review/lighting',
        'mediagit push --tags',
      ]),
    )
    .action(async (remoteName: string | undefined, specs: string[], options) =>
      (await import('../commands/push.js')).runPush(
        io,
        remoteName === undefined ? [] : [remoteName, ...specs],
        options,
      ),
    );

  program
    .command('fetch')
    .argument('[remote]', 'default: origin')
    .description('download commits and content from a remote into remote-tracking branches')
    .option('-p, --prune', 'delete remote-tracking branches the remote no longer has')
    .option(
      '--no-hardlinks',
      'from a local folder: copy and verify every object instead of hard-linking it (also config transfer.hardlinks=false)',
    )
    .option('--json', 'machine-readable report')
    .option('-q, --quiet', 'print nothing')
    .addHelpText('after', examples(['mediagit fetch', 'mediagit fetch backup --prune']))
    .action(async (remoteName: string | undefined, options) =>
      (await import('../commands/fetch.js')).runFetch(io, remoteName, options),
    );

  program
    .command('pull')
    .argument('[remote]', 'default: origin')
    .argument('[branch]', 'remote branch to merge (default: the current branch name)')
    .description('fetch, then merge the remote branch (fast-forward when possible)')
    .option('--ff-only', 'refuse unless it is a fast-forward')
    .option(
      '--no-hardlinks',
      'from a local folder: copy and verify every object instead of hard-linking it (also config transfer.hardlinks=false)',
    )
    .option('-q, --quiet', 'print less')
    .addHelpText(
      'after',
      examples(['mediagit pull', 'mediagit pull --ff-only', 'mediagit pull origin main']),
    )
    .action(async (remoteName: string | undefined, branch: string | undefined, options) =>
      (await import('../commands/pull.js')).runPull(io, remoteName, branch, options),
    );

  program
    .command('clone')
    .argument('<url>', 'path, file://, s3://, azure://, gs://, multi:')
    .argument('[directory]', 'where to put it (default: the last part of the URL)')
    .description('copy a repository and check out a branch')
    .option('-b, --branch <name>', 'branch to check out (default main)')
    .option(
      '--include <glob>',
      'only fetch and check out matching paths (repeatable); others stay tracked, not downloaded',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      '-o, --option <key=value>',
      'backend option for the remote (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--origin <name>', 'name of the remote', 'origin')
    .option(
      '--no-hardlinks',
      'from a local folder: copy and verify every object instead of hard-linking it (also config transfer.hardlinks=false)',
    )
    .option('--json', 'machine-readable report')
    .option('-q, --quiet', 'print nothing on success')
    .addHelpText(
      'after',
      examples([
        'mediagit clone /mnt/nas/hero-game.mediagit hero-game',
        "mediagit clone s3://studio-assets/hero-game build --branch release --include 'audio/**' -o region=eu-west-1",
      ]),
    )
    .action(async (url: string, directory: string | undefined, options) =>
      (await import('../commands/clone.js')).runClone(io, url, directory, options),
    );

  program
    .command('login')
    .argument('<url>', 'server remote URL, e.g. https://assets.studio.example/hero-game')
    .description(
      'store a token for a mediagit server in ~/.config/mediagit/credentials.toml (mode 0600)',
    )
    .option(
      '--token-file <path>',
      'read the token from a file (else MEDIAGIT_TOKEN, else a prompt)',
    )
    .addHelpText(
      'after',
      examples([
        'mediagit login https://assets.studio.example/hero-game',
        'MEDIAGIT_TOKEN=… mediagit login http://127.0.0.1:3000/hero-game',
      ]),
    )
    .action(async (url: string, options) =>
      (await import('../commands/login.js')).runLogin(io, url, options),
    );

  program
    .command('lock')
    .argument('<paths...>', 'files to lock on the server')
    .description('lock files so nobody else can push changes to them')
    .option('--remote <name>', 'remote to lock on (default origin)')
    .option('--json', 'machine-readable output')
    .addHelpText('after', examples(['mediagit lock scenes/level01.blend']))
    .action(async (paths: string[], options) =>
      (await import('../commands/lock.js')).runLock(io, paths, options),
    );
  program
    .command('unlock')
    .argument('<paths...>', 'locked files')
    .description("release your locks (admins: --force releases anyone's)")
    .option('--remote <name>', 'remote (default origin)')
    .option('-f, --force', 'release a lock held by someone else (admin role)')
    .action(async (paths: string[], options) =>
      (await import('../commands/lock.js')).runUnlock(io, paths, options),
    );
  program
    .command('locks')
    .argument('[path]', 'only locks under this path')
    .description('list locks on the server')
    .option('--remote <name>', 'remote (default origin)')
    .option('--json', 'machine-readable output')
    .action(async (path: string | undefined, options) =>
      (await import('../commands/lock.js')).runLocks(io, path, options),
    );

  const server = program
    .command('server')
    .description(
      'run the mediagit HTTP server (storage from mediagit.toml [storage]; default a local folder)',
    )
    .option('--config <path>', 'server config file (TOML)', 'mediagit.toml')
    .addHelpText(
      'after',
      examples([
        'MEDIAGIT_JWT_SECRET=… mediagit server --config /etc/mediagit/mediagit.toml',
        'MEDIAGIT_PORT=8080 MEDIAGIT_HOST=127.0.0.1 mediagit server',
      ]),
    )
    .action(async (options) => (await import('../commands/server.js')).runServer(io, options));
  server
    .command('token')
    .description("mint a JWT with the server's secret (MEDIAGIT_JWT_SECRET)")
    .requiredOption('--repo <name>', "repository the token is for ('*' for all)")
    .option('--role <role>', 'read, write or admin', 'read')
    .option('--ttl <duration>', 'lifetime, e.g. 30m, 1h, 7d', '1h')
    .option('--sub <identity>', 'who the token identifies', 'cli')
    .option(
      '--ui <server-url>',
      'print a sign-in link for the web view instead (token in the fragment)',
    )
    .action(async (options) => (await import('../commands/server.js')).runServerToken(io, options));
  const apikey = server.command('apikey').description('manage API keys (stored hashed)');
  apikey
    .command('create')
    .requiredOption('--repo <name>', "repository ('*' for all)")
    .option('--role <role>', 'read, write or admin', 'read')
    .option('--sub <identity>', 'who the key identifies', 'apikey')
    .option('--config <path>', 'server config file (TOML)', 'mediagit.toml')
    .description('create an API key; it is printed once')
    .action(async (options) =>
      (await import('../commands/server.js')).runApiKeyCreate(io, options),
    );

  const key = program
    .command('key')
    .description('manage the passphrases of an encrypted repository');
  key
    .command('list')
    .description('list key files (no secrets)')
    .option('--json', 'machine-readable output')
    .action(async (options) => (await import('../commands/key.js')).runKeyList(io, options));
  key
    .command('add')
    .description('add a passphrase (asks for a current one, then the new one)')
    .option('--label <text>', 'a note to tell keys apart', '')
    .addHelpText(
      'after',
      examples([
        'mediagit key add --label laptop',
        'MEDIAGIT_PASSPHRASE=old MEDIAGIT_NEW_PASSPHRASE=new mediagit key add',
      ]),
    )
    .action(async (options) => (await import('../commands/key.js')).runKeyAdd(io, options));
  key
    .command('remove')
    .argument('<id>', "key ID from 'mediagit key list'")
    .description('remove a passphrase (never the last one)')
    .action(async (id: string) => (await import('../commands/key.js')).runKeyRemove(io, id));
  key
    .command('passwd')
    .description('change the passphrase you unlock with (adds the new key, removes the old)')
    .action(async () => (await import('../commands/key.js')).runKeyPasswd(io));
  key
    .command('cache')
    .description(
      'unlock once and let a per-user key agent hold the key, so commands skip the passphrase',
    )
    .option(
      '--timeout <duration>',
      'how long the agent keeps the key: 30s, 15m, 2h, 1h30m (at most 7d)',
      '15m',
    )
    .option('--status', "say whether this repository's key is cached, and for how long")
    .addHelpText(
      'after',
      examples([
        'mediagit key cache',
        'mediagit --passphrase-file ~/.secrets/hero-game key cache --timeout 2h',
        'mediagit key cache --status',
      ]),
    )
    .action(async (options) => (await import('../commands/key.js')).runKeyCache(io, options));
  key
    .command('forget')
    .description("drop this repository's key from the key agent")
    .option('--all', 'drop every cached key and stop the agent')
    .addHelpText('after', examples(['mediagit key forget', 'mediagit key forget --all']))
    .action(async (options) => (await import('../commands/key.js')).runKeyForget(io, options));

  program
    .command('config')
    .argument('[key]', 'dotted key, e.g. user.name')
    .argument('[value]', 'new value')
    .description('read or change settings')
    .option('--global', 'use the per-user file (~/.config/mediagit/config.toml)')
    .option('-l, --list', 'list all settings')
    .option('--unset', 'remove the key')
    .option('--json', 'with --list, print JSON')
    .addHelpText(
      'after',
      examples([
        'mediagit config --global user.name "Ada Artist"',
        'mediagit config user.email ada@studio.example',
        'mediagit config core.compression_level 6',
        'mediagit config --list',
      ]),
    )
    .action(async (key: string | undefined, value: string | undefined, options) =>
      (await import('../commands/config.js')).runConfig(io, key, value, options),
    );

  try {
    await program.parseAsync(args);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err, debug, (text) => void process.stderr.write(text));
  }
}
