// From the rounds' figures to rows: medians, each ratio taken within a round (median and spread
// over the rounds), the issue's targets with met / not met, and the text or JSON that shows them.
import { median, medianOf } from './measure.mjs';

const mb = (bytes, secs) => bytes / 1e6 / secs;

/**
 * The rounds' own ratios of two figures, summarised. A ratio is the median of each round's own
 * ratio, not a ratio of medians: the two sides of one round ran seconds or minutes apart, and on a
 * shared machine whose speed drifts by half over a long run that keeps a slow round from being
 * divided by a fast one.
 */
export function ratioStats(rounds, top, bottom) {
  const perRound = [];
  for (let i = 0; i < rounds; i++) {
    const a = top(i);
    const b = bottom(i);
    perRound.push(typeof a === 'number' && typeof b === 'number' && b > 0 ? a / b : null);
  }
  const values = perRound.filter((x) => x !== null);
  if (values.length === 0) return null;
  return {
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    perRound,
  };
}

/** The table of local operations: times, floors, restic, encrypted ÷ plain. */
export function localRows(runs, repeat, bytesV1, bytesV2) {
  const restic = medianOf(runs.restic);
  const rows = [];
  const row = (what, scenario, pick, bytes, resticPick, encScenario) => {
    if (runs[scenario].length === 0) return;
    const m = pick(medianOf(runs[scenario]));
    const encRuns = runs[encScenario];
    const encM = encRuns.length > 0 ? pick(medianOf(encRuns)) : null;
    const secsAt = (i) => pick(runs[scenario][i] ?? {})?.secs;
    const floorAt = (k) => (i) => runs.floors[i]?.[k];
    const vsRestic =
      resticPick && runs.restic.length > 0
        ? ratioStats(repeat, secsAt, (i) => runs.restic[i] && resticPick(runs.restic[i])?.secs)
        : null;
    rows.push({
      what,
      secs: m.secs,
      mbps: mb(bytes, m.secs),
      rssMiB: m.rssMiB,
      vsCp: ratioStats(repeat, secsAt, floorAt('cp'))?.median ?? null,
      vsRead: ratioStats(repeat, secsAt, floorAt('read'))?.median ?? null,
      vsSha256: ratioStats(repeat, secsAt, floorAt('sha256'))?.median ?? null,
      vsRestic: vsRestic?.median ?? null,
      vsResticSpread: vsRestic ? [vsRestic.min, vsRestic.max] : null,
      resticSecs: resticPick && restic ? resticPick(restic).secs : null,
      encryptedSecs: encM?.secs ?? null,
      encryptedRatio: encM
        ? (ratioStats(repeat, (i) => encRuns[i] && pick(encRuns[i])?.secs, secsAt)?.median ?? null)
        : null,
      encryptedRssMiB: encM?.rssMiB ?? null,
    });
  };
  row(
    'add+commit v1',
    'plain',
    (r) => r.addV1,
    bytesV1,
    (r) => r.backupV1,
    'enc',
  );
  row(
    'add+commit v2',
    'plain',
    (r) => r.addV2,
    bytesV2,
    (r) => r.backupV2,
    'enc',
  );
  row(
    'checkout v2 (empty tree)',
    'plain',
    (r) => r.checkout,
    bytesV2,
    (r) => r.restore,
    'enc',
  );
  row('push v1 → local remote', 'plain', (r) => r.push, bytesV1, null, 'enc');
  row('push v2 → local remote', 'plain', (r) => r.pushV2, bytesV2, null, 'enc');
  row('clone from local remote', 'plain', (r) => r.clone, bytesV2, null, 'enc');
  row('push v1 → mediagit server', 'server', (r) => r.push, bytesV1, null, 'serverEnc');
  row('clone from mediagit server', 'server', (r) => r.clone, bytesV1, null, 'serverEnc');
  row('status (clean)', 'plain', (r) => r.status, bytesV2, null, 'enc');
  return rows;
}

/**
 * Every ratio issue 18 sets a target for (`target` set: the median must be at most it), and the
 * ratios that explain them (`target` null), each from one round's own two figures.
 */
export function targetRows(runs, repeat) {
  const out = [];
  const add = (what, against, target, top, bottom) => {
    const stats = ratioStats(repeat, top, bottom);
    if (!stats) return;
    out.push({
      what,
      against,
      target,
      ...stats,
      met: target === null ? null : stats.median <= target,
    });
  };
  const at = (scenario, key) => (i) => runs[scenario][i]?.[key]?.secs;
  add(
    'push v1 → mediagit server',
    'sink floor (same objects, write + fsync)',
    1.3,
    at('server', 'push'),
    at('server', 'sinkPush'),
  );
  add(
    'clone from mediagit server',
    'restic restore v1 (local repository)',
    1.0,
    at('server', 'clone'),
    at('server', 'resticRestoreV1'),
  );
  add(
    'clone from mediagit server',
    'sink floor (same objects, write + fsync)',
    null,
    at('server', 'clone'),
    at('server', 'sinkPull'),
  );
  add('push v1 → S3', 'rclone copy up', 1.0, at('s3', 's3Push'), at('s3', 'rcloneUp'));
  add(
    'push v1 → S3',
    'restic backup → same S3',
    null,
    at('s3', 's3Push'),
    at('s3', 'resticS3Backup'),
  );
  add(
    'clone from S3',
    'restic restore ← same S3',
    1.0,
    at('s3', 's3Clone'),
    at('s3', 'resticS3Restore'),
  );
  add('clone from S3', 'rclone copy down', null, at('s3', 's3Clone'), at('s3', 'rcloneDown'));
  add(
    'push v1 → server over S3',
    'push v1 → S3 direct',
    1.2,
    at('s3', 'serverS3Push'),
    at('s3', 's3Push'),
  );
  add(
    'clone from server over S3',
    'clone from S3 direct',
    1.2,
    at('s3', 'serverS3Clone'),
    at('s3', 's3Clone'),
  );
  add(
    'add+commit v1',
    'restic backup v1',
    0.35,
    at('plain', 'addV1'),
    (i) => runs.restic[i]?.backupV1?.secs,
  );
  const linkAt = (key) => (i) => runs.link[i]?.[key]?.secs;
  add(
    'push v1 through the link',
    'sink floor through the link',
    null,
    linkAt('push'),
    linkAt('sinkPush'),
  );
  add(
    'push v2 through the link',
    'sink floor through the link (v2 objects)',
    null,
    linkAt('pushV2'),
    linkAt('sinkPushV2'),
  );
  add(
    'pull v2 through the link',
    'sink floor through the link (v2 objects)',
    null,
    linkAt('pullV2'),
    linkAt('sinkPullV2'),
  );
  add(
    'clone through the link',
    'sink floor through the link',
    null,
    linkAt('clone'),
    linkAt('sinkPull'),
  );
  const storedAfterV2 = (r) => r && r.storedV1 + r.storedGrowthV2;
  add(
    'stored after v2 (all of .mediagit)',
    'restic repository after v2',
    1.0,
    (i) => storedAfterV2(runs.plain[i]),
    (i) => storedAfterV2(runs.restic[i]),
  );
  return out;
}

const LINK_NAMES = {
  push: 'push v1 → mediagit server',
  pushV2: 'push v2 (incremental) → mediagit server',
  pullV2: 'pull v2 (fast-forward of a v1 clone) ← mediagit server',
  clone: 'clone from mediagit server',
  sinkPush: 'sink floor: push v1 objects',
  sinkPushV2: 'sink floor: push v2 new objects',
  sinkPull: 'sink floor: pull v1 objects',
  sinkPullV2: 'sink floor: pull v2 new objects',
  s3Push: 'push v1 → S3 direct',
  s3PushV2: 'push v2 (incremental) → S3 direct',
  s3Clone: 'clone from S3 direct',
  serverS3Push: 'push v1 → server over S3',
  serverS3Clone: 'clone from server over S3',
  rcloneUp: 'rclone copy up',
  rcloneDown: 'rclone copy down',
  resticS3Backup: 'restic backup → S3',
  resticS3Restore: 'restic restore ← S3',
};

/**
 * Each transfer through the link emulator against its link time (its bytes in the busier
 * direction at the rate, plus one RTT). mediagit's transfers have targets (1.1×, and 1.3× for the
 * incremental pushes, where round trips dominate); the others show what the link allows.
 */
export function linkRows(runs, repeat) {
  if (runs.link.length === 0) return [];
  const keys = Object.keys(LINK_NAMES).filter((k) => runs.link.some((r) => r?.[k]));
  return keys.map((key) => {
    const pick = (i) => runs.link[i]?.[key];
    const stats = ratioStats(
      repeat,
      (i) => pick(i)?.secs,
      (i) => pick(i)?.linkSecs,
    );
    const mine = !key.startsWith('sink') && !key.startsWith('rclone') && !key.startsWith('restic');
    // Incremental pushes have their own target (round trips weigh most there); a pull has 1.1.
    const target = mine ? (/push.*V2$/i.test(key) ? 1.3 : 1.1) : null;
    const m = medianOf(runs.link.map((_r, i) => pick(i)).filter(Boolean));
    return {
      key,
      what: LINK_NAMES[key],
      secs: m.secs,
      up: m.up,
      down: m.down,
      linkSecs: m.linkSecs,
      target,
      ...stats,
      met: target === null || !stats ? null : stats.median <= target,
    };
  });
}

export function storageOf(runs, bytesV1, bytesV2) {
  const plain = medianOf(runs.plain);
  const enc = medianOf(runs.enc);
  const restic = medianOf(runs.restic);
  const pick = (x) => ({
    storedV1: x.storedV1,
    storedGrowthV2: x.storedGrowthV2,
    sentV2: x.sentV2,
    remoteGrowthV2: x.remoteGrowthV2,
  });
  return {
    corpusV1: bytesV1,
    corpusV2: bytesV2,
    mediagit: pick(plain),
    mediagitEncrypted: enc ? pick(enc) : null,
    restic: restic ? { storedV1: restic.storedV1, storedGrowthV2: restic.storedGrowthV2 } : null,
  };
}

const f = (x, d = 2) => (x === null || x === undefined ? '—' : x.toFixed(d));
const spread = (r) => (r && r.min !== undefined ? `${f(r.min)}–${f(r.max)}` : '—');
const verdict = (r) => (r.met === null ? '' : r.met ? 'met' : 'NOT met');

export function printReport(report) {
  const { profile, repeat, bytesV1, floors, rows, targets, link, storage, enc } = report;
  console.log(
    `\n## mediagit bench — profile ${profile}, corpus v1 ${(bytesV1 / 2 ** 20).toFixed(0)} MiB (${new Date().toISOString().slice(0, 10)})${repeat > 1 ? `, median of ${repeat} rounds` : ''}\n`,
  );
  if (repeat > 1)
    console.log(
      "Times are medians over the rounds; each ratio is the median of the rounds' own ratios (floors are measured in every round), spread = min–max of the rounds' ratios.\n",
    );
  console.log(
    `Floors on v1: read ${f(floors.read)} s, openssl sha256 ${f(floors.sha256)} s, cp -r ${f(floors.cp)} s\n`,
  );
  if (enc)
    console.log(
      `Encrypted runs unlock once with 'mediagit key cache' (the agent); without it each command pays Argon2id (m=64 MiB, t=3, p=4): ${f(enc.coldUnlock)} s.\n`,
    );
  if (rows.length > 0) {
    console.log(
      '| operation | time s | MB/s | peak RSS MiB | ÷ cp -r | ÷ read | ÷ sha256 | restic s | ÷ restic | spread | encrypted s | enc ÷ plain | enc RSS MiB |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  }
  for (const r of rows)
    console.log(
      `| ${r.what} | ${f(r.secs)} | ${f(r.mbps, 0)} | ${f(r.rssMiB, 0)} | ${f(r.vsCp)} | ${f(r.vsRead)} | ${f(r.vsSha256)} | ${f(r.resticSecs)} | ${f(r.vsRestic)} | ${r.vsResticSpread ? `${f(r.vsResticSpread[0])}–${f(r.vsResticSpread[1])}` : '—'} | ${f(r.encryptedSecs)} | ${f(r.encryptedRatio)} | ${f(r.encryptedRssMiB, 0)} |`,
    );
  if (targets.length > 0) {
    console.log(
      `\nRatios against the floors and the other tools (v1 unless named; each round's own ratio, median and min–max over ${repeat} round${repeat > 1 ? 's' : ''}):\n`,
    );
    console.log('| operation | against | ÷ it | spread | target | |');
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const r of targets)
      console.log(
        `| ${r.what} | ${r.against} | ${f(r.median)} | ${spread(r)} | ${r.target === null ? '—' : `≤ ${f(r.target)}`} | ${verdict(r)} |`,
      );
  }
  if (link.rows.length > 0) {
    console.log(
      `\nThrough the link emulator (${link.spec}): link time = bytes in the busier direction ÷ rate + 1 RTT:\n`,
    );
    console.log(
      '| transfer | time s | MB up | MB down | link time s | ÷ link time | spread | target | |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of link.rows)
      console.log(
        `| ${r.what} | ${f(r.secs)} | ${(r.up / 1e6).toFixed(1)} | ${(r.down / 1e6).toFixed(1)} | ${f(r.linkSecs)} | ${f(r.median)} | ${spread(r)} | ${r.target === null ? '—' : `≤ ${f(r.target)}`} | ${verdict(r)} |`,
      );
  }
  if (!storage) return;
  const m = (b) => (b / 1e6).toFixed(1);
  console.log(
    '\n| stored (MB) | after v1 | growth for v2 | sent for v2 | ÷ remote growth |\n| --- | --- | --- | --- | --- |',
  );
  const sent = (x) => `${m(x.sentV2)} | ${(x.sentV2 / x.remoteGrowthV2).toFixed(3)}`;
  console.log(
    `| mediagit | ${m(storage.mediagit.storedV1)} | ${m(storage.mediagit.storedGrowthV2)} | ${sent(storage.mediagit)} |`,
  );
  if (storage.mediagitEncrypted)
    console.log(
      `| mediagit (encrypted) | ${m(storage.mediagitEncrypted.storedV1)} | ${m(storage.mediagitEncrypted.storedGrowthV2)} | ${sent(storage.mediagitEncrypted)} |`,
    );
  if (storage.restic)
    console.log(
      `| restic | ${m(storage.restic.storedV1)} | ${m(storage.restic.storedGrowthV2)} | — | — |`,
    );
  else console.log('| restic | not on PATH (apt-get install restic) | |');
}
