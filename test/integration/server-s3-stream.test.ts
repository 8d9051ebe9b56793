/**
 * mediagit server over S3 (radosgw) relays objects as they arrive instead of holding them whole:
 * a 64 MiB chunk and a pack of 24 MiB chunks pass through without any chunk being read whole from
 * storage (seen by a store wrapper that counts what the server reads), and a client that goes away
 * stops the read from the bucket.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { request } from 'node:http';
import { Transform, pipeline, type Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { ForwardingStore, type Passage, type StreamedObject } from '../../src/store/index.js';
import {
  decodeTestPack,
  describeRepository,
  http,
  startTestServer,
} from '../support/server-harness.js';
import { skipUnlessServer } from '../support/test-servers.js';

const env = process.env;
const ENDPOINT = env['MEDIAGIT_TEST_S3_ENDPOINT'] ?? '';
const ACCESS_KEY = env['MEDIAGIT_TEST_S3_ACCESS_KEY'] ?? '';
const SECRET_KEY = env['MEDIAGIT_TEST_S3_SECRET_KEY'] ?? '';
const REGION = env['MEDIAGIT_TEST_S3_REGION'] ?? 'us-east-1';
const BUCKET = `mg-stream-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const MiB = 1024 * 1024;

const storage = {
  url: `s3://${BUCKET}/srv`,
  options: {
    endpoint: ENDPOINT,
    region: REGION,
    access_key: ACCESS_KEY,
    secret_key: SECRET_KEY,
    force_path_style: true,
  },
};

const sha = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** A stream read through a counter, so the test sees what the server pulled from the bucket. */
interface Tapped {
  readonly key: string;
  readonly size: number;
  passed: number;
  /** Whether the source reached its end (false: destroyed early). */
  ended: boolean;
  readonly closed: Promise<void>;
}

/** Counts chunk bytes the server reads from storage whole (`get`) and as streams. */
class TapStore extends ForwardingStore {
  buffered = 0;
  readonly streams: Tapped[] = [];

  protected override async pass<T>(passage: Passage<T>): Promise<T> {
    const result = await passage.run();
    if (passage.operation !== 'get' || !passage.target.startsWith('chunks/')) return result;
    if (Buffer.isBuffer(result)) this.buffered += result.length;
    else if (typeof result === 'object' && result !== null && 'body' in result)
      return this.tap(passage.target, result as unknown as StreamedObject) as T;
    return result;
  }

  private tap(key: string, opened: StreamedObject): StreamedObject {
    const source: Readable = opened.body;
    // Not once(): a source cut off ends with an error before it closes, which is what is tested.
    const closed = new Promise<void>((resolve) =>
      source.once('close', () => {
        record.ended = source.readableEnded;
        resolve();
      }),
    );
    const record: Tapped = { key, size: opened.size, passed: 0, ended: false, closed };
    this.streams.push(record);
    const counter = new Transform({
      transform(piece: Buffer, _encoding, done) {
        record.passed += piece.length;
        done(null, piece);
      },
    });
    // Destroying what the server holds (the counter) destroys the source too.
    pipeline(source, counter, () => undefined);
    return { size: opened.size, body: counter };
  }
}

describe(
  'mediagit server over S3: objects streamed through',
  { skip: skipUnlessServer('s3') },
  () => {
    let admin: S3Client;
    const big = randomBytes(64 * MiB);
    const bigOid = sha(big);

    /** Puts `data` straight into the bucket under repository `repo` (the server only relays it). */
    const plant = (repo: string, key: string, data: Buffer) =>
      admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: `srv/${repo}/${key}`, Body: data }));

    before(async () => {
      admin = new S3Client({
        endpoint: ENDPOINT,
        region: REGION,
        forcePathStyle: true,
        credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
      });
      await admin.send(new CreateBucketCommand({ Bucket: BUCKET }));
    });
    // The test radosgw keeps objects in memory shared by every suite: this one's 160 MiB go at once.
    after(async () => {
      if (admin === undefined) return;
      let token: string | undefined;
      do {
        const page = await admin.send(
          new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: token }),
        );
        const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
        if (keys.length > 0)
          await admin.send(
            new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys, Quiet: true } }),
          );
        token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
      await admin.send(new DeleteBucketCommand({ Bucket: BUCKET }));
      admin.destroy();
    });

    test('a pack of large chunks is relayed chunk by chunk, none read whole from the bucket', async (t) => {
      let tap: TapStore | undefined;
      const server = await startTestServer({
        storage,
        wrapStore: (store) => (tap = new TapStore(store)),
      });
      t.after(() => server.close());
      const token = await server.token('*', 'read', 'reader');
      const write = await server.token('*', 'write', 'writer');
      const base = `${server.url}/relay`;
      await describeRepository(base, write);
      const pieces = [0, 1, 2, 3].map(() => randomBytes(24 * MiB));
      for (const piece of pieces) await plant('relay', `chunks/${sha(piece)}`, piece);
      const tree = randomBytes(3000);
      await plant('relay', `objects/${sha(tree)}`, tree);

      const fetched = await http(`${base}/objects/fetch`, {
        token,
        json: { want: [...pieces.map((p) => `chunks/${sha(p)}`), `objects/${sha(tree)}`] },
      });
      assert.equal(fetched.status, 200);
      const records = decodeTestPack(fetched.body);
      assert.deepEqual(
        records.map((r) => [r.oid, sha(r.stored)]),
        [...pieces, tree].map((p) => [sha(p), sha(p)]),
        'every record relayed whole and in order',
      );
      assert.equal(tap!.buffered, 0, 'no chunk was held whole');
      // Opened a few at a time, ahead of the socket: in no particular order.
      assert.deepEqual(
        tap!.streams.map((s) => `${s.key} ${s.size}`).sort(),
        pieces.map((p) => `chunks/${sha(p)} ${p.length}`).sort(),
      );
      await Promise.all(tap!.streams.map((s) => s.closed));
      for (const s of tap!.streams) assert.ok(s.ended && s.passed === s.size, s.key);
    });

    test('no chunk is read whole from the bucket, and a client going away stops the read', async (t) => {
      let tap: TapStore | undefined;
      const server = await startTestServer({
        storage,
        wrapStore: (store) => (tap = new TapStore(store)),
      });
      t.after(() => server.close());
      const token = await server.token('*', 'read', 'reader');
      const write = await server.token('*', 'write', 'writer');
      const base = `${server.url}/abort`;
      await describeRepository(base, write);
      await plant('abort', `chunks/${bigOid}`, big);

      const whole = await http(`${base}/chunks/${bigOid}`, { token });
      assert.equal(sha(whole.body), bigOid);
      assert.equal(tap!.buffered, 0, 'the chunk was never held whole');
      assert.equal(tap!.streams.length, 1);
      await tap!.streams[0]!.closed;
      assert.equal(tap!.streams[0]!.passed, big.length);
      assert.ok(tap!.streams[0]!.ended);

      // A client that reads the first bytes, then goes away.
      const req = request(`${base}/chunks/${bigOid}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      req.on('error', () => undefined);
      req.end();
      const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
      await once(res, 'data');
      req.destroy();
      assert.equal(tap!.streams.length, 2);
      const cut = tap!.streams[1]!;
      await cut.closed;
      t.diagnostic(
        `read from the bucket before the client left: ${(cut.passed / MiB).toFixed(1)} of 64 MiB`,
      );
      assert.equal(cut.ended, false, 'the read was stopped, not run to its end');
      assert.ok(cut.passed < big.length / 2, `${cut.passed} bytes read after the client left`);
    });
  },
);
