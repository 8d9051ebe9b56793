/**
 * A fake S3 front for tests: on 127.0.0.1 in front of radosgw, it passes every request through
 * byte for byte (the Host header too, so the client's signatures stay valid), except create-only
 * PUTs (`If-None-Match: *`), which it answers itself the way a server without an atomic
 * condition would: it checks whether the key exists, waits (the race window), then writes
 * unconditionally. A lone second create is refused, as on a real server; creates racing on one
 * key all "win". This is the server a two-PUT probe cannot tell from a good one.
 */
import { once } from 'node:events';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface NonAtomicS3FrontOptions {
  /** radosgw's endpoint, e.g. http://127.0.0.1:7480 (loopback only). */
  target: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /**
   * Longest a checked create waits before writing; it goes on earlier once another create of the
   * same key has passed its check (so two racers always both get through). Default 200 ms.
   */
  windowMs?: number;
}

export interface NonAtomicS3Front {
  readonly url: string;
  /** Create-only PUTs answered so far, and how many of them were told they created the key. */
  readonly creates: number;
  readonly created: number;
  close(): Promise<void>;
}

export async function startNonAtomicS3Front(
  options: NonAtomicS3FrontOptions,
): Promise<NonAtomicS3Front> {
  const target = new URL(options.target);
  if (target.protocol !== 'http:' || target.hostname !== '127.0.0.1')
    throw new Error(`non-atomic S3 front: only http://127.0.0.1 targets, not ${options.target}`);
  const { S3Client, HeadObjectCommand, PutObjectCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint: options.target,
    region: options.region,
    forcePathStyle: true,
    credentials: options.credentials,
    maxAttempts: 1,
  });
  const windowMs = options.windowMs ?? 200;
  const waiting = new Map<string, (() => void)[]>();
  const sockets = new Set<Socket>();
  let creates = 0;
  let created = 0;

  const exists = async (bucket: string, key: string): Promise<boolean> => {
    try {
      await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404)
        return false;
      throw err;
    }
  };

  /** Check, window, write: the check-then-write a server without an atomic condition does. */
  async function create(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    creates++;
    const path = (req.url ?? '/').split('?')[0]!;
    const [bucket = '', ...rest] = path.slice(1).split('/');
    const key = decodeURIComponent(rest.join('/'));
    const id = `${bucket}/${key}`;
    if (await exists(bucket, key)) {
      res.writeHead(412, { 'content-type': 'application/xml' });
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code>' +
          '<Message>At least one of the pre-conditions you specified did not hold</Message></Error>',
      );
      return;
    }
    // Whoever checked before us may write now; we wait for the next checker, or the window.
    const queue = waiting.get(id) ?? [];
    waiting.set(id, queue);
    for (const release of queue.splice(0)) release();
    await Promise.race([new Promise<void>((resolve) => queue.push(resolve)), sleep(windowMs)]);
    const out = await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.concat(chunks) }),
    );
    created++;
    res.writeHead(200, { etag: out.ETag ?? '"0"' });
    res.end();
  }

  function forward(req: IncomingMessage, res: ServerResponse): void {
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (reply) => {
        res.writeHead(reply.statusCode ?? 502, reply.statusMessage, reply.rawHeaders);
        reply.pipe(res);
      },
    );
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  }

  const server: Server = createServer((req, res) => {
    if (req.method === 'PUT' && req.headers['if-none-match'] === '*') {
      create(req, res).catch(() => req.socket.destroy());
      return;
    }
    forward(req, res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get creates() {
      return creates;
    },
    get created() {
      return created;
    },
    close() {
      client.destroy();
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
