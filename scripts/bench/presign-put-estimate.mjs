#!/usr/bin/env node
// What presigned uploads with verify-on-commit would cost, against the relay, without building
// them: interleaved rounds on one radosgw bucket, the small bench corpus.
//
//   relay: `mediagit push` through a server over the bucket (presign off): wall, client CPU, server CPU.
//   presigned PUT, estimated as its two phases in a row:
//     1. the client's uploads to quarantine keys: `mediagit push` straight to the bucket under a
//        quarantine prefix (the same objects, one PUT each, unsigned payload, as presigned PUTs
//        would be; plus a ref write the real thing would not make);
//     2. the server's commit: every staged object read back, verified as an upload is
//        (verifyUpload: decode + SHA-256), copied to its key (CopyObject) and deleted, 8 at a
//        time, in a process of its own (its CPU is the server's).
//   Phase 2 cannot start before phase 1 ends (the ref update commits what the push staged), so
//   the estimate's wall time is their sum; the server's CPU is phase 2's.
//
//   node scripts/bench/presign-put-estimate.mjs [--profile small] [--rounds 5]
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { corpus } from './corpus.mjs';
import { cli, copyTree, cpuSecondsOf, median, opt, root, timedRun, work } from './measure.mjs';
import { dropBucket, newBucket, s3Admin, s3Settings, s3Toml, startServer } from './network.mjs';

const self = fileURLToPath(import.meta.url);
const s3 = s3Settings();
if (s3 === null) throw new Error('MEDIAGIT_TEST_S3_* is not set (test/servers/radosgw.sh env)');

const admin = () => s3Admin(s3);

/** Phase 2, in its own process: read back, verify, copy to the final key, delete the staged one. */
async function commit(bucket, staged, final) {
  const { verifyUpload } = await import(path.join(root, 'dist/src/server/verify.js'));
  const { sdk, client } = await admin();
  const keys = [];
  let token;
  do {
    const page = await client.send(
      new sdk.ListObjectsV2Command({
        Bucket: bucket,
        Prefix: `${staged}/`,
        ContinuationToken: token,
      }),
    );
    for (const o of page.Contents ?? [])
      if (/\/(chunks|objects)\/[0-9a-f]{64}$/.test(o.Key)) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const limits = { mode: 'plain', maxChunkBytes: 16 << 20, maxObjectBytes: 16 << 20 };
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++];
      const rel = key.slice(staged.length + 1);
      const got = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }));
      const bytes = Buffer.from(await got.Body.transformToByteArray());
      const oid = rel.slice(rel.indexOf('/') + 1);
      await verifyUpload(rel.startsWith('chunks/') ? 'chunk' : 'structured', oid, bytes, limits);
      await client.send(
        new sdk.CopyObjectCommand({
          Bucket: bucket,
          CopySource: `${bucket}/${key}`,
          Key: `${final}/${rel}`,
        }),
      );
      await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: key }));
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  client.destroy();
  console.log(`committed ${keys.length}`);
}

if (process.argv[2] === '--commit') {
  await commit(process.argv[3], process.argv[4], process.argv[5]);
  process.exit(0);
}

const rounds = Math.max(1, Number(opt('--rounds', '5')) || 5);
const timed = timedRun;
const mgRun = (cwd, token, ...a) =>
  timed(cwd, { MEDIAGIT_TOKEN: token }, process.execPath, [cli, ...a]);

const v1 = await corpus(1);
const bucket = await newBucket(s3, 'presign-put');

const server = await startServer(
  'presign-put',
  ['[server]', 'presign = "off"', s3Toml(s3, bucket, 'srv')].join('\n'),
  { tokenRepo: '*' },
);
const { base: url, token } = server;

const repo = path.join(work, 'presign-put-repo');
copyTree(v1, repo);
mgRun(repo, token, 'init', '-q');
mgRun(repo, token, 'add', '.');
mgRun(repo, token, 'commit', '-q', '-m', 'v1');
const s3Opts = [
  ['endpoint', s3.endpoint],
  ['access_key', s3.access],
  ['secret_key', s3.secret],
  ['region', s3.region],
  ['force_path_style', 'true'],
].flatMap(([k, v]) => ['-o', `${k}=${v}`]);

const results = [];
try {
  for (let round = 0; round < rounds; round++) {
    const r = {};
    const jobs = {
      relay: () => {
        mgRun(repo, token, 'remote', 'add', `relay${round}`, `${url}/relay-${round}`);
        const before = cpuSecondsOf(server.pid);
        const t = mgRun(repo, token, 'push', '-q', `relay${round}`, 'main');
        return { wall: t.wall, client: t.cpu, server: cpuSecondsOf(server.pid) - before };
      },
      presignedPut: () => {
        mgRun(repo, token, 'remote', 'add', `q${round}`, `s3://${bucket}/q-${round}`, ...s3Opts);
        const upload = mgRun(repo, token, 'push', '-q', `q${round}`, 'main');
        const commitRun = timed(root, {}, process.execPath, [
          self,
          '--commit',
          bucket,
          `q-${round}`,
          `final-${round}`,
        ]);
        return {
          wall: upload.wall + commitRun.wall,
          upload: upload.wall,
          commit: commitRun.wall,
          client: upload.cpu,
          server: commitRun.cpu,
        };
      },
    };
    const order = round % 2 === 0 ? ['relay', 'presignedPut'] : ['presignedPut', 'relay'];
    for (const name of order) r[name] = jobs[name]();
    results.push(r);
    console.error(
      `round ${round + 1}: relay ${r.relay.wall.toFixed(2)}s (client ${r.relay.client.toFixed(2)}, server ${r.relay.server.toFixed(2)}) | ` +
        `presigned PUT ${r.presignedPut.wall.toFixed(2)}s = upload ${r.presignedPut.upload.toFixed(2)} + commit ${r.presignedPut.commit.toFixed(2)} (client ${r.presignedPut.client.toFixed(2)}, server ${r.presignedPut.server.toFixed(2)})`,
    );
  }
} finally {
  await server.stop();
  await dropBucket(s3, bucket).catch((e) => console.error(`bucket ${bucket} left: ${e.message}`));
}

const ratio = (field) => {
  const values = results.map((r) => r.presignedPut[field] / r.relay[field]).sort((a, b) => a - b);
  return `${median(values).toFixed(2)} [${values[0].toFixed(2)}–${values.at(-1).toFixed(2)}]`;
};
const med = (name, field) => median(results.map((r) => r[name][field])).toFixed(2);
console.log(
  `presigned PUT (estimated) vs relay push, ${rounds} rounds; presigned ÷ relay per round, median [min–max]`,
);
console.log(
  `wall      : relay ${med('relay', 'wall')} s, presigned ${med('presignedPut', 'wall')} s (upload ${med('presignedPut', 'upload')} + commit ${med('presignedPut', 'commit')}), ratio ${ratio('wall')}`,
);
console.log(
  `client CPU: relay ${med('relay', 'client')} s, presigned ${med('presignedPut', 'client')} s, ratio ${ratio('client')}`,
);
console.log(
  `server CPU: relay ${med('relay', 'server')} s, presigned ${med('presignedPut', 'server')} s, ratio ${ratio('server')}`,
);
