#!/usr/bin/env node
// The floor for transfers through a server: the least an HTTP server has to do with the same
// objects (receive each, write it, fsync it, rename it into place; or read it and send it) and
// the least a client has to do (send each stored file; or receive it, write and fsync it), with as
// many requests in flight as mediagit's HTTP client keeps (16).
//
//   node scripts/bench/sink.mjs serve <dir>                 prints "listening on <url>"
//   node scripts/bench/sink.mjs push <url> <from> <list>    PUT each file of <list> (relative to <from>)
//   node scripts/bench/sink.mjs pull <url> <to> <list>      GET each, write + fsync into <to>
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { Agent, createServer, request } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

const [mode, ...rest] = process.argv.slice(2);
const IN_FLIGHT = 16;
const flat = (name) => name.replaceAll('/', '_');

if (mode === 'serve') {
  const dir = rest[0];
  await mkdir(dir, { recursive: true });
  let tmp = 0;
  const server = createServer(async (req, res) => {
    const name = flat(decodeURIComponent(req.url.slice(1)));
    const file = path.join(dir, name);
    try {
      if (req.method === 'PUT') {
        const part = `${file}.${tmp++}.tmp`;
        await pipeline(req, createWriteStream(part, { flush: true }));
        await rename(part, file);
        res.writeHead(201).end();
      } else {
        const body = createReadStream(file);
        await once(body, 'open');
        res.writeHead(200);
        await pipeline(body, res);
      }
    } catch (err) {
      if (!res.headersSent) res.writeHead(err.code === 'ENOENT' ? 404 : 500).end();
      else res.destroy();
    }
  });
  server.listen(0, '127.0.0.1', () =>
    console.log(`listening on http://127.0.0.1:${server.address().port}`),
  );
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
} else if (mode === 'push' || mode === 'pull') {
  const [url, dir, listFile] = rest;
  const names = (await readFile(listFile, 'utf8')).split('\n').filter(Boolean);
  const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  const target = new URL(url);
  if (mode === 'pull') await mkdir(dir, { recursive: true });
  const one = (name) =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: target.hostname,
          port: target.port,
          path: `/${encodeURIComponent(name)}`,
          method: mode === 'push' ? 'PUT' : 'GET',
          agent,
        },
        (res) => {
          const parts = [];
          res.on('data', (b) => parts.push(b));
          res.on('error', reject);
          res.on('end', () => {
            if (res.statusCode >= 300) reject(new Error(`${name}: HTTP ${res.statusCode}`));
            else if (mode === 'push') resolve();
            else
              writeFile(path.join(dir, flat(name)), Buffer.concat(parts), { flush: true }).then(
                resolve,
                reject,
              );
          });
        },
      );
      req.on('error', reject);
      if (mode === 'push') readFile(path.join(dir, name)).then((b) => req.end(b), reject);
      else req.end();
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < names.length) await one(names[next++]);
    }),
  );
  agent.destroy();
} else {
  console.error('usage: sink.mjs serve <dir> | push <url> <from> <list> | pull <url> <to> <list>');
  process.exit(2);
}
