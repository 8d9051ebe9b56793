import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, describe, test } from 'node:test';

import {
  linkSeconds,
  parseLinkSpec,
  startLinkEmulator,
  type LinkEmulator,
} from '../../support/link-emulator.js';

const servers: Server[] = [];
const links: LinkEmulator[] = [];
after(async () => {
  for (const l of links) await l.close();
  for (const s of servers) s.close();
});

async function listen(server: Server): Promise<string> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `tcp://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function link(target: string, spec: string, extra = {}): Promise<LinkEmulator> {
  const l = await startLinkEmulator({ target, ...parseLinkSpec(spec), ...extra });
  links.push(l);
  return l;
}

/** Sends `data`, half-closes, and collects everything the server sends back until it ends. */
async function exchange(port: number, data: Buffer): Promise<Buffer> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const parts: Buffer[] = [];
  socket.on('data', (b: Buffer) => parts.push(b));
  socket.end(data);
  await once(socket, 'end');
  socket.destroy();
  return Buffer.concat(parts);
}

const flip = (b: Buffer): Buffer => Buffer.from(b.map((x) => x ^ 0x5a));

/** Answers each connection, once the client has half-closed, with its bytes flipped. */
function flippingServer(): Server {
  return createServer({ allowHalfOpen: true }, (socket: Socket) => {
    const parts: Buffer[] = [];
    socket.on('data', (b: Buffer) => parts.push(b));
    socket.on('end', () => socket.end(flip(Buffer.concat(parts))));
  });
}

describe('link emulator', () => {
  test('parses tc-style rate and rtt, refusing byte units and junk', () => {
    assert.deepEqual(parseLinkSpec('200mbit,40ms'), { rateBitsPerSecond: 200e6, rttMs: 40 });
    assert.deepEqual(parseLinkSpec('1.5Gbit, 200us'), { rateBitsPerSecond: 1.5e9, rttMs: 0.2 });
    assert.deepEqual(parseLinkSpec('512kbit,1s'), { rateBitsPerSecond: 512e3, rttMs: 1000 });
    for (const bad of ['200mbps,40ms', '200mbit', '0mbit,1ms', 'fast,40ms', '200mbit,40'])
      assert.throws(() => parseLinkSpec(bad), /link:/, bad);
    assert.equal(linkSeconds(parseLinkSpec('8mbit,100ms'), 1e6, 2), 1.2);
  });

  test('refuses a target off loopback', async () => {
    await assert.rejects(
      startLinkEmulator({ target: 'http://192.0.2.1:80', ...parseLinkSpec('1gbit,1ms') }),
      /loopback/,
    );
  });

  test('carries bytes intact both ways on parallel connections, FIN after the data', async () => {
    const target = await listen(flippingServer());
    const l = await link(target, '2gbit,4ms');
    const payloads = [1, 2, 3, 4].map((i) => randomBytes(i * 300_000 + 17));
    const replies = await Promise.all(payloads.map((p) => exchange(l.port, p)));
    replies.forEach((r, i) => assert.ok(r.equals(flip(payloads[i]!)), `connection ${i}`));
    const total = payloads.reduce((n, p) => n + p.length, 0);
    assert.deepEqual(l.counters(), { up: total, down: total, connections: 4 });
  });

  test('an upload at a tiny rate takes at least bytes / rate plus the round trips', async () => {
    const target = await listen(flippingServer());
    const burst = 16 * 1024;
    const l = await link(target, '2mbit,100ms', { burstBytes: burst });
    const data = randomBytes(384 * 1024);
    const started = performance.now();
    const reply = await exchange(l.port, data);
    const secs = (performance.now() - started) / 1000;
    assert.ok(reply.equals(flip(data)));
    // Up and down each carry the bytes; they cannot overlap here (the reply waits for the FIN).
    // Each direction starts with a full bucket, so its first `burst` bytes leave at once.
    const floor = linkSeconds(l.spec, 2 * (data.length - burst), 1);
    assert.ok(secs >= floor, `${secs.toFixed(3)} s < ${floor.toFixed(3)} s`);
  });

  test('HTTP through the link: same answer, and not before one RTT', async () => {
    const http = createHttpServer((req, res) => res.end(`hello ${req.url}`));
    const target = (await listen(http)).replace('tcp:', 'http:');
    const l = await link(target, '100mbit,120ms');
    assert.match(l.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const started = performance.now();
    const answer = await (await fetch(`${l.url}/x`)).text();
    assert.equal(answer, 'hello /x');
    // The handshake's RTT, then the request's and answer's half-RTTs.
    assert.ok(performance.now() - started >= 2 * 120, 'answered faster than two RTTs');
  });

  test('a sender faster than the link is paused: what waits inside stays bounded', async () => {
    let received = 0;
    const sink = createServer((socket) => socket.on('data', (b: Buffer) => (received += b.length)));
    const target = await listen(sink);
    const l = await link(target, '1mbit,10ms');
    const socket = connect({ host: '127.0.0.1', port: l.port });
    socket.on('error', () => {});
    const total = 8 * 1024 * 1024;
    socket.write(randomBytes(total));
    // Wait until the link has delivered a few segments, so the bound has been tested for a while.
    while (received < 64 * 1024) await new Promise((r) => setTimeout(r, 20));
    socket.destroy();
    // One socket read (at most 64 KiB) may land before the pause takes hold.
    assert.ok(
      l.peakPendingBytes <= l.pendingLimit + 64 * 1024,
      `${l.peakPendingBytes} bytes waited, bound ${l.pendingLimit}`,
    );
    assert.ok(received < total);
  });
});
