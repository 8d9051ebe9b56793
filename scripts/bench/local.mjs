// mediagit on the local machine: the pipeline on both versions (run in lockstep with restic), and
// the lean-workspace figures.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { makeCorpus } from './corpus.mjs';
import {
  agentEnv,
  cli,
  copyTree,
  duBytes,
  env,
  fresh,
  measure,
  mg,
  profile,
  root,
  sh,
  warmPageCache,
  work,
} from './measure.mjs';

/**
 * The mediagit pipeline on the two versions, as steps (see lockstep); its result is the generator's
 * return value, one figure per operation.
 */
export async function* mediagitSteps(v1, v2, encrypted) {
  const repo = path.join(work, encrypted ? 'mg-enc' : 'mg');
  copyTree(v1, repo);
  mg(repo, 'init', '-q', ...(encrypted ? ['--encrypt'] : []));
  // As a user working all day would: unlock once (Argon2id), then every command gets the key from
  // the agent. The cost of unlocking without it is measured and reported on its own.
  if (encrypted) mg(repo, 'key', 'cache', '--timeout', '1h');
  // A passphrase in the environment wins over the agent (it is checked, so a wrong one fails even
  // with the key cached): the commands after the unlock run without it, as that user's would.
  const mgRun = encrypted
    ? (cwd, ...a) => measure(process.execPath, [cli, ...a], { cwd, env: agentEnv })
    : mg;
  // Every step that writes about a tree's worth starts from warm page cache, as restic's do
  // (warmPageCache: this VM hands memory freed a while ago back to its host, and the first write
  // into each such page costs a host fault, whichever program makes it).
  const warm = duBytes(v1);
  warmPageCache(warm);
  const add1 = mgRun(repo, 'add', '.');
  const commit1 = mgRun(repo, 'commit', '-q', '-m', 'v1');
  yield 'store v1';
  const storedV1 = duBytes(path.join(repo, '.mediagit'));
  const remote = path.join(work, encrypted ? 'remote-enc' : 'remote');
  rmSync(remote, { recursive: true, force: true });
  mgRun(repo, 'remote', 'add', 'origin', remote);
  const push1 = mgRun(repo, 'push', '-q', '--create');
  yield 'push v1';
  // v2 = the artist's edits applied in place by the generator, as an artist's tools would: files
  // that did not change keep their inode and mtime, so the index can vouch for them unread.
  await makeCorpus(repo, 2, profile);
  warmPageCache(warm);
  const add2 = mgRun(repo, 'add', '.');
  const commit2 = mgRun(repo, 'commit', '-q', '-m', 'v2');
  const storedV2 = duBytes(path.join(repo, '.mediagit'));
  yield 'store v2';
  const remoteBefore = duBytes(remote);
  const push2 = mgRun(repo, 'push', '--json');
  const sentV2 = JSON.parse(push2.stdout).bytesSent;
  const remoteGrowth = duBytes(remote) - remoteBefore;
  yield 'push v2';
  const cloneDir = path.join(work, encrypted ? 'clone-enc' : 'clone');
  rmSync(cloneDir, { recursive: true, force: true });
  // Every version's content, as clones fetched before they became tip-only (leanScenario has those).
  const clone = mgRun(work, 'clone', '-q', '--history-content', 'all', remote, cloneDir);
  yield 'clone';
  sh(`find "${repo}" -mindepth 1 -maxdepth 1 ! -name .mediagit -exec rm -rf {} +`, root);
  warmPageCache(warm);
  const checkout = mgRun(repo, 'reset', '--hard', '-q');
  yield 'restore';
  const status = mgRun(repo, 'status', '--porcelain');
  const coldUnlock = encrypted
    ? measure(process.execPath, [cli, 'status', '--porcelain'], {
        cwd: repo,
        env: { ...env, MEDIAGIT_AGENT: '0' },
      }).secs - status.secs
    : null;
  return {
    coldUnlock,
    addV1: {
      secs: add1.secs + commit1.secs,
      rssMiB: Math.max(add1.rssMiB ?? 0, commit1.rssMiB ?? 0),
    },
    addV2: {
      secs: add2.secs + commit2.secs,
      rssMiB: Math.max(add2.rssMiB ?? 0, commit2.rssMiB ?? 0),
    },
    checkout: { secs: checkout.secs, rssMiB: checkout.rssMiB },
    status: { secs: status.secs, rssMiB: status.rssMiB },
    push: { secs: push1.secs, rssMiB: push1.rssMiB },
    pushV2: { secs: push2.secs, rssMiB: push2.rssMiB },
    clone: { secs: clone.secs, rssMiB: clone.rssMiB },
    storedV1,
    storedGrowthV2: storedV2 - storedV1,
    sentV2,
    remoteGrowthV2: remoteGrowth,
  };
}

/**
 * Lean workspaces on the corpus with v1 + v2 pushed: a default (tip-only) clone against a full one
 * (`--history-content all`), and how much `.mediagit` holds beside the working tree right after
 * the clone, after switching to v1 and back (which fetches v1's content), and after `prune`.
 */
export async function leanScenario(v1) {
  const repo = path.join(work, 'lean-src');
  copyTree(v1, repo);
  mg(repo, 'init', '-q');
  mg(repo, 'add', '.');
  mg(repo, 'commit', '-q', '-m', 'v1');
  const remote = fresh(path.join(work, 'lean-remote'));
  rmSync(remote, { recursive: true, force: true });
  mg(repo, 'remote', 'add', 'origin', remote);
  mg(repo, 'push', '-q', '--create');
  await makeCorpus(repo, 2, profile);
  mg(repo, 'add', '.');
  mg(repo, 'commit', '-q', '-m', 'v2');
  mg(repo, 'push', '-q');
  const tipBytes = duBytes(repo) - duBytes(path.join(repo, '.mediagit'));
  const full = path.join(work, 'lean-full');
  rmSync(full, { recursive: true, force: true });
  // --no-hardlinks on both: bytes are copied, as from any remote that is not a folder beside us.
  const fullClone = mg(
    work,
    'clone',
    '--json',
    '--no-hardlinks',
    '--history-content',
    'all',
    remote,
    full,
  );
  const lean = path.join(work, 'lean-clone');
  rmSync(lean, { recursive: true, force: true });
  const leanClone = mg(work, 'clone', '--json', '--no-hardlinks', remote, lean);
  const tree = () => duBytes(lean) - duBytes(path.join(lean, '.mediagit'));
  const afterClone = duBytes(path.join(lean, '.mediagit')) / tree();
  mg(lean, 'checkout', '-q', 'HEAD~1');
  mg(lean, 'checkout', '-q', 'main');
  const afterSwitch = duBytes(path.join(lean, '.mediagit')) / tree();
  const pruned = mg(lean, 'prune', '-q');
  const afterPrune = duBytes(path.join(lean, '.mediagit')) / tree();
  rmSync(full, { recursive: true, force: true });
  return {
    tipBytes,
    fullReceived: JSON.parse(fullClone.stdout).bytesReceived,
    leanReceived: JSON.parse(leanClone.stdout).bytesReceived,
    fullSecs: fullClone.secs,
    leanSecs: leanClone.secs,
    pruneSecs: pruned.secs,
    afterClone,
    afterSwitch,
    afterPrune,
  };
}

export function printLean(l) {
  const f = (x, d = 3) => x.toFixed(d);
  console.log(
    '\n| lean workspace (v1 + v2 pushed) | figure |\n| --- | --- |' +
      `\n| default clone: bytes received ÷ tip size | ${f(l.leanReceived / l.tipBytes)} (${(l.leanReceived / 1e6).toFixed(1)} MB of ${(l.tipBytes / 1e6).toFixed(1)} MB) |` +
      `\n| full clone (--history-content all): bytes received ÷ tip size | ${f(l.fullReceived / l.tipBytes)} |` +
      `\n| default clone time ÷ full clone time | ${f(l.leanSecs / l.fullSecs)} (${f(l.leanSecs, 2)} s vs ${f(l.fullSecs, 2)} s) |` +
      `\n| .mediagit ÷ working tree, after clone | ${f(l.afterClone)} |` +
      `\n| .mediagit ÷ working tree, after checkout v1 and back | ${f(l.afterSwitch)} |` +
      `\n| .mediagit ÷ working tree, after prune | ${f(l.afterPrune)} (prune ${f(l.pruneSecs, 2)} s) |`,
  );
}

/**
 * Runs the scenarios' steps in turns — step 1 of each, then step 2 of each, … — and returns their
 * results. The figures a ratio compares (plain and encrypted add, mediagit's checkout and restic's
 * restore) are then taken seconds apart rather than a minute: this VM's speed drifts by half within
 * a run, and that drift is what made encrypted ÷ plain swing between rounds.
 */
export async function lockstep(scenarios) {
  const results = new Array(scenarios.length).fill(null);
  let active = scenarios.map((steps, index) => ({ steps, index, step: null }));
  while (active.length > 0) {
    const next = [];
    for (const scenario of active) {
      const { value, done } = await scenario.steps.next();
      if (done) results[scenario.index] = value;
      else {
        if (next.length > 0 && next[0].step !== value)
          throw new Error(`bench scenarios out of step: ${next[0].step} vs ${value}`);
        scenario.step = value;
        next.push(scenario);
      }
    }
    active = next;
  }
  return results;
}
